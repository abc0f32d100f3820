# shellcheck shell=bash
# shellcheck disable=SC2034,SC2153 # globals set here are read by the sourcing scripts; EXPORT_DIR comes from env.sh
# What each step is made from, and whether its outputs were made from exactly that
# (scripts/py/fingerprint.py holds the rules). The pipeline's steps and what each needs are
# declared in scripts/pipeline.mk; fingerprinted, some are finer:
#   train                 swift sft           output: $RUN_DIR
#   export                swift export        output: $EXPORT_DIR
#   serve, serve-base     swift deploy of the export / of the base model     (upstream: export / base-model)
#   eval-<served>-<bench> one EvalScope run   output: $RESULTS_DIR/<served>/<bench>  (upstream: serve)
#   arena                 general_arena per pair   output: $RESULTS_DIR/<exp>/<arena>  (upstream: both
#                         models' evaluations of each pair; their reviews by content)
#   report                report/$EXP.md      reads the completion markers of all of the above
# The base model's side (serve-base, eval-<exp>-base*) is marked `identity shared`: its digest
# leaves out what only names or locates the experiment (shared_names), so experiments that
# ask the same questions of the same model share one evaluation (lib/store.sh).
# Each step with outputs records its inputs in lab-inputs.json when it starts and
# its completion marker (with inputs_digest) when it ends.
# shellcheck source=/dev/null
source "${BASH_SOURCE[0]%/*}/common.sh"
loaded_before fingerprint && return 0
# What it builds on, followed by shellcheck here (a script that uses the fingerprints sources
# this library alone; the libraries below do not have shellcheck follow their own sources).
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/commands.sh
source "$REPO_ROOT/scripts/lib/commands.sh"
# shellcheck source=lib/server.sh
source "$REPO_ROOT/scripts/lib/server.sh"
# shellcheck source=lib/eval_config.sh
source "$REPO_ROOT/scripts/lib/eval_config.sh"
# shellcheck source=lib/pipeline.sh
source "$REPO_ROOT/scripts/lib/pipeline.sh"
# shellcheck source=lib/store.sh
source "$REPO_ROOT/scripts/lib/store.sh"

FINGERPRINT_PY="$REPO_ROOT/scripts/py/fingerprint.py"
# STEP_STORE, STEP_PRODUCER: a shared step's store entry (its status, as STEP_STATUS) and
# the experiment that made it; "-" for the other steps.
declare -gA STEP_DIGEST=() STEP_STATUS=() STEP_STORE=() STEP_PRODUCER=()

# INPUTS_DIR: elsewhere for a read-only look (make status). A node of rank > 0 keeps
# its own: on a checkout the nodes share, it must never overwrite rank 0's, which rank
# 0 records with the run (and its inputs may differ: train.sh compares them).
inputs_dir() {
  if [[ -n "${INPUTS_DIR:-}" ]]; then
    printf '%s' "$INPUTS_DIR"
  elif ((${NODE_RANK:-0} > 0)); then
    printf '%s/%s/inputs-node%s' "$STATE_DIR" "$EXP" "$NODE_RANK"
  else
    printf '%s/%s/inputs' "$STATE_DIR" "$EXP"
  fi
}
inputs_file() { printf '%s/%s.json' "$(inputs_dir)" "$1"; }

# The spec is read by fingerprint.py: one `key<TAB>value` a line, a `step` line
# starting each step; lists repeat their key. Built with printf alone (no jq, no
# subshell per step): make runs it before every target.
spec_line() { printf '%s\t%s\n' "$1" "$2"; }

# spec_cmd WORD...: the command (common.sh): its environment, the names of its secrets, its
# argv (fingerprint.py leaves out LOCATION_FLAGS and LOCATION_ENV when it compares).
spec_cmd() {
  local word value secrets=() in_env=1
  for word in "$@"; do
    if ((in_env)) && [[ "$word" =~ $ENV_WORD ]]; then
      value="${word#*=}"
      if [[ "$value" == "$SECRET_MARK"* ]]; then secrets+=("${word%%=*}"); else spec_line env "$word"; fi
      continue
    fi
    if ((in_env)); then
      for value in "${secrets[@]}"; do spec_line secret_env "$value"; done
      in_env=0
    fi
    spec_line arg "$word"
  done
}

