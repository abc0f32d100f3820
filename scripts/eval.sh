#!/usr/bin/env bash
# make eval-ceval / eval-cmmlu / eval-base: EvalScope against the served model.
#   scripts/eval.sh [--base [--serve]] BENCH...|all|--group GROUP
# BENCH is a benchmark of configs/$EXP/eval.yaml, or a group: `cmmlu` also runs
# every benchmark with `group: cmmlu` (cmmlu-psych). `--group GROUP` (make eval-GROUP)
# runs the group's benchmarks, none when eval.yaml has none in it. Results of one benchmark go
# to $RESULTS_DIR/<served name>/<bench>/. EvalScope's report is checked
# (scripts/py/eval_result.py: accuracy, question count, subjects; a rejected one
# leaves lab-eval-rejected.json), the checked results of this run go to SwanLab in
# one process, and then lab-eval.json marks each benchmark finished with the digest
# of its inputs (lib/fingerprint.sh): the model as served, the settings, the question set.
# Same inputs: finished is kept, interrupted resumes from its cached predictions
# (--use-cache). Other inputs (or no record): the folder is moved aside, kept, and
# the benchmark runs fresh.
# The base model's evaluations are shared between experiments (lib/store.sh): one that the
# store holds, complete, for the same inputs is linked, not evaluated again; the others are
# evaluated into their store entry, under its lock. --serve (make eval-base): serves the base
# model first, and stops it after, only when something is left to evaluate.
set -euo pipefail
export STEP_NAME=eval
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/fingerprint.sh
source "$REPO_ROOT/scripts/lib/fingerprint.sh"

usage() { die "usage: scripts/eval.sh [--base [--serve]] BENCH...|all|--group GROUP" "BENCH is one of: ${BENCHMARKS[*]:-see configs/\$EXP/eval.yaml}"; }

# known_subjects DATASET: the subjects EvalScope knows for a hub dataset (empty if it cannot tell).
known_subjects() {
  python "$REPO_ROOT/scripts/py/eval_subjects.py" "$1" 2>/dev/null || true
}

