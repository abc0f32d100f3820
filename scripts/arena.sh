#!/usr/bin/env bash
# make arena: base vs fine-tuned, head to head. For each benchmark of the arena's `pairs`
# (configs/benchmarks.yaml, kind: arena), EvalScope's general_arena pairs both models' replies
# to the same prompts (their evaluations' reviews, results/<exp>/<exp>/<bench> and
# results/<exp>/<exp>-base/<bench>, the latter often a link into the store of shared
# evaluations) and the judge of the env file (JUDGE_MODEL at JUDGE_API_URL, key only as
# JUDGE_API_KEY in the environment) compares the two replies of each prompt in both orders.
# scripts/py/eval_result.py --arena turns the runs into lab-eval.json (win / tie / loss, the
# win rates), which goes to the fine-tuned model's SwanLab run. Results in
# results/<exp>/<exp>/<arena>/ (one EvalScope work dir per pair), bound to their inputs (both
# models' replies, the judge, the suite entry: lib/fingerprint.sh spec_arena): the same inputs
# are not judged again, other inputs are moved aside first.
# JUDGE_MODEL=served (the smoke): the fine-tuned model's server is the judge, a placeholder;
# started here when it is not serving, and stopped after. No judge: recorded as skipped.
set -euo pipefail
export STEP_NAME=arena
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/fingerprint.sh
source "$REPO_ROOT/scripts/lib/fingerprint.sh"

ARENA_STEP=arena
declare -A arena_settings=() # the arena's benchmark (read_bench, in main)
EVAL_PENDING_FILE=lab-eval.pending.json
STARTED_JUDGE=0

# A result of other inputs (or of unknown origin) is kept aside, never mixed with the new one.
set_aside_other_results() {
  local status="${STEP_STATUS[$ARENA_STEP]}" moved
  [[ ("$status" == changed || "$status" == unknown || "$status" == partial) && -d "$OUT_DIR" ]] || return 0
  move_aside "$OUT_DIR" moved
  if [[ "$status" == changed && -f "$moved/lab-inputs.json" ]]; then
    log "the arena in $(display_path "$OUT_DIR") was judged from other inputs:"
    describe_input_changes "$moved/lab-inputs.json" "$(inputs_file "$ARENA_STEP")" >&2
  fi
  log "moved it to $(display_path "$moved") (kept); judging from scratch"
}

# No judge in the env file: recorded as skipped with these inputs (the judge is one of them),
# so it runs once a judge is configured.
skip_unjudged() {
  log "$ARENA_BENCH: no judge configured (JUDGE_MODEL in $(repo_relative "$ENV_FILE")); skipped"
  mkdir -p "$OUT_DIR"
  record_inputs "$ARENA_STEP" "$OUT_DIR"
  jq -nc --arg digest "${STEP_DIGEST[$ARENA_STEP]}" --arg bench "$ARENA_BENCH" --arg model "$EXP" \
    '{inputs_digest: $digest, benchmark: $bench, kind: "arena", model: $model, score: null, skipped: "no judge configured"}' |
    write_atomically "$OUT_DIR/$EVAL_DONE_FILE"
}

# Both models' evaluations of every pair are finished (the arena reads their reviews).
check_replies_finished() {
  local pair pairs served
  bench_list pairs arena_settings pairs
  for pair in "${pairs[@]}"; do
    for served in "$EXP" "$EXP-base"; do
      [[ -f "$RESULTS_DIR/$served/$pair/$EVAL_DONE_FILE" ]] || die "$ARENA_BENCH: $pair on $served is not evaluated ($(display_path "$RESULTS_DIR/$served/$pair") has no $EVAL_DONE_FILE)" \
        "run 'make evals eval-base EXP=$EXP' first"
      if jq -e '.skipped' "$RESULTS_DIR/$served/$pair/$EVAL_DONE_FILE" >/dev/null; then
        die "$ARENA_BENCH: $pair on $served was skipped ($(jq -r .skipped "$RESULTS_DIR/$served/$pair/$EVAL_DONE_FILE")): no replies to compare" \
          "configure what it needs, or leave $pair out of the arena's pairs (configs/$CONFIG_EXP/eval.yaml)"
      fi
    done
    # EvalScope finds a model's reviews by replacing 'reports' in its report path.
    [[ "$(arena_report_path "$EXP-base" "$pair")" != *reports*reports* && "$(arena_report_path "$EXP" "$pair")" != *reports*reports* ]] ||
      die "$ARENA_BENCH: a results path holds 'reports' twice ($(display_path "$(arena_report_path "$EXP-base" "$pair")")); general_arena would look for the reviews in the wrong place" \
        "set RESULTS_ROOT to a folder whose path does not contain 'reports'"
  done
}

