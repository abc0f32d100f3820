#!/usr/bin/env bash
# make report of a pilot (EXP=<exp>-pilot; make pilot runs it last): report/<exp>-pilot.md,
# the full run of <exp> projected step by step from the pilot's measurements. This script
# gathers what the shell's builders know, for the full run and for the pilot: each
# benchmark's settings (lib/eval_config.sh read_bench keeps the full run's beside the
# pilot's), the question counts of local sets, the longest prompts (scripts/py/prompt_budget.py
# with the served tokenizer) and the server's session length, into a plan (JSON);
# scripts/py/pilot.py reads the pilot's own files, computes and renders (report/pilot.zh.md).
set -euo pipefail
export STEP_NAME=pilot
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/server.sh
source "$REPO_ROOT/scripts/lib/server.sh"
# shellcheck source=lib/commands.sh
source "$REPO_ROOT/scripts/lib/commands.sh"
# shellcheck source=lib/eval_config.sh
source "$REPO_ROOT/scripts/lib/eval_config.sh"

PILOT_TEMPLATE="$REPO_ROOT/report/pilot.zh.md"
declare -A SESSION=() # the fine-tuned model's server session (read_session_limit, in main)

# hub_subject_count DATASET: the subjects of a hub dataset EvalScope knows, counted (empty when
# it cannot tell).
hub_subject_count() {
  local subjects
  subjects="$(python "$REPO_ROOT/scripts/py/eval_subjects.py" "$1" 2>/dev/null || true)"
  [[ -n "$subjects" ]] && grep -c . <<<"$subjects"
}

# full_question_count SETTINGS: FULL_NUM, the questions the full run asks of the benchmark
# (exact for a local or held-out set), else FULL_BOUND (limit x subjects, at most) and
# SUBJECT_COUNT. A held-out set is built at full size into $WORK/<bench> (its prompts are
# measured there too).
full_question_count() {
  local -n full_question_count_settings="$1"
  local full_limit="${full_question_count_settings[full_limit]}" subsets
  FULL_NUM="" FULL_BOUND="" SUBJECT_COUNT="" PROMPT_DIR=""
  if [[ "${full_question_count_settings[kind]}" == perf ]]; then
    FULL_NUM=0
    local number numbers
    bench_list numbers "$1" full_perf_number
    for number in "${numbers[@]}"; do FULL_NUM=$((FULL_NUM + number)); done
  elif [[ -n "${full_question_count_settings[full_rows]}" ]]; then
    PROMPT_DIR="$WORK/${full_question_count_settings[name]}"
    if python "$REPO_ROOT/scripts/py/heldout_set.py" --val "$RUN_DIR/val_dataset.jsonl" --rows "${full_question_count_settings[full_rows]}" \
      --out "$PROMPT_DIR" 2>/dev/null; then
      FULL_NUM="$(grep -c . "$PROMPT_DIR/dialog.jsonl")"
    else
      PROMPT_DIR=""
    fi
  elif [[ -n "${full_question_count_settings[local_path]}" ]]; then
    FULL_NUM="$(expected_question_count "$1" "$full_limit")"
    PROMPT_DIR="${full_question_count_settings[local_path]}"
  else
    bench_list subsets "$1" subsets
    SUBJECT_COUNT="${#subsets[@]}"
    if ((SUBJECT_COUNT == 0)); then SUBJECT_COUNT="$(hub_subject_count "${full_question_count_settings[dataset]}" || true)"; fi
    if [[ -n "$full_limit" && -n "$SUBJECT_COUNT" ]]; then FULL_BOUND=$((full_limit * SUBJECT_COUNT)); fi
  fi
}

# pilot_question_count SETTINGS: PILOT_NUM, what the pilot asked of the benchmark (a local set's
# count at the pilot's limit, the held-out rows it built, the perf requests).
pilot_question_count() {
  local -n pilot_question_count_settings="$1"
  local local_path="${pilot_question_count_settings[local_path]}" numbers
  PILOT_NUM=""
  if [[ "${pilot_question_count_settings[kind]}" == perf ]]; then
    bench_list numbers "$1" perf_number
    PILOT_NUM="${numbers[0]}"
  elif [[ -n "${pilot_question_count_settings[heldout_rows]}" ]]; then
    if [[ -f "$local_path/dialog.jsonl" ]]; then PILOT_NUM="$(grep -c . "$local_path/dialog.jsonl")"; fi
  elif [[ -n "$local_path" ]]; then
    PILOT_NUM="$(expected_question_count "$1")"
  fi
}

