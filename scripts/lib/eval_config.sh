# shellcheck shell=bash
# shellcheck disable=SC2034 # globals set here are read by the scripts that source this file
# The evaluation config (configs/$EXP/eval.yaml) and the EvalScope command of one
# benchmark, shared by scripts/eval.sh and the fingerprints (lib/fingerprint.sh).
# Source after env.sh, load_env and server.sh's resolve_served_model.

BENCH_KEYS=(dataset group subsets limit few_shot local_path max_tokens temperature eval_batch_size)
# Written last into a benchmark's results folder (scripts/py/eval_result.py), after
# EvalScope's report was checked and the metrics were logged to SwanLab.
EVAL_DONE_FILE=lab-eval.json
EVAL_REJECTED_FILE=lab-eval-rejected.json # what eval_result.py found wrong, instead
# bench_setting BENCH KEY: the benchmark's own value, else the defaults section's.
bench_setting() {
  printf '%s' "${EVAL_SETTINGS[$1.$2]:-${EVAL_SETTINGS[defaults.$2]:-}}"
}

load_eval_config() {
  EVAL_CONFIG="$EXP_DIR/eval.yaml"
  [[ -f "$EVAL_CONFIG" ]] || die "experiment '$EXP' has no evaluation config (configs/$EXP/eval.yaml)" \
    "create it; configs/gpt-oss-20b-sft-v1/eval.yaml documents the format"
  declare -gA EVAL_SETTINGS
  load_config "$EVAL_CONFIG" EVAL_SETTINGS
  mapfile -t BENCHMARKS < <(config_items "${EVAL_SETTINGS[benchmarks]:-}")
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

# read_bench BENCH: checks the benchmark's settings and sets BENCH, DATASET_NAME,
# SUBSETS (empty = all), LIMIT, FEW_SHOT, LOCAL_PATH (absolute, or empty),
# MAX_TOKENS, TEMPERATURE, EVAL_BATCH_SIZE (per serving GPU, or empty).
read_bench() {
  local bench="$1" key where="configs/$EXP/eval.yaml, section $1"
  BENCH="$bench"
  while read -r key; do
    [[ " ${BENCH_KEYS[*]} " == *" $key "* ]] || die "$where: unknown key '$key'" "use: ${BENCH_KEYS[*]}"
  done < <(for key in "${!EVAL_SETTINGS[@]}"; do [[ "$key" != "$bench".* ]] || printf '%s\n' "${key#"$bench".}"; done)
  DATASET_NAME="$(bench_setting "$bench" dataset)"
  [[ -n "$DATASET_NAME" ]] || die "$where: no dataset" "add 'dataset: ceval' (an EvalScope benchmark name)"
  local subsets
  subsets="$(bench_setting "$bench" subsets)"
  SUBSETS=()
  if [[ -n "$subsets" && "$subsets" != all ]]; then mapfile -t SUBSETS < <(config_items "$subsets"); fi
  LIMIT="$(bench_setting "$bench" limit)"
  FEW_SHOT="$(bench_setting "$bench" few_shot)"
  MAX_TOKENS="$(bench_setting "$bench" max_tokens)"
  TEMPERATURE="$(bench_setting "$bench" temperature)"
  [[ -z "$LIMIT" || "$LIMIT" =~ ^[1-9][0-9]*$ ]] || die "$where: limit '$LIMIT' is not a positive number" "questions per subject, or empty for all"
  [[ -z "$FEW_SHOT" || "$FEW_SHOT" =~ ^[0-9]+$ ]] || die "$where: few_shot '$FEW_SHOT' is not a number" "e.g. few_shot: 5"
  [[ "$MAX_TOKENS" =~ ^[1-9][0-9]*$ ]] || die "$where: max_tokens '$MAX_TOKENS' is not a positive number" "set max_tokens in defaults or the section"
  [[ "$TEMPERATURE" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$where: temperature '$TEMPERATURE' is not a number" "use temperature: 0"
  EVAL_BATCH_SIZE="$(bench_setting "$bench" eval_batch_size)"
  [[ -z "$EVAL_BATCH_SIZE" || "$EVAL_BATCH_SIZE" =~ ^[1-9][0-9]*$ ]] || die "$where: eval_batch_size '$EVAL_BATCH_SIZE' is not a positive number" "concurrent requests per serving GPU, e.g. eval_batch_size: 8"
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
  # EvalScope's JSON arguments, made once per benchmark (build_eval_cmd runs per model).
  DATASET_ARGS="$(jq -nc --arg name "$DATASET_NAME" --arg local_path "$LOCAL_PATH" --arg few_shot "$FEW_SHOT" \
    --args '{($name): ({}
      + (if $ARGS.positional == [] then {} else {subset_list: $ARGS.positional} end)
      + (if $few_shot == "" then {} else {few_shot_num: ($few_shot | tonumber)} end)
      + (if $local_path == "" then {} else {local_path: $local_path} end))}' "${SUBSETS[@]}")"
  GENERATION_CONFIG="{\"max_tokens\":$MAX_TOKENS,\"temperature\":$TEMPERATURE}"
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

# expected_question_count: sets EXPECTED_NUM, the questions a run of the benchmark
# read by read_bench must score, when its local copy tells (empty otherwise).
expected_question_count() {
  local subject count
  EXPECTED_NUM=""
  [[ -n "$LOCAL_PATH" ]] || return 0
  EXPECTED_NUM=0
  for subject in "${SUBSETS[@]}"; do
    count="$(local_question_count "$subject")"
    [[ -n "$count" ]] || { EXPECTED_NUM=""; return 0; }
    if [[ -n "$LIMIT" ]] && ((count > LIMIT)); then count="$LIMIT"; fi
    EXPECTED_NUM=$((EXPECTED_NUM + count))
  done
}

# Questions of one subject in a local copy (empty when the layout is unknown).
local_question_count() {
  if [[ -f "$LOCAL_PATH/test.jsonl" ]]; then
    jq -c --arg s "$1" 'select(.category == $s)' "$LOCAL_PATH/test.jsonl" | wc -l
  elif [[ -f "$LOCAL_PATH/$1/val.jsonl" ]]; then
    grep -c . "$LOCAL_PATH/$1/val.jsonl"
  fi
}

build_eval_cmd() {
  local bench="$1"
  WORK_DIR="$RESULTS_DIR/$SERVED_NAME/$bench"
  reset_cmd
  add_common_tool_env
  # The key travels in the environment: EvalScope reads EVALSCOPE_API_KEY when --api-key is empty.
  local api_key=EMPTY
  if [[ -n "${SERVE_API_KEY:-}" ]]; then api_key=""; CMD_SECRET_ENV+=(EVALSCOPE_API_KEY=SERVE_API_KEY); fi
  CMD=(evalscope eval --eval-type openai_api --api-url "$(api_base)" --api-key "$api_key"
    --model "$SERVED_NAME" --datasets "$DATASET_NAME" --dataset-args "$DATASET_ARGS")
  if [[ -n "$LIMIT" ]]; then CMD+=(--limit "$LIMIT"); fi
  # Concurrent requests grow with the GPUs the server spreads over (lmdeploy_tp = NPROC);
  # EvalScope's own default (8) is left implicit.
  local batch=$((${EVAL_BATCH_SIZE:-8} * NPROC))
  if ((batch != 8)); then CMD+=(--eval-batch-size "$batch"); fi
  CMD+=(--generation-config "$GENERATION_CONFIG" --work-dir "$WORK_DIR" --no-timestamp)
}

report_file() { printf '%s/reports/%s/%s.json' "$WORK_DIR" "$SERVED_NAME" "$DATASET_NAME"; }

# build_eval_result_cmd OUT [DIGEST] [SECONDS]: checks the EvalScope report of the
# benchmark built last (build_eval_cmd, expected_question_count) and writes its result
# to OUT (scripts/py/eval_result.py: the only source of scores for the report and SwanLab).
build_eval_result_cmd() {
  reset_cmd
  CMD=(python "$REPO_ROOT/scripts/py/eval_result.py" --report "$(report_file)" --benchmark "$BENCH"
    --model "$SERVED_NAME" --config "configs/$EXP/eval.yaml" --out "$1")
  if [[ -n "$EXPECTED_NUM" ]]; then CMD+=(--expected-num "$EXPECTED_NUM"); fi
  local subject
  for subject in "${SUBSETS[@]}"; do CMD+=(--subject "$subject"); done
  if [[ -n "${2:-}" ]]; then CMD+=(--inputs-digest "$2"); fi
  if [[ -n "${3:-}" ]]; then CMD+=(--seconds "$3"); fi
}

# build_eval_log_cmd RESULT...: one process logging the checked results of the
# served model to one SwanLab run ($SERVED_NAME-eval in group $EXP); SWANLAB_EVAL_RUN_ID,
# when set, resumes that run (make's evaluations of one model come in several steps).
build_eval_log_cmd() {
  reset_cmd
  if [[ "$SWANLAB_MODE" == cloud ]]; then CMD_SECRET_ENV+=(SWANLAB_API_KEY=SWANLAB_TOKEN); fi
  if [[ -n "${SWANLAB_API_HOST:-}" ]]; then CMD_ENV+=("SWANLAB_API_HOST=$SWANLAB_API_HOST"); fi
  CMD=(python "$REPO_ROOT/scripts/py/log_eval_swanlab.py" "$@" --project "$SWANLAB_PROJECT" --name "$SERVED_NAME-eval"
    --group "$EXP" --mode "$SWANLAB_MODE" --log-dir "$(swanlab_log_dir)")
  if [[ -n "${SWANLAB_EVAL_RUN_ID:-}" ]]; then CMD+=(--run-id "$SWANLAB_EVAL_RUN_ID"); fi
}
