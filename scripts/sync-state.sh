#!/usr/bin/env bash
# Run by make before any step target (scripts/sync-state.sh GOAL...): takes the
# experiment's run lock (lib/runlock.sh), fingerprints the inputs of every step
# (lib/fingerprint.sh) and removes each stamp in .state/<EXP>/ whose outputs were
# not made from the current inputs, so make redoes exactly those steps.
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

# Removes the stamps whose steps are not all done with the current inputs.
drop_stale_stamps() {
  local stamp name step
  for stamp in "$STATE_DIR/$EXP"/*.done; do
    [[ -f "$stamp" ]] || continue
    name="$(basename "$stamp" .done)"
    while IFS= read -r step; do
      step_done "$step" && continue
      log "$name: $( [[ "${STEP_STATUS[$step]:-none}" == none ]] && echo 'its outputs are gone' || echo 'its inputs changed since it ran') ($step); make redoes it"
      rm -f "$stamp"
      break
    done < <(stamp_steps "$name")
  done
}

main() {
  SKIP_SECRET_CHECKS=1 SKIP_GPU_CHECK=1 load_env
  acquire_run_lock "$*"
  # shellcheck source=lib/server.sh
  source "$REPO_ROOT/scripts/lib/server.sh"
  # shellcheck source=lib/eval_config.sh
  source "$REPO_ROOT/scripts/lib/eval_config.sh"
  # shellcheck source=lib/fingerprint.sh
  source "$REPO_ROOT/scripts/lib/fingerprint.sh"
  [[ -d "$STATE_DIR/$EXP" ]] || return 0
  compgen -G "$STATE_DIR/$EXP/*.done" >/dev/null || return 0
  if [[ -f "$EXP_DIR/eval.yaml" ]]; then
    load_eval_config
    compute_inputs eval
  else
    BENCHMARKS=()
    compute_inputs export
  fi
  drop_stale_stamps
}

main "$@"
