#!/usr/bin/env bash
# make eval-ceval / eval-cmmlu / eval-base: EvalScope against the served model.
#   scripts/eval.sh [--base] BENCH...|all
# BENCH is a benchmark of configs/$EXP/eval.yaml, or a group: `cmmlu` also runs
# every benchmark with `group: cmmlu` (cmmlu-psych). Results of one benchmark go
# to $RESULTS_DIR/<served name>/<bench>/; lab-eval.json there is written last,
# after the report was checked, and marks it finished with the digest of its
# inputs (lib/fingerprint.sh): the model as served, the settings, the question set.
# Same inputs: finished is kept, interrupted resumes from its cached predictions
# (--use-cache). Other inputs (or no record): the folder is moved aside, kept, and
# the benchmark runs fresh.
set -euo pipefail
export STEP_NAME=eval
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/commands.sh
source "$REPO_ROOT/scripts/lib/commands.sh"

usage() { die "usage: scripts/eval.sh [--base] BENCH...|all" "BENCH is one of: ${BENCHMARKS[*]:-see configs/\$EXP/eval.yaml}"; }

# The subjects EvalScope knows for a hub dataset (empty if it cannot tell).
known_subjects() {
  python "$REPO_ROOT/scripts/py/eval_subjects.py" "$DATASET_NAME" 2>/dev/null || true
}

