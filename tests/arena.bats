#!/usr/bin/env bats
# make arena (scripts/arena.sh) with the stubs: the exact general_arena commands, the judge and
# its key, the result parsed from a real general_arena output (tests/fixtures/arena, through
# the evalscope stub), no judge configured, and the result bound to its inputs (the judge,
# both models' replies).

load test_helper

setup() {
  common_setup
  RESULTS="$REPO/results/$DEFAULT_EXP"
  ARENA="$RESULTS/$DEFAULT_EXP/arena"
  write_env_raw GPU=6 SWANLAB_PROJECT=multi-model-psychology SERVE_HOST=127.0.0.1 SERVE_PORT=8000 OFFLINE=0
  export STUB_ARENA_FIXTURE="$SRC_ROOT/tests/fixtures/arena/arena"
}

teardown() { common_teardown; }

# evaluate_pairs: both models' replies to the paired benchmarks (the held-out dialogue,
# PsyDTCorpus's turns), as after make evals eval-base; the stub log emptied after.
evaluate_pairs() {
  heldout_split "$REPO/output/$DEFAULT_EXP"
  mark_done train export serving
  stub_serves "$DEFAULT_EXP"
  STUB_REVIEWS=1 run scripts/eval.sh dialog psydt-turns
  assert_success
  stub_serves "$DEFAULT_EXP-base"
  mark_done serving-base
  STUB_REVIEWS=1 run scripts/eval.sh --base dialog psydt-turns
  assert_success
  : >"$STUB_LOG"
}

