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
  run grep -cF "default_system: $logged" .state/smoke/server/deploy.log
  assert_output 1
}

@test "each answer mode's request changes the prompt ms-swift builds: the reasoning effort, or a prefilled final channel" {
  # The smoke's own answer mode (final), as its evaluations sent it.
  local kwargs prompts
  kwargs="$(sed -n "s/.*--generation-config '\(.*\)' .*/\1/p" results/smoke/smoke/ceval/lab-command.txt | jq -c .extra_body.chat_template_kwargs)"
  assert_equal "$kwargs" '{"response_prefix":"<|channel|>final<|message|>"}'
  prompts="$(.venv/bin/python tests/lib/served_prompt.py build/tiny-gpt-oss configs/smoke/system.txt '{}' '{"reasoning_effort": "low"}' "$kwargs")"
  run jq -r '.[0]' <<<"$prompts"
  assert_output --partial $'Reasoning: medium\n'
  assert_output --regexp '<\|start\|>assistant$'
  run jq -r '.[1]' <<<"$prompts"
  assert_output --partial $'Reasoning: low\n'
  refute_output --partial 'Reasoning: medium'
  run jq -r '.[2]' <<<"$prompts"
  assert_output --regexp '<\|start\|>assistant<\|channel\|>final<\|message\|>$'
}