spec_train() {
  local cmd
  spec_line step train
  build_train_cmd cmd
  spec_cmd "${cmd[@]}"
  spec_line config "$EXP_DIR/sft.yaml"
  spec_line model_config "$EXP_DIR/sft.yaml"
  spec_line model_ref "${MODEL:-}"
  spec_line datasets_config "$EXP_DIR/sft.yaml"
  spec_line dataset_override "${DATASET:-}"
  spec_outputs "$RUN_DIR" lab-train.json
}

# spec_outputs DIR MARKER: where the step records its inputs and its completion.
spec_outputs() {
  spec_line lock "$(profile_lock)"
  spec_line outputs "$1"
  spec_line record "$1/lab-inputs.json"
  spec_line marker "$1/$2"
}

spec_export() {
  spec_line step export
  local cmd
  build_export_cmd cmd "$RUN_DIR/<checkpoint>" "$EXPORT_DIR.partial"
  spec_cmd "${cmd[@]}"
  spec_line config "$EXP_DIR/export.yaml"
  spec_line setting "checkpoint=${CHECKPOINT:-last}"
  local need
  for need in $(pipeline_field needs export); do spec_line upstream "$need"; done
  spec_outputs "$EXPORT_DIR" lab-export.json
}

spec_base_model() {
  spec_line step base-model
  spec_line model_config "$EXP_DIR/sft.yaml"
  spec_line model_ref "${MODEL:-}"
}

# spec_serve [--base]: the model as served (what it is, the serving config and flags).
spec_serve() {
  local name=serve upstream=export
  if [[ "${1:-}" == --base ]]; then name="serve-base"; upstream="base-model"; fi
  spec_line step "$name"
  if [[ -n "${1:-}" ]]; then spec_line identity shared; fi
  local cmd
  SERVE_API_KEY="" build_deploy_cmd cmd "${1:-}" # the key's launcher changes who may ask, not the answers
  spec_cmd "${cmd[@]}"
  spec_line config "$EXP_DIR/deploy.yaml"
  spec_line upstream "$upstream"
  spec_line lock "$(profile_lock)"
}