with_judge() { printf '%s\n' JUDGE_MODEL=judge-7b JUDGE_API_URL=http://127.0.0.1:9901/v1 >>"$ENV_FILE"; }

# The stub calls of the launcher running general_arena, by number.
arena_calls() {
  local n
  for ((n = 1; n <= $(stub_calls python); n++)); do
    if [[ "$(stub_args python "$n" | head -n 1)" == */evalscope_lab.py ]]; then printf '%s\n' "$n"; fi
  done
}

@test "GPU=6 with a judge: one general_arena run per pair, both models' replies, the base the baseline, the key only in the environment" {
  evaluate_pairs
  with_judge
  JUDGE_API_KEY=judge-secret-789 run scripts/arena.sh
  assert_success
  refute_output --partial judge-secret-789
  run grep -c judge-secret-789 "$STUB_LOG"
  assert_output 0
  mapfile -t calls < <(arena_calls)
  assert_equal "${#calls[@]}" 2
  run stub_args python "${calls[0]}"
  assert_output "$REPO/scripts/py/evalscope_lab.py
--replies
harmony
eval
--eval-type
mock_llm
--model
arena
--datasets
general_arena
--dataset-args
{\"general_arena\":{\"extra_params\":{\"models\":[{\"name\":\"$DEFAULT_EXP\",\"report_path\":\"$RESULTS/$DEFAULT_EXP/dialog/reports/$DEFAULT_EXP\"},{\"name\":\"$DEFAULT_EXP-base\",\"report_path\":\"$RESULTS/$DEFAULT_EXP-base/dialog/reports/$DEFAULT_EXP-base\"}],\"baseline\":\"$DEFAULT_EXP-base\"}}}
--limit
100
--eval-batch-size
8
--judge
{\"strategy\":\"llm\",\"position_swap\":\"on\",\"models\":[{\"model_id\":\"judge-7b\",\"api_url\":\"http://127.0.0.1:9901/v1\",\"generation_config\":{\"temperature\":0,\"max_tokens\":2048}}]}
--work-dir
$ARENA/dialog
--no-timestamp"
  run stub_call python "${calls[0]}"
  assert_line "env: JUDGE_API_KEY sha256=$(printf '%s' judge-secret-789 | sha256sum | cut -d' ' -f1)"
  run stub_arg python "${calls[1]}" --work-dir
  assert_output "$ARENA/psydt-turns"
  # The result: the fixture's hand count in each pair, pooled.
  assert_equal "$(jq -r '[.kind, .model, .baseline, .extra.totals.wins, .extra.totals.ties, .extra.totals.losses, .extra.totals.unusable, .judge.model, .judge.placeholder] | @tsv' "$ARENA/lab-eval.json")" \
    "arena	$DEFAULT_EXP	$DEFAULT_EXP-base	6	4	4	2	judge-7b	false"
  assert_equal "$(jq -r '.extra.pairs | map(.name) | join(" ")' "$ARENA/lab-eval.json")" "dialog psydt-turns"
  assert_equal "$(jq -r '.extra.pairs[0].replies_digests.base' "$ARENA/lab-eval.json")" \
    "$(jq -r .inputs_digest "$RESULTS/$DEFAULT_EXP-base/dialog/lab-eval.json")"
  # To the fine-tuned model's SwanLab run.
  run grep -c "^arg: .*/log_eval_swanlab.py$" "$STUB_LOG"
  assert_output 1
}

@test "no judge configured: recorded as skipped, judged once a judge is configured" {
  evaluate_pairs
  run scripts/arena.sh
  assert_success
  assert_line "[arena] arena: no judge configured (JUDGE_MODEL in ${ENV_FILE#"$REPO"/}); skipped"
  assert_equal "$(jq -r .skipped "$ARENA/lab-eval.json")" "no judge configured"
  assert_equal "$(arena_calls | wc -l)" 0
  with_judge
  run scripts/arena.sh
  assert_success
  assert_equal "$(arena_calls | wc -l)" 2
  assert_equal "$(jq -r .extra.totals.wins "$ARENA/lab-eval.json")" 6
}

@test "bound to its inputs: nothing changed is not judged again; another judge or other replies are" {
  evaluate_pairs
  with_judge
  run scripts/arena.sh
  assert_success
  run scripts/arena.sh
  assert_success
  assert_line --partial "[arena] arena already judged with these inputs: 6 wins, 4 ties, 4 losses, 2 without a usable verdict"
  assert_equal "$(arena_calls | wc -l)" 2
  # Another judge.
  sed -i 's/^JUDGE_MODEL=judge-7b$/JUDGE_MODEL=judge-13b/' "$ENV_FILE"
  run scripts/arena.sh
  assert_success
  assert_output --partial "judged from other inputs"
  assert_equal "$(arena_calls | wc -l)" 4
  assert_equal "$(find "$(dirname "$ARENA")" -maxdepth 1 -name "arena.replaced-*" | wc -l)" 1
  # Other replies of the base model.
  sed -i 's/我理解你的感受/我明白/' "$RESULTS/$DEFAULT_EXP-base/psydt-turns/reviews/$DEFAULT_EXP-base/general_qa_psydt.jsonl"
  run scripts/arena.sh
  assert_success
  assert_output --partial "judged from other inputs"
  assert_equal "$(arena_calls | wc -l)" 6
}

@test "the pairs must be benchmarks the experiment evaluates" {
  with_judge
  sed -i 's/^  pairs: \[dialog, psydt-turns\]$/  pairs: [dialog, ceval-nope]/' configs/benchmarks.yaml
  run scripts/arena.sh
  assert_failure
  assert_output --partial "pairs names 'ceval-nope', which configs/$DEFAULT_EXP/eval.yaml does not evaluate"
}

@test "a paired evaluation not finished: a clear error naming what to run" {
  evaluate_pairs
  with_judge
  rm "$RESULTS/$DEFAULT_EXP-base/psydt-turns/lab-eval.json"
  run scripts/arena.sh
  assert_failure
  assert_output --partial "psydt-turns on $DEFAULT_EXP-base is not evaluated"
  assert_output --partial "make evals eval-base EXP=$DEFAULT_EXP"
}

@test "the runbook prints the arena after the base model's evaluations, before the report" {
  with_judge
  run make runbook GPU=6
  assert_success
  assert_output --partial "step_arena() {"
  assert_output --partial "--datasets general_arena"
  assert_output --partial '"model_id":"judge-7b"'
  [[ "$output" == *"step_serve_base() {"*"step_arena() {"*"step_report() {"* ]]
}