@test "only final channels were scored: every reply's analysis and final recorded, the counts in lab-eval.json" {
  local dir=results/smoke/smoke/ceval
  # The served reply starts in the final channel (ms-swift returns its response_prefix).
  run jq -r '.model_output.choices[0].message.metadata.harmony.raw[0:27]' "$dir"/predictions/smoke/*.jsonl
  assert_output --partial '<|channel|>final<|message|>'
  run jq -r '"\(.answer_mode) \(.replies.asked) \(.replies.max_tokens) \(.replies.final + .replies.cut_off >= 0)"' "$dir/lab-eval.json"
  assert_output "final 12 16 true"
  # Its counts are those of the predictions: replies ended by max_tokens, final channels.
  assert_equal "$(jq -r .replies.cut_off "$dir/lab-eval.json")" \
    "$(jq -s '[.[] | select(.model_output.choices[0].stop_reason == "max_tokens")] | length' "$dir"/predictions/smoke/*.jsonl)"
  assert_equal "$(jq -r .replies.final "$dir/lab-eval.json")" \
    "$(jq -s '[.[] | select((.model_output.choices[0].message.metadata.harmony.final // "") | length > 0)] | length' "$dir"/predictions/smoke/*.jsonl)"
  # The report's table has a row per benchmark and model with the counts.
  run grep -c '^| C-Eval | \(基座\|微调后\) | 12 |' "report/smoke.md"
  assert_output 2
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
  [[ ! -e .state/smoke/server/pid ]]
  # This checkout's servers only (the runbook's clean tree runs its own meanwhile).
  run pgrep -f "$SRC_ROOT/.venv/.*swift/cli/deploy.py"
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

# served-name bench questions: what the shipped local datasets (and the run's 7
# held-out conversations) must give.
EXPECTED_EVALS=(
  "smoke ceval 12" "smoke cmmlu 16" "smoke cmmlu-psych 12" "smoke mmlu-psych 8" "smoke mmlu-pro-psych 4"
  "smoke dialog 7"
  "smoke-base ceval 12" "smoke-base cmmlu 16" "smoke-base cmmlu-psych 12" "smoke-base mmlu-psych 8"
  "smoke-base mmlu-pro-psych 4" "smoke-base dialog 7" "smoke psydt-turns 7" "smoke-base psydt-turns 7"
)

@test "every evaluation scored all shipped questions, a score within [0, 1], no duplicates" {
  local entry served bench want result
  for entry in "${EXPECTED_EVALS[@]}"; do
    read -r served bench want <<<"$entry"
    result="results/smoke/$served/$bench/lab-eval.json"
    [[ -f "$result" ]] || fail "$served/$bench did not finish"
    run jq -r .num "$result"
    assert_output "$want"
    run jq -e '.score >= 0 and .score <= 1' "$result"
    assert_success
    # One prediction per question, even after a resume.
    run bash -c "jq -r '\"\\(input_filename) \\(.index)\"' results/smoke/$served/$bench/predictions/$served/*.jsonl | sort | uniq -d | wc -l"
    assert_output 0
    run bash -c "cat results/smoke/$served/$bench/predictions/$served/*.jsonl | wc -l"
    assert_output "$want"
  done
  # env/smoke.env's EVALSCOPE_HTML=0: no evaluation wrote EvalScope's own HTML page.
  run find -L results/smoke -name report.html
  assert_output ""
}

@test "the fine-tuning shows: held-out loss at least 1 nat below the base model's, ROUGE on held-out replies above it" {
  local base final
  base="$(jq -r 'select(.eval_loss != null and ."global_step/max_steps" != null) | .eval_loss' "$RUN_DIR/logging.jsonl" | head -n 1)"
  final="$(jq -r 'select(.eval_loss != null and ."global_step/max_steps" != null) | .eval_loss' "$RUN_DIR/logging.jsonl" | tail -n 1)"
  run jq -r 'select(.eval_loss != null and ."global_step/max_steps" != null) | ."global_step/max_steps"' "$RUN_DIR/logging.jsonl"
  assert_line --regexp '^0/[0-9]+$' # eval_on_start: the base model's loss, before any step
  awk -v base="$base" -v final="$final" 'BEGIN { exit !(base - final >= 1.0) }' ||
    fail "held-out loss $base -> $final: less than 1 nat"
  local metric tuned untuned
  for metric in rouge-l-f1 rouge-l-recall; do
    tuned="$(jq -r --arg m "$metric" '.metrics[$m]' results/smoke/smoke/dialog/lab-eval.json)"
    untuned="$(jq -r --arg m "$metric" '.metrics[$m]' results/smoke/smoke-base/dialog/lab-eval.json)"
    awk -v t="$tuned" -v b="$untuned" 'BEGIN { exit !(t > b) }' || fail "$metric: fine-tuned $tuned, base $untuned"
  done
  run grep -F "基座 $(printf '%.4f' "$base") → 微调后 $(printf '%.4f' "$final")" report/smoke.md
  assert_success
}

@test "the judge path ran against the local server for both models, marked as a placeholder" {
  local served bench
  for served in smoke smoke-base; do
    for bench in dialog-judge crisis-judge; do
      run jq -r '"\(.judge.model) \(.judge.placeholder)"' "results/smoke/$served/$bench/lab-eval.json"
      assert_output "served true"
      run grep -F -- '--judge' "results/smoke/$served/$bench/lab-command.txt"
      assert_output --partial '"api_url":"http://127.0.0.1:'
      assert_output --partial "\"model_id\":\"$served\""
    done
  done
  # The judge table's rows: dialog-judge, crisis-judge, cpsycoune.
  run grep -c '占位：被评测的模型自己评审' report/smoke.md
  assert_output 3
}

@test "the external test set: every turn on both models, EmoLLM's metrics, its overlap with the training set beside them" {
  local served result
  for served in smoke smoke-base; do
    result="results/smoke/$served/psydt-turns/lab-eval.json"
    run jq -r '[.scorer.name, .metric, (.metrics | keys | join(",")), .contamination.test_replies,
      .contamination.train_replies > 0, .contamination.flagged] | @tsv' "$result"
    assert_output "$(printf 'emollm\trouge-l-f1\tbleu-1,bleu-2,bleu-3,bleu-4,rouge-1-f1,rouge-2-f1,rouge-l-f1\t7\ttrue\tfalse')"
    assert_equal "$(grep -c . "results/smoke/$served/psydt-turns/lab-scores.jsonl")" 7
  done
  # shellcheck disable=SC2016 # backquotes of the Markdown table
  run grep -cE '^\| PsyDTCorpus 测试集逐轮回复（EmoLLM 指标） \| (基座|微调后)（`smoke(-base)?`） \| 7 \|( [0-9]+\.[0-9]{2} \|){7}$' report/smoke.md
  assert_output 2
  run grep -F '训练回复 ' report/smoke.md
  assert_output --regexp '^- PsyDTCorpus 测试集逐轮回复（EmoLLM 指标）：0 / 7 条测试回复（0\.00%）.*阈值 5\.00%：未超过$'
}

@test "CPsyCounE: every client turn judged on both models by the placeholder judge, its four dimensions in the report" {
  local served result
  for served in smoke smoke-base; do
    result="results/smoke/$served/cpsycoune/lab-eval.json"
    run jq -r '[.judge.model, .judge.placeholder, .judge.asked] | @tsv' "$result"
    assert_output "$(printf 'served\ttrue\t6')"
    run grep -F -- '--judge' "results/smoke/$served/cpsycoune/lab-command.txt"
    assert_output --partial 'CPsyCoun 论文'
  done
  run grep -c '^| CPsyCounE 逐轮评审（四个维度） | .*（占位，分数没有意义） |$' report/smoke.md
  assert_output 2
}

@test "the arena: both models' replies to the same prompts judged in both orders by the placeholder judge, in the report" {
  local result=results/smoke/smoke/arena/lab-eval.json
  run jq -r '[.kind, .model, .baseline, .judge.model, .judge.placeholder, .num, (.extra.pairs | map(.name) | join(","))] | @tsv' "$result"
  # The smoke's one pair (configs/smoke/eval.yaml), 4 prompts.
  assert_output "$(printf 'arena\tsmoke\tsmoke-base\tserved\ttrue\t4\tdialog')"
  # Every prompt counted once: a win, a tie, a loss, or no usable verdict.
  assert_equal "$(jq '.extra.totals | .wins + .ties + .losses + .unusable' "$result")" 4
  assert_equal "$(cat results/smoke/smoke/arena/dialog/reviews/arena/general_arena_*.jsonl | grep -c .)" 4
  run grep -F -- '"report_path":"results/smoke/smoke-base/dialog/reports/smoke-base"' results/smoke/smoke/arena/lab-command.txt
  assert_success
  run grep -F -- '"position_swap":"on"' results/smoke/smoke/arena/lab-command.txt
  assert_success
  run grep -c '^| 留出对话的咨询回复 | 4 | ' report/smoke.md
  assert_output 1
  run grep -c '（占位：由微调后模型的服务充当评审' report/smoke.md
  assert_output 1
}

@test "serving speed of both models at each concurrency level, with tokens, in the report" {
  local served
  for served in smoke smoke-base; do
    run jq -r '.levels[] | "\(.parallel) \(.number) \(.output_tok_s > 0) \(.requests_s > 0) \(.ttft_ms_p99 != null)"' \
      "results/smoke/$served/perf/lab-eval.json"
    assert_output $'1 2 true true true\n2 4 true true true'
  done
  # shellcheck disable=SC2016 # backquotes of the Markdown table
  run grep -cE '^\| (基座|微调后)（`smoke(-base)?`） \| [12] \| [24] \| [0-9]' report/smoke.md
  assert_output 4
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
  # The command that made each output, in the appendix: the merge, and every evaluation of both models.
  local evaluation served bench
  evaluation="$(sed -n '/^## 评测命令/,/^## 步骤日志/p' report/smoke.appendix.md)"
  run grep -c ' swift export configs/smoke/export.yaml' report/smoke.appendix.md
  refute_output 0
  for served in smoke smoke-base; do
    for bench in ceval cmmlu cmmlu-psych; do
      grep -qF -- "--work-dir results/smoke/$served/$bench " <<<"$evaluation" || fail "no evaluation command of $served $bench in the appendix"
    done
  done
  # Every command of the step log too, and the report links each step to it.
  run jq -r 'select(.event == "command") | .step' .state/smoke/steps.jsonl
  assert_equal "$(grep -c '^# [a-z-]* @ ' report/smoke.appendix.md)" "${#lines[@]}"
  run grep -cE '^\| [0-9]+ \| [a-z-]+ \| .*\]\(smoke\.appendix\.md#[0-9]+-[a-z-]+\) \|$' report/smoke.md
  refute_output 0
  # The final training loss in the report is the one in the run's own log.
  final_loss="$(jq -r 'select(.loss != null and has("global_step/max_steps")) | .loss' "$RUN_DIR/logging.jsonl" | tail -n 1)"
  run grep -F "$(printf '%.4f' "$final_loss")" report/smoke.md
  assert_success
}

@test "the summary is the first screen: every benchmark base vs fine-tuned with its interval and test, on the predictions" {
  local summary tested='\[-?[0-9.]+, [+-]?[0-9.]+\] \| (不显著|显著)（p[=<][0-9.]+） \|$'
  summary="$(sed '/^## 1\. /q' report/smoke.md)"
  (($(wc -l <<<"$summary") <= 40)) || fail "the summary is $(wc -l <<<"$summary") lines"
  run grep -n -m1 '^| C-Eval | 准确率 | 12 | ' report/smoke.md
  assert_output --regexp '^([0-9]|1[0-5]):' # the first score near the top
  # One row per benchmark of eval.yaml (the replies: ROUGE-L F1 and BLEU-4), each with an
  # interval and a verdict computed from the per-question reviews, on all their questions.
  local bench row
  for bench in "C-Eval 12" "CMMLU 16" "CMMLU 心理学子集 12" "MMLU 心理学 8" "MMLU-Pro 心理学 4" \
    "CPsyExam 单项选择（MCQA） 4" "CPsyExam 多项选择（MRQA） 4" "GSM8K 4" "SafetyBench（中文，总体） 6"; do
    row="$(grep -F "| ${bench% *} | 准确率 | ${bench##* } | " <<<"$summary")" || fail "no headline row for $bench"
    [[ "$row" =~ $tested ]] || fail "no interval or test: $row"
  done
  for bench in "ROUGE-L F1" "BLEU-4"; do
    grep -qE "^\| 留出对话的咨询回复 \| $bench \| 7 \| .*\] \| (不显著|显著)（区间(不含|含) 0） \|$" <<<"$summary" ||
      fail "no tested headline row for the replies' $bench"
  done
  grep -qE '\*\*验证集 loss\*\*：基座 [0-9.]+ → 微调后 [0-9.]+（下降 [0-9.]+）' <<<"$summary"
  grep -qF 'LLM 评审是占位的' <<<"$summary"
  # The manifest's paired test of C-Eval rests on the 12 questions both models answered.
  run jq -r '.results.eval.ceval.paired.score | "\(.n) \(.method)"' report/smoke.manifest.json
  assert_output "12 mcnemar"
}

@test "every document the report writes renders: tables whole, no template syntax, links and anchors resolve" {
  run "$LAB_PYTHON" tests/md_check.py report/smoke.md report/smoke.appendix.md
  assert_success
  assert_output ""
  # The counselling table's two models on two lines, and the difference under them.
  # shellcheck disable=SC2016 # backquotes of the Markdown table
  run grep -cE '^\| 留出对话的咨询回复 \| (基座（`smoke-base`）|微调后（`smoke`）|差值（微调后 − 基座）\[95% CI\]) \| 7 \|' report/smoke.md
  assert_output 3
  # The HTML page: self-contained, both charts embedded.
  run grep -c 'src="data:image/png;base64,' report/smoke.html
  assert_output 2
  run grep -cE '(src|href)="(https?:)?//' report/smoke.html
  assert_output 0
}
