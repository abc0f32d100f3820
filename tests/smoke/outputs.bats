#!/usr/bin/env bats
# Checks what a real `make smoke` run wrote (run by tests/run.sh after it).
# SMOKE_LOG: everything the run printed; FAKE_TOKEN: the key planted in it.

bats_require_minimum_version 1.5.0

setup() {
  bats_load_library bats-support
  bats_load_library bats-assert
  cd "$BATS_TEST_DIRNAME/../.." || return 1
  RUN_DIR=output/smoke
  EXPORT_DIR=export/smoke
}

@test "training finished with its final summary and a complete last checkpoint" {
  run jq -e -s 'any(.[]; has("train_runtime") and has("train_loss"))' "$RUN_DIR/logging.jsonl"
  assert_success
  last="$(readlink "$RUN_DIR/last-checkpoint")"
  [[ -f "$RUN_DIR/$last/trainer_state.json" && -f "$RUN_DIR/$last/adapter_model.safetensors" ]]
  # Evaluation really ran on the held-out split.
  run jq -e '[.log_history[] | select(.eval_loss != null)] | length > 0' "$RUN_DIR/$last/trainer_state.json"
  assert_success
}

@test "the run dir is exact (no v0-timestamp folder) and records its command" {
  run find "$RUN_DIR" -maxdepth 1 -name 'v[0-9]*-*'
  assert_output ""
  run cat "$RUN_DIR/lab-command.txt"
  assert_output --partial "swift sft configs/smoke/sft.yaml"
}

@test "the export is a merged safetensors model without quantization_config" {
  compgen -G "$EXPORT_DIR/*.safetensors" >/dev/null
  run jq -e 'has("quantization_config") | not' "$EXPORT_DIR/config.json"
  assert_success
  run jq -r '.architectures[0]' "$EXPORT_DIR/config.json"
  assert_output GptOssForCausalLM
  [[ ! -e "$EXPORT_DIR.partial" ]]
}

@test "the server answered a chat completion and was stopped at the end" {
  run grep -E '\[health\] ok: smoke at http://127.0.0.1:[0-9]+/v1 answered: .+' "$SMOKE_LOG"
  assert_success
  [[ ! -e .state/server/pid ]]
  run pgrep -f 'swift/cli/deploy.py'
  assert_failure
}

@test "every step recorded its start, end and commands" {
  for step in train export deploy health; do
    run jq -r --arg s "$step" 'select(.step == $s) | .event' .state/smoke/steps.jsonl
    assert_line start
    assert_line end
  done
  run jq -r 'select(.step == "train" and .event == "end") | .detail' .state/smoke/steps.jsonl
  assert_line "exit 0"
}

@test "the planted token appears in nothing printed or written" {
  [[ -n "$FAKE_TOKEN" ]]
  run grep -c -- "$FAKE_TOKEN" "$SMOKE_LOG"
  assert_output 0
  run grep -rl -- "$FAKE_TOKEN" output export results report .state build 2>/dev/null
  assert_output ""
}