# check_subjects SETTINGS: stops before asking the server anything if a configured subject does
# not exist (EvalScope drops an unknown CMMLU subject silently).
check_subjects() {
  local -n check_subjects_settings="$1"
  local bench="${check_subjects_settings[name]}" dataset="${check_subjects_settings[dataset]}" known subject subsets
  local -A counts=()
  bench_list subsets "$1" subsets
  [[ -n "${check_subjects_settings[local_path]}" ]] || ((${#subsets[@]} > 0)) || return 0
  if [[ -n "${check_subjects_settings[local_path]}" ]]; then
    local_counts counts "${check_subjects_settings[local_path]}"
    known="$(printf '%s\n' "${!counts[@]}")"
  else
    known="$(known_subjects "$dataset")"
  fi
  if [[ -z "${known//[[:space:]]/}" ]]; then
    warn "cannot list the subjects of $dataset; skipping the subject check"
    return 0
  fi
  for subject in "${subsets[@]}"; do
    grep -qxF "$subject" <<<"$known" || die "$bench: unknown subject '$subject' in configs/$CONFIG_EXP/eval.yaml" \
      "use subjects $dataset has: $(sort <<<"$known" | paste -sd' ' - | cut -c1-300)"
  done
}

# build_heldout_rows SETTINGS: the rows of a source: heldout benchmark, built from the
# training's held-out split.
build_heldout_rows() {
  local -n build_heldout_rows_settings="$1"
  [[ -n "${build_heldout_rows_settings[heldout_rows]}" ]] || return 0
  local bench="${build_heldout_rows_settings[name]}" cmd
  [[ -f "$RUN_DIR/val_dataset.jsonl" ]] || die "$bench: the training's held-out split $(display_path "$RUN_DIR/val_dataset.jsonl") is not there" \
    "run 'make train EXP=$EXP' first (it needs split_dataset_ratio > 0 in configs/$CONFIG_EXP/sft.yaml)"
  build_heldout_cmd cmd "$1"
  run_cmd "${cmd[@]}" || die "$bench: could not build its rows from the held-out split (see above)" "check $(display_path "$RUN_DIR/val_dataset.jsonl")"
}

# fetch_set SETTINGS: a benchmark fetched from its public source (its suite entry's fetch) whose
# set is not there yet: the fetch script writes it into local_path first.
fetch_set() {
  local -n fetch_set_settings="$1"
  needs_fetch "$1" || return 0
  local bench="${fetch_set_settings[name]}" cmd fetch
  bench_list fetch "$1" fetch
  log "$bench: fetching its questions into $(display_path "${fetch_set_settings[local_path]}") (${fetch[0]})"
  build_fetch_cmd cmd "$1"
  run_cmd "${cmd[@]}" || die "$bench: could not fetch its questions (see above)" "rerun make when the source is reachable (make preflight checks it)"
}

# measure_contamination SETTINGS: an external test set (contamination_limit): its overlap with
# the training set, measured before the first question and shown beside its scores.
measure_contamination() {
  local -n measure_contamination_settings="$1"
  [[ -n "${measure_contamination_settings[contamination_limit]}" ]] || return 0
  mkdir -p "${measure_contamination_settings[work_dir]}"
  local cmd
  build_contamination_cmd cmd "$1"
  run_cmd "${cmd[@]}" || die "${measure_contamination_settings[name]}: could not measure its overlap with the training set (see above)" \
    "check $(display_path "${measure_contamination_settings[local_path]}")"
}

SELECTED=()            # the benchmarks to evaluate (select_benchmarks, select_group: main)
declare -A SESSION=() # the server's session (read_session_limit), read once
# check_session_budget SETTINGS: stops before the first question when the benchmark's longest
# prompt plus max_tokens would not fit the server's session (measured with the served model's
# tokenizer, on a local question set; a hub set is only known to EvalScope).
check_session_budget() {
  local -n check_session_budget_settings="$1"
  local bench="${check_session_budget_settings[name]}" local_path="${check_session_budget_settings[local_path]}"
  local max_tokens="${check_session_budget_settings[max_tokens]}"
  [[ -n "$local_path" && -d "$local_path" && -f "$(served_model "$SIDE")/tokenizer.json" ]] || return 0
  ((${#SESSION[@]} > 0)) || read_session_limit SESSION "$SIDE"
  [[ "${SESSION[limit]}" =~ ^[0-9]+$ ]] || return 0
  local cmd budget
  cmd=(python "$REPO_ROOT/scripts/py/prompt_budget.py" --tokenizer "$(served_model "$SIDE")" --session-len "${SESSION[limit]}")
  if [[ -n "${SESSION[system]}" ]]; then cmd+=(--system "${SESSION[system]}"); fi
  cmd+=(--set "$bench" "$local_path" "${check_session_budget_settings[few_shot]:-0}" "$max_tokens")
  budget="$(run_cmd "${cmd[@]}")" || exit 1 # prompt_budget.py named both numbers and the fix
  log "$bench: longest prompt about $(cut -f2 <<<"$budget") tokens + $max_tokens to generate, within the session length ${SESSION[limit]}"
}

# skip_unjudged SETTINGS STEP: a judged benchmark without a judge in the env file: recorded as
# skipped with these inputs (the judge is one of them), so it runs once a judge is configured.
skip_unjudged() {
  local -n skip_unjudged_settings="$1"
  local step="$2" bench="${skip_unjudged_settings[name]}" work_dir="${skip_unjudged_settings[work_dir]}"
  log "$bench on $RESULT: no judge configured (JUDGE_MODEL in $(repo_relative "$ENV_FILE")); skipped"
  mkdir -p "$work_dir"
  record_inputs "$step" "$work_dir"
  jq -nc --arg digest "${STEP_DIGEST[$step]}" --arg bench "$bench" --arg model "$NAME" \
    '{inputs_digest: $digest, benchmark: $bench, model: $model, score: null, skipped: "no judge configured"}' |
    write_atomically "$work_dir/$EVAL_DONE_FILE"
}

# Resuming: EvalScope re-asks only the questions without a cached prediction.
# Without --use-cache it would append duplicates; with it on a fresh dir it fails.
# --rerun-review: EvalScope refuses a cache whose identity differs in anything, the
# server's address and absolute paths included (another port, a moved checkout); the
# fingerprints already proved these predictions come from the same model and settings,
# so they are reused and only the scoring is redone. A perf run has no cache.
# add_resume_flag CMD SETTINGS: adds them to command CMD, the evaluation of SETTINGS.
has_cached_predictions() { compgen -G "$1/predictions/*/*.jsonl" >/dev/null; }
add_resume_flag() {
  local -n add_resume_flag_out="$1" add_resume_flag_settings="$2"
  local work_dir="${add_resume_flag_settings[work_dir]}"
  if [[ "${add_resume_flag_settings[kind]}" != perf ]] && has_cached_predictions "$work_dir"; then
    add_resume_flag_out+=(--use-cache "$work_dir" --rerun-review)
  fi
}

# set_aside_other_results BENCH DIR: BENCH's results folder DIR, when made from other inputs (or
# of unknown origin): kept aside, never resumed (EvalScope would mix models or settings, or
# refuse the cache).
set_aside_other_results() {
  local bench="$1" dir="$2" step moved
  step="$(eval_step_name "$bench" "$SIDE" "$MODE")"
  local status="${STEP_STATUS[$step]}"
  [[ "$status" == changed || "$status" == unknown ]] || return 0
  [[ -d "$dir" ]] || return 0
  move_aside "$dir" moved
  if [[ "$status" == changed && -f "$moved/lab-inputs.json" ]]; then
    log "$bench on $RESULT: the results in $(display_path "$dir") were made from other inputs:"
    describe_input_changes "$moved/lab-inputs.json" "$(inputs_file "$step")" >&2
  else
    log "$bench on $RESULT: $(display_path "$dir") has no record of what it was made from"
  fi
  log "moved it to $(display_path "$moved") (kept); evaluating from scratch"
}

# set_aside_entry BENCH DIR WHY: the store entry DIR links to (or would) is kept aside as
# DIR.replaced-<time>, out of the store, never reused.
set_aside_entry() {
  local entry dir="$2" moved
  entry="$(store_entry "${STEP_DIGEST[$(eval_step_name "$1" "$SIDE" "$MODE")]}")"
  rm -f "$dir"
  mkdir -p "$(dirname "$dir")"
  mv "$entry" "$dir"
  move_aside "$dir" moved
  log "$1 on $RESULT: $3"
  log "moved it to $(display_path "$moved") (kept); evaluating from scratch"
}

# prepare_store_entry BENCH DIR STEP: DIR, BENCH's results folder, links to the store entry this
# make evaluates BENCH into (its lock is held: use_store). A link to the entry of other inputs is
# replaced (that entry stays: others may link it); results of other inputs or of unknown origin
# are kept aside; an interrupted evaluation is resumed only by the experiment that started it,
# under the same served name (its cached predictions are filed under that name), and is otherwise
# kept aside: an unfinished evaluation is never reused.
prepare_store_entry() {
  local bench="$1" dir="$2" step="$3" digest="${STEP_DIGEST[$3]}" linked producer
  linked="$(linked_entry "$dir")"
  if [[ -L "$dir" && "$linked" != "$digest" ]]; then
    if [[ -f "$dir/lab-inputs.json" ]]; then
      log "$bench on $RESULT: $(display_path "$dir") linked the evaluation of other inputs:"
      describe_input_changes "$dir/lab-inputs.json" "$(inputs_file "$step")" >&2
    fi
    rm -f "$dir"
  elif [[ ! -L "$dir" ]]; then
    set_aside_other_results "$bench" "$dir"
  fi
  case "${STEP_STORE[$step]}" in
    unknown) set_aside_entry "$bench" "$dir" "$(display_path "$dir") has no record of what it was made from" ;;
    changed) set_aside_entry "$bench" "$dir" "its store entry $(display_path "$(store_entry "$digest")") holds results of other inputs" ;;
    partial)
      if ! claimed_by_us "$digest" "$NAME"; then
        producer="$(store_producer "$digest")"
        set_aside_entry "$bench" "$dir" "its store entry $(display_path "$(store_entry "$digest")") holds an unfinished evaluation by ${producer:-an unknown run}: never reused"
      fi
      ;;
  esac
  claim_entry "$dir" "$digest" "$NAME"
}

# use_store: the base model's evaluations of the selected benchmarks that the store holds,
# complete, are linked; the entries of the others are locked for this make (one another make
# evaluates now is waited for, then linked). Sets PENDING to how many are left.
use_store() {
  local wanted=()
  for_each_selected_step store_or_want
  ((${#wanted[@]} > 0)) || return 0
  lock_entries "${wanted[@]}"
  for_each_selected_step link_if_finished_meanwhile
}
store_or_want() {
  if [[ "${STEP_STORE[$1]}" == "done" ]]; then link_stored "$1" "$RESULTS_DIR/$RESULT/$2" "$2 on $RESULT"; else wanted+=("${STEP_DIGEST[$1]}"); fi
}
link_if_finished_meanwhile() {
  if store_entry_complete "${STEP_DIGEST[$1]}"; then link_stored "$1" "$RESULTS_DIR/$RESULT/$2" "$2 on $RESULT"; fi
}

# for_each_selected_step FUNCTION: FUNCTION STEP BENCH for each selected benchmark in each
# answer mode that is not done yet.
for_each_selected_step() {
  local bench step
  for MODE in "${MODES[@]}"; do
    RESULT="$(result_name "$SIDE" "$MODE")"
    for bench in "${SELECTED[@]}"; do
      step="$(eval_step_name "$bench" "$SIDE" "$MODE")"
      step_done "$step" || "$1" "$step" "$bench"
    done
  done
}
count_pending() { PENDING=$((PENDING + 1)); }

# serve_base_model: make eval-base's server, started here when something is left to evaluate
# (one server at a time: this checkout's other one is stopped first). Neither the server nor
# the scripts inherit the store locks.
serve_base_model() {
  without_store_locks "$REPO_ROOT/scripts/stop.sh"
  without_store_locks "$REPO_ROOT/scripts/deploy.sh" --base
  without_store_locks "$REPO_ROOT/scripts/health.sh" --base
}

# A checked result waits here until its metrics reached SwanLab; only then is it
# the benchmark's completion marker (EVAL_DONE_FILE).
EVAL_PENDING_FILE=lab-eval.pending.json

# The SwanLab run of the served model: kept in its results folder and made anew when
# another build is served, so the evaluations of one model land in one run.
eval_swanlab_run_id() {
  local file digest="$1" id
  file="$RESULTS_DIR/$RESULT/lab-swanlab-run.json"
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
  local cmd
  SWANLAB_EVAL_RUN_ID="$(eval_swanlab_run_id "${STEP_DIGEST[$SERVE_STEP]}")" build_eval_log_cmd cmd "$RESULT" "${results[@]}"
  run_cmd "${cmd[@]}" || die "logging the metrics of $NAME to SwanLab failed" \
    "read the error above; rerunning make logs them again (the predictions are cached)"
  for dir in "${FINISHED_DIRS[@]}"; do mv -f "$dir/$EVAL_PENDING_FILE" "$dir/$EVAL_DONE_FILE"; done
}

# EVALSCOPE_WARM=1 (env/smoke.env): each evaluation is forked from one warm launcher
# (scripts/py/evalscope_warm.py) instead of a fresh Python that imports EvalScope, torch and
# datasets again: on a CPU run that start-up is most of a small evaluation. Same launcher
# code, argv, environment and exit status; the command shown and recorded is the same.
WARM_PID="" WARM_DIR="" exit_status=0
# start_warm_launcher PYTHON: the launcher, started once, with that Python.
start_warm_launcher() {
  [[ -z "$WARM_PID" ]] || return 0
  WARM_DIR="$(mktemp -d "${TMPDIR:-/tmp}/lab-warm.XXXXXX")"
  mkfifo -m 600 "$WARM_DIR/requests" "$WARM_DIR/answer"
  "$1" "$REPO_ROOT/scripts/py/evalscope_warm.py" "$WARM_DIR/requests" </dev/null &
  WARM_PID=$!
  until [[ -e "$WARM_DIR/requests.ready" ]]; do
    kill -0 "$WARM_PID" 2>/dev/null || { WARM_PID=""; die "the warm EvalScope launcher did not start" \
      "read the error above; EVALSCOPE_WARM=0 runs each evaluation in a fresh process"; }
    sleep 0.2
  done
  trap 'exit_status=$?; stop_warm_launcher; record_event end "exit $exit_status"' EXIT
}
stop_warm_launcher() {
  [[ -n "$WARM_PID" ]] || return 0
  kill "$WARM_PID" 2>/dev/null || true
  wait "$WARM_PID" 2>/dev/null || true
  rm -rf "$WARM_DIR"
  WARM_PID=""
}

# run_eval_cmd WORD...: the command, through the warm launcher when it is on and the command
# is our launcher.
run_eval_cmd() {
  local n words=("$@")
  n="$(cmd_argv_start "$@")"
  local argv=("${words[@]:n}")
  if [[ "${EVALSCOPE_WARM:-0}" != 1 || "${argv[1]:-}" != */scripts/py/evalscope_lab.py ]] || is_dry_run; then
    run_cmd "$@"
    return
  fi
  start_warm_launcher "${argv[0]}"
  local shown entries=() answer="" fd word value
  shown="$(print_cmd "$@")"
  printf '%s\n' "$shown" | sed 's/^/+ /' >&2
  record_event command "$shown"
  for word in "${words[@]:0:n}"; do
    env_word_value value "$word"
    entries+=("${word%%=*}=$value")
  done
  # Fields, NUL-terminated, through the FIFO (printf is a builtin: no key in a process's argv).
  printf '%s\0' "$WARM_DIR/answer" "$PWD" "${#entries[@]}" "${entries[@]}" "${argv[@]:2}" .end 1<>"$WARM_DIR/requests"
  exec {fd}<>"$WARM_DIR/answer"
  until read -r -t 2 -u "$fd" answer; do
    kill -0 "$WARM_PID" 2>/dev/null || { exec {fd}<&-; WARM_PID=""; die "the warm EvalScope launcher exited" \
      "read the error above; EVALSCOPE_WARM=0 runs each evaluation in a fresh process"; }
  done
  exec {fd}<&-
  return "$answer"
}

run_bench() {
  local bench="$1" started elapsed cmd step_cmd result_cmd work_dir
  local -A settings=()
  read_bench settings "$bench" "$MODE"
  build_eval_cmd cmd settings "$SIDE"
  work_dir="${settings[work_dir]}"
  if is_dry_run; then
    describe_bench settings "$SIDE"
    if judge_unconfigured settings; then printf '# (skipped: no judge configured, JUDGE_MODEL)\n'; return 0; fi
    if [[ -n "${settings[heldout_rows]}" ]]; then
      build_heldout_cmd step_cmd settings
      run_cmd "${step_cmd[@]}"
    fi
    if needs_fetch settings; then
      build_fetch_cmd step_cmd settings
      run_cmd "${step_cmd[@]}"
    fi
    if [[ -n "${settings[contamination_limit]}" ]]; then
      build_contamination_cmd step_cmd settings
      run_cmd "${step_cmd[@]}"
    fi
    add_resume_flag cmd settings
    run_cmd "${cmd[@]}"
    build_eval_result_cmd result_cmd settings "$SIDE" "$work_dir/$EVAL_DONE_FILE"
    run_cmd "${result_cmd[@]}"
    DRY_RUN_RESULTS+=("$work_dir/$EVAL_DONE_FILE")
    return 0
  fi
  local step
  step="$(eval_step_name "$bench" "$SIDE" "$MODE")"
  if step_done "$step"; then
    log "$bench on $RESULT already finished: $(jq -r 'if .skipped then "skipped (\(.skipped))"
      elif .kind == "perf" then "serving speed at concurrency \([.levels[].parallel] | map(tostring) | join(", "))"
      elif .score == null then "no score (no valid verdict of the judge)"
      else "\(.metric) \(.score) on \(.num) questions" end' "$work_dir/$EVAL_DONE_FILE")"
    return 0
  fi
  if is_shared_step "$step"; then prepare_store_entry "$bench" "$work_dir" "$step"; else set_aside_other_results "$bench" "$work_dir"; fi
  rm -f "$work_dir/$EVAL_DONE_FILE" "$work_dir/$EVAL_PENDING_FILE"
  if judge_unconfigured settings; then skip_unjudged settings "$step"; return 0; fi
  build_heldout_rows settings
  fetch_set settings
  [[ "${settings[kind]}" == perf ]] || check_subjects settings
  measure_contamination settings
  check_session_budget settings
  record_inputs "$step" "$work_dir"
  print_cmd "${cmd[@]}" | write_atomically "$work_dir/lab-command.txt"
  add_resume_flag cmd settings
  if [[ " ${cmd[*]} " == *" --use-cache "* ]]; then log "$bench: resuming from the cached predictions in $(display_path "$work_dir")"; fi
  rm -rf "$(report_file settings "$SIDE")" # EvalScope rewrites it (from the cache); an old one must not pass for new
  started="$(date +%s)"
  run_eval_cmd "${cmd[@]}" || die "evalscope failed on $bench" \
    "read the log above; rerunning make resumes from the predictions cached in $(display_path "$work_dir") (same model and settings)"
  elapsed=$(($(date +%s) - started))
  build_eval_result_cmd result_cmd settings "$SIDE" "$work_dir/$EVAL_PENDING_FILE" "${STEP_DIGEST[$step]}" "$elapsed"
  run_cmd "${result_cmd[@]}" || exit 1 # eval_result.py said what was wrong and what to do
  FINISHED_DIRS+=("$work_dir")
}

# Fails within seconds when nothing serves the model, instead of after EvalScope's
# retries, or when our server serves another build of it (an older export).
check_server() {
  require_command curl "install curl"
  is_serving "$SIDE" || die_not_serving "$SIDE" ""
  if [[ "$(cat "$(server_file digest)" 2>/dev/null)" != "${STEP_DIGEST[$SERVE_STEP]}" ]]; then
    die "the server at $(api_base "$SIDE") serves another build of $NAME than the current $([[ -n "$SIDE" ]] && echo 'base model and serving config' || echo 'export and serving config')" \
      "restart it: make stop $(deploy_target "$SIDE") EXP=$EXP"
  fi
}

main() {
  SIDE="" SERVE=0 # SIDE: the model evaluated (lib/server.sh), MODE its answer mode ("": eval.yaml's)
  if [[ "${1:-}" == --base ]]; then SIDE=--base; shift; fi
  if [[ -n "$SIDE" && "${1:-}" == --serve ]]; then SERVE=1; shift; fi
  load_env
  begin_step
  load_eval_config
  (($# > 0)) || usage
  if ! is_dry_run; then
    require_command evalscope
    require_command jq
  fi
  load_sft_config
  NAME="$(served_name "$SIDE")" MODE="" RESULT="$(result_name "$SIDE" "")"
  mapfile -t MODES < <(evaluation_modes "$SIDE")
  SERVE_STEP=serve
  if [[ -n "$SIDE" ]]; then SERVE_STEP=serve-base; fi
  if [[ "$1" == --group ]]; then
    (($# == 2)) || usage
    select_group SELECTED "$2"
    if ((${#SELECTED[@]} == 0)); then log "configs/$CONFIG_EXP/eval.yaml has no benchmark in group $2: nothing to do"; return 0; fi
  else
    select_benchmarks SELECTED "$@"
  fi
  if ! is_dry_run; then
    # The selected benchmarks' evaluations alone (and what they build on).
    if ((${#SELECTED[@]} < ${#BENCHMARKS[@]})); then compute_inputs eval --only "${SELECTED[@]}"; else compute_inputs eval; fi
    if [[ -z "$SIDE" ]] && ! step_done export; then
      die "$(repo_relative "$EXPORT_DIR") is not the merge of the current training" "run 'make export EXP=$EXP' first"
    fi
    if [[ -n "$SIDE" ]]; then use_store; fi
    PENDING=0
    for_each_selected_step count_pending
    if ((PENDING > 0 && SERVE)); then serve_base_model; fi
    ((PENDING == 0)) || check_server
  elif ((SERVE)); then
    serve_base_model
  fi
  local mode
  for mode in "${MODES[@]}"; do evaluate_in_mode "$mode"; done
  if ((SERVE)) && { is_dry_run || ((PENDING > 0)); }; then without_store_locks "$REPO_ROOT/scripts/stop.sh"; fi
}

# evaluate_in_mode MODE: the selected benchmarks in that answer mode ("": eval.yaml's),
# into their own results folders (result_name), logged to SwanLab in one process.
evaluate_in_mode() {
  MODE="$1" RESULT="$(result_name "$SIDE" "$1")"
  if [[ -n "$MODE" ]]; then log "$NAME in answer mode $MODE as well (base_extra_modes), into $(display_path "$RESULTS_DIR/$RESULT")"; fi
  FINISHED_DIRS=() DRY_RUN_RESULTS=()
  for bench in "${SELECTED[@]}"; do run_bench "$bench"; done
  if is_dry_run; then
    local cmd
    build_eval_log_cmd cmd "$RESULT" "${DRY_RUN_RESULTS[@]}"
    run_cmd "${cmd[@]}"
  else
    log_finished_to_swanlab
  fi
}

main "$@"
