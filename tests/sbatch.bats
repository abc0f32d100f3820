#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted $ is what the printed script and the stubs hold
# make sbatch: the printed Slurm batch script, and that script run end to end against
# stub sbatch, srun and scontrol (tests/stubs/stub) with stub swift, evalscope and curl:
# two "nodes" on this machine train together, then the first runs the rest.

load test_helper

setup() {
  common_setup
  CFG="configs/$DEFAULT_EXP"
  stub_tools srun scontrol sbatch
}

teardown() {
  pkill -KILL -f "$REPO/.venv-lmdeploy/bin/swift" 2>/dev/null || true
  common_teardown
}

SECRET=sk-SBATCH-SECRET-42

@test "make sbatch GPU=0,1,2,3 NNODES=2: 2 nodes x 4 GPUs, one task each, the job's settings from the env file, no secret" {
  write_env "SWANLAB_TOKEN=$SECRET" JOB_PARTITION=gpu JOB_ACCOUNT=psy-lab JOB_TIME_LIMIT=2-00:00:00
  run --separate-stderr make sbatch GPU=0,1,2,3 NNODES=2 OUTPUT_ROOT=/shared/output
  assert_success
  refute_output --partial "$SECRET"
  assert_equal "${lines[0]}" "#!/usr/bin/env bash"
  assert_line "#SBATCH --job-name=$DEFAULT_EXP"
  assert_line "#SBATCH --nodes=2"
  assert_line "#SBATCH --ntasks-per-node=1"
  assert_line "#SBATCH --gres=gpu:4"
  assert_line "#SBATCH --cpus-per-task=32"
  assert_line "#SBATCH --time=2-00:00:00"
  assert_line "#SBATCH --partition=gpu"
  assert_line "#SBATCH --account=psy-lab"
  assert_line "#SBATCH --output=slurm-%x-%j.out"
  # Directives before the first command, or sbatch ignores them.
  run awk '/^#SBATCH/ && seen { bad = 1 } !/^#/ && NF { seen = 1 } END { exit bad }' <<<"$output"
  assert_success
  run --separate-stderr make sbatch GPU=0,1,2,3 NNODES=2 OUTPUT_ROOT=/shared/output
  assert_line "# SWANLAB_TOKEN: read from the env file, or exported before sbatch (sbatch passes the environment on)."
  assert_line "export EXP=$DEFAULT_EXP ENV_FILE=$ENV_FILE GPU=0,1,2,3 NNODES=2 MASTER_PORT=29500 OUTPUT_ROOT=/shared/output"
  assert_line 'mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")'
  assert_line 'export MASTER_ADDR="${nodes[0]}"'
  assert_line "make env preflight"
  assert_line "srun \\"
  assert_line "    --nodes=2 \\"
  assert_line "    --gres=gpu:4 \\"
  assert_line "    --kill-on-bad-exit=1 \\"
  assert_line --partial "bash -c 'NODE_RANK=\"\$SLURM_NODEID\" GPU=\"\${CUDA_VISIBLE_DEVICES:-\$GPU}\" exec make train'"
  assert_line "make all eval-base arena report"
  bash -n <<<"$output"
}

@test "make sbatch: empty job settings leave their lines out; JOB_CPUS_PER_NODE sets the CPUs of the job and of srun" {
  write_env JOB_CPUS_PER_NODE=48
  run --separate-stderr make sbatch GPU=6
  assert_success
  assert_line "#SBATCH --nodes=1"
  assert_line "#SBATCH --gres=gpu:1"
  assert_line "#SBATCH --cpus-per-task=48"
  assert_line "    --cpus-per-task=48 \\"
  refute_line --partial "#SBATCH --time"
  refute_line --partial "#SBATCH --partition"
  refute_line --partial "#SBATCH --account"
  refute_line --partial "SWANLAB_TOKEN"
  run --separate-stderr make sbatch GPU=cpu NNODES=2
  assert_success
  refute_line --partial "--gres"
  refute_line --partial "CUDA_VISIBLE_DEVICES"
  assert_line --partial "bash -c 'NODE_RANK=\"\$SLURM_NODEID\" exec make train'"
}

