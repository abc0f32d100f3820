#!/usr/bin/env bats
# make export (scripts/export.sh): which checkpoint is merged, the swift export command,
# the quantization_config strip and the move into place.

load test_helper

setup() {
  common_setup
  CFG="configs/$DEFAULT_EXP"
}
teardown() { common_teardown; }

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
