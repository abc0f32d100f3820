#!/usr/bin/env bash
# make eval-ceval / eval-cmmlu / eval-base: EvalScope against the served model.
#   scripts/eval.sh [--base] BENCH...|all
# BENCH is a benchmark of configs/$EXP/eval.yaml, or a group: `cmmlu` also runs
# every benchmark with `group: cmmlu` (cmmlu-psych). Results of one benchmark go
# to $RESULTS_DIR/<served name>/<bench>/; lab-eval.json there is written last,
# after the report was checked, and marks it finished (it is not run again).
# An interrupted run resumes from its cached predictions (--use-cache).
set -euo pipefail
export STEP_NAME=eval
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"

BENCH_KEYS=(dataset group subsets limit few_shot local_path max_tokens temperature)
DONE_FILE=lab-eval.json

usage() { die "usage: scripts/eval.sh [--base] BENCH...|all" "BENCH is one of: ${BENCHMARKS[*]:-see configs/\$EXP/eval.yaml}"; }

# bench_setting BENCH KEY: the benchmark's own value, else the defaults section's.
bench_setting() {
  local value
  value="$(yaml_section_value "$EVAL_CONFIG" "$1" "$2")"
  if [[ -z "$value" ]]; then value="$(yaml_section_value "$EVAL_CONFIG" defaults "$2")"; fi
  printf '%s' "$value"
}