@test "make sbatch: job settings Slurm would reject are refused with the fix" {
  write_env JOB_TIME_LIMIT=2days
  run make sbatch GPU=6
  assert_failure
  assert_line "[sbatch] error: JOB_TIME_LIMIT='2days' is not a Slurm time limit"
  write_env_raw "JOB_PARTITION=gpu partition"
  run make sbatch GPU=6
  assert_failure
  assert_line "[sbatch] error: JOB_PARTITION='gpu partition' is not a Slurm PARTITION name"
  SUBMIT=yes run make sbatch GPU=6 ENV_FILE="$SRC_ROOT/env/example.env"
  assert_failure
  assert_line "[sbatch] error: SUBMIT='yes' is not 0 or 1"
}

@test "make sbatch SUBMIT=1 writes .state/<exp>/sbatch.sh and submits it; without sbatch on PATH it says where to run it" {
  write_env
  run make sbatch GPU=0,1,2,3 NNODES=2 SUBMIT=1
  assert_success
  assert_line "Submitted batch job 4242"
  assert_line "[sbatch] wrote .state/$DEFAULT_EXP/sbatch.sh; submitting it from $REPO"
  assert_equal "$(stub_call sbatch | grep '^argv:')" "argv: $REPO/.state/$DEFAULT_EXP/sbatch.sh"
  run cat "$TMP/sbatch-script"
  assert_line "#SBATCH --nodes=2"
  # The job gets no make command line of ours (it would override the job's GPU in every make).
  run grep -E '^(MAKEFLAGS|MFLAGS|MAKELEVEL|LAB_RUN_OWNER|SUBMIT)=' "$TMP/sbatch-env"
  assert_failure
  unstub_tool sbatch
  run make sbatch GPU=0,1,2,3 NNODES=2 SUBMIT=1
  assert_failure
  assert_line "[sbatch] error: SUBMIT=1, but sbatch is not on PATH (no Slurm client on this machine)"
}

@test "the batch script outside a Slurm job stops at once" {
  write_env
  make sbatch GPU=6 >job.sh
  run bash job.sh
  assert_failure
  assert_output --partial "SLURM_JOB_NODELIST: run this through sbatch"
}

# The GPU profile's venvs as make env leaves them (their stamps), lmdeploy's swift the stub;
# the tools the rest of the pipeline calls: evalscope, the report's python; a git checkout.
prepare_cluster_checkout() {
  venv_up_to_date .venv gpu
  venv_up_to_date .venv-lmdeploy lmdeploy
  cp "$SRC_ROOT/tests/stubs/stub" .venv-lmdeploy/bin/swift
  # What this run needs of the disk is not what a gpt-oss-20b run needs.
  printf 'GPU_FREE_MIB_PER_GPU=61440\nDISK_OUTPUT_GIB=0\nDISK_EXPORT_GIB=0\nDISK_CACHE_GIB=0\n' >"$CFG/requirements.env"
  git init -q . && git add -A && git -c user.name=t -c user.email=t@t commit -qm t
}

