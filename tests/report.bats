#!/usr/bin/env bats
# make report / make status on fixture run dirs, with a temp env file (GPU=cpu),
# temp output roots and a temp state dir: nothing is written into the repo.

bats_require_minimum_version 1.5.0

setup() {
  bats_load_library bats-support
  bats_load_library bats-assert
  REPO="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"
  FIXTURES="$REPO/tests/fixtures"
  TMP="$BATS_TEST_TMPDIR"
  mkdir -p "$TMP/output" "$TMP/results"
  cat >"$TMP/test.env" <<EOF
GPU=cpu
SWANLAB_MODE=local
SERVE_HOST=127.0.0.1
SERVE_PORT=1
OUTPUT_ROOT=$TMP/output
EXPORT_ROOT=$TMP/export
RESULTS_ROOT=$TMP/results
CACHE_ROOT=$TMP/cache
EOF
  export ENV_FILE="$TMP/test.env" EXP=smoke LAB_STATE_DIR="$TMP/state" REPORT_DIR="$TMP/report"
  unset DRY_RUN OUTPUT_ROOT EXPORT_ROOT RESULTS_ROOT GPU
}

use_run() { cp -r "$FIXTURES/runs/$1/smoke" "$TMP/output/smoke"; }

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

@test "report: a fixture run gives report/<exp>.md without placeholders, charts and manifest" {
  use_run ok
  mkdir -p "$TMP/results/smoke"
  cp -r "$FIXTURES/evalscope/smoke/." "$TMP/results/smoke/"
  run "$REPO/scripts/report.sh"
  assert_success
  [[ -f "$TMP/report/smoke.md" && -f "$TMP/report/smoke-loss.png" && -f "$TMP/report/smoke-accuracy.png" ]]
  run grep -c -e '\[待补充\]' -e '\[待评测\]' "$TMP/report/smoke.md"
  assert_output 0
  run grep -F '| C-Eval | 25.00% | 37.50% | +12.50 个百分点 |' "$TMP/report/smoke.md"
  assert_success
  run jq -r '.git.commit | length' "$TMP/report/smoke.manifest.json"
  assert_output 40
  # provenance went to the temp state dir, not the repo's
  run jq -r 'select(.step == "report") | .event' "$TMP/state/smoke/steps.jsonl"
  assert_output $'start\ncommand\nend'
}

@test "report: missing evaluations show as 未运行 with the make target" {
  use_run inprogress
  run "$REPO/scripts/report.sh"
  assert_success
  run grep -F '未运行（make eval-cmmlu）' "$TMP/report/smoke.md"
  assert_success
  run grep -F '训练进行中或已中断' "$TMP/report/smoke.md"
  assert_success
}

@test "report: a file that is not JSON fails naming the file and line" {
  use_run not-json
  run "$REPO/scripts/report.sh"
  assert_failure
  assert_output --partial "logging.jsonl:2: not valid JSON"
  [[ ! -f "$TMP/report/smoke.md" ]]
}

@test "report: DRY_RUN=1 prints the command and writes nothing" {
  use_run ok
  DRY_RUN=1 run --separate-stderr "$REPO/scripts/report.sh"
  assert_success
  assert_output --partial "python scripts/py/report.py"
  assert_output --partial "--exp smoke"
  # What only the running machine knows is a shell substitution, never a placeholder.
  assert_line "    --git-commit \"\$(git rev-parse HEAD)\" \\"
  assert_line "    --cpu-cores \"\$(nproc)\""
  [[ ! -e "$TMP/report" && ! -e "$TMP/state" ]]
}

@test "status: DRY_RUN=1 prints what it reads" {
  DRY_RUN=1 run "$REPO/scripts/status.sh"
  assert_success
  assert_line "python scripts/py/runparse.py progress $TMP/output/smoke"
}
