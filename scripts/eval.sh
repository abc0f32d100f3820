#!/usr/bin/env bash
# make eval-ceval / eval-cmmlu / eval-base: EvalScope against the served model.
#   scripts/eval.sh [--base] BENCH...|all
# BENCH is a benchmark of configs/$EXP/eval.yaml, or a group: `cmmlu` also runs
# every benchmark with `group: cmmlu` (cmmlu-psych). Results of one benchmark go
# to $RESULTS_DIR/<served name>/<bench>/. EvalScope's report is checked
# (scripts/py/eval_result.py: accuracy, question count, subjects; a rejected one
# leaves lab-eval-rejected.json), the checked results of this run go to SwanLab in
# one process, and then lab-eval.json marks each benchmark finished with the digest
# of its inputs (lib/fingerprint.sh): the model as served, the settings, the question set.
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
  local bench="$1" known subject
  expected_question_count
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
}

# Resuming: EvalScope re-asks only the questions without a cached prediction.
# Without --use-cache it would append duplicates; with it on a fresh dir it fails.
has_cached_predictions() { compgen -G "$WORK_DIR/predictions/*/*.jsonl" >/dev/null; }
add_resume_flag() { if has_cached_predictions; then CMD+=(--use-cache "$WORK_DIR"); fi; }

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

# A checked result waits here until its metrics reached SwanLab; only then is it
# the benchmark's completion marker (EVAL_DONE_FILE).
EVAL_PENDING_FILE=lab-eval.pending.json

# The SwanLab run of the served model: kept in its results folder and made anew when
# another build is served, so the evaluations of one model land in one run.
eval_swanlab_run_id() {
  local file="$RESULTS_DIR/$SERVED_NAME/lab-swanlab-run.json" digest="$1" id
  id="$(jq -r --arg d "$digest" 'select(.served_digest == $d) | .run_id' "$file" 2>/dev/null || true)"
  if [[ -z "$id" ]]; then
    # Letters and digits only: SwanLab rewrites other characters in its folder names.
    id="$(head -c 512 /dev/urandom | tr -dc 'a-z0-9' | head -c 21)"
    mkdir -p "$(dirname "$file")"
    jq -nc --arg d "$digest" --arg id "$id" '{served_digest: $d, run_id: $id}' | write_atomically "$file"
  fi
  printf '%s' "$id"
}

# Logs the benchmarks this run finished to SwanLab in one process, then marks each finished.
log_finished_to_swanlab() {
  ((${#FINISHED_DIRS[@]} > 0)) || return 0
  local dir results=()
  for dir in "${FINISHED_DIRS[@]}"; do results+=("$dir/$EVAL_PENDING_FILE"); done
  SWANLAB_EVAL_RUN_ID="$(eval_swanlab_run_id "${STEP_DIGEST[$SERVE_STEP]}")" build_eval_log_cmd "${results[@]}"
  run_cmd || die "logging the metrics of $SERVED_NAME to SwanLab failed" \
    "read the error above; rerunning make logs them again (the predictions are cached)"
  for dir in "${FINISHED_DIRS[@]}"; do mv -f "$dir/$EVAL_PENDING_FILE" "$dir/$EVAL_DONE_FILE"; done
}

run_bench() {
  local bench="$1" started elapsed
  read_bench "$bench"
  build_eval_cmd "$bench"
  if is_dry_run; then
    printf '# %s: %s on %s, limit %s per subject\n' "$bench" "$DATASET_NAME" "$SERVED_NAME" "${LIMIT:-none}"
    add_resume_flag
    run_cmd
    expected_question_count
    build_eval_result_cmd "$WORK_DIR/$EVAL_DONE_FILE"
    run_cmd
    DRY_RUN_RESULTS+=("$WORK_DIR/$EVAL_DONE_FILE")
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
  rm -f "$WORK_DIR/$EVAL_DONE_FILE" "$WORK_DIR/$EVAL_PENDING_FILE"
  record_inputs "$step" "$WORK_DIR"
  print_cmd | write_atomically "$WORK_DIR/lab-command.txt"
  add_resume_flag
  if [[ " ${CMD[*]} " == *" --use-cache "* ]]; then log "$bench: resuming from the cached predictions in $(display_path "$WORK_DIR")"; fi
  rm -f "$(report_file)" # EvalScope rewrites it from the cache; an old one must not pass for new
  started="$(date +%s)"
  run_cmd || die "evalscope failed on $bench" \
    "read the log above; rerunning make resumes from the predictions cached in $(display_path "$WORK_DIR") (same model and settings)"
  elapsed=$(($(date +%s) - started))
  build_eval_result_cmd "$WORK_DIR/$EVAL_PENDING_FILE" "${STEP_DIGEST[$step]}" "$elapsed"
  run_cmd || exit 1 # eval_result.py said what was wrong and what to do
  FINISHED_DIRS+=("$WORK_DIR")
}

# Fails within seconds when nothing serves the model, instead of after EvalScope's
# retries, or when our server serves another build of it (an older export).
check_server() {
  require_command curl "install curl"
  is_serving "$SERVED_NAME" || die_not_serving ""
  if [[ "$(cat "$SERVER_DIGEST_FILE" 2>/dev/null)" != "${STEP_DIGEST[$SERVE_STEP]}" ]]; then
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
  SERVE_STEP=serve
  if [[ -n "$BASE_FLAG" ]]; then SERVE_STEP=serve-base; fi
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
  FINISHED_DIRS=() DRY_RUN_RESULTS=()
  for bench in "${SELECTED[@]}"; do run_bench "$bench"; done
  if is_dry_run; then
    build_eval_log_cmd "${DRY_RUN_RESULTS[@]}"
    run_cmd
  else
    log_finished_to_swanlab
  fi
}

main "$@"