load_eval_config() {
  EVAL_CONFIG="$EXP_DIR/eval.yaml"
  [[ -f "$EVAL_CONFIG" ]] || die "experiment '$EXP' has no evaluation config (configs/$EXP/eval.yaml)" \
    "create it; configs/gpt-oss-20b-sft-v1/eval.yaml documents the format"
  mapfile -t BENCHMARKS < <(yaml_list "$(yaml_value "$EVAL_CONFIG" benchmarks)")
  ((${#BENCHMARKS[@]} > 0)) || die "configs/$EXP/eval.yaml lists no benchmarks" "add a line: benchmarks: [ceval, cmmlu]"
}

# select_benchmarks ARG...: fills SELECTED from names, groups or `all`.
select_benchmarks() {
  SELECTED=()
  local arg bench found
  for arg in "$@"; do
    found=0
    for bench in "${BENCHMARKS[@]}"; do
      if [[ "$arg" == all || "$arg" == "$bench" || "$arg" == "$(bench_setting "$bench" group)" ]]; then
        [[ " ${SELECTED[*]} " == *" $bench "* ]] || SELECTED+=("$bench")
        found=1
      fi
    done
    ((found)) || die "unknown benchmark '$arg' (configs/$EXP/eval.yaml has: ${BENCHMARKS[*]})" \
      "use one of them or all, or add a section for '$arg' to configs/$EXP/eval.yaml"
  done
}

# read_bench BENCH: checks the benchmark's settings and sets DATASET_NAME,
# SUBSETS (empty = all), LIMIT, FEW_SHOT, LOCAL_PATH (absolute, or empty),
# MAX_TOKENS, TEMPERATURE.
read_bench() {
  local bench="$1" key where="configs/$EXP/eval.yaml, section $1"
  while read -r key; do
    [[ " ${BENCH_KEYS[*]} " == *" $key "* ]] || die "$where: unknown key '$key'" "use: ${BENCH_KEYS[*]}"
  done < <(yaml_section_keys "$EVAL_CONFIG" "$bench")
  DATASET_NAME="$(bench_setting "$bench" dataset)"
  [[ -n "$DATASET_NAME" ]] || die "$where: no dataset" "add 'dataset: ceval' (an EvalScope benchmark name)"
  local subsets
  subsets="$(bench_setting "$bench" subsets)"
  SUBSETS=()
  if [[ -n "$subsets" && "$subsets" != all ]]; then mapfile -t SUBSETS < <(yaml_list "$subsets"); fi
  LIMIT="$(bench_setting "$bench" limit)"
  FEW_SHOT="$(bench_setting "$bench" few_shot)"
  MAX_TOKENS="$(bench_setting "$bench" max_tokens)"
  TEMPERATURE="$(bench_setting "$bench" temperature)"
  [[ -z "$LIMIT" || "$LIMIT" =~ ^[1-9][0-9]*$ ]] || die "$where: limit '$LIMIT' is not a positive number" "questions per subject, or empty for all"
  [[ -z "$FEW_SHOT" || "$FEW_SHOT" =~ ^[0-9]+$ ]] || die "$where: few_shot '$FEW_SHOT' is not a number" "e.g. few_shot: 5"
  [[ "$MAX_TOKENS" =~ ^[1-9][0-9]*$ ]] || die "$where: max_tokens '$MAX_TOKENS' is not a positive number" "set max_tokens in defaults or the section"
  [[ "$TEMPERATURE" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$where: temperature '$TEMPERATURE' is not a number" "use temperature: 0"
  LOCAL_PATH="$(bench_setting "$bench" local_path)"
  if [[ -n "$LOCAL_PATH" ]]; then
    LOCAL_PATH="$(abs_path "$LOCAL_PATH")"
    # EvalScope takes a path that does not exist for a hub id and fails late, offline.
    [[ -d "$LOCAL_PATH" ]] || die "$where: local dataset $(display_path "$LOCAL_PATH") not found" \
      "restore it (git checkout -- $(display_path "$LOCAL_PATH")) or fix local_path"
    # `all` means every subject of the local copy: EvalScope would ask for all of its own.
    if ((${#SUBSETS[@]} == 0)); then mapfile -t SUBSETS < <(local_subjects); fi
    ((${#SUBSETS[@]} > 0)) || die "$where: no subjects found in $(display_path "$LOCAL_PATH")" \
      "it needs a README.md with a configs: block (C-Eval) or a test.jsonl with a category column (CMMLU)"
  fi
}

# The subjects a local copy holds: C-Eval style (one config per subject in the
# README front matter) or CMMLU style (one test file, subject in `category`).
local_subjects() {
  if [[ -f "$LOCAL_PATH/test.jsonl" ]]; then
    jq -r '.category' "$LOCAL_PATH/test.jsonl" | sort -u
  else
    sed -n 's/^- config_name:[[:space:]]*//p' "$LOCAL_PATH/README.md" 2>/dev/null | grep -vx default || true
  fi
}

# Questions of one subject in a local copy (empty when the layout is unknown).
local_question_count() {
  if [[ -f "$LOCAL_PATH/test.jsonl" ]]; then
    jq -c --arg s "$1" 'select(.category == $s)' "$LOCAL_PATH/test.jsonl" | wc -l
  elif [[ -f "$LOCAL_PATH/$1/val.jsonl" ]]; then
    grep -c . "$LOCAL_PATH/$1/val.jsonl"
  fi
}

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

build_eval_cmd() {
  local bench="$1"
  WORK_DIR="$RESULTS_DIR/$SERVED_NAME/$bench"
  DATASET_ARGS="$(jq -nc --arg name "$DATASET_NAME" --arg local_path "$LOCAL_PATH" --arg few_shot "$FEW_SHOT" \
    --args '{($name): ({}
      + (if $ARGS.positional == [] then {} else {subset_list: $ARGS.positional} end)
      + (if $few_shot == "" then {} else {few_shot_num: ($few_shot | tonumber)} end)
      + (if $local_path == "" then {} else {local_path: $local_path} end))}' "${SUBSETS[@]}")"
  GENERATION_CONFIG="$(jq -nc --argjson max_tokens "$MAX_TOKENS" --argjson temperature "$TEMPERATURE" \
    '{max_tokens: $max_tokens, temperature: $temperature}')"
  reset_cmd
  add_common_tool_env
  # The key travels in the environment: EvalScope reads EVALSCOPE_API_KEY when --api-key is empty.
  local api_key=EMPTY
  if [[ -n "${SERVE_API_KEY:-}" ]]; then api_key=""; CMD_SECRET_ENV+=(EVALSCOPE_API_KEY=SERVE_API_KEY); fi
  CMD=(evalscope eval --eval-type openai_api --api-url "$(api_base)" --api-key "$api_key"
    --model "$SERVED_NAME" --datasets "$DATASET_NAME" --dataset-args "$DATASET_ARGS")
  if [[ -n "$LIMIT" ]]; then CMD+=(--limit "$LIMIT"); fi
  CMD+=(--generation-config "$GENERATION_CONFIG" --work-dir "$WORK_DIR" --no-timestamp)
}

# Resuming: EvalScope re-asks only the questions without a cached prediction.
# Without --use-cache it would append duplicates; with it on a fresh dir it fails.
has_cached_predictions() { compgen -G "$WORK_DIR/predictions/*/*.jsonl" >/dev/null; }
add_resume_flag() { if has_cached_predictions; then CMD+=(--use-cache "$WORK_DIR"); fi; }

report_file() { printf '%s/reports/%s/%s.json' "$WORK_DIR" "$SERVED_NAME" "$DATASET_NAME"; }

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

# What decides the results (not where the server listens): resuming or reusing
# a result made with other settings would mix two configurations.
eval_settings() {
  printf 'model=%s\ndataset=%s\ndataset_args=%s\nlimit=%s\ngeneration_config=%s\n' "$SERVED_NAME" "$DATASET_NAME" \
    "${DATASET_ARGS//"$REPO_ROOT"\//}" "$LIMIT" "$GENERATION_CONFIG"
}

check_resumable() {
  local recorded="$WORK_DIR/lab-settings.txt"
  [[ -f "$recorded" ]] || return 0
  diff -q "$recorded" <(eval_settings) >/dev/null && return 0
  [[ -f "$WORK_DIR/$DONE_FILE" ]] || has_cached_predictions || return 0
  die "$(display_path "$WORK_DIR") holds results made with other settings (see lab-settings.txt there)" \
    "move that directory away to evaluate with the current configs/$EXP/eval.yaml"
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
  if [[ -f "$WORK_DIR/$DONE_FILE" ]]; then
    check_resumable
    log "$bench on $SERVED_NAME already finished: $(jq -r '"accuracy \(.score) on \(.num) questions"' "$WORK_DIR/$DONE_FILE")"
    return 0
  fi
  check_subjects "$bench"
  check_resumable
  mkdir -p "$WORK_DIR"
  eval_settings | write_atomically "$WORK_DIR/lab-settings.txt"
  print_cmd | write_atomically "$WORK_DIR/lab-command.txt"
  add_resume_flag
  if [[ " ${CMD[*]} " == *" --use-cache "* ]]; then log "$bench: resuming from the cached predictions in $(display_path "$WORK_DIR")"; fi
  rm -f "$(report_file)" # EvalScope rewrites it from the cache; an old one must not pass for new
  started="$(date +%s)"
  run_cmd || die "evalscope failed on $bench" "read the log above; rerunning make resumes from the cached predictions"
  elapsed=$(($(date +%s) - started))
  check_report "$bench"
  log_to_swanlab "$bench"
  jq -c --arg bench "$bench" --arg model "$SERVED_NAME" --argjson seconds "$elapsed" \
    '{benchmark: $bench, dataset: .dataset_name, model: $model, score: .metrics[0].score, num: .metrics[0].num,
      subsets: [.metrics[0].categories[].subsets[] | {name, score, num}], eval_seconds: $seconds}' "$(report_file)" |
    write_atomically "$WORK_DIR/$DONE_FILE"
  log "$bench on $SERVED_NAME: $(jq -r '"accuracy \(.score) on \(.num) questions in \(.eval_seconds)s"' "$WORK_DIR/$DONE_FILE")"
}

# Fails within seconds when nothing serves the model, instead of after EvalScope's retries.
check_server() {
  require_command curl "install curl"
  is_serving "$SERVED_NAME" || die_not_serving ""
}

main() {
  BASE_FLAG=""
  if [[ "${1:-}" == --base ]]; then BASE_FLAG=--base; shift; fi
  load_env
  begin_step
  # shellcheck source=lib/server.sh
  source "$REPO_ROOT/scripts/lib/server.sh"
  resolve_served_model "$BASE_FLAG"
  load_eval_config
  (($# > 0)) || usage
  select_benchmarks "$@"
  if ! is_dry_run; then
    require_command evalscope
    require_command jq
    local bench pending=0
    for bench in "${SELECTED[@]}"; do
      [[ -f "$RESULTS_DIR/$SERVED_NAME/$bench/$DONE_FILE" ]] || pending=1
    done
    ((pending == 0)) || check_server
  fi
  for bench in "${SELECTED[@]}"; do run_bench "$bench"; done
}

main "$@"
