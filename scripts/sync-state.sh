#!/usr/bin/env bash
# Run by make before any step target (scripts/sync-state.sh GOAL...): takes the
# experiment's run lock (lib/runlock.sh), fingerprints the inputs of every step
# (lib/fingerprint.sh) and makes the stamps in .state/<EXP>/ say exactly which steps'
# outputs were made from the current inputs, so make redoes exactly the others. The base
# model's evaluations another experiment made with the same inputs are linked from the store
# of shared evaluations (lib/store.sh) and count as done.
set -euo pipefail
export STEP_NAME=state
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/runlock.sh
source "$REPO_ROOT/scripts/lib/runlock.sh"
# shellcheck source=lib/fingerprint.sh
source "$REPO_ROOT/scripts/lib/fingerprint.sh"

# goal_steps GOAL: the pipeline steps a make goal builds itself (make's other goals, none).
goal_steps() {
  case "$1" in
    train | export | evals | eval-base | arena) printf '%s\n' "$1" ;;
    deploy | serve) printf 'export\n' ;;
    eval-*) printf 'evals\n' ;; # a group's stamp is synced with the evaluations'
    deploy-base) ;;
    *) pipeline_steps ;; # report, all, experiment...
  esac
}

# needed_steps GOAL...: the steps the goals build and those they need, in pipeline order
# (scripts/pipeline.mk); every step without goals (a dry run's look). Only their stamps are
# synced, so `make train` fingerprints the training alone.
needed_steps() {
  local -A wanted=()
  local queue=() step need
  if (($# == 0)); then pipeline_steps; return 0; fi
  mapfile -t queue < <(for step in "$@"; do goal_steps "$step"; done)
  while ((${#queue[@]} > 0)); do
    step="${queue[0]}" queue=("${queue[@]:1}")
    [[ -z "${wanted[$step]:-}" ]] || continue
    wanted[$step]=1
    while read -r need; do [[ -n "$need" ]] && queue+=("$need"); done < <(pipeline_needs "$step")
  done
  while read -r step; do [[ -z "${wanted[$step]:-}" ]] || printf '%s\n' "$step"; done < <(pipeline_steps)
}

# The stamps of NEEDED, in pipeline order: each step's, and before evals one per evaluation
# group of eval.yaml (make eval-<group>); the evaluations' only when eval.yaml names benchmarks.
set_stamps() {
  local step bench group
  STAMPS=()
  while read -r step; do
    [[ " ${NEEDED[*]} " == *" $step "* ]] || continue
    case "$step" in
      evals | eval-base) ((${#BENCHMARKS[@]} > 0)) || continue ;;
    esac
    if [[ "$step" == evals ]]; then
      for bench in "${BENCHMARKS[@]}"; do
        group="eval-$(bench_group "$bench")"
        [[ " ${STAMPS[*]} " == *" $group "* ]] || STAMPS+=("$group")
      done
    fi
    STAMPS+=("$step")
  done < <(pipeline_stamped_steps)
}

# stamp_holds STAMP: all its steps are done with the current inputs. Sets
# FIRST_NOT_DONE to the first step that is not.
stamp_holds() {
  local steps step
  mapfile -t steps < <(fingerprinted_steps "$1")
  FIRST_NOT_DONE=""
  for step in "${steps[@]}"; do
    step_done "$step" || { FIRST_NOT_DONE="$step"; return 1; }
  done
}

# Each stamp holds exactly when all its steps are done with the current inputs:
# a stale one is removed (make redoes it), a missing one of finished work is made,
# and every valid stamp gets the same time, so make's own timestamps agree.
sync_stamps() {
  local name now stamp
  now="$(date +%s.%N)" # to the nanosecond: make compares sub-second times, and a whole second
  # could leave a stamp older than a prerequisite written earlier in the same second
  mkdir -p "$STATE_DIR/$EXP"
  for name in "${STAMPS[@]}"; do
    stamp="$STATE_DIR/$EXP/$name.done"
    if stamp_holds "$name"; then touch -d "@$now" "$stamp"; continue; fi
    if [[ -f "$stamp" && -n "$FIRST_NOT_DONE" && "$name" != evals ]]; then # evals: its groups say it
      log "$name: $([[ "${STEP_STATUS[$FIRST_NOT_DONE]:-none}" == none ]] && echo 'its outputs are gone' || echo 'its inputs changed since it ran') ($FIRST_NOT_DONE); make redoes it"
    fi
    rm -f "$stamp"
  done
  # A group of the Makefile that eval.yaml gives no benchmark (a variant that evaluates less)
  # has nothing to do: its stamp, once made, holds; left older than export.done it would make
  # make serve the model again to evaluate nothing.
  [[ " ${STAMPS[*]} " == *" evals "* ]] || return 0
  for stamp in "$STATE_DIR/$EXP"/eval-*.done "$STATE_DIR/$EXP/evals.done"; do
    [[ -f "$stamp" ]] || continue
    name="$(basename "$stamp" .done)"
    [[ " ${STAMPS[*]} " == *" $name "* ]] || touch -d "@$now" "$stamp"
  done
}

# The base model's evaluations that the store holds, complete, for the current inputs (made by
# this experiment or another: lib/store.sh) are linked here, so their stamps hold and make
# neither serves nor evaluates the base model for them. A dry run only counts them done.
link_stored_evaluations() {
  local step
  for step in "${!STEP_STORE[@]}"; do
    if [[ "${STEP_STORE[$step]}" != "done" ]] || step_done "$step"; then continue; fi
    if is_dry_run; then STEP_STATUS[$step]="done"; continue; fi
    link_stored "$step" "$(dirname "$(step_record "$step")")" "$step"
  done
}

# Under DRY_RUN=1 nothing changes: it prints the stamps that do not hold (make
# treats them as not done), so a dry run shows what the target would run now.
print_stale_stamps() {
  local name
  for name in "${STAMPS[@]}"; do
    stamp_holds "$name" || printf '%s/%s/%s.done\n' "$(repo_relative "$STATE_DIR")" "$EXP" "$name"
  done
}

# A node of rank > 0 takes part in rank 0's training and nothing else: the rest of the
# pipeline runs once, on rank 0's node, on the outputs all nodes share.
refuse_other_steps_on_other_nodes() {
  ((NODE_RANK > 0)) || return 0
  local goal
  for goal in "$@"; do
    [[ "$goal" == experiment ]] && goal=all # make all's sub-make
    [[ "$goal" == train ]] || die "NODE_RANK=$NODE_RANK: a node of rank > 0 only trains (make train), not 'make $goal'" \
      "run make $goal on the node of rank 0 (NODE_RANK=0) once the training is done"
  done
}

main() {
  SKIP_SECRET_CHECKS=1 SKIP_GPU_CHECK=1 load_env
  refuse_other_steps_on_other_nodes "$@"
  if is_dry_run; then
    INPUTS_DIR="$(mktemp -d)"
    trap 'rm -rf "$INPUTS_DIR"' EXIT
  elif ((NODE_RANK == 0)); then
    # The nodes of rank > 0 are part of rank 0's run (and its make may run elsewhere,
    # where its pid means nothing): only rank 0 takes the lock.
    acquire_run_lock "$*"
  fi
  mapfile -t NEEDED < <(needed_steps "$@")
  if [[ " ${NEEDED[*]} " == *" eval"* ]]; then
    compute_experiment_inputs
    link_stored_evaluations
  elif [[ " ${NEEDED[*]} " == *" export "* ]]; then
    compute_inputs export
  elif [[ " ${NEEDED[*]} " == *" train "* ]]; then
    compute_inputs train
  fi
  set_stamps
  if is_dry_run; then print_stale_stamps; else sync_stamps; fi
}

main "$@"
