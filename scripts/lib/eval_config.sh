# shellcheck shell=bash
# shellcheck disable=SC2034 # globals set here are read by the scripts that source this file
# The evaluation config (configs/$EXP/eval.yaml) and the EvalScope command of one
# benchmark, shared by scripts/eval.sh and the fingerprints (lib/fingerprint.sh).
# Its functions read load_env's settings when called. An evaluation is of one benchmark (read
# by read_bench, in one answer mode) on one served model, named by its SIDE ("" the fine-tuned
# model, --base the base model: lib/server.sh); the builders take the side, and the mode.
# shellcheck source=/dev/null
source "${BASH_SOURCE[0]%/*}/common.sh"
loaded_before eval_config && return 0
# shellcheck source=/dev/null
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=/dev/null
source "$REPO_ROOT/scripts/lib/commands.sh"
# shellcheck source=/dev/null
source "$REPO_ROOT/scripts/lib/server.sh"

# A benchmark's keys: its identity (label, dataset, group, section, metric, licence, url) lives
# in its entry of the suite configs/benchmarks.yaml, the rest in the suite or eval.yaml.
BENCH_KEYS=(dataset group kind subsets limit few_shot local_path source rows judge max_tokens temperature
  eval_batch_size parallel number answer_mode cut_off_limit label section metric licence url extra_params
  category_rows aggregate fetch scorer contamination_limit hub pairs)
# How the model answers (eval.yaml's answer_mode), and what the requests ask of it:
#   final               the reply starts in gpt-oss's final channel (ms-swift's per-request
#                       response_prefix): it answers at once, as fine-tuning on plain replies taught it
#   reasoning-low|medium|high   it reasons first, at that effort (the `Reasoning:` line of its
#                       harmony system block; scripts/py/swift_gpt_oss_system.py)
#   plain               a model without channels (Qwen3): replies are scored as they are
ANSWER_MODES=(final reasoning-low reasoning-medium reasoning-high plain)
# Written last into a benchmark's results folder (scripts/py/eval_result.py), after
# EvalScope's report was checked and the metrics were logged to SwanLab.
EVAL_DONE_FILE=lab-eval.json
EVAL_REJECTED_FILE=lab-eval-rejected.json # what eval_result.py found wrong, instead
# bench_setting BENCH KEY: the benchmark's setting, its default included: config.py --eval
# prints each benchmark's settings whole (scripts/py/eval_suite.py, the one owner of that rule).
bench_setting() {
  printf '%s' "${EVAL_SETTINGS[$1.$2]:-}"
}
# bench_value VAR BENCH KEY: the same into VAR, without a subshell (read_bench reads ~25 a
# benchmark, for every benchmark of every fingerprint).
bench_value() {
  printf -v "$1" '%s' "${EVAL_SETTINGS[$2.$3]:-}"
}