@test "the batch script run end to end against stub Slurm: both nodes train with their rank and Slurm's GPUs, the first node runs the rest, no server left" {
  local serve_port master_port
  serve_port="$(free_port)"
  master_port="$(free_port)"
  write_env "SERVE_PORT=$serve_port" "MASTER_PORT=$master_port" SKIP_REMOTE_CHECKS=swanlab,hub
  evaluate_only "$DEFAULT_EXP" ceval dialog perf
  prepare_cluster_checkout
  make sbatch GPU=0,1,2,3 NNODES=2 >job.sh
  # Slurm gave the job GPUs 4-7 on each node; the stub hosts are this machine's loopback.
  SLURM_JOB_NODELIST='node[1-2]' SLURM_JOB_ID=7 CUDA_VISIBLE_DEVICES=4,5,6,7 STUB_SLURM_GPUS=4,5,6,7 \
    STUB_CURL_WAIT_SERVED=5 run bash job.sh
  assert_success
  assert_equal "$(stub_call srun | grep -c '^arg: --nodes=2$')" 1
  # Training: rank 0, then rank 1 (which starts its swift once rank 0's answers).
  local rank block
  for rank in 0 1; do
    block="$(stub_call swift "$((rank + 1))")"
    grep -qx "argv: sft $REPO/$CFG/sft.yaml --output_dir $RUN_DIR --swanlab_mode local --swanlab_project multi-model-psychology --swanlab_exp_name $DEFAULT_EXP" <<<"$block"
    grep -qx "env: NODE_RANK=$rank" <<<"$block"
    grep -qx "env: NNODES=2" <<<"$block"
    grep -qx "env: MASTER_ADDR=127.0.0.1" <<<"$block"
    grep -qx "env: MASTER_PORT=$master_port" <<<"$block"
    grep -qx "env: NPROC_PER_NODE=4" <<<"$block"
    grep -qx "env: CUDA_VISIBLE_DEVICES=4,5,6,7" <<<"$block"
  done
  assert_equal "$(jq -r .matches_rank_0 "$RUN_DIR/lab-node-1.json")" true
  # The rest, once, on the first node.
  run stub_call swift 3
  assert_line "argv: export $REPO/$CFG/export.yaml --adapters $RUN_DIR/checkpoint-4 --output_dir $EXPORT_DIR.partial --exist_ok true"
  run stub_call swift 4
  assert_line "path: $REPO/.venv-lmdeploy/bin/swift"
  assert_line --partial "--lmdeploy_tp 4"
  run stub_call swift 5
  assert_line --partial "--served_model_name $DEFAULT_EXP-base"
  assert_equal "$(stub_calls swift)" 5
  # Per model: the three benchmarks kept (no judge configured).
  assert_equal "$(stub_calls evalscope)" 6
  assert_equal "$(stub_arg evalscope 1 --eval-batch-size)" 32
  # make all evaluates each model in one step (make evals, eval-base): one SwanLab process each.
  assert_equal "$(grep -c '^arg: .*/log_eval_swanlab\.py$' "$STUB_LOG")" 2
  assert_file_exist ".state/$DEFAULT_EXP/eval-cmmlu.done"
  assert_file_exist ".state/$DEFAULT_EXP/eval-base.done"
  # Nothing the experiment evaluates is missing from the report: "not run" only in the
  # sections it has no benchmark in.
  assert_equal "$(grep -c '未运行' "report/$DEFAULT_EXP.md")" \
    "$(grep -cx "未运行（$CFG/eval.yaml 中没有[^）]*基准）" "report/$DEFAULT_EXP.md")"
  run pgrep -f "$REPO/.venv-lmdeploy/bin/swift deploy"
  assert_failure
}

# array_task SCRIPT INDEX: the body of array task INDEX, as the single script would print it.
array_task() { awk -v i="$2" '$0 ~ "^  " i "\\) " { on = 1; next } on && /^    ;;$/ { exit } on' "$1" | sed 's/^    //'; }