# Stops before asking the server anything if a configured subject does not
# exist (EvalScope drops an unknown CMMLU subject silently). Sets EXPECTED_NUM
# when a local copy tells how many questions the run must score.
check_subjects() {
  local bench="$1" known subject count
  EXPECTED_NUM=""
  [[ -n "$LOCAL_PATH" ]] || ((${#SUBSETS[@]} > 0)) || return 0
  if [[ -n "$LOCAL_PATH" ]]; then known="$(local_subjects)"; else known="$(known_subjects)"; fi
  if [[ -z "$known" ]]; then
    warn "cannot list the subjects of $DATASET_NAME; skipping the subject check"
    return 0
  fi
  for subject in "${SUBSETS[@]}"; do
    grep -qxF "$subject" <<<"$known" || die "$bench: unknown subject '$subject' in configs/$EXP/eval.yaml" \
      "use subjects $DATASET_NAME has: $(paste -sd' ' - <<<"$known" | cut -c1-300)"
  done
  [[ -n "$LOCAL_PATH" ]] || return 0
  EXPECTED_NUM=0
  for subject in "${SUBSETS[@]}"; do
    count="$(local_question_count "$subject")"
    [[ -n "$count" ]] || { EXPECTED_NUM=""; return 0; }
    if [[ -n "$LIMIT" ]] && ((count > LIMIT)); then count="$LIMIT"; fi
    EXPECTED_NUM=$((EXPECTED_NUM + count))
  done
}

# Resuming: EvalScope re-asks only the questions without a cached prediction.
# Without --use-cache it would append duplicates; with it on a fresh dir it fails.
has_cached_predictions() { compgen -G "$WORK_DIR/predictions/*/*.jsonl" >/dev/null; }
add_resume_flag() { if has_cached_predictions; then CMD+=(--use-cache "$WORK_DIR"); fi; }

# Checks EvalScope's report: an accuracy in [0, 1], the expected count, every subject.
check_report() {
  local bench="$1" report num subject
  report="$(report_file)"
  [[ -f "$report" ]] || die "$bench: evalscope wrote no report ($(display_path "$report")); no questions were scored?" \
    "check the subjects and local_path in configs/$EXP/eval.yaml and the log above"
  jq -e '.metrics[0].score | type == "number" and . >= 0 and . <= 1' "$report" >/dev/null ||
    die "$bench: $(display_path "$report") has no accuracy in [0, 1]" "read the log above; rerun make to resume"
  num="$(jq -r '.metrics[0].num' "$report")"
  if [[ -n "$EXPECTED_NUM" && "$num" != "$EXPECTED_NUM" ]]; then
    die "$bench: scored $num questions, expected $EXPECTED_NUM" "read the log above; rerun make to resume"
  fi
  for subject in "${SUBSETS[@]}"; do
    jq -e --arg s "$subject" '[.metrics[0].categories[].subsets[].name] | index($s)' "$report" >/dev/null ||
      die "$bench: subject '$subject' has no results in $(display_path "$report")" \
        "check that $DATASET_NAME has subject '$subject' (configs/$EXP/eval.yaml)"
  done
}

# Folder of results made from other inputs (or of unknown origin): kept aside,
# never resumed (EvalScope would mix models or settings, or refuse the cache).
set_aside_other_results() {
  local bench="$1" status="${STEP_STATUS[$(eval_step_name "$1")]}"
  [[ "$status" == changed || "$status" == unknown ]] || return 0
  [[ -d "$WORK_DIR" ]] || return 0
  move_aside "$WORK_DIR"
  if [[ "$status" == changed && -f "$MOVED_TO/lab-inputs.json" ]]; then
    log "$bench on $SERVED_NAME: the results in $(display_path "$WORK_DIR") were made from other inputs:"
    describe_input_changes "$MOVED_TO/lab-inputs.json" "$(inputs_file "$(eval_step_name "$bench")")" >&2
  else
    log "$bench on $SERVED_NAME: $(display_path "$WORK_DIR") has no record of what it was made from"
  fi
  log "moved it to $(display_path "$MOVED_TO") (kept); evaluating from scratch"
}

log_to_swanlab() {
  local bench="$1"
  reset_cmd
  local mode=offline
  if [[ "$SWANLAB_MODE" == cloud ]]; then mode=cloud; CMD_SECRET_ENV+=(SWANLAB_API_KEY=SWANLAB_TOKEN); fi
  if [[ -n "${SWANLAB_API_HOST:-}" ]]; then CMD_ENV+=("SWANLAB_API_HOST=$SWANLAB_API_HOST"); fi
  CMD=(python "$REPO_ROOT/scripts/py/log_eval_swanlab.py" --report "$(report_file)" --project "$SWANLAB_PROJECT"
    --name "$SERVED_NAME-$bench" --benchmark "$bench" --mode "$mode" --log-dir "$RESULTS_DIR/swanlog")
  run_cmd || die "$bench: logging the metrics to SwanLab failed" \
    "read the error above; rerunning make logs them again (the predictions are cached)"
}

run_bench() {
  local bench="$1" started elapsed
  read_bench "$bench"
  build_eval_cmd "$bench"
  if is_dry_run; then
    printf '# %s: %s on %s, limit %s per subject\n' "$bench" "$DATASET_NAME" "$SERVED_NAME" "${LIMIT:-none}"
    add_resume_flag
    run_cmd
    return 0
  fi
  local step
  step="$(eval_step_name "$bench")"
  if step_done "$step"; then
    log "$bench on $SERVED_NAME already finished: $(jq -r '"accuracy \(.score) on \(.num) questions"' "$WORK_DIR/$EVAL_DONE_FILE")"
    return 0
  fi
  check_subjects "$bench"
  set_aside_other_results "$bench"
  rm -f "$WORK_DIR/$EVAL_DONE_FILE"
  record_inputs "$step" "$WORK_DIR"
  print_cmd | write_atomically "$WORK_DIR/lab-command.txt"
  add_resume_flag
  if [[ " ${CMD[*]} " == *" --use-cache "* ]]; then log "$bench: resuming from the cached predictions in $(display_path "$WORK_DIR")"; fi
  rm -f "$(report_file)" # EvalScope rewrites it from the cache; an old one must not pass for new
  started="$(date +%s)"
  run_cmd || die "evalscope failed on $bench" \
    "read the log above; rerunning make resumes from the predictions cached in $(display_path "$WORK_DIR") (same model and settings)"
  elapsed=$(($(date +%s) - started))
  check_report "$bench"
  log_to_swanlab "$bench"
  jq -c --arg bench "$bench" --arg model "$SERVED_NAME" --argjson seconds "$elapsed" --arg digest "${STEP_DIGEST[$step]}" \
    '{inputs_digest: $digest, benchmark: $bench, dataset: .dataset_name, model: $model, score: .metrics[0].score, num: .metrics[0].num,
      subsets: [.metrics[0].categories[].subsets[] | {name, score, num}], eval_seconds: $seconds}' "$(report_file)" |
    write_atomically "$WORK_DIR/$EVAL_DONE_FILE"
  log "$bench on $SERVED_NAME: $(jq -r '"accuracy \(.score) on \(.num) questions in \(.eval_seconds)s"' "$WORK_DIR/$EVAL_DONE_FILE")"
}

# Fails within seconds when nothing serves the model, instead of after EvalScope's
# retries, or when our server serves another build of it (an older export).
check_server() {
  require_command curl "install curl"
  is_serving "$SERVED_NAME" || die_not_serving ""
  local serve=serve
  if [[ -n "$BASE_FLAG" ]]; then serve="serve-base"; fi
  if [[ "$(cat "$SERVER_DIGEST_FILE" 2>/dev/null)" != "${STEP_DIGEST[$serve]}" ]]; then
    die "the server at $(api_base) serves another build of $SERVED_NAME than the current $([[ -n "$BASE_FLAG" ]] && echo 'base model and serving config' || echo 'export and serving config')" \
      "restart it: make stop $DEPLOY_TARGET EXP=$EXP"
  fi
}

main() {
  BASE_FLAG=""
  if [[ "${1:-}" == --base ]]; then BASE_FLAG=--base; shift; fi
  load_env
  begin_step
  # shellcheck source=lib/server.sh
  source "$REPO_ROOT/scripts/lib/server.sh"
  # shellcheck source=lib/eval_config.sh
  source "$REPO_ROOT/scripts/lib/eval_config.sh"
  load_eval_config
  (($# > 0)) || { resolve_served_model "$BASE_FLAG"; usage; }
  if ! is_dry_run; then
    require_command evalscope
    require_command jq
    # shellcheck source=lib/fingerprint.sh
    source "$REPO_ROOT/scripts/lib/fingerprint.sh"
    compute_inputs eval
  fi
  resolve_served_model "$BASE_FLAG"
  select_benchmarks "$@"
  if ! is_dry_run; then
    if [[ -z "$BASE_FLAG" ]] && ! step_done export; then
      die "$(repo_relative "$EXPORT_DIR") is not the merge of the current training" "run 'make export EXP=$EXP' first"
    fi
    local bench pending=0
    for bench in "${SELECTED[@]}"; do
      step_done "$(eval_step_name "$bench")" || pending=1
    done
    ((pending == 0)) || check_server
  fi
  for bench in "${SELECTED[@]}"; do run_bench "$bench"; done
}

main "$@"