load_eval_config() {
  EVAL_CONFIG="$EXP_DIR/eval.yaml"
  [[ -f "$EVAL_CONFIG" ]] || die "experiment '$EXP' has no evaluation config (configs/$CONFIG_EXP/eval.yaml)" \
    "create it; configs/gpt-oss-20b-sft-v1/eval.yaml documents the format"
  declare -gA EVAL_SETTINGS
  load_config "$EVAL_CONFIG" EVAL_SETTINGS --eval
  mapfile -t BENCHMARKS < <(config_items "${EVAL_SETTINGS[benchmarks]:-}")
  ((${#BENCHMARKS[@]} > 0)) || die "configs/$CONFIG_EXP/eval.yaml lists no benchmarks" "add a line: benchmarks: [ceval, cmmlu]"
  split_arena_benchmark
  [[ " ${BENCHMARKS[*]} " != *" pilot "* ]] || die "configs/$CONFIG_EXP/eval.yaml lists 'pilot' as a benchmark; its section is the scale of make pilot" \
    "name the benchmark otherwise"
  mapfile -t BASE_EXTRA_MODES < <(config_items "${EVAL_SETTINGS[base_extra_modes]:-}")
  local mode
  for mode in "${BASE_EXTRA_MODES[@]}"; do
    [[ "$mode" != plain && " ${ANSWER_MODES[*]} " == *" $mode "* ]] || die "configs/$CONFIG_EXP/eval.yaml: base_extra_modes has '$mode'" \
      "list answer modes the base model is evaluated in besides answer_mode: final, reasoning-low, reasoning-medium or reasoning-high"
  done
  ALL_BENCHMARKS=("${BENCHMARKS[@]}")
  # A pilot evaluates the fine-tuned model alone: no base model's replies to pair.
  if is_pilot; then select_pilot_benchmarks; ARENA_BENCH=""; fi
}

# split_arena_benchmark: the arena (kind: arena) is no evaluation of one model but its own step
# (make arena, scripts/arena.sh), after both models' evaluations: ARENA_BENCH names it (or is
# empty), and BENCHMARKS keeps the evaluations of one model each.
split_arena_benchmark() {
  local bench evaluations=()
  ARENA_BENCH=""
  for bench in "${BENCHMARKS[@]}"; do
    if [[ "$(bench_setting "$bench" kind)" != arena ]]; then evaluations+=("$bench"); continue; fi
    [[ -z "$ARENA_BENCH" ]] || die "configs/$CONFIG_EXP/eval.yaml lists two arena benchmarks ($ARENA_BENCH, $bench)" \
      "list one; its pairs name every benchmark whose replies it compares"
    ARENA_BENCH="$bench"
  done
  BENCHMARKS=("${evaluations[@]}")
}

# A pilot measures those of its section's `benchmarks` the experiment has (default: all of
# them; a variant that evaluates less keeps its base's list), in eval.yaml's order;
# ALL_BENCHMARKS keeps the full run's, which its report projects.
select_pilot_benchmarks() {
  load_pilot_config
  local bench chosen=() listed
  [[ -n "${PILOT_CONFIG[benchmarks]}" ]] || return 0
  listed=" $(config_items "${PILOT_CONFIG[benchmarks]}" | paste -sd' ' -) "
  for bench in "${ALL_BENCHMARKS[@]}"; do
    if [[ "$listed" == *" $bench "* ]]; then chosen+=("$bench"); fi
  done
  ((${#chosen[@]} > 0)) || die "configs/$CONFIG_EXP/eval.yaml, section pilot: benchmarks names none of the experiment's (${ALL_BENCHMARKS[*]})" \
    "list some of them, or leave benchmarks out to measure all"
  BENCHMARKS=("${chosen[@]}")
}

# evaluation_modes SIDE: the answer modes SIDE's model is evaluated in, one a line: eval.yaml's
# answer_mode (an empty line), and for the base model each of base_extra_modes too.
evaluation_modes() {
  local mode
  printf '\n'
  if is_base_side "$1"; then for mode in "${BASE_EXTRA_MODES[@]}"; do printf '%s\n' "$mode"; done; fi
}

# result_name [-v VAR] SIDE [MODE]: the results folder of SIDE's model in answer mode MODE ("":
# eval.yaml's): the served name, with @MODE for an extra mode of the base model
# (results/<exp>/<exp>-base@reasoning-medium). -v: into VAR, as served_name's.
result_name() {
  local into=() name
  if [[ "${1:-}" == -v ]]; then into=(-v "$2"); shift 2; fi
  served_name -v name "$1"
  # shellcheck disable=SC2059 # "${into[@]}" is -v VAR or nothing, the format is the next word
  printf "${into[@]}" '%s%s' "$name" "${2:+@$2}"
}

# bench_group BENCH: the group make evaluates it in (make eval-<group>; eval_suite.py: its
# `group`, else its name).
bench_group() { bench_setting "$1" group; }

# select_benchmarks ARG...: fills SELECTED from names, groups or `all`.
select_benchmarks() {
  SELECTED=()
  local arg bench found
  for arg in "$@"; do
    found=0
    for bench in "${BENCHMARKS[@]}"; do
      if [[ "$arg" == all || "$arg" == "$bench" || "$arg" == "$(bench_group "$bench")" ]]; then
        [[ " ${SELECTED[*]} " == *" $bench "* ]] || SELECTED+=("$bench")
        found=1
      fi
    done
    ((found)) || die "unknown benchmark '$arg' (configs/$CONFIG_EXP/eval.yaml has: ${BENCHMARKS[*]})" \
      "use one of them or all, or add a section for '$arg' to configs/$CONFIG_EXP/eval.yaml"
  done
}

# select_group GROUP: fills SELECTED with the benchmarks make evaluates in GROUP (none is fine).
select_group() {
  SELECTED=()
  local bench
  for bench in "${BENCHMARKS[@]}"; do
    if [[ "$(bench_group "$bench")" == "$1" ]]; then SELECTED+=("$bench"); fi
  done
}

# read_bench BENCH [MODE]: checks the benchmark's settings, in answer mode MODE (apply_answer_mode),
# and sets BENCH, KIND (eval or
# perf), DATASET_NAME, SUBSETS (empty = all), LIMIT, FEW_SHOT, LOCAL_PATH (absolute,
# or empty), HELDOUT_ROWS (a set built from the run's held-out split, or empty),
# JUDGE_TEMPLATE (the judge's rubric, or empty), MAX_TOKENS, TEMPERATURE,
# EVAL_BATCH_SIZE (per serving GPU, or empty), PERF_PARALLEL and PERF_NUMBER (perf).
read_bench() {
  local bench="$1" key where="configs/$CONFIG_EXP/eval.yaml, section $1"
  BENCH="$bench"
  local known=" ${BENCH_KEYS[*]} "
  for key in "${!EVAL_SETTINGS[@]}"; do
    [[ "$key" == "$bench".* ]] || continue
    key="${key#"$bench".}"
    [[ "$known" == *" $key "* ]] || die "$where: unknown key '$key'" "use: ${BENCH_KEYS[*]}"
  done
  bench_value KIND "$bench" kind
  KIND="${KIND:-eval}"
  [[ "$KIND" == eval || "$KIND" == perf || "$KIND" == arena ]] || die "$where: kind '$KIND' is not eval, perf or arena" \
    "kind: eval (EvalScope's eval, the default), kind: perf (evalscope perf) or kind: arena (make arena: base vs fine-tuned)"
  bench_value DATASET_NAME "$bench" dataset
  [[ "$KIND" == perf || -n "$DATASET_NAME" ]] || die "$where: no dataset" "add 'dataset: ceval' (an EvalScope benchmark name)"
  local subsets
  bench_value subsets "$bench" subsets
  SUBSETS=()
  if [[ -n "$subsets" && "$subsets" != all ]]; then mapfile -t SUBSETS < <(config_items "$subsets"); fi
  bench_value LIMIT "$bench" limit
  bench_value FEW_SHOT "$bench" few_shot
  bench_value MAX_TOKENS "$bench" max_tokens
  bench_value TEMPERATURE "$bench" temperature
  [[ -z "$LIMIT" || "$LIMIT" =~ ^[1-9][0-9]*$ ]] || die "$where: limit '$LIMIT' is not a positive number" "questions per subject, or empty for all"
  [[ -z "$FEW_SHOT" || "$FEW_SHOT" =~ ^[0-9]+$ ]] || die "$where: few_shot '$FEW_SHOT' is not a number" "e.g. few_shot: 5"
  [[ "$MAX_TOKENS" =~ ^[1-9][0-9]*$ ]] || die "$where: max_tokens '$MAX_TOKENS' is not a positive number" "set max_tokens in defaults or the section"
  [[ "$TEMPERATURE" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$where: temperature '$TEMPERATURE' is not a number" "use temperature: 0"
  bench_value CUT_OFF_LIMIT "$bench" cut_off_limit
  [[ -z "$CUT_OFF_LIMIT" || "$CUT_OFF_LIMIT" =~ ^0(\.[0-9]+)?$ ]] || die "$where: cut_off_limit '$CUT_OFF_LIMIT' is not a share below 1" \
    "the share of replies ended by max_tokens above which the report flags the benchmark, e.g. cut_off_limit: 0.02"
  bench_value EVAL_BATCH_SIZE "$bench" eval_batch_size
  [[ -z "$EVAL_BATCH_SIZE" || "$EVAL_BATCH_SIZE" =~ ^[1-9][0-9]*$ ]] || die "$where: eval_batch_size '$EVAL_BATCH_SIZE' is not a positive number" "concurrent requests per serving GPU, e.g. eval_batch_size: 8"
  bench_value AGGREGATE "$bench" aggregate
  [[ -z "$AGGREGATE" || "$AGGREGATE" == subject-mean ]] || die "$where: aggregate '$AGGREGATE' is not known" \
    "aggregate: subject-mean (the mean of the per-subject accuracies), or leave it out"
  bench_value SCORER "$bench" scorer
  [[ -z "$SCORER" || "$SCORER" == emollm || "$SCORER" == cpsycoune ]] || die "$where: scorer '$SCORER' is not known" \
    "scorer: emollm (EmoLLM's BLEU/ROUGE on jieba words) or cpsycoune (a judge's four CPsyCoun dimensions; scripts/py/lab/counselling.py), or leave it out"
  bench_value CONTAMINATION_LIMIT "$bench" contamination_limit
  [[ -z "$CONTAMINATION_LIMIT" || "$CONTAMINATION_LIMIT" =~ ^0(\.[0-9]+)?$ ]] || die "$where: contamination_limit '$CONTAMINATION_LIMIT' is not a share below 1" \
    "the share of test replies overlapping the training set above which the report flags the benchmark, e.g. contamination_limit: 0.05"
  bench_value EXTRA_PARAMS "$bench" extra_params
  # Checked, and kept as jq -c writes it (dataset_args_json puts it in the command as is).
  if [[ -n "$EXTRA_PARAMS" ]]; then
    EXTRA_PARAMS="$(jq -c 'if type == "object" then . else error end' <<<"$EXTRA_PARAMS" 2>/dev/null)" ||
      die "$where: extra_params is not a mapping" "e.g. extra_params: {multiple_correct: true} (the benchmark's EvalScope extra_params)"
  fi
  read_bench_answer_mode "$where"
  read_bench_source "$where"
  read_bench_judge "$where"
  read_bench_perf "$where"
  read_bench_pairs "$where"
  # What the full run asks (a pilot's projection scales its measurements to it).
  FULL_LIMIT="$LIMIT" FULL_ROWS="$HELDOUT_ROWS" FULL_PERF_PARALLEL=("${PERF_PARALLEL[@]}") FULL_PERF_NUMBER=("${PERF_NUMBER[@]}")
  if is_pilot; then apply_pilot_scale; fi
  # EvalScope's JSON arguments, made once per benchmark (build_eval_cmd runs per model).
  DATASET_ARGS="$(dataset_args_json)"
  apply_answer_mode "${2:-}"
}

# dataset_args_json: the benchmark read last as EvalScope's --dataset-args, as `jq -c` wrote it
# (the command is fingerprinted: not a byte may differ), built in bash with json_string, as a
# fingerprint reads every benchmark of the experiment. A judged benchmark is scored by the judge
# alone (its rows have no BLEU/ROUGE fallback).
dataset_args_json() {
  local body=""
  if ((${#SUBSETS[@]} > 0)); then body="\"subset_list\":$(json_array "${SUBSETS[@]}")"; fi
  if [[ -n "$FEW_SHOT" ]]; then body+="${body:+,}\"few_shot_num\":$((10#$FEW_SHOT))"; fi
  if [[ -n "$LOCAL_PATH" ]]; then body+="${body:+,}\"local_path\":$(json_string "$LOCAL_PATH")"; fi
  if [[ -n "$EXTRA_PARAMS" ]]; then body+="${body:+,}\"extra_params\":$EXTRA_PARAMS"; fi
  if [[ -n "$JUDGE_TEMPLATE" ]]; then body+="${body:+,}\"metric_list\":[\"acc\"],\"primary_metric\":\"acc\""; fi
  printf '{%s:{%s}}\n' "$(json_string "$DATASET_NAME")" "$body"
}

# read_bench_answer_mode WHERE: checks the benchmark's answer_mode (CONFIGURED_ANSWER_MODE).
read_bench_answer_mode() {
  local where="$1"
  bench_value CONFIGURED_ANSWER_MODE "$BENCH" answer_mode
  [[ -n "$CONFIGURED_ANSWER_MODE" ]] || die "$where: no answer_mode" \
    "add 'answer_mode: final' to the defaults of configs/$CONFIG_EXP/eval.yaml (or reasoning-medium, or plain for a model without gpt-oss channels)"
  [[ " ${ANSWER_MODES[*]} " == *" $CONFIGURED_ANSWER_MODE "* ]] ||
    die "$where: answer_mode '$CONFIGURED_ANSWER_MODE' is not known" "use one of: ${ANSWER_MODES[*]}"
}

# apply_answer_mode [MODE]: for the benchmark read last, in MODE or else its answer_mode, sets
# ANSWER_MODE, CHAT_TEMPLATE_KWARGS (what every request carries to ms-swift's template, as
# JSON), REPLIES (harmony: only the final channel is scored, scripts/py/evalscope_lab.py;
# plain: the reply as it is) and GENERATION_CONFIG.
apply_answer_mode() {
  ANSWER_MODE="${1:-$CONFIGURED_ANSWER_MODE}"
  REPLIES=harmony
  case "$ANSWER_MODE" in
    final) CHAT_TEMPLATE_KWARGS='{"response_prefix":"<|channel|>final<|message|>"}' ;;
    reasoning-*) CHAT_TEMPLATE_KWARGS="{\"reasoning_effort\":\"${ANSWER_MODE#reasoning-}\"}" ;;
    plain) CHAT_TEMPLATE_KWARGS='{}' REPLIES=plain ;;
  esac
  GENERATION_CONFIG="{\"max_tokens\":$MAX_TOKENS,\"temperature\":$TEMPERATURE"
  if [[ "$CHAT_TEMPLATE_KWARGS" != '{}' ]]; then GENERATION_CONFIG+=",\"extra_body\":{\"chat_template_kwargs\":$CHAT_TEMPLATE_KWARGS}"; fi
  GENERATION_CONFIG+="}"
}

# Where the questions come from: a local copy (local_path), the run's held-out split
# (source: heldout; built at evaluation time into HELDOUT_DIR), or the hub (neither).
read_bench_source() {
  local where="$1" source
  bench_value source "$BENCH" source
  bench_value LOCAL_PATH "$BENCH" local_path
  HELDOUT_ROWS="" EXPECTED_NUM=""
  LOCAL_COUNTS=() FETCH=()
  case "$source" in
    "") ;;
    heldout)
      [[ -z "$LOCAL_PATH" ]] || die "$where: both local_path and source: heldout" "keep one: the held-out rows are built from the training's val_dataset.jsonl"
      bench_value HELDOUT_ROWS "$BENCH" rows
      [[ "$HELDOUT_ROWS" =~ ^[1-9][0-9]*$ ]] || die "$where: rows '$HELDOUT_ROWS' is not a positive number" \
        "rows: how many held-out conversations to ask (e.g. rows: 100)"
      LOCAL_PATH="$RESULTS_DIR/heldout/$BENCH"
      SUBSETS=(dialog)
      LIMIT="" # rows is how many
      return 0
      ;;
    *) die "$where: source '$source' is not known" "source: heldout (rows from the run's held-out split), or a local_path" ;;
  esac
  local fetch
  bench_value fetch "$BENCH" fetch
  [[ -n "$LOCAL_PATH" ]] || return 0
  LOCAL_PATH="$(abs_path "$LOCAL_PATH")"
  # fetch (the suite): a script of ours writes the public source into LOCAL_PATH when it is
  # not there (the real run); `fetch: none` (a shipped sample) never fetches.
  if [[ -n "$fetch" && "$fetch" != none ]]; then
    read -r -a FETCH <<<"$fetch"
    [[ -f "$REPO_ROOT/${FETCH[0]}" ]] || die "$where: fetch script ${FETCH[0]} not found" "fix fetch in configs/benchmarks.yaml"
    if [[ ! -d "$LOCAL_PATH" ]]; then
      if ((${#SUBSETS[@]} == 0)); then die "$where: a fetched set needs its subsets listed" "list them in its suite entry (subsets: [...])"; fi
      return 0
    fi
  fi
  # EvalScope takes a path that does not exist for a hub id and fails late, offline.
  [[ -d "$LOCAL_PATH" ]] || die "$where: local dataset $(display_path "$LOCAL_PATH") not found" \
    "restore it (git checkout -- $(display_path "$LOCAL_PATH")) or fix local_path"
  read_local_counts
  [[ -z "${LOCAL_SET_ERROR[$LOCAL_PATH]:-}" ]] || die "$where: cannot read $(display_path "$LOCAL_PATH"): ${LOCAL_SET_ERROR[$LOCAL_PATH]}" \
    "repair the set's files (git checkout -- $(display_path "$LOCAL_PATH") restores a shipped one)"
  ((${#LOCAL_COUNTS[@]} > 0)) || die "$where: no subjects found in $(display_path "$LOCAL_PATH")" \
    "it needs one of the layouts scripts/py/local_set.py lists (C-Eval, CMMLU, MMLU, MMLU-Pro, general_qa)"
  # `all` means every subject of the local copy: EvalScope would ask for all of its own.
  if ((${#SUBSETS[@]} == 0)); then mapfile -t SUBSETS < <(printf '%s\n' "${!LOCAL_COUNTS[@]}" | sort); fi
}

# build_fetch_cmd CMD: the fetch script of the benchmark read last, writing its set into LOCAL_PATH.
build_fetch_cmd() {
  local -n build_fetch_cmd_out="$1"
  build_fetch_cmd_out=(python "$REPO_ROOT/${FETCH[0]}" "${FETCH[@]:1}" --out "$LOCAL_PATH")
}

# build_contamination_cmd CMD: the overlap of the benchmark's set (read last) with the training
# set, measured before scoring on it (scripts/py/contamination.py), into the results folder.
build_contamination_cmd() {
  local -n build_contamination_cmd_out="$1"
  build_contamination_cmd_out=(python "$REPO_ROOT/scripts/py/contamination.py" --test "$LOCAL_PATH" --config "$EXP_DIR/sft.yaml"
    --repo-root "$REPO_ROOT" --cache-root "$CACHE_ROOT" --limit "$CONTAMINATION_LIMIT" --out "$(contamination_file)")
  if [[ -n "${DATASET:-}" ]]; then build_contamination_cmd_out+=(--dataset "$DATASET"); fi
}
contamination_file() { printf '%s/lab-contamination.json' "$WORK_DIR"; }

# needs_fetch: the benchmark read last is fetched, and its set is not there yet.
needs_fetch() { ((${#FETCH[@]} > 0)) && [[ ! -d "$LOCAL_PATH" ]]; }

# LOCAL_COUNTS[subject]: the questions of each subject in LOCAL_PATH (scripts/py/local_set.py).
# Read once per folder and process (the fingerprints read each set once per model and mode);
# a folder that does not exist yet (a set fetched later) is not remembered. LOCAL_SET_ERROR[folder]:
# why it could not be read (a broken file); the other folders are still listed.
declare -gA LOCAL_COUNTS=() LOCAL_SET_LISTING=() LOCAL_SET_ERROR=()
read_local_counts() {
  local subject count
  LOCAL_COUNTS=()
  [[ -d "$LOCAL_PATH" ]] || return 0
  if [[ -z "${LOCAL_SET_LISTING[$LOCAL_PATH]+set}" ]]; then list_local_sets "$LOCAL_PATH"; fi
  while IFS=$'\t' read -r subject count; do
    if [[ -n "$subject" ]]; then LOCAL_COUNTS["$subject"]="$count"; fi
  done <<<"${LOCAL_SET_LISTING[$LOCAL_PATH]}"
}

# list_local_sets FOLDER: lists FOLDER and every other local_path of eval.yaml not listed yet
# that exists, in one Python start (one per folder cost 0.6 s a fingerprint on the smoke).
list_local_sets() {
  local key folder folders=("$1") dir subject count
  for key in "${!EVAL_SETTINGS[@]}"; do
    [[ "$key" == *.local_path ]] || continue
    folder="$(abs_path "${EVAL_SETTINGS[$key]}")"
    if [[ -d "$folder" && -z "${LOCAL_SET_LISTING[$folder]+set}" && " ${folders[*]} " != *" $folder "* ]]; then folders+=("$folder"); fi
  done
  for folder in "${folders[@]}"; do LOCAL_SET_LISTING[$folder]=""; done
  while IFS=$'\t' read -r dir subject count; do
    if [[ "$dir" == '!' ]]; then LOCAL_SET_ERROR[$subject]="$count"; elif [[ -n "$dir" ]]; then LOCAL_SET_LISTING[$dir]+="$subject"$'\t'"$count"$'\n'; fi
  done < <("$(config_python)" "$REPO_ROOT/scripts/py/local_set.py" --each "${folders[@]}")
}

# judge: the rubric (a prompt template file) an LLM judge scores the replies with, when
# the env file names one (JUDGE_MODEL, JUDGE_API_URL); without one the benchmark is skipped.
read_bench_judge() {
  local where="$1"
  bench_value JUDGE_TEMPLATE "$BENCH" judge
  [[ -n "$JUDGE_TEMPLATE" ]] || return 0
  JUDGE_TEMPLATE="$(abs_path "$JUDGE_TEMPLATE")"
  [[ -f "$JUDGE_TEMPLATE" ]] || die "$where: judge rubric $(display_path "$JUDGE_TEMPLATE") not found" \
    "restore it (git checkout -- $(display_path "$JUDGE_TEMPLATE")) or fix judge"
}

# kind: perf: `evalscope perf` at the concurrency levels in parallel, number requests each.
read_bench_perf() {
  local where="$1" value
  PERF_PARALLEL=() PERF_NUMBER=()
  [[ "$KIND" == perf ]] || return 0
  mapfile -t PERF_PARALLEL < <(config_items "$(bench_setting "$BENCH" parallel)")
  mapfile -t PERF_NUMBER < <(config_items "$(bench_setting "$BENCH" number)")
  ((${#PERF_PARALLEL[@]} > 0 && ${#PERF_PARALLEL[@]} == ${#PERF_NUMBER[@]})) ||
    die "$where: parallel and number must be lists of the same length" "e.g. parallel: [1, 4, 8] and number: [16, 64, 128]"
  for value in "${PERF_PARALLEL[@]}" "${PERF_NUMBER[@]}"; do
    [[ "$value" =~ ^[1-9][0-9]*$ ]] || die "$where: '$value' in parallel or number is not a positive number" "use whole numbers"
  done
  [[ -n "$HELDOUT_ROWS" ]] || die "$where: a perf benchmark needs source: heldout" "its prompts are the held-out conversations"
}

# kind: arena: PAIRS, the benchmarks of eval.yaml whose replies of both models it compares.
read_bench_pairs() {
  local where="$1" pair
  PAIRS=()
  [[ "$KIND" == arena ]] || return 0
  mapfile -t PAIRS < <(config_items "$(bench_setting "$BENCH" pairs)")
  ((${#PAIRS[@]} > 0)) || die "$where: an arena benchmark names no pairs" \
    "list the benchmarks whose replies it compares, e.g. pairs: [dialog, psydt-turns]"
  for pair in "${PAIRS[@]}"; do
    [[ " ${BENCHMARKS[*]} " == *" $pair "* ]] || die "$where: pairs names '$pair', which configs/$CONFIG_EXP/eval.yaml does not evaluate" \
      "add '$pair' to its benchmarks, or leave it out of pairs (evaluated: ${BENCHMARKS[*]})"
    [[ "$(bench_setting "$pair" kind)" != perf ]] || die "$where: pairs names '$pair', a serving-speed benchmark with no replies to compare" \
      "pair benchmarks whose replies are scored, e.g. dialog"
  done
}

# A pilot asks a few questions of every benchmark (common.sh's load_pilot_config): at most
# `limit` per subject, at most `rows` held-out conversations, and of a perf benchmark one
# level, its highest concurrency, with `perf_number` requests (at least one per slot).
apply_pilot_scale() {
  load_pilot_config
  local limit="${PILOT_CONFIG[limit]}" rows="${PILOT_CONFIG[rows]}" number="${PILOT_CONFIG[perf_number]}" top=0 level
  if [[ -n "$HELDOUT_ROWS" ]]; then
    ((HELDOUT_ROWS <= rows)) || HELDOUT_ROWS="$rows"
  elif [[ -z "$LIMIT" ]] || ((LIMIT > limit)); then
    LIMIT="$limit"
  fi
  [[ "$KIND" == perf ]] || return 0
  for level in "${PERF_PARALLEL[@]}"; do ((level <= top)) || top="$level"; done
  PERF_PARALLEL=("$top")
  PERF_NUMBER=("$((number > top ? number : top))")
}

# expected_question_count: sets EXPECTED_NUM, the questions a run of the benchmark
# read by read_bench must score, when its local copy tells (empty otherwise).
expected_question_count() {
  local subject count
  EXPECTED_NUM=""
  [[ -n "$LOCAL_PATH" ]] || return 0
  ((${#LOCAL_COUNTS[@]} > 0)) || read_local_counts
  ((${#LOCAL_COUNTS[@]} > 0)) || return 0 # not fetched yet: EvalScope's count is checked per subject
  EXPECTED_NUM=0
  for subject in "${SUBSETS[@]}"; do
    count="${LOCAL_COUNTS[$subject]:-}"
    [[ -n "$count" ]] || { EXPECTED_NUM=""; return 0; }
    if [[ -n "$LIMIT" ]] && ((count > LIMIT)); then count="$LIMIT"; fi
    EXPECTED_NUM=$((EXPECTED_NUM + count))
  done
}

# judge_config SIDE: the judge of the benchmark read last (JUDGE_TEMPLATE): JUDGE_MODEL at
# JUDGE_API_URL, or with JUDGE_MODEL=served SIDE's served model itself (a placeholder that
# exercises the path: its scores mean nothing). Empty when no judge is configured. The judge
# replies with at most the benchmark's max_tokens.
judge_config() {
  [[ -n "$JUDGE_TEMPLATE" && -n "${JUDGE_MODEL:-}" ]] || return 0
  local model="$JUDGE_MODEL" url="${JUDGE_API_URL:-}"
  if [[ "$JUDGE_MODEL" == served ]]; then model="$(served_name "$1")" url="$(api_base "$1")"; fi
  jq -nc --arg model "$model" --arg url "$url" --arg max_tokens "$MAX_TOKENS" --rawfile template "$JUDGE_TEMPLATE" \
    '{strategy: "llm", models: [{model_id: $model, api_url: $url,
      generation_config: {temperature: 0, max_tokens: ($max_tokens | tonumber)}}],
      contract: {score_type: "numeric", prompt_template: $template}}'
}

# evalscope_command CMD SIDE: adds to command CMD evalscope, or its launcher (scripts/py/evalscope_lab.py) when the model answers in
# harmony (only the final channel is scored), a key has no environment variable in
# EvalScope (SERVE_API_KEY for perf, JUDGE_API_KEY for the judge: no key is ever in argv),
# or an evaluation's HTML page is not to be written (EVALSCOPE_HTML=0).
evalscope_command() {
  local -n evalscope_command_out="$1"
  local needs_launcher=0
  if [[ "$KIND" != perf && "${EVALSCOPE_HTML:-1}" == 0 ]]; then needs_launcher=1; evalscope_command_out+=(EVALSCOPE_HTML=0); fi
  if [[ "$KIND" == perf && -n "${SERVE_API_KEY:-}" ]]; then needs_launcher=1; evalscope_command_out+=("SERVE_API_KEY=${SECRET_MARK}SERVE_API_KEY"); fi
  if [[ -n "$(judge_config "$2")" && -n "${JUDGE_API_KEY:-}" ]]; then needs_launcher=1; evalscope_command_out+=("JUDGE_API_KEY=${SECRET_MARK}JUDGE_API_KEY"); fi
  if [[ "$KIND" != perf && "$REPLIES" == harmony ]]; then
    evalscope_command_out+=(python "$REPO_ROOT/scripts/py/evalscope_lab.py" --replies harmony)
  elif ((needs_launcher)); then
    evalscope_command_out+=(python "$REPO_ROOT/scripts/py/evalscope_lab.py")
  else
    evalscope_command_out+=(evalscope)
  fi
}

# build_heldout_cmd CMD: the rows of a source: heldout benchmark, from the training's
# held-out split (never trained on), into LOCAL_PATH.
build_heldout_cmd() {
  local -n build_heldout_cmd_out="$1"
  build_heldout_cmd_out=(python "$REPO_ROOT/scripts/py/heldout_set.py" --val "$RUN_DIR/val_dataset.jsonl" --rows "$HELDOUT_ROWS"
    --out "$LOCAL_PATH")
}

# build_eval_cmd CMD BENCH SIDE [MODE]: the EvalScope run of the benchmark read last (BENCH) on
# SIDE's model, in MODE (read_bench's), into WORK_DIR.
build_eval_cmd() {
  local -n build_eval_cmd_out="$1"
  local bench="$2" side="$3" judge name api result
  served_name -v name "$side"
  api_base -v api "$side"
  result_name -v result "$side" "${4:-}"
  WORK_DIR="$RESULTS_DIR/$result/$bench"
  build_eval_cmd_out=()
  add_common_tool_env build_eval_cmd_out
  if [[ "$KIND" == perf ]]; then build_perf_cmd build_eval_cmd_out "$side"; return 0; fi
  # The key travels in the environment: EvalScope reads EVALSCOPE_API_KEY when --api-key is empty.
  local api_key=EMPTY
  if [[ -n "${SERVE_API_KEY:-}" ]]; then api_key=""; build_eval_cmd_out+=("EVALSCOPE_API_KEY=${SECRET_MARK}SERVE_API_KEY"); fi
  evalscope_command build_eval_cmd_out "$side"
  build_eval_cmd_out+=(eval --eval-type openai_api --api-url "$api" --api-key "$api_key"
    --model "$name" --datasets "$DATASET_NAME" --dataset-args "$DATASET_ARGS")
  if [[ -n "$LIMIT" ]]; then build_eval_cmd_out+=(--limit "$LIMIT"); fi
  # Concurrent requests grow with the GPUs the server spreads over (lmdeploy_tp = NPROC);
  # EvalScope's own default (8) is left implicit.
  local batch=$((${EVAL_BATCH_SIZE:-8} * NPROC))
  if ((batch != 8)); then build_eval_cmd_out+=(--eval-batch-size "$batch"); fi
  judge="$(judge_config "$side")"
  if [[ -n "$judge" ]]; then build_eval_cmd_out+=(--judge "$judge"); fi
  build_eval_cmd_out+=(--generation-config "$GENERATION_CONFIG" --work-dir "$WORK_DIR" --no-timestamp)
}

# build_perf_cmd CMD SIDE: adds to command CMD `evalscope perf` against SIDE's served model, the
# held-out conversations as prompts (one JSON message list a line), at each concurrency level.
build_perf_cmd() {
  local -n build_perf_cmd_out="$1"
  evalscope_command build_perf_cmd_out "$2"
  build_perf_cmd_out+=(perf --api openai --url "$(api_base "$2")/chat/completions" --model "$(served_name "$2")"
    --dataset line_by_line --dataset-path "$LOCAL_PATH/prompts.txt"
    --parallel "${PERF_PARALLEL[@]}" --number "${PERF_NUMBER[@]}" --max-tokens "$MAX_TOKENS"
    --temperature "$TEMPERATURE" --outputs-dir "$WORK_DIR" --name perf --no-timestamp)
  # Serving speed in the answer mode the benchmarks use (a prefilled final channel
  # answers in fewer tokens than reasoning first).
  if [[ "$CHAT_TEMPLATE_KWARGS" != '{}' ]]; then build_perf_cmd_out+=(--extra-args "{\"chat_template_kwargs\":$CHAT_TEMPLATE_KWARGS}"); fi
}

# read_session_limit SIDE: the server's session length (SESSION_LIMIT): deploy.yaml's lmdeploy_session_len (lmdeploy,
# on GPUs) or max_length, else the served model's max_position_embeddings; empty when
# unknown. SESSION_KEY names where it comes from; SESSION_SYSTEM is the served system prompt
# file (or empty).
read_session_limit() {
  local -A deploy=() model
  load_sft_config
  model="$(served_model "$1")"
  load_config "$EXP_DIR/deploy.yaml" deploy
  SESSION_LIMIT="${deploy[max_length]:-}" SESSION_KEY=max_length
  if [[ "$GPU" != cpu && -n "${deploy[lmdeploy_session_len]:-}" ]]; then
    SESSION_LIMIT="${deploy[lmdeploy_session_len]}" SESSION_KEY=lmdeploy_session_len
  fi
  if [[ -z "$SESSION_LIMIT" && -f "$model/config.json" ]]; then
    SESSION_LIMIT="$(jq -r '.max_position_embeddings // empty' "$model/config.json")" SESSION_KEY=max_position_embeddings
  fi
  SESSION_SYSTEM="${deploy[system]:-}"
  if [[ -n "$SESSION_SYSTEM" && "$SESSION_SYSTEM" == *.txt ]]; then SESSION_SYSTEM="$(abs_path "$SESSION_SYSTEM")"; else SESSION_SYSTEM=""; fi
}

# describe_bench SIDE: a comment line saying what the benchmark read last asks of SIDE's model.
describe_bench() {
  local name
  name="$(served_name "$1")"
  if [[ "$KIND" == perf ]]; then
    printf '# %s: evalscope perf on %s, %s requests at concurrency %s\n' "$BENCH" "$name" "${PERF_NUMBER[*]}" "${PERF_PARALLEL[*]}"
  elif [[ -n "$HELDOUT_ROWS" ]]; then
    printf '# %s: %s on %s, %s held-out conversations%s\n' "$BENCH" "$DATASET_NAME" "$name" "$HELDOUT_ROWS" "${JUDGE_TEMPLATE:+, judged}"
  else
    printf '# %s: %s on %s, limit %s per subject%s\n' "$BENCH" "$DATASET_NAME" "$name" "${LIMIT:-none}" "${JUDGE_TEMPLATE:+, judged}"
  fi
}

# judge_unconfigured: the benchmark read last needs a judge and the env file names none.
judge_unconfigured() { [[ -n "$JUDGE_TEMPLATE" && -z "${JUDGE_MODEL:-}" ]]; }

# report_file SIDE: where EvalScope writes its report of the evaluation built last.
report_file() {
  local name
  served_name -v name "$1"
  if [[ "$KIND" == perf ]]; then printf '%s/perf' "$WORK_DIR"; else printf '%s/reports/%s/%s.json' "$WORK_DIR" "$name" "$DATASET_NAME"; fi
}

# build_eval_result_cmd CMD SIDE OUT [DIGEST] [SECONDS]: checks the EvalScope report of the
# benchmark built last on SIDE's model (build_eval_cmd, expected_question_count) and writes its
# result to OUT (scripts/py/eval_result.py: the only source of scores for the report and SwanLab).
build_eval_result_cmd() {
  local -n build_eval_result_cmd_out="$1"
  local side="$2" name
  shift 2
  served_name -v name "$side"
  build_eval_result_cmd_out=(python "$REPO_ROOT/scripts/py/eval_result.py" --report "$(report_file "$side")" --benchmark "$BENCH"
    --model "$name" --config "configs/$CONFIG_EXP/eval.yaml" --out "$1")
  if [[ "$KIND" == perf ]]; then build_eval_result_cmd_out+=(--perf --parallel "${PERF_PARALLEL[@]}" --number "${PERF_NUMBER[@]}"); fi
  if [[ -n "$EXPECTED_NUM" ]]; then build_eval_result_cmd_out+=(--expected-num "$EXPECTED_NUM"); fi
  if [[ -n "$AGGREGATE" ]]; then build_eval_result_cmd_out+=(--aggregate "$AGGREGATE"); fi
  if [[ -n "$SCORER" ]]; then build_eval_result_cmd_out+=(--scorer "$SCORER"); fi
  if [[ "$SCORER" == cpsycoune ]]; then build_eval_result_cmd_out+=(--turns "$LOCAL_PATH/turns.json"); fi
  if [[ -n "$CONTAMINATION_LIMIT" ]]; then build_eval_result_cmd_out+=(--contamination "$(contamination_file)"); fi
  if [[ "$KIND" != perf ]]; then
    build_eval_result_cmd_out+=(--replies-dir "$WORK_DIR" --max-tokens "$MAX_TOKENS" --answer-mode "$ANSWER_MODE")
    if [[ -n "$CUT_OFF_LIMIT" ]]; then build_eval_result_cmd_out+=(--cut-off-limit "$CUT_OFF_LIMIT"); fi
    # The fine-tuned model's tokenizer is the base model's: either tells the final channel's tokens.
    local folder
    load_sft_config
    for folder in "$(served_model "$side")" "$EXPORT_DIR"; do
      if [[ -f "$folder/tokenizer.json" ]]; then build_eval_result_cmd_out+=(--tokenizer "$folder"); break; fi
    done
  fi
  if [[ -n "$JUDGE_TEMPLATE" ]]; then
    build_eval_result_cmd_out+=(--judged --judge-model "$JUDGE_MODEL")
    # The served model judging itself only exercises the path.
    if [[ "$JUDGE_MODEL" == served ]]; then build_eval_result_cmd_out+=(--judge-placeholder); fi
  fi
  local subject
  [[ "$KIND" == perf ]] || for subject in "${SUBSETS[@]}"; do build_eval_result_cmd_out+=(--subject "$subject"); done
  if [[ -n "${2:-}" ]]; then build_eval_result_cmd_out+=(--inputs-digest "$2"); fi
  if [[ -n "${3:-}" ]]; then build_eval_result_cmd_out+=(--seconds "$3"); fi
}

# build_eval_log_cmd CMD NAME RESULT...: one process logging the checked results of the model
# evaluated as NAME (result_name) to one SwanLab run (NAME-eval in group $EXP); SWANLAB_EVAL_RUN_ID,
# when set, resumes that run (make's evaluations of one model come in several steps).
build_eval_log_cmd() {
  local -n build_eval_log_cmd_out="$1"
  local name="$2"
  shift 2
  build_eval_log_cmd_out=()
  if [[ "$SWANLAB_MODE" == cloud ]]; then build_eval_log_cmd_out+=("SWANLAB_API_KEY=${SECRET_MARK}SWANLAB_TOKEN"); fi
  if [[ -n "${SWANLAB_API_HOST:-}" ]]; then build_eval_log_cmd_out+=("SWANLAB_API_HOST=$SWANLAB_API_HOST"); fi
  build_eval_log_cmd_out+=(python "$REPO_ROOT/scripts/py/log_eval_swanlab.py" "$@" --project "$SWANLAB_PROJECT" --name "$name-eval"
    --group "$EXP" --mode "$SWANLAB_MODE" --log-dir "$(swanlab_log_dir)")
  if [[ -n "${SWANLAB_EVAL_RUN_ID:-}" ]]; then build_eval_log_cmd_out+=(--run-id "$SWANLAB_EVAL_RUN_ID"); fi
}

# ---------------------------------------------------------------- the arena (make arena)
# Base vs fine-tuned on the same prompts: EvalScope's general_arena pairs both models' reviews
# of each benchmark of PAIRS (by index, checking the prompts match) and has the judge compare
# the two replies of each prompt in both orders. It evaluates no model of ours (--eval-type
# mock_llm); the replies it compares are what the evaluations scored: the final channel alone
# (scripts/py/evalscope_lab.py made it the message text, which EvalScope's reviews keep as the
# prediction the arena reads). Each pair is one EvalScope run into $(arena_dir)/<pair>.

# arena_dir: the arena's results folder: the fine-tuned model's, beside its evaluations.
arena_dir() { printf '%s/%s/%s' "$RESULTS_DIR" "$EXP" "$ARENA_BENCH"; }

# replies_name DIR DEFAULT: the name a model's replies are filed under in its evaluation folder
# DIR (reports/<name>): the served name it recorded (a base evaluation linked from the store
# keeps the name its experiment served it as), else DEFAULT.
replies_name() {
  local name
  name="$(jq -r '.model // empty' "$1/$EVAL_DONE_FILE" 2>/dev/null || true)"
  printf '%s' "${name:-$2}"
}

# arena_report_path SERVED PAIR: the reports folder of SERVED's evaluation of PAIR.
arena_report_path() {
  local dir="$RESULTS_DIR/$1/$2"
  printf '%s/reports/%s' "$dir" "$(replies_name "$dir" "$1")"
}

# arena_judge_config: the judge of the arena (--judge): JUDGE_MODEL at JUDGE_API_URL, or with
# JUDGE_MODEL=served the fine-tuned model's server (a placeholder). No contract: general_arena
# brings its own prompt and verdict schema (A>>B ... B>>A); both orders are asked (position_swap,
# the adapter's official protocol, stated). Empty when no judge is configured.
arena_judge_config() {
  [[ -n "${JUDGE_MODEL:-}" ]] || return 0
  local model="$JUDGE_MODEL" url="${JUDGE_API_URL:-}"
  if [[ "$JUDGE_MODEL" == served ]]; then model="$(served_name "")" url="$(api_base "")"; fi
  jq -nc --arg model "$model" --arg url "$url" --arg max_tokens "$MAX_TOKENS" \
    '{strategy: "llm", position_swap: "on", models: [{model_id: $model, api_url: $url,
      generation_config: {temperature: 0, max_tokens: ($max_tokens | tonumber)}}]}'
}

# build_arena_cmd CMD PAIR: the general_arena run on PAIR's replies of both models (read_bench of
# the arena first), into WORK_DIR. The judge's key, if any, only in the environment.
build_arena_cmd() {
  local -n build_arena_cmd_out="$1"
  local pair="$2" tuned base args
  WORK_DIR="$(arena_dir)/$pair"
  tuned="$(arena_report_path "$EXP" "$pair")" base="$(arena_report_path "$EXP-base" "$pair")"
  args="$(jq -nc --arg tuned "$EXP" --arg base "$EXP-base" --arg tuned_path "$tuned" --arg base_path "$base" \
    '{general_arena: {extra_params: {models: [{name: $tuned, report_path: $tuned_path},
      {name: $base, report_path: $base_path}], baseline: $base}}}')"
  build_arena_cmd_out=()
  add_common_tool_env build_arena_cmd_out
  if [[ -n "${JUDGE_API_KEY:-}" ]]; then build_arena_cmd_out+=("JUDGE_API_KEY=${SECRET_MARK}JUDGE_API_KEY"); fi
  if [[ "${EVALSCOPE_HTML:-1}" == 0 ]]; then build_arena_cmd_out+=(EVALSCOPE_HTML=0); fi
  build_arena_cmd_out+=(python "$REPO_ROOT/scripts/py/evalscope_lab.py")
  if [[ "$REPLIES" == harmony ]]; then build_arena_cmd_out+=(--replies harmony); fi # a gpt-oss judge's final channel is its verdict
  build_arena_cmd_out+=(eval --eval-type mock_llm --model "$ARENA_BENCH" --datasets general_arena --dataset-args "$args")
  if [[ -n "$LIMIT" ]]; then build_arena_cmd_out+=(--limit "$LIMIT"); fi
  build_arena_cmd_out+=(--eval-batch-size "${EVAL_BATCH_SIZE:-8}" --judge "$(arena_judge_config)" --work-dir "$WORK_DIR" --no-timestamp)
}

# build_arena_result_cmd CMD OUT [DIGEST] [SECONDS]: the arena's result from its runs' reviews and
# reports (scripts/py/eval_result.py --arena: win / tie / loss, the win rates), into OUT.
build_arena_result_cmd() {
  local -n build_arena_result_cmd_out="$1"
  local pair
  shift
  build_arena_result_cmd_out=(python "$REPO_ROOT/scripts/py/eval_result.py" --arena --benchmark "$ARENA_BENCH" --model "$EXP"
    --baseline "$EXP-base" --config "configs/$CONFIG_EXP/eval.yaml" --out "$1" --judge-model "$JUDGE_MODEL")
  if [[ "$JUDGE_MODEL" == served ]]; then build_arena_result_cmd_out+=(--judge-placeholder); fi
  for pair in "${PAIRS[@]}"; do
    build_arena_result_cmd_out+=(--pair "$pair" "$(arena_dir)/$pair" "$RESULTS_DIR/$EXP/$pair/$EVAL_DONE_FILE" "$RESULTS_DIR/$EXP-base/$pair/$EVAL_DONE_FILE")
  done
  if [[ -n "${2:-}" ]]; then build_arena_result_cmd_out+=(--inputs-digest "$2"); fi
  if [[ -n "${3:-}" ]]; then build_arena_result_cmd_out+=(--seconds "$3"); fi
}
