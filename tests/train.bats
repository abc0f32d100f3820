#!/usr/bin/env bats
# make train (scripts/train.sh): the exact swift sft command, as printed by DRY_RUN=1 (the runbook)
# and as the stub swift receives it on a real run; resuming, changed inputs, the token.

load test_helper

setup() {
  common_setup
  CFG="configs/$DEFAULT_EXP"
}
teardown() { common_teardown; }

SECRET=sk-test-SECRET-123

sha256() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# The argv line the swift stub logs for a default-experiment train run.
sft_argv() {
  printf 'argv: sft %s --output_dir %s --swanlab_mode %s --swanlab_project multi-model-psychology --swanlab_exp_name %s' \
    "$REPO/$CFG/sft.yaml" "$RUN_DIR" "${1:-local}" "$DEFAULT_EXP"
}

# ---------------------------------------------------------------- train, dry run

@test "train DRY_RUN GPU=6: one GPU, no torchrun, the full swift sft command" {
  write_env GPU=6
  DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line "CUDA_VISIBLE_DEVICES=6 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope SWANLAB_LOG_DIR=$OUT/results/$DEFAULT_EXP/swanlog swift sft $CFG/sft.yaml \\"
  assert_line "    --output_dir $RUN_DIR \\"
  assert_line "    --swanlab_mode local \\"
  assert_line "    --swanlab_project multi-model-psychology \\"
  assert_line "    --swanlab_exp_name $DEFAULT_EXP"
  refute_output --partial NPROC_PER_NODE
  refute_output --partial MASTER_PORT
  refute_output --partial "SWANLAB_API_KEY="
  refute_output --partial "--use_cpu"
  assert_equal "$(stub_calls swift)" 0
  assert_equal "$(stub_calls nvidia-smi)" 0
  assert_file_not_exist "$RUN_DIR"
  assert_file_not_exist "$REPO/.state"
}

@test "train DRY_RUN GPU=0,1,2,3: torchrun through NPROC_PER_NODE and MASTER_PORT" {
  write_env GPU=0,1,2,3 MASTER_PORT=29555
  DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line "CUDA_VISIBLE_DEVICES=0,1,2,3 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope SWANLAB_LOG_DIR=$OUT/results/$DEFAULT_EXP/swanlog NPROC_PER_NODE=4 MASTER_PORT=29555 swift sft $CFG/sft.yaml \\"
}

@test "train DRY_RUN GPU=cpu: no CUDA_VISIBLE_DEVICES, --use_cpu true" {
  write_env GPU=cpu
  DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line "HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope SWANLAB_LOG_DIR=$OUT/results/$DEFAULT_EXP/swanlog swift sft $CFG/sft.yaml \\"
  assert_line "    --use_cpu true"
  refute_output --partial CUDA_VISIBLE_DEVICES
}

@test "train DRY_RUN: MODEL, DATASET and OFFLINE from the env file reach the command" {
  write_env GPU=6 MODEL=/data/gpt-oss-20b DATASET=/data/mh.jsonl
  sed -i 's/^OFFLINE=0$/OFFLINE=1/' "$ENV_FILE"
  DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line "    --model /data/gpt-oss-20b \\"
  assert_line "    --dataset /data/mh.jsonl"
  assert_output --partial "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "
}

# ---------------------------------------------------------------- train, stubs

