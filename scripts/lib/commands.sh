# shellcheck shell=bash
# shellcheck disable=SC2034 # the lists defined here are read by lib/fingerprint.sh
# The commands of the pipeline's steps, built in one place: the step scripts run
# them, the fingerprints (lib/fingerprint.sh) record them. Each builder fills the command
# (common.sh) its caller names: build_train_cmd cmd; run_cmd "${cmd[@]}". Sourced at any point after common.sh;
# the builders read load_env's settings when called.
# shellcheck source=/dev/null
source "${BASH_SOURCE[0]%/*}/common.sh"
loaded_before commands && return 0
# shellcheck source=/dev/null
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=/dev/null
source "$REPO_ROOT/scripts/lib/server.sh"

# Flags and environment values that say where (or whether, EVALSCOPE_HTML: EvalScope's HTML
# page) a step writes or reports, not what it computes: recorded with the command, left out of
# its inputs' fingerprint (the model and dataset behind --model/--dataset are fingerprinted by
# content).
# Which node is which (NODE_RANK) and where they meet (MASTER_ADDR, MASTER_PORT) are
# locations; NNODES and NPROC_PER_NODE are inputs: their product, the world size,
# sets the global batch and so the number of steps and the result. --deepspeed is an
# input too: the ZeRO stage changes how gradients are reduced and where the optimizer
# runs, so the numbers differ in their last digits.
LOCATION_FLAGS=(--output_dir --swanlab_mode --swanlab_project --swanlab_exp_name --adapters --work-dir
  --api-url --api-key --host --port --model --dataset --served_model_name --exist_ok --use-cache
  --url --outputs-dir)
LOCATION_ENV=(CUDA_VISIBLE_DEVICES HF_HOME MODELSCOPE_CACHE HF_HUB_OFFLINE HF_DATASETS_OFFLINE
  TRANSFORMERS_OFFLINE SWANLAB_LOG_DIR SWANLAB_RUN_ID SWANLAB_RESUME SWANLAB_API_HOST MASTER_PORT
  NODE_RANK MASTER_ADDR EVALSCOPE_HTML)

# The config is the truth: sft.yaml's `deepspeed:` runs as written. DEEPSPEED (env
# file or make command line) adds --deepspeed only when the config names none; one
# that contradicts the config is an error, never an override.
check_deepspeed_setting() {
  [[ -n "${DEEPSPEED:-}" ]] || return 0
  load_sft_config
  local configured="${SFT_CONFIG[deepspeed]:-}"
  [[ -z "$configured" || "$configured" == "$DEEPSPEED" ]] && return 0
  die "DEEPSPEED=$DEEPSPEED (env file $(repo_relative "$ENV_FILE") or the make command line) contradicts 'deepspeed: $configured' in configs/$CONFIG_EXP/sft.yaml" \
    "the config is the truth: remove DEEPSPEED, or change 'deepspeed' in configs/$CONFIG_EXP/sft.yaml"
}

# The experiment's local SwanLab runs, training and evaluations alike: what
# `make dashboard` shows and `swanlab sync` uploads.
swanlab_log_dir() { printf '%s/swanlog' "$RESULTS_DIR"; }

