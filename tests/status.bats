#!/usr/bin/env bats
# make status on fixture run dirs (the report's own parser, scripts/py/runparse.py),
# with a temp env file (GPU=cpu), temp output roots and state dir.

load test_helper

setup() { fixture_setup; }

@test "status: clear message when no run exists yet" {
  run "$REPO/scripts/status.sh"
  assert_success
  assert_output --partial "no run yet (start it with: make train EXP=smoke)"
  assert_output --partial "server:      not running"
}

@test "status: a finished run shows its steps, losses and time" {
  use_run ok
  run "$REPO/scripts/status.sh"
  assert_success
  assert_output --partial "finished: step 4/4 in 67.5s, train_loss 7.9128"
  assert_output --partial "train loss:  7.8750 (step 4/4)"
  assert_output --partial "eval loss:   7.9600 (step 4/4)"
  assert_output --partial "GPU memory:  12.5 GiB"
  # The steps' states in one column, as wide as the longest step name.
  assert_line --regexp '^  eval-smoke-base-mmlu-pro-psych +[a-z]'
  local columns
  columns="$(sed -n '/^steps:$/,/^server:/p' <<<"$output" | grep '^  [a-z]' | awk '{ print index($0, " " $2) }' | sort -u)"
  assert_equal "$(wc -l <<<"$columns")" 1
}

@test "status: a run in progress with a cut-off last line shows the time left" {
  use_run inprogress
  run "$REPO/scripts/status.sh"
  assert_success
  assert_output --partial "step 3/4 (75%)"
  assert_output --partial "train loss:  7.8500 (step 3/4)"
  assert_output --partial "eval loss:   7.9500 (step 2/4)"
  assert_output --partial "time left:   20s"
}

@test "status: DRY_RUN=1 prints what it reads" {
  DRY_RUN=1 run "$REPO/scripts/status.sh"
  assert_success
  assert_line "python scripts/py/runparse.py progress $TMP/output/smoke"
}