@test "train GPU=6 with stubs: swift gets CUDA_VISIBLE_DEVICES=6 and no NPROC_PER_NODE" {
  write_env GPU=6
  run scripts/train.sh
  assert_success
  run stub_call swift
  assert_line "path: $STUBS/swift"
  assert_line "$(sft_argv local)"
  assert_line "env: CUDA_VISIBLE_DEVICES=6"
  assert_line "env: NPROC_PER_NODE unset"
  assert_line "env: MASTER_PORT unset"
  assert_line "env: SWANLAB_LOG_DIR=$OUT/results/$DEFAULT_EXP/swanlog"
  assert_line "env: SWANLAB_API_KEY unset"
  assert_equal "$(stub_call nvidia-smi | grep '^argv:')" "argv: -L"
  # The run dir records its inputs and command, and marks the finished run with
  # their digest; the step is logged for the report.
  run jq -r .command_line "$RUN_DIR/lab-inputs.json"
  assert_output --partial "CUDA_VISIBLE_DEVICES=6 "
  assert_equal "$(jq -r .inputs_digest "$RUN_DIR/lab-train.json")" "$(jq -r .digest "$RUN_DIR/lab-inputs.json")"
  run jq -r '.step + " " + .event' "$REPO/.state/$DEFAULT_EXP/steps.jsonl"
  assert_line "train start"
  assert_line "train command"
  assert_line "train end"
}

@test "train GPU=0,1,2,3 with stubs: NPROC_PER_NODE=4 and MASTER_PORT" {
  write_env GPU=0,1,2,3 MASTER_PORT=29555
  run scripts/train.sh
  assert_success
  run stub_call swift
  assert_line "$(sft_argv local)"
  assert_line "env: CUDA_VISIBLE_DEVICES=0,1,2,3"
  assert_line "env: NPROC_PER_NODE=4"
  assert_line "env: MASTER_PORT=29555"
}

@test "train GPU=cpu with stubs: no CUDA_VISIBLE_DEVICES, --use_cpu true, no nvidia-smi" {
  write_env GPU=cpu
  run scripts/train.sh
  assert_success
  run stub_call swift
  assert_line "$(sft_argv local) --use_cpu true"
  assert_line "env: CUDA_VISIBLE_DEVICES unset"
  assert_line "env: NPROC_PER_NODE unset"
  assert_equal "$(stub_calls nvidia-smi)" 0
}

@test "train is a no-op once the run finished" {
  write_env GPU=cpu
  run scripts/train.sh
  assert_success
  run scripts/train.sh
  assert_success
  assert_line "[train] training of $DEFAULT_EXP already finished with these inputs in $RUN_DIR"
  assert_equal "$(stub_calls swift)" 1
}

@test "train: a changed hyperparameter stops before touching the run, naming the key" {
  write_env GPU=cpu
  run scripts/train.sh
  assert_success
  sed -i 's/^learning_rate: 1.0e-4/learning_rate: 2.0e-4/' "$CFG/sft.yaml"
  run scripts/train.sh
  assert_failure
  assert_line "  $CFG/sft.yaml: learning_rate: 0.0001 -> 0.0002"
  assert_line "[train] error: $RUN_DIR holds a training run made from other inputs; not touching it (a changed configuration never resumes old checkpoints)"
  assert_line --partial "[train] fix: train under a new name (make train EXP=<new name>"
  assert_equal "$(stub_calls swift)" 1
  assert_file_exist "$RUN_DIR/lab-train.json"
}

@test "train: the fix is true: REPLACE_CHANGED=1 keeps the old run aside and trains anew" {
  write_env GPU=cpu
  run scripts/train.sh
  assert_success
  sed -i 's/^lora_rank: 16/lora_rank: 8/' "$CFG/sft.yaml"
  REPLACE_CHANGED=1 run scripts/train.sh
  assert_success
  assert_line --regexp "^\[train\] $RUN_DIR was made from other inputs; moved it to $RUN_DIR\.replaced-[0-9T]+Z \(REPLACE_CHANGED=1\)$"
  assert_equal "$(stub_calls swift)" 2
  run jq -r '.inputs.configs[].content.lora_rank' "$RUN_DIR/lab-inputs.json"
  assert_output 8
  run jq -r '.inputs.configs[].content.lora_rank' "$RUN_DIR".replaced-*/lab-inputs.json
  assert_output 16
}

