#!/usr/bin/env bats
# A real smoke training killed with SIGKILL after its second checkpoint is resumed
# by running train.sh again: the global step continues from that checkpoint.
# Needs the tiny model (build/tiny-gpt-oss) and .venv, so tests/run.sh runs it after make smoke.

load ../test_helper

setup() {
  smoke_setup
  export OUTPUT_ROOT="$BATS_TEST_TMPDIR/output" RESULTS_ROOT="$BATS_TEST_TMPDIR/results"
  RUN_DIR="$OUTPUT_ROOT/smoke"
  # shellcheck source=../../scripts/lib/common.sh
  source scripts/lib/common.sh
  # shellcheck source=../../scripts/lib/checkpoints.sh
  source scripts/lib/checkpoints.sh
}

teardown() {
  if [[ -n "${TRAIN_PID:-}" ]]; then kill -KILL -- "-$TRAIN_PID" 2>/dev/null || true; fi
}

wait_for_complete_checkpoint() {
  local waited=0
  until is_complete_checkpoint "$RUN_DIR/$1"; do
    ((waited < 300)) || return 1
    sleep 1
    waited=$((waited + 1))
  done
}

@test "SIGKILL mid-run, then make train resumes from the last complete checkpoint" {
  setsid scripts/train.sh >"$BATS_TEST_TMPDIR/first.log" 2>&1 &
  TRAIN_PID=$!
  wait_for_complete_checkpoint checkpoint-8
  kill -KILL -- "-$TRAIN_PID"
  wait "$TRAIN_PID" || true
  TRAIN_PID=

  run training_finished "$RUN_DIR"
  assert_failure
  resumed_from="$(last_complete_checkpoint "$RUN_DIR")"
  [[ "$resumed_from" == "$RUN_DIR/checkpoint-8" || "$resumed_from" == "$RUN_DIR/checkpoint-12" ]]

  run scripts/train.sh
  assert_success
  assert_output --partial "resuming from $resumed_from"
  run training_finished "$RUN_DIR"
  assert_success
  # The resumed run's first logged step is the one after the checkpoint, not step 1.
  step="${resumed_from##*-}"
  local total
  total="$(jq -r 'select(."global_step/max_steps") | ."global_step/max_steps"' "$RUN_DIR/logging.jsonl" | tail -n 1)"
  total="${total#*/}"
  run jq -r --arg next "$((step + 1))/$total" 'select(."global_step/max_steps" == $next) | .loss' "$RUN_DIR/logging.jsonl"
  assert_success
  refute_output ""
  # Both parts logged to the same SwanLab run id (a cloud run continues; locally one folder each).
  run_id="$(cat "$RUN_DIR/swanlab-run-id")"
  run find "$RESULTS_ROOT/smoke/swanlog" -maxdepth 1 -name "run-*-$run_id"
  assert_equal "${#lines[@]}" 2
  run jq -e --argjson step "$step" --argjson total "$total" \
    '.global_step == $total and (.log_history | map(select(.step == ($step + 1) and .loss)) | length) >= 1' \
    "$RUN_DIR/checkpoint-$total/trainer_state.json"
  assert_success
}