# bench_plan SETTINGS: one JSON object, the benchmark in the full run and in the pilot
# (measured: the pilot evaluated it; see its section's `benchmarks`).
bench_plan() {
  local -n bench_plan_settings="$1"
  local bench="${bench_plan_settings[name]}" batch="${bench_plan_settings[eval_batch_size]:-8}" skipped="" measured=""
  local work_dir="$RESULTS_DIR/$EXP/$bench" # the fine-tuned model's
  if judge_unconfigured "$1"; then skipped="no judge configured"; fi
  if [[ " ${BENCHMARKS[*]} " == *" $bench "* ]]; then measured=1; fi
  jq -nc --arg name "$bench" --arg kind "${bench_plan_settings[kind]}" --arg dataset "${bench_plan_settings[dataset]}" \
    --arg group "$(bench_group "$bench")" --arg max_tokens "${bench_plan_settings[max_tokens]}" --arg concurrency "$((batch * NPROC))" \
    --arg eval_batch_size "$batch" --arg full_num "$FULL_NUM" --arg full_bound "$FULL_BOUND" \
    --arg subjects "$SUBJECT_COUNT" --arg full_limit "${bench_plan_settings[full_limit]}" --arg full_rows "${bench_plan_settings[full_rows]}" \
    --arg pilot_num "$PILOT_NUM" --arg pilot_limit "${bench_plan_settings[limit]}" --arg pilot_rows "${bench_plan_settings[heldout_rows]}" \
    --arg full_parallel "$(bench_words "$1" full_perf_parallel)" --arg full_number "$(bench_words "$1" full_perf_number)" \
    --arg pilot_parallel "$(bench_words "$1" perf_parallel)" --arg pilot_number "$(bench_words "$1" perf_number)" \
    --arg local "${bench_plan_settings[local_path]:+1}" --arg judged "${bench_plan_settings[judge]:+1}" --arg skipped "$skipped" \
    --arg measured "$measured" --arg result "$work_dir/$EVAL_DONE_FILE" --arg rejected "$work_dir/$EVAL_REJECTED_FILE" '
    def int: if . == "" then null else tonumber end;
    def ints: [splits(" ") | select(. != "") | tonumber];
    {name: $name, kind: $kind, dataset: $dataset, group: $group, max_tokens: ($max_tokens | int),
     concurrency: ($concurrency | int), eval_batch_size: ($eval_batch_size | int), local: ($local == "1"),
     judged: ($judged == "1"), skipped: (if $skipped == "" then null else $skipped end), measured: ($measured == "1"),
     full: {questions: ($full_num | int), bound: ($full_bound | int), subjects: ($subjects | int),
            limit: ($full_limit | int), rows: ($full_rows | int), parallel: ($full_parallel | ints),
            number: ($full_number | ints)},
     pilot: {questions: ($pilot_num | int), limit: ($pilot_limit | int), rows: ($pilot_rows | int),
             parallel: ($pilot_parallel | ints), number: ($pilot_number | ints)},
     result: $result, rejected: $rejected}'
}