@test "train: a changed dataset file, lock or base model folder counts as changed inputs" {
  mkdir -p "$TMP/model"
  printf '{"model_type": "gpt_oss"}\n' >"$TMP/model/config.json"
  printf '{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}\n' >"$TMP/data.jsonl"
  write_env GPU=cpu "MODEL=$TMP/model" "DATASET=$TMP/data.jsonl"
  run scripts/train.sh
  assert_success
  printf '{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hey"}]}\n' >"$TMP/data.jsonl"
  run scripts/train.sh
  assert_failure
  assert_line --regexp "^  datasets\[0\]\.sha256: [0-9a-f]{12} -> [0-9a-f]{12}$"
  REPLACE_CHANGED=1 run scripts/train.sh
  assert_success
  echo "extra==1.0" >>env/requirements-cpu.lock
  run scripts/train.sh
  assert_failure
  assert_line --regexp "^  lock\.sha256: [0-9a-f]{12} -> [0-9a-f]{12}$"
  REPLACE_CHANGED=1 run scripts/train.sh
  assert_success
  printf '{"model_type": "gpt_oss", "num_hidden_layers": 3}\n' >"$TMP/model/config.json"
  run scripts/train.sh
  assert_failure
  assert_line --regexp "^  model\.files\.config\.json: [0-9a-f]{12} -> [0-9a-f]{12}$"
}

@test "train: where it writes and reports (paths, SwanLab, port) is not an input" {
  write_env GPU=cpu
  run scripts/train.sh
  assert_success
  SWANLAB_PROJECT=other MASTER_PORT=29999 CACHE_ROOT="$TMP/other-cache" run scripts/train.sh
  assert_success
  assert_line --partial "[train] training of $DEFAULT_EXP already finished with these inputs"
  assert_equal "$(stub_calls swift)" 1
}

@test "train fails when swift sft exits without the final summary" {
  write_env GPU=cpu
  STUB_SFT_EXIT=0 run scripts/train.sh
  assert_failure
  assert_line "[train] error: swift sft exited without its final summary in $RUN_DIR/logging.jsonl"
  assert_line "[train] fix: read the log above; 'make train' resumes from the last complete checkpoint"
}

@test "train resumes from the last complete checkpoint, ignoring a half-written one; the held-out split is in it once" {
  write_env GPU=cpu
  mark_done train && rm "$RUN_DIR/lab-train.json" # started with these inputs, not finished
  make_checkpoint "$RUN_DIR/checkpoint-2" 2
  make_checkpoint "$RUN_DIR/checkpoint-3" 3 partial
  echo '{"loss": 2.0}' >"$RUN_DIR/logging.jsonl"
  heldout_split "$RUN_DIR" # written by the first start
  run scripts/train.sh
  assert_success
  assert_line "[train] resuming from $RUN_DIR/checkpoint-2 (same inputs)"
  run stub_call swift
  assert_line "$(sft_argv local) --use_cpu true --resume_from_checkpoint $RUN_DIR/checkpoint-2"
  # swift appends the split at every start (as ms-swift 4.6 does): the earlier one was set aside.
  assert_equal "$(cat "$RUN_DIR/val_dataset.jsonl")" "$(cat "$STUB_HELDOUT")"
  assert_file_not_exist "$RUN_DIR/val_dataset.earlier.jsonl"
}

@test "a resumed run whose held-out split is not the first start's stops, naming both files and the fix" {
  write_env GPU=cpu
  mark_done train && rm "$RUN_DIR/lab-train.json"
  make_checkpoint "$RUN_DIR/checkpoint-2" 2
  echo '{"loss": 2.0}' >"$RUN_DIR/logging.jsonl"
  head -n 1 "$STUB_HELDOUT" >"$RUN_DIR/val_dataset.jsonl" # another split than swift writes now
  run scripts/train.sh
  assert_failure
  assert_line "[train] error: the held-out split swift wrote when resuming (${RUN_DIR#"$REPO"/}/val_dataset.jsonl) is not the one of the run's first start (val_dataset.earlier.jsonl beside it): the evaluations would not use the rows training held out"
  assert_line "[train] fix: compare the two files; to train from scratch instead, move ${RUN_DIR#"$REPO"/} aside and run make train EXP=$DEFAULT_EXP again"
  assert_equal "$(cat "$RUN_DIR/val_dataset.earlier.jsonl")" "$(head -n 1 "$STUB_HELDOUT")"
  assert_file_not_exist "$RUN_DIR/lab-train.json" # not recorded as finished
}