# build_train_cmd CMD [RUN_ID_FILE]: `swift sft` of configs/$EXP/sft.yaml. RUN_ID_FILE, the
# run dir's SwanLab run id (scripts/train.sh), when given and present, makes a resumed training
# continue the same SwanLab run.
build_train_cmd() {
  local -n build_train_cmd_out="$1"
  local run_id_file="${2:-}"
  build_train_cmd_out=()
  add_common_tool_env build_train_cmd_out
  build_train_cmd_out+=("SWANLAB_LOG_DIR=$(swanlab_log_dir)")
  if [[ -n "$run_id_file" && -f "$run_id_file" ]]; then
    build_train_cmd_out+=("SWANLAB_RUN_ID=$(cat "$run_id_file")" SWANLAB_RESUME=allow)
  fi
  check_deepspeed_setting
  load_sft_config
  # swift runs torchrun when NPROC_PER_NODE or NNODES is set (swift/cli/main.py). DeepSpeed
  # needs it even on one GPU: without torchrun's RANK, WORLD_SIZE, ... its init looks for
  # MPI (mpi4py, not in the lock).
  if ((NNODES > 1)); then build_train_cmd_out+=("NNODES=$NNODES" "NODE_RANK=$NODE_RANK" "MASTER_ADDR=$MASTER_ADDR"); fi
  if ((NPROC > 1 || NNODES > 1)) || [[ -n "${SFT_CONFIG[deepspeed]:-${DEEPSPEED:-}}" ]]; then
    build_train_cmd_out+=("NPROC_PER_NODE=$NPROC" "MASTER_PORT=$MASTER_PORT")
  fi
  if [[ "$SWANLAB_MODE" == cloud ]]; then build_train_cmd_out+=("SWANLAB_API_KEY=${SECRET_MARK}SWANLAB_TOKEN"); fi
  build_train_cmd_out+=(swift sft "$EXP_DIR/sft.yaml" --output_dir "$RUN_DIR"
    --swanlab_mode "$SWANLAB_MODE" --swanlab_project "$SWANLAB_PROJECT" --swanlab_exp_name "$EXP")
  if [[ -n "${MODEL:-}" ]]; then build_train_cmd_out+=(--model "$MODEL"); fi
  if [[ -n "${DATASET:-}" ]]; then build_train_cmd_out+=(--dataset "$DATASET"); fi
  if [[ -n "${DEEPSPEED:-}" && -z "${SFT_CONFIG[deepspeed]:-}" ]]; then build_train_cmd_out+=(--deepspeed "$DEEPSPEED"); fi
  if [[ "$GPU" == cpu ]]; then build_train_cmd_out+=(--use_cpu true); fi
  # A pilot (make pilot): a few dozen steps, each logged, for the measurements.
  if is_pilot; then
    load_pilot_config
    build_train_cmd_out+=(--max_steps "${PILOT_CONFIG[max_steps]}" --logging_steps 1)
  fi
}

# build_export_cmd CMD CHECKPOINT OUTPUT_DIR: `swift export` merging CHECKPOINT's LoRA.
build_export_cmd() {
  local -n build_export_cmd_out="$1"
  build_export_cmd_out=()
  add_common_tool_env build_export_cmd_out
  build_export_cmd_out+=(swift export "$EXP_DIR/export.yaml" --adapters "$2" --output_dir "$3" --exist_ok true)
}

# build_deploy_cmd CMD [SIDE]: `swift deploy` of SIDE's model (server.sh: "" the export, --base
# the base model) under its name, on its port; lmdeploy's venv on GPU machines.
build_deploy_cmd() {
  local -n build_deploy_cmd_out="$1"
  local side="${2:-}" bin_dir=""
  load_sft_config # (served_model runs in a subshell)
  build_deploy_cmd_out=()
  add_common_tool_env build_deploy_cmd_out
  if [[ "$GPU" != cpu ]]; then bin_dir="$DEPLOY_VENV_DIR/bin/"; fi
  if [[ -n "${SERVE_API_KEY:-}" ]]; then
    # `swift deploy --api_key` would show the key in ps and in the log.
    build_deploy_cmd_out+=("SERVE_API_KEY=${SECRET_MARK}SERVE_API_KEY" "${bin_dir}python" "$REPO_ROOT/scripts/py/serve_with_api_key.py")
  else
    build_deploy_cmd_out+=("${bin_dir}swift" deploy)
  fi
  build_deploy_cmd_out+=("$EXP_DIR/deploy.yaml" --model "$(served_model "$side")" --served_model_name "$(served_name "$side")"
    --host "$SERVE_HOST" --port "$(served_port "$side")")
  if [[ "$GPU" == cpu ]]; then build_deploy_cmd_out+=(--infer_backend transformers); fi
  if ((NPROC > 1)); then build_deploy_cmd_out+=(--lmdeploy_tp "$NPROC"); fi
}

REPORT_DIR="${REPORT_DIR:-$REPO_ROOT/report}" # where make report writes (tests point it elsewhere)