# spec_evals [BENCH...]: one step per benchmark of eval.yaml (or per BENCH) and model
# (fine-tuned, base).
spec_evals() {
  local bench side mode modes benches=("${BENCHMARKS[@]}")
  local -A settings=()
  if (($# > 0)); then benches=("$@"); fi
  for bench in "${benches[@]}"; do
    read_bench settings "$bench"
    for side in "" --base; do
      mapfile -t modes < <(evaluation_modes "$side")
      for mode in "${modes[@]}"; do
        apply_answer_mode settings "$mode"
        spec_eval settings "$side"
      done
    done
  done
}

# spec_eval SETTINGS SIDE: one evaluation, of the benchmark of SETTINGS (read_bench's, in the
# mode applied last), on SIDE's model.
spec_eval() {
  local -n spec_eval_settings="$1"
  local base="$2" cmd fetch
  build_eval_cmd cmd "$1" "$base"
  spec_line step "$(eval_step_name "${spec_eval_settings[name]}" "$base" "${spec_eval_settings[mode]}")"
  if [[ -n "$base" ]]; then spec_line identity shared; fi
  spec_cmd "${cmd[@]}"
  bench_list fetch "$1" fetch
  if [[ -n "${spec_eval_settings[heldout_rows]}" ]]; then
    # Built from the training's held-out split when it runs: made from that and the builder
    # (not lab/files.py, whose atomic write does not change what the builder writes).
    spec_line file "$RUN_DIR/val_dataset.jsonl"
    spec_line file "$REPO_ROOT/scripts/py/heldout_set.py"
    spec_line setting "rows=${spec_eval_settings[heldout_rows]}"
  elif ((${#fetch[@]} > 0)); then
    # Fetched from its public source when it runs: made from the fetch script and its arguments
    # (the source's revision is in the set's SOURCE.json), as a hub set is by its name.
    spec_line file "$REPO_ROOT/${fetch[0]}"
    spec_line setting "fetch=${fetch[*]:1}"
  elif [[ -n "${spec_eval_settings[local_path]}" ]]; then
    spec_line file "${spec_eval_settings[local_path]}"
  fi
  if [[ -n "${spec_eval_settings[scorer]}" ]]; then spec_line file "$REPO_ROOT/scripts/py/lab/counselling.py"; fi
  if [[ -n "${spec_eval_settings[contamination_limit]}" ]]; then
    # The overlap is measured against the training set: another training set measures again
    # (its datasets, not the rest of the training: a variant of lora_rank shares the base's).
    spec_line file "$REPO_ROOT/scripts/py/contamination.py"
    spec_line setting "contamination_limit=${spec_eval_settings[contamination_limit]}"
    spec_line datasets_config "$EXP_DIR/sft.yaml"
    spec_line dataset_override "${DATASET:-}"
  fi
  spec_line upstream "serve${base:+-base}"
  # The model itself, so a record says which export (or base model) it scored.
  if [[ -n "$base" ]]; then spec_line upstream base-model; else spec_line upstream export; fi
  spec_outputs "${spec_eval_settings[work_dir]}" "$EVAL_DONE_FILE"
}

# spec_arena: the arena of eval.yaml (make arena), if any: its general_arena commands (the judge,
# the pairs, the limit), both models' reviews of each pair by content (other replies are judged
# again) and their evaluations' digests.
spec_arena() {
  [[ -n "$ARENA_BENCH" ]] || return 0
  local pair pairs served cmd
  local -A arena_settings=()
  read_bench arena_settings "$ARENA_BENCH"
  bench_list pairs arena_settings pairs
  spec_line step arena
  for pair in "${pairs[@]}"; do
    build_arena_cmd cmd arena_settings "$pair"
    spec_cmd "${cmd[@]}"
    for served in "$EXP" "$EXP-base"; do
      spec_line file "$RESULTS_DIR/$served/$pair/reviews"
      spec_line upstream "eval-$served-$pair"
    done
  done
  spec_line setting "judge=${JUDGE_MODEL:-none}"
  spec_outputs "$(arena_dir)" "$EVAL_DONE_FILE"
}

# eval_step_name BENCH SIDE [MODE]: the step of BENCH on SIDE's model in MODE.
eval_step_name() {
  local result
  result_name -v result "$2" "${3:-}"
  printf 'eval-%s-%s' "$result" "$1"
}

# evaluated_names: the results folders of the experiment's evaluations: the fine-tuned
# model, the base model, and the base model in each of base_extra_modes (<exp>-base@MODE).
evaluated_names() {
  local mode
  printf '%s\n' "$EXP" "$EXP-base"
  for mode in "${BASE_EXTRA_MODES[@]}"; do printf '%s\n' "$EXP-base@$mode"; done
}

spec_report() {
  local bench served module
  spec_line step report
  spec_line read "$RUN_DIR/lab-train.json"
  spec_line read "$EXPORT_DIR/lab-export.json"
  while read -r served; do
    for bench in "${BENCHMARKS[@]}"; do
      spec_line read "$RESULTS_DIR/$served/$bench/$EVAL_DONE_FILE"
      spec_line read "$RESULTS_DIR/$served/$bench/$EVAL_REJECTED_FILE"
    done
  done < <(evaluated_names)
  if [[ -n "$ARENA_BENCH" ]]; then spec_line read "$(arena_dir)/$EVAL_DONE_FILE"; fi
  spec_line file "$(report_template)"
  spec_line file "$REPO_ROOT/report/appendix.zh.md"
  spec_line file "$REPO_ROOT/report/macros.zh.md"
  for module in report.py runparse.py paired.py mdhtml.py; do spec_line file "$REPO_ROOT/scripts/py/$module"; done
  # The package the report's facts, charts and rendering live in (scripts/py/lab).
  while read -r module; do spec_line file "$module"; done < <(find "$REPO_ROOT/scripts/py/lab" -name '*.py' | LC_ALL=C sort)
  # The blind human evaluation's results (make human-report) and its section (its code is in lab/ above).
  spec_line read "$RESULTS_DIR/lab-human.json"
  spec_line file "$REPO_ROOT/report/human.zh.md"
  spec_line marker "$REPORT_DIR/$EXP.manifest.json"
  # The current inputs too: the report says when they differ from what ran.
  spec_line upstream train
  spec_line upstream export
  while read -r served; do
    for bench in "${BENCHMARKS[@]}"; do spec_line upstream "eval-$served-$bench"; done
  done < <(evaluated_names)
}

# shared_names: what names or locates this experiment in the shared steps' inputs, and the
# placeholder each stands for there (fingerprint.py shared_identity): the serving config's
# path (its parsed content is the input), the run's and results' folders (the held-out split
# is an input by its content), the base model's served name and address (a judge that is the
# served model names both). Paths inside a config stay: they name the file a setting reads.
shared_names() {
  spec_line store "$(store_root)"
  spec_line name "$EXP_DIR/deploy.yaml"$'\t''{deploy.yaml}'
  spec_line name "$RUN_DIR"$'\t''{run}'
  spec_line name "$RESULTS_DIR"$'\t''{results}'
  local name base_api api
  served_name -v name --base
  api_base -v base_api --base
  api_base -v api ""
  spec_line name "$name"$'\t''{served}'
  # Where each server listens is no input of any step (a judge that is the served model names it).
  spec_line location_value "$base_api"$'\t''{api}'
  spec_line location_value "$api"$'\t''{api}'
}

# fingerprint_spec GROUP... [--only BENCH...]: the spec of the named groups (train, export,
# serve, eval, report) and of the steps they build on; with --only, of those benchmarks'
# evaluations alone (and no arena: its upstream would not all be there).
fingerprint_spec() {
  local groups=" " only=()
  while (($# > 0)) && [[ "$1" != --only ]]; do groups+="$1 "; shift; done
  if (($# > 0)); then shift; only=("$@"); fi
  spec_line repo "$REPO_ROOT"
  spec_line out_dir "$(inputs_dir)"
  spec_line hub_revisions "$STATE_DIR/$EXP/hub-revisions.json"
  local word
  for word in "${LOCATION_FLAGS[@]}"; do spec_line location_flag "$word"; done
  for word in "${LOCATION_ENV[@]}"; do spec_line location_env "$word"; done
  # Paths under the output roots are where things are, not what they are.
  for word in OUTPUT_ROOT EXPORT_ROOT RESULTS_ROOT CACHE_ROOT; do spec_line location_root "$word=${!word}"; done
  if [[ "$groups" == *" eval "* || "$groups" == *" serve "* ]]; then shared_names; fi
  spec_train
  if [[ "$groups" == *" export "* || "$groups" == *" eval "* || "$groups" == *" serve "* ]]; then spec_export; fi
  if [[ "$groups" == *" eval "* || "$groups" == *" serve "* ]]; then
    spec_base_model
    spec_serve
    spec_serve --base
  fi
  if [[ "$groups" == *" eval "* || "$groups" == *" report "* ]]; then load_eval_config; fi
  if [[ "$groups" == *" eval "* ]]; then
    spec_evals "${only[@]}"
    if ((${#only[@]} == 0)); then spec_arena; fi
  fi
  if [[ "$groups" == *" report "* ]]; then spec_report; fi
}

# compute_inputs GROUP... [--only BENCH...]: writes .state/$EXP/inputs/<step>.json (only when
# changed) and fills STEP_DIGEST and STEP_STATUS (done, partial, changed, unknown, none).
# The spec is kept in .state/<exp>/cache/ and reused while nothing it is made from changed
# (fingerprint.py spec_key): a finished make builds no command.
# --only BENCH...: the benchmarks whose evaluations a script needs (scripts/eval.sh: the
# selected ones, when not all): their steps alone are fingerprinted (each step's digest is made
# from its own lines, so it is the same), under a cache of their own. Building every
# benchmark's command on both models cost a make eval-<group> 1-2 s of bash.
compute_inputs() {
  local spec result name digest status cache python status_code=0 groups=() benches=() key
  while (($# > 0)) && [[ "$1" != --only ]]; do groups+=("$1"); shift; done
  if (($# > 0)); then shift; benches=("$@"); fi
  key="${groups[*]}" # what the spec is of, and its cache's name
  if ((${#benches[@]} > 0)); then key+=" only=$(IFS=,; printf '%s' "${benches[*]//\//_}")"; groups+=(--only "${benches[@]}"); fi
  cache="$STATE_DIR/$EXP/cache/spec-${key// /-}.json"
  python="$(config_python)"
  if [[ -f "$cache" ]]; then
    result="$("$python" "$FINGERPRINT_PY" compute-cached "$cache" "$REPO_ROOT" "$key" "$(inputs_dir)")" || status_code=$?
  else
    status_code=3 # no spec stored: no Python start to learn it
  fi
  if ((status_code == 3)); then
    spec="$(fingerprint_spec "${groups[@]}")" || exit 1 # a config error, already reported with its fix
    status_code=0
    result="$("$python" "$FINGERPRINT_PY" store-spec "$cache" "$REPO_ROOT" "$key" <<<"$spec")" || status_code=$?
  fi
  ((status_code == 0)) ||
    die "could not fingerprint the inputs of $EXP" "read the error above; 'make env' builds the venv with PyYAML"
  while IFS=$'\t' read -r name digest status store producer; do
    STEP_DIGEST[$name]="$digest"
    STEP_STATUS[$name]="$status"
    STEP_STORE[$name]="$store"
    STEP_PRODUCER[$name]="$producer"
  done <<<"$result"
}

# compute_experiment_inputs [GROUP...]: every step of the experiment (its evaluations
# when it has an eval.yaml), plus GROUP (report).
# shellcheck disable=SC2120 # GROUP is optional
compute_experiment_inputs() {
  if [[ -f "$EXP_DIR/eval.yaml" ]]; then
    load_eval_config
    compute_inputs eval "$@"
  else
    BENCHMARKS=() BASE_EXTRA_MODES=()
    compute_inputs export "$@"
  fi
}

step_done() { [[ "${STEP_STATUS[$1]:-none}" == "done" ]]; }

# step_record STEP: the inputs record next to a step's outputs (lab-inputs.json).
step_record() {
  case "$1" in
    train) printf '%s/lab-inputs.json' "$RUN_DIR" ;;
    export) printf '%s/lab-inputs.json' "$EXPORT_DIR" ;;
    eval-"$EXP"-base@*)
      local mode rest="${1#eval-"$EXP"-base@}"
      for mode in "${BASE_EXTRA_MODES[@]}"; do
        if [[ "$rest" == "$mode"-* ]]; then printf '%s/%s-base@%s/%s/lab-inputs.json' "$RESULTS_DIR" "$EXP" "$mode" "${rest#"$mode"-}"; fi
      done
      ;;
    eval-"$EXP"-base-*) printf '%s/%s-base/%s/lab-inputs.json' "$RESULTS_DIR" "$EXP" "${1#eval-"$EXP"-base-}" ;;
    eval-"$EXP"-*) printf '%s/%s/%s/lab-inputs.json' "$RESULTS_DIR" "$EXP" "${1#eval-"$EXP"-}" ;;
    arena) printf '%s/lab-inputs.json' "$(arena_dir)" ;;
  esac
}

# What changed between a recorded inputs file and the current one, one line each.
describe_input_changes() {
  "$(config_python)" "$FINGERPRINT_PY" diff "$1" "$2" | sed 's/^/  /'
}

# record_inputs STEP DIR: the step's current inputs, kept next to its outputs.
record_inputs() {
  mkdir -p "$2"
  write_atomically "$2/lab-inputs.json" <"$(inputs_file "$1")"
}

# move_aside DIR VAR: keeps outputs made from other inputs as DIR.replaced-<time>, that path
# into VAR.
move_aside() {
  local move_aside_target
  move_aside_target="$1.replaced-$(date -u +%Y%m%dT%H%M%SZ)"
  mv "$1" "$move_aside_target"
  printf -v "$2" '%s' "$move_aside_target"
}
