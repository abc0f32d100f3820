#!/usr/bin/env bats
# make report on fixture run dirs and results, with a temp env file (GPU=cpu), temp
# output roots, state dir and report dir: nothing is written into the repo.

load test_helper

setup() { fixture_setup; }

@test "report: a fixture run gives report/<exp>.md without placeholders, charts and manifest, bound to its code (scripts/py/lab too)" {
  use_run ok
  mkdir -p "$TMP/results/smoke"
  cp -r "$FIXTURES/evalscope/smoke/." "$TMP/results/smoke/"
  run "$REPO/scripts/report.sh"
  assert_success
  [[ -f "$TMP/report/smoke.md" && -f "$TMP/report/smoke-loss.png" && -f "$TMP/report/smoke-accuracy.png" ]]
  [[ -f "$TMP/report/smoke.appendix.md" && -f "$TMP/report/smoke.html" ]]
  run grep -c -e '\[待补充\]' -e '\[待评测\]' "$TMP/report/smoke.md"
  assert_output 0
  # The summary's headline row: both models, the difference with its interval, McNemar's p.
  run grep -nF '| C-Eval | 准确率 | 24 | 25.00% | 37.50% | +12.50 [-6.79, +30.68] | 不显著（p=0.375） |' "$TMP/report/smoke.md"
  assert_output --regexp '^([1-9]|1[0-9]):'
  # Every table renders, no template syntax is left, every link and anchor resolves.
  run "$LAB_PYTHON" "$REPO/tests/md_check.py" "$TMP/report/smoke.md" "$TMP/report/smoke.appendix.md"
  assert_success
  assert_output ""
  run jq -r '.git.commit | length' "$TMP/report/smoke.manifest.json"
  assert_output 40
  # provenance went to the temp state dir, not the repo's
  run jq -r 'select(.step == "report") | .event' "$TMP/state/smoke/steps.jsonl"
  assert_output $'start\ncommand\nend'
  # Its fingerprint covers the report's code, every module of scripts/py/lab included.
  run jq -r '.inputs.files | keys[]' "$TMP/state/smoke/inputs/report.json"
  local module
  for module in scripts/py/report.py scripts/py/runparse.py $(cd "$REPO" && find scripts/py/lab -name '*.py'); do
    assert_line "$module"
  done
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