# The lab's editable template; an experiment may have its own report/template.<EXP>.zh.md.
report_template() {
  local dir="$REPO_ROOT/report"
  if [[ -f "$dir/template.$EXP.zh.md" ]]; then printf '%s' "$dir/template.$EXP.zh.md"; else printf '%s' "$dir/template.zh.md"; fi
}

git_commit() { git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || printf 'unknown'; }

# 1 when the tree differs from the commit, untracked files included (ignored outputs do not count).
git_dirty() {
  if [[ -n "$(git -C "$REPO_ROOT" status --porcelain 2>/dev/null)" ]]; then printf 1; else printf 0; fi
}

gpu_names() {
  [[ "$GPU" != cpu ]] && command -v nvidia-smi >/dev/null 2>&1 || return 0
  nvidia-smi --query-gpu=name --format=csv,noheader -i "$GPU" 2>/dev/null || true
}

# build_report_cmd CMD: scripts/py/report.py over the experiment's outputs. What only the
# machine that runs it knows (commit, dirty tree, cores, GPU models) is measured in a
# real run and a shell substitution in a printed one (the runbook, DRY_RUN=1).
build_report_cmd() {
  local -n build_report_cmd_out="$1"
  build_report_cmd_out=(python "$REPO_ROOT/scripts/py/report.py" --exp "$EXP" --run-dir "$RUN_DIR" --export-dir "$EXPORT_DIR"
    --results-dir "$RESULTS_DIR" --steps "$STATE_DIR/$EXP/steps.jsonl" --config "$EXP_DIR/sft.yaml"
    --eval-config "$EXP_DIR/eval.yaml" --lock-file "$(profile_lock)" --template "$(report_template)"
    --out-dir "$REPORT_DIR" --profile "$DEVICE_PROFILE" --gpu-setting "$GPU" --deploy-venv "$DEPLOY_VENV_DIR"
    --env-file "$(repo_relative "$ENV_FILE")")
  if is_dry_run; then
    # shellcheck disable=SC2016 # printed for the shell that runs the printed script
    build_report_cmd_out+=(--git-commit "$(shell_expr '"$(git rev-parse HEAD)"')"
      --git-dirty "$(shell_expr '"$([[ -n $(git status --porcelain) ]] && echo 1 || echo 0)"')"
      --cpu-cores "$(shell_expr '"$(nproc)"')")
    if [[ "$GPU" != cpu ]]; then build_report_cmd_out+=(--gpus "$(shell_expr "\"\$(nvidia-smi --query-gpu=name --format=csv,noheader -i $GPU)\"")"); fi
  else
    build_report_cmd_out+=(--git-commit "$(git_commit)" --git-dirty "$(git_dirty)" --cpu-cores "$(nproc)" --gpus "$(gpu_names)")
  fi
}

# add_experiment_args CMD EXP...: each experiment's paths, to command CMD, gathered the way
# make report gathers them (load_env per experiment: the same env file, its values and roots;
# the paths follow EXP), for scripts/py/compare.py and scripts/py/table.py.
add_experiment_args() {
  local -n add_experiment_args_out="$1"
  local exp
  for exp in "${@:2}"; do
    EXP="$exp" SKIP_GPU_CHECK=1 load_env
    add_experiment_args_out+=(--exp "$EXP" --run-dir "$RUN_DIR" --export-dir "$EXPORT_DIR" --results-dir "$RESULTS_DIR"
      --steps "$STATE_DIR/$EXP/steps.jsonl" --config "$EXP_DIR/sft.yaml" --eval-config "$EXP_DIR/eval.yaml"
      --manifest "$REPORT_DIR/$EXP.manifest.json" --report-md "$REPORT_DIR/$EXP.md")
  done
}

# build_pilot_report_cmd CMD: report/<exp>-pilot.md, the full run projected from a pilot's
# measurements (scripts/pilot-report.sh gathers the settings, scripts/py/pilot.py computes).
build_pilot_report_cmd() {
  local -n build_pilot_report_cmd_out="$1"
  build_pilot_report_cmd_out=("EXP=$EXP" "ENV_FILE=$ENV_FILE" "GPU=$GPU" "$REPO_ROOT/scripts/pilot-report.sh")
}
