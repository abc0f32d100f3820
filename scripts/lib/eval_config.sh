# shellcheck shell=bash
# shellcheck disable=SC2034 # globals set here are read by the scripts that source this file
# The evaluation config (configs/$EXP/eval.yaml) and the EvalScope command of one
# benchmark, shared by scripts/eval.sh and the fingerprints (lib/fingerprint.sh).
# Its functions read load_env's settings when called. An evaluation is of one benchmark, in one
# answer mode, on one served model: read_bench fills an associative array the caller names with
# the benchmark's checked settings (`local -A settings; read_bench settings ceval`), and the
# functions that follow take that array's name and the model's SIDE ("" the fine-tuned model,
# --base the base model: lib/server.sh): `build_eval_cmd cmd settings --base`. A field set
# through a nameref has its key quoted (settings["limit"]=): shellcheck reads a bare one as an
# arithmetic index.
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

# select_benchmarks ARRAY ARG...: fills ARRAY with the benchmarks named, or in the groups named,
# or `all`.
select_benchmarks() {
  local -n select_benchmarks_out="$1"
  local arg bench found
  shift
  select_benchmarks_out=()
  for arg in "$@"; do
    found=0
    for bench in "${BENCHMARKS[@]}"; do
      if [[ "$arg" == all || "$arg" == "$bench" || "$arg" == "$(bench_group "$bench")" ]]; then
        [[ " ${select_benchmarks_out[*]} " == *" $bench "* ]] || select_benchmarks_out+=("$bench")
        found=1
      fi
    done
    ((found)) || die "unknown benchmark '$arg' (configs/$CONFIG_EXP/eval.yaml has: ${BENCHMARKS[*]})" \
      "use one of them or all, or add a section for '$arg' to configs/$CONFIG_EXP/eval.yaml"
  done
}

# select_group ARRAY GROUP: fills ARRAY with the benchmarks make evaluates in GROUP (none is fine).
select_group() {
  local -n select_group_out="$1"
  local bench
  select_group_out=()
  for bench in "${BENCHMARKS[@]}"; do
    if [[ "$(bench_group "$bench")" == "$2" ]]; then select_group_out+=("$bench"); fi
  done
}