@test "make sbatch EXPS=: a job array, task i runs experiment i with make sbatch EXP=<i>'s body on ports of its own; JOBS caps the tasks at once" {
  local exps=("$DEFAULT_EXP" gpt-oss-20b-sft-r32 gpt-oss-20b-sft-experts) i single
  write_env "SWANLAB_TOKEN=$SECRET" SERVE_PORT=9000 MASTER_PORT=29000 JOB_PARTITION=gpu
  run --separate-stderr make sbatch EXPS="${exps[*]}" GPU=0,1 JOBS=2
  assert_success
  refute_output --partial "$SECRET"
  assert_equal "${lines[0]}" "#!/usr/bin/env bash"
  assert_line "#SBATCH --job-name=sweep"
  assert_line "#SBATCH --array=0-2%2"
  assert_line "#SBATCH --gres=gpu:2"
  assert_line "#SBATCH --partition=gpu"
  assert_line "#SBATCH --output=slurm-%x-%A_%a.out"
  assert_line 'case "$SLURM_ARRAY_TASK_ID" in'
  run awk '/^#SBATCH/ && seen { bad = 1 } !/^#/ && NF { seen = 1 } END { exit bad }' <<<"$output"
  assert_success
  make -s sbatch EXPS="${exps[*]}" GPU=0,1 JOBS=2 >array.sh
  bash -n array.sh
  for i in 0 1 2; do
    single="$(make -s sbatch EXP="${exps[i]}" GPU=0,1 SERVE_PORT=$((9000 + 2 * i)) MASTER_PORT=$((29000 + i)) | sed -n '/^\[\[ -f Makefile/,$p')"
    [[ "$single" == *"export EXP=${exps[i]} "*"MASTER_PORT=$((29000 + i)) SERVE_PORT=$((9000 + 2 * i))"* ]]
    assert_equal "$(array_task array.sh "$i")" "$single"
  done
  run make sbatch EXPS="$DEFAULT_EXP nope"
  assert_failure
  assert_line "[sbatch] error: EXPS: experiment 'nope' has no config (configs/nope/sft.yaml)"
  run make sbatch EXPS="$DEFAULT_EXP" JOBS=x
  assert_failure
  assert_line "[sbatch] error: JOBS='x' is not a number of array tasks to run at once"
}

@test "the job array run as Slurm runs task 1: experiment 1 alone, end to end on its ports; a task beyond the array stops" {
  local serve master
  until serve="$(free_port)" && ! (: >"/dev/tcp/127.0.0.1/$((serve + 2))") 2>/dev/null && ! (: >"/dev/tcp/127.0.0.1/$((serve + 3))") 2>/dev/null; do :; done
  master="$(free_port)"
  venv_up_to_date
  write_env GPU=cpu "SERVE_PORT=$serve" "MASTER_PORT=$master" SKIP_REMOTE_CHECKS=swanlab,hub
  make new-exp FROM="$DEFAULT_EXP" NAME=array-a SET="eval.benchmarks=[ceval]" >/dev/null 2>&1
  make new-exp FROM="$DEFAULT_EXP" NAME=array-b SET="lora_rank=8 eval.benchmarks=[ceval]" >/dev/null 2>&1
  make -s sbatch EXPS="array-a array-b" >job.sh
  SLURM_JOB_NODELIST=node1 SLURM_ARRAY_TASK_ID=1 STUB_SLURM_HOSTS=127.0.0.1 STUB_CURL_WAIT_SERVED=5 run bash job.sh
  assert_success
  assert_equal "$(stub_arg swift 1 --swanlab_exp_name)" array-b
  assert_equal "$(stub_arg swift 3 --served_model_name)" array-b
  assert_equal "$(stub_arg swift 3 --port)" "$((serve + 2))"
  assert_equal "$(stub_arg swift 4 --served_model_name)" array-b-base
  assert_equal "$(stub_arg swift 4 --port)" "$((serve + 3))"
  assert_equal "$(stub_calls swift)" 4
  run grep -c 'array-a' "$STUB_LOG"
  assert_output 0
  assert_file_exist report/array-b.md
  assert_file_not_exist report/array-a.md
  assert_file_not_exist .state/array-b/server/pid
  SLURM_JOB_NODELIST=node1 SLURM_ARRAY_TASK_ID=2 run bash job.sh
  assert_failure
  assert_output "sbatch: the job array has tasks 0-1, not 2"
  SLURM_JOB_NODELIST=node1 run bash job.sh
  assert_failure
  assert_output --partial "SLURM_ARRAY_TASK_ID: run this through sbatch, as the job array it is"
}
