#!/usr/bin/env bats
# The exact commands each step builds: as printed by DRY_RUN=1 (the runbook) and
# as received by the stub swift / curl on a real run.

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
  assert_line "CUDA_VISIBLE_DEVICES=6 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope SWANLAB_LOG_DIR=$RUN_DIR/swanlog swift sft $CFG/sft.yaml \\"
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
  assert_line "CUDA_VISIBLE_DEVICES=0,1,2,3 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope SWANLAB_LOG_DIR=$RUN_DIR/swanlog NPROC_PER_NODE=4 MASTER_PORT=29555 swift sft $CFG/sft.yaml \\"
}

@test "train DRY_RUN GPU=cpu: no CUDA_VISIBLE_DEVICES, --use_cpu true" {
  write_env GPU=cpu
  DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line "HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope SWANLAB_LOG_DIR=$RUN_DIR/swanlog swift sft $CFG/sft.yaml \\"
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
  assert_line "env: SWANLAB_LOG_DIR=$RUN_DIR/swanlog"
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

@test "train resumes from the last complete checkpoint, ignoring a half-written one" {
  write_env GPU=cpu
  mark_done train && rm "$RUN_DIR/lab-train.json" # started with these inputs, not finished
  make_checkpoint "$RUN_DIR/checkpoint-2" 2
  make_checkpoint "$RUN_DIR/checkpoint-3" 3 partial
  echo '{"loss": 2.0}' >"$RUN_DIR/logging.jsonl"
  run scripts/train.sh
  assert_success
  assert_line "[train] resuming from $RUN_DIR/checkpoint-2 (same inputs)"
  run stub_call swift
  assert_line "$(sft_argv local) --use_cpu true --resume_from_checkpoint $RUN_DIR/checkpoint-2"
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
  assert_line "CUDA_VISIBLE_DEVICES=6 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope SWANLAB_LOG_DIR=$RUN_DIR/swanlog SWANLAB_API_KEY=\"\$SWANLAB_TOKEN\" swift sft $CFG/sft.yaml \\"
  assert_line "    --swanlab_mode cloud \\"
  refute_output --partial SECRET
}

@test "a self-hosted SwanLab: SWANLAB_API_HOST from the env file reaches swift's environment" {
  write_env GPU=6 "SWANLAB_TOKEN=$SECRET" "SWANLAB_API_HOST=https://swanlab.lab.example"
  DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line "CUDA_VISIBLE_DEVICES=6 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope SWANLAB_API_HOST=https://swanlab.lab.example SWANLAB_LOG_DIR=$RUN_DIR/swanlog SWANLAB_API_KEY=\"\$SWANLAB_TOKEN\" swift sft $CFG/sft.yaml \\"
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

# ---------------------------------------------------------------- make all, dry run

@test "make all GPU=6 DRY_RUN=1: every hyperparameter of the report, ms-swift 4.6 flags only" {
  write_env "SWANLAB_TOKEN=$SECRET"
  run make all GPU=6 DRY_RUN=1
  # The evaluation and report steps belong to other issues; until their scripts
  # land, `make all` stops at the first missing one after printing the spine.
  if [[ -f scripts/report.sh && -f scripts/eval.sh && -f $CFG/eval.yaml ]]; then assert_success; fi
  local setting
  for setting in "lora_rank: 16" "lora_alpha: 64" "target_modules: all-linear" "learning_rate: 1.0e-4" \
    "per_device_train_batch_size: 4" "gradient_accumulation_steps: 8" "max_length: 3072" \
    "warmup_ratio: 0.1" "router_aux_loss_coef: 1.0e-3" "eval_steps: 100" "save_steps: 100" \
    "save_total_limit: 3" "logging_steps: 20" "torch_dtype: bfloat16" "num_train_epochs: 1" \
    "tuner_type: lora" "split_dataset_ratio: 0.02" "seed: 42" \
    "lmdeploy_session_len: 2048" "lmdeploy_cache_max_entry_count: 0.1" \
    "merge_lora: true" "safe_serialization: true" "max_shard_size: 2GB"; do
    assert_line --regexp "^#   ${setting//./\\.}( |\$)"
  done
  # Each step's command, on the GPU given on the command line.
  assert_line "CUDA_VISIBLE_DEVICES=6 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope SWANLAB_LOG_DIR=$RUN_DIR/swanlog SWANLAB_API_KEY=\"\$SWANLAB_TOKEN\" swift sft $CFG/sft.yaml \\"
  assert_line "CUDA_VISIBLE_DEVICES=6 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope swift export $CFG/export.yaml \\"
  assert_line "    --adapters $RUN_DIR/last-checkpoint \\"
  assert_line --partial "c.pop(\"quantization_config\", None)"
  assert_line "CUDA_VISIBLE_DEVICES=6 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope setsid .venv-lmdeploy/bin/swift deploy $CFG/deploy.yaml \\"
  assert_line --partial "curl --noproxy '*' http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' -d "
  # No flag that ms-swift 4.6 / lmdeploy 0.11 removed, outside the comments.
  local commands
  commands="$(grep -v '^#' <<<"$output")"
  assert_equal "$(grep -cE -- '--train_type|--ckpt_dir|--model_dir|--tp( |$)|--session-len|--cache-max-entry-count' <<<"$commands")" 0
  refute_output --partial SECRET
  # A dry run runs nothing.
  assert_equal "$(stub_calls swift)" 0
  assert_equal "$(stub_calls curl)" 0
  assert_file_not_exist "$REPO/.state"
}

@test "the configs use no option that ms-swift 4.6 removed" {
  run grep -nE '^(train_type|ckpt_dir|model_dir|tp|session_len|cache_max_entry_count):' "$REPO"/configs/*/*.yaml
  assert_failure
  run grep -nE '^lmdeploy_cache_max_entry_count: 0(\.0*)?$' "$REPO"/configs/*/deploy.yaml
  assert_failure
}

# ---------------------------------------------------------------- export

# A run with complete checkpoints 50, 100, 300 (eval_loss 0.9, 0.6, 0.8) and a
# half-written checkpoint-1000.
make_run() {
  mark_done train
  local step
  for step in 50 100 300; do make_checkpoint "$RUN_DIR/checkpoint-$step" "$step"; done
  make_checkpoint "$RUN_DIR/checkpoint-1000" 1000 partial
  cat >"$RUN_DIR/checkpoint-300/trainer_state.json" <<'JSON'
{"global_step": 300, "log_history": [
  {"step": 20, "loss": 2.0}, {"step": 50, "eval_loss": 0.9}, {"step": 100, "eval_loss": 0.6},
  {"step": 300, "eval_loss": 0.8}]}
JSON
}

@test "export defaults to the last complete checkpoint and strips quantization_config" {
  write_env GPU=6
  make_run
  run scripts/export.sh
  assert_success
  run stub_call swift
  assert_line "argv: export $REPO/$CFG/export.yaml --adapters $RUN_DIR/checkpoint-300 --output_dir $EXPORT_DIR.partial --exist_ok true"
  assert_line "env: CUDA_VISIBLE_DEVICES=6"
  assert_file_exist "$EXPORT_DIR/config.json"
  assert_file_not_exist "$EXPORT_DIR.partial"
  run jq -c . "$EXPORT_DIR/config.json"
  assert_output '{"architectures":["GptOssForCausalLM"],"torch_dtype":"bfloat16"}'
  run jq -r .checkpoint "$EXPORT_DIR/lab-export.json"
  assert_output "$RUN_DIR/checkpoint-300"
  # It records what it merged, and is not redone for the same training and config.
  assert_equal "$(jq -r .inputs_digest "$EXPORT_DIR/lab-export.json")" "$(jq -r .digest "$EXPORT_DIR/lab-inputs.json")"
  run scripts/export.sh
  assert_success
  assert_line "[export] $EXPORT_DIR is already the merge of this training and export config"
  assert_equal "$(stub_calls swift)" 1
  # A changed export config merges again, from clean.
  sed -i 's/^max_shard_size: 2GB/max_shard_size: 4GB/' "$CFG/export.yaml"
  run scripts/export.sh
  assert_success
  assert_line "[export] replacing $EXPORT_DIR (made from other inputs; the checkpoints it came from are kept)"
  assert_equal "$(stub_calls swift)" 2
}

@test "export refuses a training that is not finished with the current inputs" {
  write_env GPU=6
  make_run
  sed -i 's/^lora_alpha: 64/lora_alpha: 32/' "$CFG/sft.yaml"
  run scripts/export.sh
  assert_failure
  assert_line "[export] error: the training in $RUN_DIR is not finished with the current inputs"
  assert_line "[export] fix: run 'make train EXP=$DEFAULT_EXP' first"
  assert_equal "$(stub_calls swift)" 0
}

@test "export CHECKPOINT=best picks the lowest eval_loss" {
  write_env GPU=6
  make_run
  CHECKPOINT=best run scripts/export.sh
  assert_success
  run stub_call swift
  assert_line "arg: $RUN_DIR/checkpoint-100"
}

@test "export CHECKPOINT=<path> uses that checkpoint" {
  write_env GPU=6
  make_run
  CHECKPOINT="$RUN_DIR/checkpoint-50" run scripts/export.sh
  assert_success
  run stub_call swift
  assert_line "arg: $RUN_DIR/checkpoint-50"
}

@test "export refuses a half-written checkpoint given by path" {
  write_env GPU=6
  make_run
  CHECKPOINT="$RUN_DIR/checkpoint-1000" run scripts/export.sh
  assert_failure
  assert_line "[export] error: CHECKPOINT=$RUN_DIR/checkpoint-1000 is not a complete checkpoint directory"
  assert_line "[export] fix: use CHECKPOINT=last, CHECKPOINT=best or a path like $RUN_DIR/checkpoint-100"
  assert_equal "$(stub_calls swift)" 0
}

@test "export refuses when there is no complete checkpoint" {
  write_env GPU=6
  make_checkpoint "$RUN_DIR/checkpoint-100" 100 partial
  run scripts/export.sh
  assert_failure
  assert_line "[export] error: no complete checkpoint in $RUN_DIR (CHECKPOINT=last)"
  assert_line "[export] fix: run 'make train EXP=$DEFAULT_EXP' first"
  assert_equal "$(stub_calls swift)" 0
  assert_file_not_exist "$EXPORT_DIR"
}

@test "export DRY_RUN: the merge, the strip and the move" {
  write_env GPU=cpu
  CHECKPOINT=best DRY_RUN=1 run scripts/export.sh
  assert_success
  assert_line "HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope swift export $CFG/export.yaml \\"
  assert_line "    --adapters '$RUN_DIR/<checkpoint with the lowest eval_loss>' \\"
  assert_line "    --output_dir $EXPORT_DIR.partial \\"
  assert_line "    --exist_ok true"
  assert_line "rm -rf $EXPORT_DIR && mv $EXPORT_DIR.partial $EXPORT_DIR"
}

# ---------------------------------------------------------------- deploy, stop

@test "deploy DRY_RUN GPU=6: lmdeploy's venv, no transformers backend" {
  write_env GPU=6
  DRY_RUN=1 run scripts/deploy.sh
  assert_success
  assert_line "mkdir -p .state/server"
  assert_line "CUDA_VISIBLE_DEVICES=6 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope setsid .venv-lmdeploy/bin/swift deploy $CFG/deploy.yaml \\"
  assert_line "    --model $EXPORT_DIR \\"
  assert_line "    --served_model_name $DEFAULT_EXP \\"
  assert_line "    --host 127.0.0.1 \\"
  assert_line "    --port 8000 > .state/server/deploy.log 2>&1 &"
  assert_line "#   infer_backend: lmdeploy"
  refute_output --partial "--infer_backend"
  refute_output --partial "--lmdeploy_tp"
}

@test "deploy DRY_RUN GPU=0,1,2,3: tensor parallel over the four GPUs" {
  write_env GPU=0,1,2,3
  DRY_RUN=1 run scripts/deploy.sh
  assert_success
  assert_line --partial "CUDA_VISIBLE_DEVICES=0,1,2,3 "
  assert_line "    --lmdeploy_tp 4 > .state/server/deploy.log 2>&1 &"
}

@test "deploy DRY_RUN GPU=cpu: the project's swift with the transformers backend" {
  write_env GPU=cpu SERVE_PORT=8011
  DRY_RUN=1 run scripts/deploy.sh
  assert_success
  assert_line "HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope setsid swift deploy $CFG/deploy.yaml \\"
  assert_line "    --port 8011 \\"
  assert_line "    --infer_backend transformers > .state/server/deploy.log 2>&1 &"
}

@test "deploy --base DRY_RUN serves the base model under <exp>-base" {
  write_env GPU=6
  DRY_RUN=1 run scripts/deploy.sh --base
  assert_success
  assert_line "    --model openai-mirror/gpt-oss-20b \\"
  assert_line "    --served_model_name $DEFAULT_EXP-base \\"
}

@test "deploy GPU=6 with stubs: starts .venv-lmdeploy/bin/swift in the background; stop ends it" {
  local port
  port="$(free_port)"
  write_env GPU=6 "SERVE_PORT=$port"
  mark_done train export
  mkdir -p "$REPO/.venv-lmdeploy/bin"
  ln -s "$SRC_ROOT/tests/stub.bash" "$REPO/.venv-lmdeploy/bin/swift"
  STUB_CURL_WAIT_SERVED=5 run scripts/deploy.sh
  assert_success
  assert_line --partial "[deploy] serving $DEFAULT_EXP at http://127.0.0.1:$port/v1 (pid "
  run stub_call swift
  assert_line "path: $REPO/.venv-lmdeploy/bin/swift"
  assert_line "argv: deploy $REPO/$CFG/deploy.yaml --model $EXPORT_DIR --served_model_name $DEFAULT_EXP --host 127.0.0.1 --port $port"
  assert_line "env: CUDA_VISIBLE_DEVICES=6"
  local pid
  pid="$(cat "$REPO/.state/server/pid")"
  assert_equal "$(cat "$REPO/.state/server/served_model_name")" "$DEFAULT_EXP"
  kill -0 "$pid"
  assert_file_contains "$REPO/.state/server/deploy.log" "Uvicorn running on http://127.0.0.1:$port"

  # A second deploy finds it serving and starts nothing.
  STUB_CURL_WAIT_SERVED=5 run scripts/deploy.sh
  assert_success
  assert_line "[deploy] already serving $DEFAULT_EXP at http://127.0.0.1:$port/v1 (pid $pid)"
  assert_equal "$(stub_calls swift)" 1

  run scripts/stop.sh
  assert_success
  assert_line "[stop] stopped server (process group $pid)"
  assert_file_not_exist "$REPO/.state/server/pid"
  run kill -0 -- "-$pid"
  assert_failure
}

@test "deploy GPU=cpu with stubs: swift from PATH with --infer_backend transformers" {
  local port
  port="$(free_port)"
  write_env GPU=cpu "SERVE_PORT=$port"
  mark_done train export
  STUB_CURL_WAIT_SERVED=5 run scripts/deploy.sh
  assert_success
  run stub_call swift
  assert_line "path: $STUBS/swift"
  assert_line "argv: deploy $REPO/$CFG/deploy.yaml --model $EXPORT_DIR --served_model_name $DEFAULT_EXP --host 127.0.0.1 --port $port --infer_backend transformers"
  assert_line "env: CUDA_VISIBLE_DEVICES unset"
}

@test "deploy refuses a port that is already in use" {
  local port
  port="$(free_port)"
  start_listener "$port"
  write_env GPU=cpu "SERVE_PORT=$port"
  mark_done train export
  run scripts/deploy.sh
  assert_failure
  assert_line --partial "[deploy] error: port $port is already in use by "
  assert_line "[deploy] fix: stop that program, or set SERVE_PORT to a free port in $ENV_FILE (the base model uses SERVE_PORT + 1)"
  assert_equal "$(stub_calls swift)" 0
  assert_file_not_exist "$REPO/.state/server/pid"
}

@test "deploy refuses when nothing was exported" {
  write_env GPU=cpu "SERVE_PORT=$(free_port)"
  run scripts/deploy.sh
  assert_failure
  assert_line "[deploy] error: $EXPORT_DIR is not the merge of the current training"
  assert_line "[deploy] fix: run 'make export EXP=$DEFAULT_EXP' first"
  assert_equal "$(stub_calls swift)" 0
}

@test "stop without a server does nothing" {
  write_env GPU=cpu
  run scripts/stop.sh
  assert_success
  assert_line "[stop] no server of ours is running"
}

# ---------------------------------------------------------------- health

serving_json() { printf '{"data":[{"id":"%s"}]}' "$1"; }

@test "health: lists the model, then one chat completion with Content-Type and max_tokens" {
  write_env GPU=cpu
  STUB_CURL_MODELS="$(serving_json "$DEFAULT_EXP")" run scripts/health.sh
  assert_success
  assert_line "[health] ok: $DEFAULT_EXP at http://127.0.0.1:8000/v1 answered: 你好"
  run stub_call curl
  assert_line "arg: http://127.0.0.1:8000/v1/chat/completions"
  assert_line "arg: Content-Type: application/json"
  assert_line "arg: --noproxy"
  # The request body really reaches the server.
  local body
  body="$(sed -n 's/^curl-body: //p' <<<"$output")"
  run jq -c '{model, max_tokens, n: (.messages | length)}' <<<"$body"
  assert_output "{\"model\":\"$DEFAULT_EXP\",\"max_tokens\":32,\"n\":1}"
}

@test "health fails with the server log's tail when the completion is empty" {
  write_env GPU=cpu
  mkdir -p "$REPO/.state/server"
  printf 'INFO: loading model\nERROR: generation produced no tokens\n' >"$REPO/.state/server/deploy.log"
  STUB_CURL_MODELS="$(serving_json "$DEFAULT_EXP")" \
    STUB_CURL_CHAT='{"choices":[{"message":{"role":"assistant","content":""}}]}' run scripts/health.sh
  assert_failure
  assert_line "--- last lines of $REPO/.state/server/deploy.log ---"
  assert_line "ERROR: generation produced no tokens"
  assert_line "[health] error: chat completion returned empty content: {\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"\"}}]}"
  assert_line "[health] fix: check the server log above; restart with 'make stop deploy'"
}

@test "health fails when nothing serves the model" {
  write_env GPU=cpu
  STUB_CURL_EXIT=7 run scripts/health.sh
  assert_failure
  assert_line "[health] error: no server answers at http://127.0.0.1:8000/v1/models after 0s"
  assert_line "[health] fix: start it with 'make deploy EXP=$DEFAULT_EXP'"
}

@test "health fails when the server serves another model" {
  write_env GPU=cpu
  STUB_CURL_MODELS="$(serving_json smoke)" run scripts/health.sh
  assert_failure
  assert_line "[health] error: the server at http://127.0.0.1:8000/v1 serves [smoke], not $DEFAULT_EXP"
  assert_line "[health] fix: run 'make stop deploy EXP=$DEFAULT_EXP'"
}

@test "health sends SERVE_API_KEY in curl's config, not in argv" {
  write_env GPU=cpu SERVE_API_KEY=key-SECRET-456
  STUB_CURL_MODELS="$(serving_json "$DEFAULT_EXP")" run scripts/health.sh
  assert_success
  refute_output --partial key-SECRET-456
  run stub_call curl
  assert_line "curl-config: Authorization (set)"
  refute_output --partial key-SECRET-456
}

@test "health DRY_RUN prints the two curl requests" {
  write_env GPU=cpu
  DRY_RUN=1 run scripts/health.sh
  assert_success
  assert_line "curl --noproxy '*' http://127.0.0.1:8000/v1/models"
  assert_line --partial "curl --noproxy '*' http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' -d '{\"model\":\"$DEFAULT_EXP\",\"messages\":[{\"role\":\"user\",\"content\":\"你好，请用一句话介绍你自己。\"}],\"max_tokens\":32,"
  assert_equal "$(stub_calls curl)" 0
}

@test "health fails with the server log's tail when the response body is empty" {
  write_env GPU=cpu
  mkdir -p "$REPO/.state/server"
  printf 'ERROR: worker died\n' >"$REPO/.state/server/deploy.log"
  STUB_CURL_MODELS="$(serving_json "$DEFAULT_EXP")" STUB_CURL_CHAT='' run scripts/health.sh
  assert_failure
  assert_line "--- last lines of $REPO/.state/server/deploy.log ---"
  assert_line "ERROR: worker died"
  assert_line "[health] error: chat completion returned empty content: "
}

# ---------------------------------------------------------------- Makefile wiring

@test "make eval-ceval DRY_RUN=1 reaches the eval script (the stamp rule is not skipped as phony)" {
  write_env GPU=cpu
  [[ -f "$CFG/eval.yaml" ]] || : >"$CFG/eval.yaml"
  # A stand-in eval script: this test is about the Makefile, not the evaluation.
  printf '#!/usr/bin/env bash\necho "eval.sh called with: $*"\n' >scripts/eval.sh
  chmod +x scripts/eval.sh
  run make eval-ceval DRY_RUN=1
  assert_success
  assert_output --partial "eval.sh called with: ceval"
  assert_line --partial "swift deploy $CFG/deploy.yaml \\"
  assert_line "curl --noproxy '*' http://127.0.0.1:8000/v1/models"
}

# ---------------------------------------------------------------- paths with spaces

@test "paths with spaces: each path reaches swift as one argument, and the runbook quotes it" {
  local root="$TMP/data disk/lab runs"
  write_env_raw GPU=6 "OUTPUT_ROOT=$root/output" "EXPORT_ROOT=$root/export" "RESULTS_ROOT=$root/results" \
    "CACHE_ROOT=$root/cache" "SWANLAB_PROJECT=p"
  run scripts/train.sh
  assert_success
  run stub_call swift
  assert_line "arg: $root/output/$DEFAULT_EXP"
  assert_line "env: SWANLAB_LOG_DIR=$root/output/$DEFAULT_EXP/swanlog"
  run scripts/export.sh
  assert_success
  assert_file_exist "$root/export/$DEFAULT_EXP/config.json"
  run stub_call swift
  assert_line "arg: $root/output/$DEFAULT_EXP/checkpoint-4"
  run env DRY_RUN=1 scripts/train.sh
  assert_success
  assert_line "    --output_dir '$root/output/$DEFAULT_EXP' \\"
}