# measure_prompts: the longest prompt of each set in PROMPT_SETS (NAME DIR FEW_SHOT MAX_TOKENS
# ...), in the fine-tuned model's tokens, one `NAME<TAB>TOKENS` line each (nothing without a
# tokenizer), with the served system prompt (SESSION).
measure_prompts() {
  local model i
  model="$(served_model "")"
  ((${#PROMPT_SETS[@]} > 0)) && [[ -f "$model/tokenizer.json" ]] || return 0
  local args=(--tokenizer "$model" --session-len 1000000000)
  if [[ -n "${SESSION[system]}" ]]; then args+=(--system "${SESSION[system]}"); fi
  for ((i = 0; i < ${#PROMPT_SETS[@]}; i += 4)); do args+=(--set "${PROMPT_SETS[@]:i:4}"); done
  python "$REPO_ROOT/scripts/py/prompt_budget.py" "${args[@]}" | cut -f1,2 || true
}

# write_plan FILE: the plan pilot.py reads.
write_plan() {
  local bench benches="$WORK/benches.jsonl" prompts="$WORK/prompts.tsv"
  PROMPT_SETS=()
  : >"$benches"
  local -A settings=()
  for bench in "${ALL_BENCHMARKS[@]}"; do
    read_bench settings "$bench"
    pilot_question_count settings
    full_question_count settings
    if [[ -n "$PROMPT_DIR" ]]; then PROMPT_SETS+=("$bench" "$PROMPT_DIR" "${settings[few_shot]:-0}" "${settings[max_tokens]}"); fi
    bench_plan settings >>"$benches"
  done
  measure_prompts >"$prompts"
  jq -n --arg exp "$EXP" --arg pilot_of "$PILOT_OF" --arg gpu "$GPU" --arg nproc "$NPROC" --arg nnodes "$NNODES" \
    --arg run_dir "$RUN_DIR" --arg export_dir "$EXPORT_DIR" --arg steps "$STATE_DIR/$EXP/steps.jsonl" \
    --arg sft "$EXP_DIR/sft.yaml" --arg requirements "$EXP_DIR/requirements.env" \
    --arg session_limit "${SESSION[limit]}" --arg session_key "${SESSION[key]}" \
    --arg max_steps "${PILOT_CONFIG[max_steps]}" --arg limit "${PILOT_CONFIG[limit]}" \
    --arg rows "${PILOT_CONFIG[rows]}" --arg perf_number "${PILOT_CONFIG[perf_number]}" \
    --arg config "configs/$CONFIG_EXP" --rawfile prompts "$prompts" --slurpfile benchmarks "$benches" '
    def int: if . == "" then null else tonumber end;
    {exp: $exp, pilot_of: $pilot_of, config: $config, gpu: $gpu, nproc: ($nproc | int), nnodes: ($nnodes | int),
     run_dir: $run_dir, export_dir: $export_dir, steps: $steps, sft: $sft, requirements: $requirements,
     session: {limit: ($session_limit | int), key: $session_key},
     scale: {max_steps: ($max_steps | int), limit: ($limit | int), rows: ($rows | int), perf_number: ($perf_number | int)},
     prompt_tokens: ([$prompts | splits("\n") | select(. != "") | split("\t") | {(.[0]): (.[1] | tonumber)}] | add // {}),
     benchmarks: $benchmarks}' >"$1"
}

main() {
  SKIP_GPU_CHECK=1 load_env
  is_pilot || die "EXP=$EXP is a full run; the projection is the report of a pilot" "run make pilot EXP=$EXP (or make report EXP=$EXP-pilot after it)"
  if is_dry_run; then
    printf '# the full run of %s projected from this pilot: %s\n' "$PILOT_OF" "$(display_path "$REPORT_DIR/$EXP.md")"
    local cmd
    build_pilot_report_cmd cmd
    run_cmd "${cmd[@]}"
    return 0
  fi
  begin_step
  require_command jq
  [[ -f "$RUN_DIR/logging.jsonl" ]] || die "the pilot has not trained yet ($(repo_relative "$RUN_DIR")/logging.jsonl is missing)" \
    "run make pilot EXP=$PILOT_OF"
  load_eval_config
  load_pilot_config
  read_session_limit SESSION ""
  WORK="$(mktemp -d)"
  # shellcheck disable=SC2154 # status is set in the trap itself
  trap 'status=$?; rm -rf "$WORK"; record_event end "exit $status"' EXIT
  write_plan "$WORK/plan.json"
  mkdir -p "$REPORT_DIR"
  run_cmd python "$REPO_ROOT/scripts/py/pilot.py" --plan "$WORK/plan.json" --template "$PILOT_TEMPLATE" \
    --out "$REPORT_DIR/$EXP.md" || die "could not write the pilot's report (see above)" "read the error above"
}

main "$@"