@test "train resumes from the highest step, not the first in text order" {
  write_env GPU=cpu
  mark_done train && rm "$RUN_DIR/lab-train.json"
  make_checkpoint "$RUN_DIR/checkpoint-8" 8
  make_checkpoint "$RUN_DIR/checkpoint-10" 10
  make_checkpoint "$RUN_DIR/checkpoint-12" 12 partial
  run scripts/train.sh
  assert_success
  run stub_call swift
  assert_line "arg: $RUN_DIR/checkpoint-10"
  refute_line "arg: $RUN_DIR/checkpoint-8"
}

@test "train refuses to resume checkpoints without a record of their inputs" {
  write_env GPU=cpu
  make_checkpoint "$RUN_DIR/checkpoint-2" 2
  run scripts/train.sh
  assert_failure
  assert_line "[train] error: $RUN_DIR holds a training run without a record of its inputs (lab-inputs.json); not touching it (a changed configuration never resumes old checkpoints)"
  assert_equal "$(stub_calls swift)" 0
}

@test "train refuses to resume checkpoints made from other inputs" {
  write_env GPU=cpu
  mark_done train && rm "$RUN_DIR/lab-train.json"
  make_checkpoint "$RUN_DIR/checkpoint-2" 2
  sed -i 's/^max_length: 3072/max_length: 2048/' "$CFG/sft.yaml"
  run scripts/train.sh
  assert_failure
  assert_line "  $CFG/sft.yaml: max_length: 3072 -> 2048"
  assert_equal "$(stub_calls swift)" 0
}

# ---------------------------------------------------------------- the token

@test "token, dry run: the runbook shows \$SWANLAB_TOKEN, never the value" {
  write_env GPU=6 "SWANLAB_TOKEN=$SECRET"
  DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line "CUDA_VISIBLE_DEVICES=6 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope SWANLAB_LOG_DIR=$OUT/results/$DEFAULT_EXP/swanlog SWANLAB_API_KEY=\"\$SWANLAB_TOKEN\" swift sft $CFG/sft.yaml \\"
  assert_line "    --swanlab_mode cloud \\"
  refute_output --partial SECRET
}

@test "a self-hosted SwanLab: SWANLAB_API_HOST from the env file reaches swift's environment" {
  write_env GPU=6 "SWANLAB_TOKEN=$SECRET" "SWANLAB_API_HOST=https://swanlab.lab.example"
  DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line "CUDA_VISIBLE_DEVICES=6 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope SWANLAB_API_HOST=https://swanlab.lab.example SWANLAB_LOG_DIR=$OUT/results/$DEFAULT_EXP/swanlog SWANLAB_API_KEY=\"\$SWANLAB_TOKEN\" swift sft $CFG/sft.yaml \\"
}

@test "token, real run: swift gets SWANLAB_API_KEY in its environment, not in argv or any file" {
  write_env GPU=6 "SWANLAB_TOKEN=$SECRET"
  run scripts/train.sh
  assert_success
  refute_output --partial SECRET
  run stub_call swift
  assert_line "env: SWANLAB_API_KEY sha256=$(sha256 "$SECRET")"
  assert_line "$(sft_argv cloud)"
  refute_output --partial SECRET
  # Nothing the run wrote holds the value (lab-command.txt, steps.jsonl, the stub's argv log).
  run grep -rl "$SECRET" "$OUT" "$REPO/.state" "$STUB_LOG"
  assert_failure
  assert_output ""
}