# JUDGE_MODEL=served: the fine-tuned model's server judges (a placeholder); started when it is
# not serving (make eval-base stopped it), and stopped after.
serve_placeholder_judge() {
  [[ "$JUDGE_MODEL" == served ]] || return 0
  if is_serving ""; then return 0; fi
  log "JUDGE_MODEL=served: serving $(served_name "") as the (placeholder) judge"
  "$REPO_ROOT/scripts/deploy.sh"
  "$REPO_ROOT/scripts/health.sh"
  STARTED_JUDGE=1
}
stop_placeholder_judge() {
  if ((STARTED_JUDGE)); then "$REPO_ROOT/scripts/stop.sh"; fi
  STARTED_JUDGE=0
}

# judge_pairs: one general_arena run per pair, each from scratch (a run is a few minutes of judge
# requests; an interrupted one is judged again).
judge_pairs() {
  local pair pairs cmd
  : >"$OUT_DIR/lab-command.txt"
  bench_list pairs arena_settings pairs
  for pair in "${pairs[@]}"; do
    build_arena_cmd cmd arena_settings "$pair"
    rm -rf "${arena_settings[work_dir]}"
    print_cmd "${cmd[@]}" >>"$OUT_DIR/lab-command.txt"
    log "$pair: $EXP against $EXP-base, each prompt judged in both orders by ${JUDGE_MODEL/#served/$EXP (placeholder)}"
    run_cmd "${cmd[@]}" || die "evalscope's general_arena failed on $pair" "read the log above; rerun make arena EXP=$EXP"
  done
}

# The fine-tuned model's SwanLab run: its evaluations' (results/<exp>/<exp>/lab-swanlab-run.json).
fine_tuned_swanlab_run_id() {
  jq -r --arg d "${STEP_DIGEST[serve]}" 'select(.served_digest == $d) | .run_id' "$RESULTS_DIR/$EXP/lab-swanlab-run.json" 2>/dev/null || true
}

record_result() {
  local started="$1" cmd
  build_arena_result_cmd cmd arena_settings "$OUT_DIR/$EVAL_PENDING_FILE" "${STEP_DIGEST[$ARENA_STEP]}" "$(($(date +%s) - started))"
  run_cmd "${cmd[@]}" || exit 1 # eval_result.py said what was wrong and what to do
  SWANLAB_EVAL_RUN_ID="$(fine_tuned_swanlab_run_id)" build_eval_log_cmd cmd "$(result_name "")" "$OUT_DIR/$EVAL_PENDING_FILE"
  run_cmd "${cmd[@]}" || die "logging the arena to SwanLab failed" "read the error above; rerun make arena EXP=$EXP"
  mv -f "$OUT_DIR/$EVAL_PENDING_FILE" "$OUT_DIR/$EVAL_DONE_FILE"
}

# A dry run (the runbook's view): the commands, in order.
print_arena() {
  local pair pairs cmd
  if [[ -z "${JUDGE_MODEL:-}" ]]; then printf '# %s: no judge configured (JUDGE_MODEL): skipped\n' "$ARENA_BENCH"; return 0; fi
  bench_list pairs arena_settings pairs
  for pair in "${pairs[@]}"; do
    build_arena_cmd cmd arena_settings "$pair"
    run_cmd "${cmd[@]}"
  done
  build_arena_result_cmd cmd arena_settings "$OUT_DIR/$EVAL_DONE_FILE"
  run_cmd "${cmd[@]}"
}

main() {
  load_env
  begin_step
  load_eval_config
  if [[ -z "$ARENA_BENCH" ]]; then
    log "configs/$CONFIG_EXP/eval.yaml lists no arena benchmark (kind: arena): nothing to do"
    return 0
  fi
  read_bench arena_settings "$ARENA_BENCH"
  OUT_DIR="$(arena_dir)"
  if is_dry_run; then print_arena; return 0; fi
  require_command jq
  compute_inputs eval
  if step_done "$ARENA_STEP"; then
    log "$ARENA_BENCH already judged with these inputs: $(jq -r 'if .skipped then "skipped (\(.skipped))"
      else "\(.extra.totals.wins) wins, \(.extra.totals.ties) ties, \(.extra.totals.losses) losses, \(.extra.totals.unusable) without a usable verdict" end' "$OUT_DIR/$EVAL_DONE_FILE")"
    return 0
  fi
  set_aside_other_results
  if [[ -z "${JUDGE_MODEL:-}" ]]; then skip_unjudged; return 0; fi
  check_replies_finished
  mkdir -p "$OUT_DIR"
  record_inputs "$ARENA_STEP" "$OUT_DIR"
  local started
  started="$(date +%s)"
  trap 'status=$?; stop_placeholder_judge; record_event end "exit $status"' EXIT
  serve_placeholder_judge
  judge_pairs
  stop_placeholder_judge
  record_result "$started"
}

main "$@"
