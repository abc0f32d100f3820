#!/usr/bin/env bash
# Run by make before any step target (scripts/sync-state.sh GOAL...): takes the
# experiment's run lock (lib/runlock.sh), fingerprints the inputs of every step
# (lib/fingerprint.sh) and makes the stamps in .state/<EXP>/ say exactly which steps'
# outputs were made from the current inputs, so make redoes exactly the others.
set -euo pipefail
export STEP_NAME=state
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/commands.sh
source "$REPO_ROOT/scripts/lib/commands.sh"
# shellcheck source=lib/runlock.sh
source "$REPO_ROOT/scripts/lib/runlock.sh"

# stamp_steps STAMP: the fingerprinted steps a make stamp stands for.
stamp_steps() {
  local bench
  case "$1" in
    train | export) printf '%s\n' "$1" ;;
    eval-base) for bench in "${BENCHMARKS[@]}"; do printf 'eval-%s-base-%s\n' "$EXP" "$bench"; done ;;
    eval-*)
      select_benchmarks "${1#eval-}" 2>/dev/null || return 0
      for bench in "${SELECTED[@]}"; do printf 'eval-%s-%s\n' "$EXP" "$bench"; done
      ;;
  esac
}

# Each stamp holds exactly when all its steps are done with the current inputs:
# a stale one is removed (make redoes it), a missing one of finished work is made,
# and every valid stamp gets the same time, so make's own timestamps agree.
sync_stamps() {
  local name step steps now valid
  now="$(date +%s)"
  mkdir -p "$STATE_DIR/$EXP"
  for name in train export eval-ceval eval-cmmlu eval-base; do
    mapfile -t steps < <(stamp_steps "$name")
    valid=$((${#steps[@]} > 0))
    for step in "${steps[@]}"; do
      step_done "$step" && continue
      valid=0
      if [[ -f "$STATE_DIR/$EXP/$name.done" ]]; then
        log "$name: $([[ "${STEP_STATUS[$step]:-none}" == none ]] && echo 'its outputs are gone' || echo 'its inputs changed since it ran') ($step); make redoes it"
      fi
      break
    done
    if ((valid)); then touch -d "@$now" "$STATE_DIR/$EXP/$name.done"; else rm -f "$STATE_DIR/$EXP/$name.done"; fi
  done
}

# Under DRY_RUN=1 nothing changes: it prints the stamps that do not hold (make
# treats them as not done), so a dry run shows what the target would run now.
print_stale_stamps() {
  local name step valid
  for name in train export eval-ceval eval-cmmlu eval-base; do
    valid=1
    while IFS= read -r step; do step_done "$step" || valid=0; done < <(stamp_steps "$name")
    ((valid)) || printf '%s/%s/%s.done\n' "$(repo_relative "$STATE_DIR")" "$EXP" "$name"
  done
}

main() {
  SKIP_SECRET_CHECKS=1 SKIP_GPU_CHECK=1 load_env
  if is_dry_run; then
    INPUTS_DIR="$(mktemp -d)"
    trap 'rm -rf "$INPUTS_DIR"' EXIT
  else
    acquire_run_lock "$*"
  fi
  # shellcheck source=lib/server.sh
  source "$REPO_ROOT/scripts/lib/server.sh"
  # shellcheck source=lib/eval_config.sh
  source "$REPO_ROOT/scripts/lib/eval_config.sh"
  # shellcheck source=lib/fingerprint.sh
  source "$REPO_ROOT/scripts/lib/fingerprint.sh"
  if [[ -f "$EXP_DIR/eval.yaml" ]]; then
    load_eval_config
    compute_inputs eval
  else
    BENCHMARKS=()
    compute_inputs export
  fi
  if is_dry_run; then print_stale_stamps; else sync_stamps; fi
}

main "$@"
