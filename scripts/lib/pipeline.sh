# shellcheck shell=bash
# The pipeline's declaration (scripts/pipeline.mk) for the scripts: its steps in order,
# what each needs and reads. Make includes the same file.
# shellcheck source=/dev/null
source "${BASH_SOURCE[0]%/*}/common.sh"
loaded_before pipeline && return 0

declare -gA PIPELINE_DECL=()

# load_pipeline: reads scripts/pipeline.mk (`NAME := words` lines).
load_pipeline() {
  local name op value
  while read -r name op value; do
    [[ "$op" == ":=" ]] || continue
    PIPELINE_DECL[$name]="$value"
  done <"$REPO_ROOT/scripts/pipeline.mk"
  [[ -n "${PIPELINE_DECL[PIPELINE]:-}" ]] ||
    die "scripts/pipeline.mk declares no PIPELINE" "restore it: git checkout -- scripts/pipeline.mk"
}

load_pipeline # here, not in the functions: they run in subshells ($(...), < <(...))

# pipeline_steps: the steps in order, one a line.
pipeline_steps() {
  # shellcheck disable=SC2086 # a list of words
  printf '%s\n' ${PIPELINE_DECL[PIPELINE]}
}

# pipeline_stamped_steps: the steps that leave a stamp (.state/<exp>/STEP.done), in order.
pipeline_stamped_steps() {
  local step
  while read -r step; do
    [[ " ${PIPELINE_DECL[UNSTAMPED]:-} " == *" $step "* ]] || printf '%s\n' "$step"
  done < <(pipeline_steps)
}

# fingerprinted_steps STAMP: the fingerprinted steps (scripts/lib/fingerprint.sh) a stamp
# stands for: train, export, each evaluation of the fine-tuned model (evals, or a group's
# eval-<group>), of the base model in each of its modes (eval-base), the arena (when eval.yaml
# has one). After load_eval_config.
fingerprinted_steps() {
  local bench mode selected
  case "$1" in
    evals) for bench in "${BENCHMARKS[@]}"; do printf 'eval-%s-%s\n' "$EXP" "$bench"; done ;;
    eval-base)
      for mode in "" "${BASE_EXTRA_MODES[@]}"; do
        for bench in "${BENCHMARKS[@]}"; do printf 'eval-%s-base%s-%s\n' "$EXP" "${mode:+@$mode}" "$bench"; done
      done
      ;;
    arena) if [[ -n "$ARENA_BENCH" ]]; then printf 'arena\n'; fi ;; # none in eval.yaml: nothing to be done
    eval-*)
      select_group selected "${1#eval-}"
      for bench in "${selected[@]}"; do printf 'eval-%s-%s\n' "$EXP" "$bench"; done
      ;;
    *) printf '%s\n' "$1" ;;
  esac
}

# pipeline_field FIELD STEP: needs, configs, suite or title of STEP (empty when not declared).
pipeline_field() {
  printf '%s' "${PIPELINE_DECL[$1.$2]:-}"
}

# pipeline_needs STEP: the steps STEP consumes, one a line.
pipeline_needs() {
  local need
  for need in $(pipeline_field needs "$1"); do printf '%s\n' "$need"; done
}