# read_bench SETTINGS BENCH [MODE]: checks the benchmark's settings and fills the associative
# array SETTINGS (the caller's; named *settings, as a builder's command is *cmd) with them, in
# answer mode MODE (apply_answer_mode). Its fields: name, kind (eval, perf or arena), dataset,
# subsets (one a line; empty = all), limit, few_shot, local_path (absolute, or empty),
# heldout_rows (a set built from the run's held-out split, or empty), fetch (the fetch script
# and its arguments, one a line, or empty), judge (the judge's rubric file, or empty), max_tokens,
# temperature, eval_batch_size (per serving GPU, or empty), cut_off_limit, aggregate, scorer,
# contamination_limit, extra_params, configured_mode (eval.yaml's answer_mode), perf_parallel
# and perf_number (perf; one a line), pairs (arena; one a line), what the full run asks
# (full_limit, full_rows, full_perf_parallel, full_perf_number: a pilot scales the others),
# dataset_args, and apply_answer_mode's. A builder adds work_dir, the results folder.
read_bench() {
  local -n read_bench_settings="$1"
  local bench="$2" key value where="configs/$CONFIG_EXP/eval.yaml, section $2"
  local known=" ${BENCH_KEYS[*]} "
  for key in "${!EVAL_SETTINGS[@]}"; do
    [[ "$key" == "$bench".* ]] || continue
    key="${key#"$bench".}"
    [[ "$known" == *" $key "* ]] || die "$where: unknown key '$key'" "use: ${BENCH_KEYS[*]}"
  done
  read_bench_settings=([name]="$bench")
  for key in kind dataset limit few_shot max_tokens temperature cut_off_limit eval_batch_size aggregate scorer \
    contamination_limit extra_params; do
    bench_value value "$bench" "$key"
    read_bench_settings["$key"]="$value"
  done
  read_bench_settings["kind"]="${read_bench_settings[kind]:-eval}"
  local kind="${read_bench_settings[kind]}" limit="${read_bench_settings[limit]}" few_shot="${read_bench_settings[few_shot]}"
  [[ "$kind" == eval || "$kind" == perf || "$kind" == arena ]] || die "$where: kind '$kind' is not eval, perf or arena" \
    "kind: eval (EvalScope's eval, the default), kind: perf (evalscope perf) or kind: arena (make arena: base vs fine-tuned)"
  [[ "$kind" == perf || -n "${read_bench_settings[dataset]}" ]] || die "$where: no dataset" "add 'dataset: ceval' (an EvalScope benchmark name)"
  bench_value value "$bench" subsets
  read_bench_settings["subsets"]=""
  if [[ -n "$value" && "$value" != all ]]; then read_bench_settings["subsets"]="$(config_items "$value")"; fi
  [[ -z "$limit" || "$limit" =~ ^[1-9][0-9]*$ ]] || die "$where: limit '$limit' is not a positive number" "questions per subject, or empty for all"
  [[ -z "$few_shot" || "$few_shot" =~ ^[0-9]+$ ]] || die "$where: few_shot '$few_shot' is not a number" "e.g. few_shot: 5"
  value="${read_bench_settings[max_tokens]}"
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || die "$where: max_tokens '$value' is not a positive number" "set max_tokens in defaults or the section"
  value="${read_bench_settings[temperature]}"
  [[ "$value" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$where: temperature '$value' is not a number" "use temperature: 0"
  value="${read_bench_settings[cut_off_limit]}"
  [[ -z "$value" || "$value" =~ ^0(\.[0-9]+)?$ ]] || die "$where: cut_off_limit '$value' is not a share below 1" \
    "the share of replies ended by max_tokens above which the report flags the benchmark, e.g. cut_off_limit: 0.02"
  value="${read_bench_settings[eval_batch_size]}"
  [[ -z "$value" || "$value" =~ ^[1-9][0-9]*$ ]] || die "$where: eval_batch_size '$value' is not a positive number" "concurrent requests per serving GPU, e.g. eval_batch_size: 8"
  value="${read_bench_settings[aggregate]}"
  [[ -z "$value" || "$value" == subject-mean ]] || die "$where: aggregate '$value' is not known" \
    "aggregate: subject-mean (the mean of the per-subject accuracies), or leave it out"
  value="${read_bench_settings[scorer]}"
  [[ -z "$value" || "$value" == emollm || "$value" == cpsycoune ]] || die "$where: scorer '$value' is not known" \
    "scorer: emollm (EmoLLM's BLEU/ROUGE on jieba words) or cpsycoune (a judge's four CPsyCoun dimensions; scripts/py/lab/counselling.py), or leave it out"
  value="${read_bench_settings[contamination_limit]}"
  [[ -z "$value" || "$value" =~ ^0(\.[0-9]+)?$ ]] || die "$where: contamination_limit '$value' is not a share below 1" \
    "the share of test replies overlapping the training set above which the report flags the benchmark, e.g. contamination_limit: 0.05"
  # Checked, and kept as jq -c writes it (dataset_args_json puts it in the command as is).
  if [[ -n "${read_bench_settings[extra_params]}" ]]; then
    read_bench_settings["extra_params"]="$(jq -c 'if type == "object" then . else error end' <<<"${read_bench_settings[extra_params]}" 2>/dev/null)" ||
      die "$where: extra_params is not a mapping" "e.g. extra_params: {multiple_correct: true} (the benchmark's EvalScope extra_params)"
  fi
  read_bench_answer_mode read_bench_settings "$where"
  read_bench_source read_bench_settings "$where"
  read_bench_judge read_bench_settings "$where"
  read_bench_perf read_bench_settings "$where"
  read_bench_pairs read_bench_settings "$where"
  # What the full run asks (a pilot's projection scales its measurements to it).
  read_bench_settings["full_limit"]="${read_bench_settings[limit]}" read_bench_settings["full_rows"]="${read_bench_settings[heldout_rows]}"
  read_bench_settings["full_perf_parallel"]="${read_bench_settings[perf_parallel]}" read_bench_settings["full_perf_number"]="${read_bench_settings[perf_number]}"
  if is_pilot; then apply_pilot_scale read_bench_settings; fi
  # EvalScope's JSON arguments, made once per benchmark (build_eval_cmd runs per model).
  read_bench_settings["dataset_args"]="$(dataset_args_json read_bench_settings)"
  apply_answer_mode read_bench_settings "${3:-}"
}

# bench_list ARRAY SETTINGS FIELD: fills ARRAY with the items of a list field of SETTINGS
# (read_bench's), none when it is empty.
bench_list() {
  local -n bench_list_out="$1" bench_list_settings="$2"
  bench_list_out=()
  if [[ -n "${bench_list_settings[$3]}" ]]; then mapfile -t bench_list_out <<<"${bench_list_settings[$3]}"; fi
}

# bench_words SETTINGS FIELD: a list field of SETTINGS, its items on one line, space-separated.
bench_words() {
  local -n bench_words_settings="$1"
  printf '%s' "${bench_words_settings[$2]//$'\n'/ }"
}

# dataset_args_json SETTINGS: the benchmark as EvalScope's --dataset-args, as `jq -c` wrote it
# (the command is fingerprinted: not a byte may differ), built in bash with json_string, as a
# fingerprint reads every benchmark of the experiment. A judged benchmark is scored by the judge
# alone (its rows have no BLEU/ROUGE fallback).
dataset_args_json() {
  local -n dataset_args_json_settings="$1"
  local body="" subsets
  bench_list subsets dataset_args_json_settings subsets
  if ((${#subsets[@]} > 0)); then body="\"subset_list\":$(json_array "${subsets[@]}")"; fi
  if [[ -n "${dataset_args_json_settings[few_shot]}" ]]; then body+="${body:+,}\"few_shot_num\":$((10#${dataset_args_json_settings[few_shot]}))"; fi
  if [[ -n "${dataset_args_json_settings[local_path]}" ]]; then body+="${body:+,}\"local_path\":$(json_string "${dataset_args_json_settings[local_path]}")"; fi
  if [[ -n "${dataset_args_json_settings[extra_params]}" ]]; then body+="${body:+,}\"extra_params\":${dataset_args_json_settings[extra_params]}"; fi
  if [[ -n "${dataset_args_json_settings[judge]}" ]]; then body+="${body:+,}\"metric_list\":[\"acc\"],\"primary_metric\":\"acc\""; fi
  printf '{%s:{%s}}\n' "$(json_string "${dataset_args_json_settings[dataset]}")" "$body"
}

# read_bench_answer_mode SETTINGS WHERE: checks the benchmark's answer_mode (configured_mode).
read_bench_answer_mode() {
  local -n read_bench_answer_mode_settings="$1"
  local where="$2" mode
  bench_value mode "${read_bench_answer_mode_settings[name]}" answer_mode
  [[ -n "$mode" ]] || die "$where: no answer_mode" \
    "add 'answer_mode: final' to the defaults of configs/$CONFIG_EXP/eval.yaml (or reasoning-medium, or plain for a model without gpt-oss channels)"
  [[ " ${ANSWER_MODES[*]} " == *" $mode "* ]] ||
    die "$where: answer_mode '$mode' is not known" "use one of: ${ANSWER_MODES[*]}"
  read_bench_answer_mode_settings["configured_mode"]="$mode"
}

# apply_answer_mode SETTINGS [MODE]: the benchmark of SETTINGS in MODE ("": its answer_mode, the
# results folder's own; an extra mode of the base model has its own folder, result_name): sets
# mode, answer_mode, chat_template_kwargs (what every request carries to ms-swift's template, as
# JSON), replies (harmony: only the final channel is scored, scripts/py/evalscope_lab.py;
# plain: the reply as it is) and generation_config.
apply_answer_mode() {
  local -n apply_answer_mode_settings="$1"
  local mode="${2:-${apply_answer_mode_settings[configured_mode]}}" kwargs replies=harmony generation
  case "$mode" in
    final) kwargs='{"response_prefix":"<|channel|>final<|message|>"}' ;;
    reasoning-*) kwargs="{\"reasoning_effort\":\"${mode#reasoning-}\"}" ;;
    plain) kwargs='{}' replies=plain ;;
  esac
  generation="{\"max_tokens\":${apply_answer_mode_settings[max_tokens]},\"temperature\":${apply_answer_mode_settings[temperature]}"
  if [[ "$kwargs" != '{}' ]]; then generation+=",\"extra_body\":{\"chat_template_kwargs\":$kwargs}"; fi
  generation+="}"
  apply_answer_mode_settings["mode"]="${2:-}" apply_answer_mode_settings["answer_mode"]="$mode" apply_answer_mode_settings["chat_template_kwargs"]="$kwargs"
  apply_answer_mode_settings["replies"]="$replies" apply_answer_mode_settings["generation_config"]="$generation"
}

# Where the questions come from: a local copy (local_path), the run's held-out split
# (source: heldout; built at evaluation time into HELDOUT_DIR), or the hub (neither).
# read_bench_source SETTINGS WHERE: local_path, heldout_rows, fetch (and subsets, limit for them).
read_bench_source() {
  local -n read_bench_source_settings="$1"
  local where="$2" bench="${read_bench_source_settings[name]}" source local_path rows fetch
  bench_value source "$bench" source
  bench_value local_path "$bench" local_path
  read_bench_source_settings["local_path"]="$local_path" read_bench_source_settings["heldout_rows"]="" read_bench_source_settings["fetch"]=""
  case "$source" in
    "") ;;
    heldout)
      [[ -z "$local_path" ]] || die "$where: both local_path and source: heldout" "keep one: the held-out rows are built from the training's val_dataset.jsonl"
      bench_value rows "$bench" rows
      [[ "$rows" =~ ^[1-9][0-9]*$ ]] || die "$where: rows '$rows' is not a positive number" \
        "rows: how many held-out conversations to ask (e.g. rows: 100)"
      read_bench_source_settings["heldout_rows"]="$rows" read_bench_source_settings["local_path"]="$RESULTS_DIR/heldout/$bench"
      read_bench_source_settings["subsets"]=dialog
      read_bench_source_settings["limit"]="" # rows is how many
      return 0
      ;;
    *) die "$where: source '$source' is not known" "source: heldout (rows from the run's held-out split), or a local_path" ;;
  esac
  bench_value fetch "$bench" fetch
  [[ -n "$local_path" ]] || return 0
  local_path="$(abs_path "$local_path")"
  read_bench_source_settings["local_path"]="$local_path"
  # fetch (the suite): a script of ours writes the public source into local_path when it is
  # not there (the real run); `fetch: none` (a shipped sample) never fetches.
  if [[ -n "$fetch" && "$fetch" != none ]]; then
    local words
    read -r -a words <<<"$fetch"
    read_bench_source_settings["fetch"]="$(printf '%s\n' "${words[@]}")"
    [[ -f "$REPO_ROOT/${words[0]}" ]] || die "$where: fetch script ${words[0]} not found" "fix fetch in configs/benchmarks.yaml"
    if [[ ! -d "$local_path" ]]; then
      if [[ -z "${read_bench_source_settings[subsets]}" ]]; then die "$where: a fetched set needs its subsets listed" "list them in its suite entry (subsets: [...])"; fi
      return 0
    fi
  fi
  # EvalScope takes a path that does not exist for a hub id and fails late, offline.
  [[ -d "$local_path" ]] || die "$where: local dataset $(display_path "$local_path") not found" \
    "restore it (git checkout -- $(display_path "$local_path")) or fix local_path"
  local -A counts=()
  local_counts counts "$local_path"
  [[ -z "${LOCAL_SET_ERROR[$local_path]:-}" ]] || die "$where: cannot read $(display_path "$local_path"): ${LOCAL_SET_ERROR[$local_path]}" \
    "repair the set's files (git checkout -- $(display_path "$local_path") restores a shipped one)"
  ((${#counts[@]} > 0)) || die "$where: no subjects found in $(display_path "$local_path")" \
    "it needs one of the layouts scripts/py/local_set.py lists (C-Eval, CMMLU, MMLU, MMLU-Pro, general_qa)"
  # `all` means every subject of the local copy: EvalScope would ask for all of its own.
  if [[ -z "${read_bench_source_settings[subsets]}" ]]; then read_bench_source_settings["subsets"]="$(printf '%s\n' "${!counts[@]}" | sort)"; fi
}

# build_fetch_cmd CMD SETTINGS: the benchmark's fetch script, writing its set into its local_path.
build_fetch_cmd() {
  local -n build_fetch_cmd_out="$1" build_fetch_cmd_settings="$2"
  local words
  bench_list words build_fetch_cmd_settings fetch
  build_fetch_cmd_out=(python "$REPO_ROOT/${words[0]}" "${words[@]:1}" --out "${build_fetch_cmd_settings[local_path]}")
}

# build_contamination_cmd CMD SETTINGS: the overlap of the benchmark's set with the training
# set, measured before scoring on it (scripts/py/contamination.py), into its results folder.
build_contamination_cmd() {
  local -n build_contamination_cmd_out="$1" build_contamination_cmd_settings="$2"
  build_contamination_cmd_out=(python "$REPO_ROOT/scripts/py/contamination.py" --test "${build_contamination_cmd_settings[local_path]}"
    --config "$EXP_DIR/sft.yaml" --repo-root "$REPO_ROOT" --cache-root "$CACHE_ROOT"
    --limit "${build_contamination_cmd_settings[contamination_limit]}" --out "$(contamination_file "$2")")
  if [[ -n "${DATASET:-}" ]]; then build_contamination_cmd_out+=(--dataset "$DATASET"); fi
}
# contamination_file SETTINGS: where the overlap is written, in the evaluation's results folder.
contamination_file() {
  local -n contamination_file_settings="$1"
  printf '%s/lab-contamination.json' "${contamination_file_settings[work_dir]}"
}

# needs_fetch SETTINGS: the benchmark is fetched, and its set is not there yet.
needs_fetch() {
  local -n needs_fetch_settings="$1"
  [[ -n "${needs_fetch_settings[fetch]}" && ! -d "${needs_fetch_settings[local_path]}" ]]
}

# local_counts COUNTS FOLDER: fills the associative array COUNTS[subject] with the questions of
# each subject in FOLDER (scripts/py/local_set.py); none when FOLDER does not exist (yet).
# Each folder is read once per process (the fingerprints read each set once per model and
# mode) into LOCAL_SET_LISTING[folder]; one that does not exist yet (a set fetched or built
# later) is not remembered. LOCAL_SET_ERROR[folder]: why it could not be read (a broken
# file); the other folders are still listed.
declare -gA LOCAL_SET_LISTING=() LOCAL_SET_ERROR=()
local_counts() {
  local -n local_counts_out="$1"
  local folder="$2" subject count
  local_counts_out=()
  [[ -d "$folder" ]] || return 0
  if [[ -z "${LOCAL_SET_LISTING[$folder]+set}" ]]; then list_local_sets "$folder"; fi
  while IFS=$'\t' read -r subject count; do
    if [[ -n "$subject" ]]; then local_counts_out["$subject"]="$count"; fi
  done <<<"${LOCAL_SET_LISTING[$folder]}"
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
  local -n read_bench_judge_settings="$1"
  local where="$2" judge
  bench_value judge "${read_bench_judge_settings[name]}" judge
  if [[ -n "$judge" ]]; then
    judge="$(abs_path "$judge")"
    [[ -f "$judge" ]] || die "$where: judge rubric $(display_path "$judge") not found" \
      "restore it (git checkout -- $(display_path "$judge")) or fix judge"
  fi
  read_bench_judge_settings["judge"]="$judge"
}

# kind: perf: `evalscope perf` at the concurrency levels in parallel, number requests each.
read_bench_perf() {
  local -n read_bench_perf_settings="$1"
  local where="$2" value parallel=() numbers=()
  read_bench_perf_settings["perf_parallel"]="" read_bench_perf_settings["perf_number"]=""
  [[ "${read_bench_perf_settings[kind]}" == perf ]] || return 0
  mapfile -t parallel < <(config_items "$(bench_setting "${read_bench_perf_settings[name]}" parallel)")
  mapfile -t numbers < <(config_items "$(bench_setting "${read_bench_perf_settings[name]}" number)")
  ((${#parallel[@]} > 0 && ${#parallel[@]} == ${#numbers[@]})) ||
    die "$where: parallel and number must be lists of the same length" "e.g. parallel: [1, 4, 8] and number: [16, 64, 128]"
  for value in "${parallel[@]}" "${numbers[@]}"; do
    [[ "$value" =~ ^[1-9][0-9]*$ ]] || die "$where: '$value' in parallel or number is not a positive number" "use whole numbers"
  done
  [[ -n "${read_bench_perf_settings[heldout_rows]}" ]] || die "$where: a perf benchmark needs source: heldout" "its prompts are the held-out conversations"
  read_bench_perf_settings["perf_parallel"]="$(printf '%s\n' "${parallel[@]}")" read_bench_perf_settings["perf_number"]="$(printf '%s\n' "${numbers[@]}")"
}

# kind: arena: pairs, the benchmarks of eval.yaml whose replies of both models it compares.
read_bench_pairs() {
  local -n read_bench_pairs_settings="$1"
  local where="$2" pair pairs=()
  read_bench_pairs_settings["pairs"]=""
  [[ "${read_bench_pairs_settings[kind]}" == arena ]] || return 0
  mapfile -t pairs < <(config_items "$(bench_setting "${read_bench_pairs_settings[name]}" pairs)")
  ((${#pairs[@]} > 0)) || die "$where: an arena benchmark names no pairs" \
    "list the benchmarks whose replies it compares, e.g. pairs: [dialog, psydt-turns]"
  for pair in "${pairs[@]}"; do
    [[ " ${BENCHMARKS[*]} " == *" $pair "* ]] || die "$where: pairs names '$pair', which configs/$CONFIG_EXP/eval.yaml does not evaluate" \
      "add '$pair' to its benchmarks, or leave it out of pairs (evaluated: ${BENCHMARKS[*]})"
    [[ "$(bench_setting "$pair" kind)" != perf ]] || die "$where: pairs names '$pair', a serving-speed benchmark with no replies to compare" \
      "pair benchmarks whose replies are scored, e.g. dialog"
  done
  read_bench_pairs_settings["pairs"]="$(printf '%s\n' "${pairs[@]}")"
}

# A pilot asks a few questions of every benchmark (common.sh's load_pilot_config): at most
# `limit` per subject, at most `rows` held-out conversations, and of a perf benchmark one
# level, its highest concurrency, with `perf_number` requests (at least one per slot).
# apply_pilot_scale SETTINGS.
apply_pilot_scale() {
  local -n apply_pilot_scale_settings="$1"
  load_pilot_config
  local limit="${PILOT_CONFIG[limit]}" rows="${PILOT_CONFIG[rows]}" number="${PILOT_CONFIG[perf_number]}" top=0 level levels
  if [[ -n "${apply_pilot_scale_settings[heldout_rows]}" ]]; then
    ((apply_pilot_scale_settings[heldout_rows] <= rows)) || apply_pilot_scale_settings["heldout_rows"]="$rows"
  elif [[ -z "${apply_pilot_scale_settings[limit]}" ]] || ((apply_pilot_scale_settings[limit] > limit)); then
    apply_pilot_scale_settings["limit"]="$limit"
  fi
  [[ "${apply_pilot_scale_settings[kind]}" == perf ]] || return 0
  bench_list levels apply_pilot_scale_settings perf_parallel
  for level in "${levels[@]}"; do ((level <= top)) || top="$level"; done
  apply_pilot_scale_settings["perf_parallel"]="$top"
  apply_pilot_scale_settings["perf_number"]="$((number > top ? number : top))"
}

# expected_question_count SETTINGS [LIMIT]: the questions an evaluation of the benchmark must
# score (at LIMIT per subject, "" for all; default its limit), when its local copy tells;
# nothing otherwise (a set not fetched yet: EvalScope's count is checked per subject).
expected_question_count() {
  local -n expected_question_count_settings="$1"
  local limit="${2-${expected_question_count_settings[limit]}}" subject count total=0 subsets
  local -A counts=()
  [[ -n "${expected_question_count_settings[local_path]}" ]] || return 0
  local_counts counts "${expected_question_count_settings[local_path]}"
  ((${#counts[@]} > 0)) || return 0
  bench_list subsets expected_question_count_settings subsets
  for subject in "${subsets[@]}"; do
    count="${counts[$subject]:-}"
    [[ -n "$count" ]] || return 0
    if [[ -n "$limit" ]] && ((count > limit)); then count="$limit"; fi
    total=$((total + count))
  done
  printf '%s' "$total"
}

# judge_config SETTINGS SIDE: the judge of the benchmark (its rubric, judge): JUDGE_MODEL at
# JUDGE_API_URL, or with JUDGE_MODEL=served SIDE's served model itself (a placeholder that
# exercises the path: its scores mean nothing). Empty when no judge is configured. The judge
# replies with at most the benchmark's max_tokens.
judge_config() {
  local -n judge_config_settings="$1"
  judge_configured "$1" || return 0
  local model="$JUDGE_MODEL" url="${JUDGE_API_URL:-}"
  if [[ "$JUDGE_MODEL" == served ]]; then model="$(served_name "$2")" url="$(api_base "$2")"; fi
  jq -nc --arg model "$model" --arg url "$url" --arg max_tokens "${judge_config_settings[max_tokens]}" --rawfile template "${judge_config_settings[judge]}" \
    '{strategy: "llm", models: [{model_id: $model, api_url: $url,
      generation_config: {temperature: 0, max_tokens: ($max_tokens | tonumber)}}],
      contract: {score_type: "numeric", prompt_template: $template}}'
}

# evalscope_command CMD SETTINGS SIDE: adds to command CMD evalscope, or its launcher
# (scripts/py/evalscope_lab.py) when the model answers in harmony (only the final channel is
# scored), a key has no environment variable in EvalScope (SERVE_API_KEY for perf,
# JUDGE_API_KEY for the judge: no key is ever in argv), or an evaluation's HTML page is not to
# be written (EVALSCOPE_HTML=0).
evalscope_command() {
  local -n evalscope_command_out="$1" evalscope_command_settings="$2"
  local needs_launcher=0 kind="${evalscope_command_settings[kind]}"
  if [[ "$kind" != perf && "${EVALSCOPE_HTML:-1}" == 0 ]]; then needs_launcher=1; evalscope_command_out+=(EVALSCOPE_HTML=0); fi
  if [[ "$kind" == perf && -n "${SERVE_API_KEY:-}" ]]; then needs_launcher=1; evalscope_command_out+=("SERVE_API_KEY=${SECRET_MARK}SERVE_API_KEY"); fi
  if judge_configured "$2" && [[ -n "${JUDGE_API_KEY:-}" ]]; then needs_launcher=1; evalscope_command_out+=("JUDGE_API_KEY=${SECRET_MARK}JUDGE_API_KEY"); fi
  if [[ "$kind" != perf && "${evalscope_command_settings[replies]}" == harmony ]]; then
    evalscope_command_out+=(python "$REPO_ROOT/scripts/py/evalscope_lab.py" --replies harmony)
  elif ((needs_launcher)); then
    evalscope_command_out+=(python "$REPO_ROOT/scripts/py/evalscope_lab.py")
  else
    evalscope_command_out+=(evalscope)
  fi
}

# build_heldout_cmd CMD SETTINGS: the rows of a source: heldout benchmark, from the training's
# held-out split (never trained on), into its local_path.
build_heldout_cmd() {
  local -n build_heldout_cmd_out="$1" build_heldout_cmd_settings="$2"
  build_heldout_cmd_out=(python "$REPO_ROOT/scripts/py/heldout_set.py" --val "$RUN_DIR/val_dataset.jsonl"
    --rows "${build_heldout_cmd_settings[heldout_rows]}" --out "${build_heldout_cmd_settings[local_path]}")
}

# build_eval_cmd CMD SETTINGS SIDE: the EvalScope run of the benchmark of SETTINGS (read_bench's,
# in the mode applied last) on SIDE's model; sets SETTINGS[work_dir], the results folder.
build_eval_cmd() {
  local -n build_eval_cmd_out="$1" build_eval_cmd_settings="$2"
  local side="$3" judge name api result limit="${build_eval_cmd_settings[limit]}"
  served_name -v name "$side"
  api_base -v api "$side"
  result_name -v result "$side" "${build_eval_cmd_settings[mode]}"
  build_eval_cmd_settings["work_dir"]="$RESULTS_DIR/$result/${build_eval_cmd_settings[name]}"
  build_eval_cmd_out=()
  add_common_tool_env build_eval_cmd_out
  if [[ "${build_eval_cmd_settings[kind]}" == perf ]]; then build_perf_cmd build_eval_cmd_out "$2" "$side"; return 0; fi
  # The key travels in the environment: EvalScope reads EVALSCOPE_API_KEY when --api-key is empty.
  local api_key=EMPTY
  if [[ -n "${SERVE_API_KEY:-}" ]]; then api_key=""; build_eval_cmd_out+=("EVALSCOPE_API_KEY=${SECRET_MARK}SERVE_API_KEY"); fi
  evalscope_command build_eval_cmd_out "$2" "$side"
  build_eval_cmd_out+=(eval --eval-type openai_api --api-url "$api" --api-key "$api_key"
    --model "$name" --datasets "${build_eval_cmd_settings[dataset]}" --dataset-args "${build_eval_cmd_settings[dataset_args]}")
  if [[ -n "$limit" ]]; then build_eval_cmd_out+=(--limit "$limit"); fi
  # Concurrent requests grow with the GPUs the server spreads over (lmdeploy_tp = NPROC);
  # EvalScope's own default (8) is left implicit.
  local batch=$((${build_eval_cmd_settings[eval_batch_size]:-8} * NPROC))
  if ((batch != 8)); then build_eval_cmd_out+=(--eval-batch-size "$batch"); fi
  judge="$(judge_config "$2" "$side")"
  if [[ -n "$judge" ]]; then build_eval_cmd_out+=(--judge "$judge"); fi
  build_eval_cmd_out+=(--generation-config "${build_eval_cmd_settings[generation_config]}" --work-dir "${build_eval_cmd_settings[work_dir]}" --no-timestamp)
}

# build_perf_cmd CMD SETTINGS SIDE: adds to command CMD `evalscope perf` against SIDE's served
# model, the held-out conversations as prompts (one JSON message list a line), at each
# concurrency level.
build_perf_cmd() {
  local -n build_perf_cmd_out="$1" build_perf_cmd_settings="$2"
  local parallel number name api kwargs="${build_perf_cmd_settings[chat_template_kwargs]}"
  bench_list parallel build_perf_cmd_settings perf_parallel
  bench_list number build_perf_cmd_settings perf_number
  served_name -v name "$3"
  api_base -v api "$3"
  evalscope_command build_perf_cmd_out "$2" "$3"
  build_perf_cmd_out+=(perf --api openai --url "$api/chat/completions" --model "$name"
    --dataset line_by_line --dataset-path "${build_perf_cmd_settings[local_path]}/prompts.txt"
    --parallel "${parallel[@]}" --number "${number[@]}" --max-tokens "${build_perf_cmd_settings[max_tokens]}"
    --temperature "${build_perf_cmd_settings[temperature]}" --outputs-dir "${build_perf_cmd_settings[work_dir]}" --name perf --no-timestamp)
  # Serving speed in the answer mode the benchmarks use (a prefilled final channel
  # answers in fewer tokens than reasoning first).
  if [[ "$kwargs" != '{}' ]]; then build_perf_cmd_out+=(--extra-args "{\"chat_template_kwargs\":$kwargs}"); fi
}

# read_session_limit SESSION SIDE: fills the associative array SESSION with the server's session
# length (limit): deploy.yaml's lmdeploy_session_len (lmdeploy, on GPUs) or max_length, else
# the served model's max_position_embeddings; empty when unknown. Its key names where it comes
# from; its system is the served system prompt file (or empty).
read_session_limit() {
  local -n read_session_limit_out="$1"
  local -A deploy=()
  local model limit key=max_length system
  load_sft_config
  model="$(served_model "$2")"
  load_config "$EXP_DIR/deploy.yaml" deploy
  limit="${deploy[max_length]:-}"
  if [[ "$GPU" != cpu && -n "${deploy[lmdeploy_session_len]:-}" ]]; then
    limit="${deploy[lmdeploy_session_len]}" key=lmdeploy_session_len
  fi
  if [[ -z "$limit" && -f "$model/config.json" ]]; then
    limit="$(jq -r '.max_position_embeddings // empty' "$model/config.json")" key=max_position_embeddings
  fi
  system="${deploy[system]:-}"
  if [[ -n "$system" && "$system" == *.txt ]]; then system="$(abs_path "$system")"; else system=""; fi
  read_session_limit_out=([limit]="$limit" [key]="$key" [system]="$system")
}

# describe_bench SETTINGS SIDE: a comment line saying what the benchmark asks of SIDE's model.
describe_bench() {
  local -n describe_bench_settings="$1"
  local name judged="${describe_bench_settings[judge]:+, judged}"
  name="$(served_name "$2")"
  if [[ "${describe_bench_settings[kind]}" == perf ]]; then
    printf '# %s: evalscope perf on %s, %s requests at concurrency %s\n' "${describe_bench_settings[name]}" "$name" \
      "$(bench_words "$1" perf_number)" "$(bench_words "$1" perf_parallel)"
  elif [[ -n "${describe_bench_settings[heldout_rows]}" ]]; then
    printf '# %s: %s on %s, %s held-out conversations%s\n' "${describe_bench_settings[name]}" "${describe_bench_settings[dataset]}" "$name" \
      "${describe_bench_settings[heldout_rows]}" "$judged"
  else
    printf '# %s: %s on %s, limit %s per subject%s\n' "${describe_bench_settings[name]}" "${describe_bench_settings[dataset]}" "$name" \
      "${describe_bench_settings[limit]:-none}" "$judged"
  fi
}

# judge_configured SETTINGS: the benchmark is judged, and the env file names its judge;
# judge_unconfigured SETTINGS: it is judged, and the env file names none.
judge_configured() {
  local -n judge_configured_settings="$1"
  [[ -n "${judge_configured_settings[judge]}" && -n "${JUDGE_MODEL:-}" ]]
}
judge_unconfigured() {
  local -n judge_unconfigured_settings="$1"
  [[ -n "${judge_unconfigured_settings[judge]}" && -z "${JUDGE_MODEL:-}" ]]
}

# report_file SETTINGS SIDE: where EvalScope writes its report of the evaluation of SETTINGS
# (build_eval_cmd set its work_dir) on SIDE's model.
report_file() {
  local -n report_file_settings="$1"
  local name
  served_name -v name "$2"
  if [[ "${report_file_settings[kind]}" == perf ]]; then
    printf '%s/perf' "${report_file_settings[work_dir]}"
  else
    printf '%s/reports/%s/%s.json' "${report_file_settings[work_dir]}" "$name" "${report_file_settings[dataset]}"
  fi
}

# build_eval_result_cmd CMD SETTINGS SIDE OUT [DIGEST] [SECONDS]: checks the EvalScope report of
# the evaluation of SETTINGS (build_eval_cmd) on SIDE's model, of as many questions as its set
# tells (expected_question_count), and writes its result to OUT (scripts/py/eval_result.py: the
# only source of scores for the report and SwanLab).
build_eval_result_cmd() {
  local -n build_eval_result_cmd_out="$1" build_eval_result_cmd_settings="$2"
  local side="$3" name kind="${build_eval_result_cmd_settings[kind]}" scorer="${build_eval_result_cmd_settings[scorer]}"
  local work_dir="${build_eval_result_cmd_settings[work_dir]}" expected="" parallel number subjects
  served_name -v name "$side"
  build_eval_result_cmd_out=(python "$REPO_ROOT/scripts/py/eval_result.py" --report "$(report_file "$2" "$side")"
    --benchmark "${build_eval_result_cmd_settings[name]}" --model "$name" --config "configs/$CONFIG_EXP/eval.yaml" --out "$4")
  if [[ "$kind" == perf ]]; then
    bench_list parallel build_eval_result_cmd_settings perf_parallel
    bench_list number build_eval_result_cmd_settings perf_number
    build_eval_result_cmd_out+=(--perf --parallel "${parallel[@]}" --number "${number[@]}")
  else
    expected="$(expected_question_count "$2")"
  fi
  if [[ -n "$expected" ]]; then build_eval_result_cmd_out+=(--expected-num "$expected"); fi
  if [[ -n "${build_eval_result_cmd_settings[aggregate]}" ]]; then build_eval_result_cmd_out+=(--aggregate "${build_eval_result_cmd_settings[aggregate]}"); fi
  if [[ -n "$scorer" ]]; then build_eval_result_cmd_out+=(--scorer "$scorer"); fi
  if [[ "$scorer" == cpsycoune ]]; then build_eval_result_cmd_out+=(--turns "${build_eval_result_cmd_settings[local_path]}/turns.json"); fi
  if [[ -n "${build_eval_result_cmd_settings[contamination_limit]}" ]]; then build_eval_result_cmd_out+=(--contamination "$(contamination_file "$2")"); fi
  if [[ "$kind" != perf ]]; then
    build_eval_result_cmd_out+=(--replies-dir "$work_dir" --max-tokens "${build_eval_result_cmd_settings[max_tokens]}"
      --answer-mode "${build_eval_result_cmd_settings[answer_mode]}")
    if [[ -n "${build_eval_result_cmd_settings[cut_off_limit]}" ]]; then build_eval_result_cmd_out+=(--cut-off-limit "${build_eval_result_cmd_settings[cut_off_limit]}"); fi
    # The fine-tuned model's tokenizer is the base model's: either tells the final channel's tokens.
    local folder
    load_sft_config
    for folder in "$(served_model "$side")" "$EXPORT_DIR"; do
      if [[ -f "$folder/tokenizer.json" ]]; then build_eval_result_cmd_out+=(--tokenizer "$folder"); break; fi
    done
  fi
  if [[ -n "${build_eval_result_cmd_settings[judge]}" ]]; then
    build_eval_result_cmd_out+=(--judged --judge-model "$JUDGE_MODEL")
    # The served model judging itself only exercises the path.
    if [[ "$JUDGE_MODEL" == served ]]; then build_eval_result_cmd_out+=(--judge-placeholder); fi
  fi
  local subject
  if [[ "$kind" != perf ]]; then
    bench_list subjects build_eval_result_cmd_settings subsets
    for subject in "${subjects[@]}"; do build_eval_result_cmd_out+=(--subject "$subject"); done
  fi
  if [[ -n "${5:-}" ]]; then build_eval_result_cmd_out+=(--inputs-digest "$5"); fi
  if [[ -n "${6:-}" ]]; then build_eval_result_cmd_out+=(--seconds "$6"); fi
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

# arena_judge_config SETTINGS: the judge of the arena (--judge): JUDGE_MODEL at JUDGE_API_URL, or
# with JUDGE_MODEL=served the fine-tuned model's server (a placeholder). No contract: general_arena
# brings its own prompt and verdict schema (A>>B ... B>>A); both orders are asked (position_swap,
# the adapter's official protocol, stated). Empty when no judge is configured.
arena_judge_config() {
  local -n arena_judge_config_settings="$1"
  [[ -n "${JUDGE_MODEL:-}" ]] || return 0
  local model="$JUDGE_MODEL" url="${JUDGE_API_URL:-}"
  if [[ "$JUDGE_MODEL" == served ]]; then model="$(served_name "")" url="$(api_base "")"; fi
  jq -nc --arg model "$model" --arg url "$url" --arg max_tokens "${arena_judge_config_settings[max_tokens]}" \
    '{strategy: "llm", position_swap: "on", models: [{model_id: $model, api_url: $url,
      generation_config: {temperature: 0, max_tokens: ($max_tokens | tonumber)}}]}'
}

# build_arena_cmd CMD SETTINGS PAIR: the general_arena run on PAIR's replies of both models
# (SETTINGS: read_bench's of the arena); sets SETTINGS[work_dir], the pair's results folder. The
# judge's key, if any, only in the environment.
build_arena_cmd() {
  local -n build_arena_cmd_out="$1" build_arena_cmd_settings="$2"
  local pair="$3" tuned base args limit="${build_arena_cmd_settings[limit]}"
  build_arena_cmd_settings["work_dir"]="$(arena_dir)/$pair"
  tuned="$(arena_report_path "$EXP" "$pair")" base="$(arena_report_path "$EXP-base" "$pair")"
  args="$(jq -nc --arg tuned "$EXP" --arg base "$EXP-base" --arg tuned_path "$tuned" --arg base_path "$base" \
    '{general_arena: {extra_params: {models: [{name: $tuned, report_path: $tuned_path},
      {name: $base, report_path: $base_path}], baseline: $base}}}')"
  build_arena_cmd_out=()
  add_common_tool_env build_arena_cmd_out
  if [[ -n "${JUDGE_API_KEY:-}" ]]; then build_arena_cmd_out+=("JUDGE_API_KEY=${SECRET_MARK}JUDGE_API_KEY"); fi
  if [[ "${EVALSCOPE_HTML:-1}" == 0 ]]; then build_arena_cmd_out+=(EVALSCOPE_HTML=0); fi
  build_arena_cmd_out+=(python "$REPO_ROOT/scripts/py/evalscope_lab.py")
  # a gpt-oss judge's final channel is its verdict
  if [[ "${build_arena_cmd_settings[replies]}" == harmony ]]; then build_arena_cmd_out+=(--replies harmony); fi
  build_arena_cmd_out+=(eval --eval-type mock_llm --model "$ARENA_BENCH" --datasets general_arena --dataset-args "$args")
  if [[ -n "$limit" ]]; then build_arena_cmd_out+=(--limit "$limit"); fi
  build_arena_cmd_out+=(--eval-batch-size "${build_arena_cmd_settings[eval_batch_size]:-8}" --judge "$(arena_judge_config "$2")"
    --work-dir "${build_arena_cmd_settings[work_dir]}" --no-timestamp)
}

# build_arena_result_cmd CMD SETTINGS OUT [DIGEST] [SECONDS]: the arena's result from its runs'
# reviews and reports (scripts/py/eval_result.py --arena: win / tie / loss, the win rates), into OUT.
build_arena_result_cmd() {
  local -n build_arena_result_cmd_out="$1"
  local pair pairs
  bench_list pairs "$2" pairs
  build_arena_result_cmd_out=(python "$REPO_ROOT/scripts/py/eval_result.py" --arena --benchmark "$ARENA_BENCH" --model "$EXP"
    --baseline "$EXP-base" --config "configs/$CONFIG_EXP/eval.yaml" --out "$3" --judge-model "$JUDGE_MODEL")
  if [[ "$JUDGE_MODEL" == served ]]; then build_arena_result_cmd_out+=(--judge-placeholder); fi
  for pair in "${pairs[@]}"; do
    build_arena_result_cmd_out+=(--pair "$pair" "$(arena_dir)/$pair" "$RESULTS_DIR/$EXP/$pair/$EVAL_DONE_FILE" "$RESULTS_DIR/$EXP-base/$pair/$EVAL_DONE_FILE")
  done
  if [[ -n "${4:-}" ]]; then build_arena_result_cmd_out+=(--inputs-digest "$4"); fi
  if [[ -n "${5:-}" ]]; then build_arena_result_cmd_out+=(--seconds "$5"); fi
}
