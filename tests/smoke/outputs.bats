#!/usr/bin/env bats
# Checks what a real `make smoke` run wrote (run by tests/run.sh after it).
# SMOKE_LOG: everything the run printed; FAKE_TOKEN: the key planted in it.

load ../test_helper

setup() { smoke_setup; }

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

@test "training and serving used the identical system prompt, the experiment's one system.txt" {
  run jq -r .system "$RUN_DIR/args.json"
  assert_output "$(cat configs/smoke/system.txt)"
  # The server logs the prompt it applies (Python's repr of the string).
  local logged
  logged="$(.venv/bin/python -c 'import sys; print(repr(open(sys.argv[1], encoding="utf-8").read()))' configs/smoke/system.txt)"
  run grep -cF "default_system: $logged" .state/server/deploy.log
  assert_output 1
}

@test "training logged its numbers to SwanLab without one ERROR line (ms-swift's progress strings dropped)" {
  run grep -cE '\| ERROR +\| swanlab' "$SMOKE_LOG"
  assert_output 0
  run "$LAB_PYTHON" -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print("\n".join(name for (name,) in db.execute(
    "select t.name from tag t join experiment e on t.experiment_id = e.id where e.name = ?", ("smoke",))))' \
    results/smoke/swanlog/runs.swanlab
  assert_success
  assert_line train/loss
  assert_line eval/loss
  refute_line --partial global_step/max_steps
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

# served-name bench questions: what the shipped local datasets must give.
EXPECTED_EVALS=(
  "smoke ceval 12" "smoke cmmlu 16" "smoke cmmlu-psych 12"
  "smoke-base ceval 12" "smoke-base cmmlu 16" "smoke-base cmmlu-psych 12"
)

@test "every evaluation scored all shipped questions, accuracy within [0, 1], no duplicates" {
  local entry served bench want dataset report
  for entry in "${EXPECTED_EVALS[@]}"; do
    read -r served bench want <<<"$entry"
    dataset="${bench%-psych}"
    report="results/smoke/$served/$bench/reports/$served/$dataset.json"
    [[ -f "results/smoke/$served/$bench/lab-eval.json" ]] || fail "$served/$bench did not finish"
    run jq -r '.metrics[0].num' "$report"
    assert_output "$want"
    run jq -e '.metrics[0].score >= 0 and .metrics[0].score <= 1' "$report"
    assert_success
    # One prediction per question, even after a resume.
    run bash -c "jq -r '\"\\(input_filename) \\(.index)\"' results/smoke/$served/$bench/predictions/$served/*.jsonl | sort | uniq -d | wc -l"
    assert_output 0
    run bash -c "cat results/smoke/$served/$bench/predictions/$served/*.jsonl | wc -l"
    assert_output "$want"
  done
}

@test "the report has every value filled, both charts, and a manifest with commit and hashes" {
  run grep -E '\[待补充\]|\[待评测\]|\[待对比\]|\[待分析\]' report/smoke.md
  assert_failure
  [[ -s report/smoke-loss.png && -s report/smoke-accuracy.png ]]
  for chart in report/smoke-loss.png report/smoke-accuracy.png; do
    run bash -c "head -c 4 $chart | od -An -tx1 | tr -d ' '"
    assert_output 89504e47
  done
  run jq -e '(.git.commit | test("^[0-9a-f]{40}$")) and (.files.lock.sha256 | test("^[0-9a-f]{64}$"))
    and (.files.config.sha256 | length == 64) and .seed == 42' report/smoke.manifest.json
  assert_success
  # The command that made each output: the merge, and every evaluation of both models.
  local evaluation served bench
  evaluation="$(sed -n '/^## 8\./,/^## 9\./p' report/smoke.md)"
  run grep -c ' swift export configs/smoke/export.yaml' report/smoke.md
  refute_output 0
  for served in smoke smoke-base; do
    for bench in ceval cmmlu cmmlu-psych; do
      grep -qF -- "--work-dir results/smoke/$served/$bench " <<<"$evaluation" || fail "no evaluation command of $served $bench in section 8"
    done
  done
  # The final training loss in the report is the one in the run's own log.
  final_loss="$(jq -r 'select(.loss != null and has("global_step/max_steps")) | .loss' "$RUN_DIR/logging.jsonl" | tail -n 1)"
  run grep -F "$(printf '%.4f' "$final_loss")" report/smoke.md
  assert_success
}
