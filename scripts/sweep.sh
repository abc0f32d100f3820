#!/usr/bin/env bash
# make sweep EXPS="a b c" [KEEP_GOING=1] [WITH_BASE=1]: each experiment's whole pipeline in
# turn with the repo's own make (make all EXP=a, or make experiment-with-base EXP=a with
# WITH_BASE=1: the base model's evaluations too), one server at a time (stopped after each).
# Resumable: make's stamps skip the steps already done, so a sweep run again goes on where it
# stopped and a finished one runs no tool. Stops at the first failure unless KEEP_GOING=1;
# prints a summary (experiment, result, report) at the end and exits non-zero when one
# failed (the makes' output goes to stderr, the summary to stdout). DRY_RUN=1 prints the
# makes it would run. Settings (ENV_FILE, GPU, ...) reach each make as they reached this
# one (the make command line or the environment).
set -euo pipefail
export STEP_NAME=sweep
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

MAKE_CMD="${MAKE:-make}"
# Each experiment's make is a top-level make of its own: it holds that experiment's run lock
# while it runs, not for the whole sweep (lib/runlock.sh).
unset LAB_RUN_OWNER
REPORTS="${REPORT_DIR:-$REPO_ROOT/report}"
declare -A RESULT=()
EXPERIMENTS=()
CURRENT=""
MAKE_LOG="" # the stderr of the make running now, for the target that failed

# check_experiments: EXPS names experiments with a config, each once.
check_experiments() {
  read -ra EXPERIMENTS <<<"${EXPS:-}"
  ((${#EXPERIMENTS[@]} > 0)) || die "EXPS is empty: no experiment to run" \
    'name them: make sweep EXPS="gpt-oss-20b-sft-v1 gpt-oss-20b-sft-r32" (folders of configs/)'
  check_exps "${EXPERIMENTS[@]}"
}

# failed_target LOG: where it failed, "at <make target>" from make's own error line
# (make: *** [Makefile:N: .state/<exp>/train.done] Error 1), or "before any step".
failed_target() {
  local target
  target="$(sed -n 's/.*\*\*\* \[[^]]*:[0-9]*: \([^]]*\)\] .*/\1/p' "$1" | head -n 1)"
  target="${target##*/}"
  target="${target%.done}"
  case "$target" in
    "" | all) # make all's own line follows its sub-make's
      if grep -q 'stopped before any step' "$1"; then echo "before any step"; else echo "at ? (see the output above)"; fi ;;
    experiment | experiment-with-base) echo "at report" ;; # their own recipe is the report
    *) echo "at $target" ;;
  esac
}

stop_server() {
  "$MAKE_CMD" -s -C "$REPO_ROOT" stop "EXP=$1" >&2 || warn "could not stop the server of $1 (make stop EXP=$1)"
}

print_summary() {
  local exp report failed=0 width=10
  for exp in "${EXPERIMENTS[@]}"; do ((${#exp} > width)) && width=${#exp}; done
  for exp in "${EXPERIMENTS[@]}"; do [[ "${RESULT[$exp]:-}" != failed* ]] || failed=$((failed + 1)); done
  printf '\nsweep of %d experiment(s): %d failed\n' "${#EXPERIMENTS[@]}" "$failed"
  printf '  %-*s  %-28s  %s\n' "$width" experiment result report
  for exp in "${EXPERIMENTS[@]}"; do
    report="—"
    # Only a finished experiment's report is its sweep's: another one may be of an earlier run.
    if [[ "${RESULT[$exp]:-}" == "done" && -f "$REPORTS/$exp.md" ]]; then report="$(repo_relative "$REPORTS/$exp.md")"; fi
    printf '  %-*s  %-28s  %s\n' "$width" "$exp" "${RESULT[$exp]:-not reached}" "$report"
  done
}

on_interrupt() {
  trap - INT TERM
  if [[ -n "$CURRENT" ]]; then
    RESULT[$CURRENT]="interrupted"
    stop_server "$CURRENT"
  fi
  print_summary
  exit 130
}

main() {
  check_experiments
  local target=all exp status index=0 failed=0
  if [[ "${WITH_BASE:-0}" == 1 ]]; then target=experiment-with-base; fi
  if is_dry_run; then
    for exp in "${EXPERIMENTS[@]}"; do
      printf 'make %s EXP=%s\nmake stop EXP=%s\n' "$target" "$exp" "$exp"
    done
    return 0
  fi
  trap on_interrupt INT TERM
  log "one server at a time: stopping this checkout's server first, if one runs"
  stop_server "${EXPERIMENTS[0]}"
  MAKE_LOG="$(mktemp)"
  trap 'rm -f "$MAKE_LOG"' EXIT
  for exp in "${EXPERIMENTS[@]}"; do
    index=$((index + 1))
    if ((failed)) && [[ "${KEEP_GOING:-0}" != 1 ]]; then RESULT[$exp]="not reached"; continue; fi
    CURRENT="$exp"
    log "[$index/${#EXPERIMENTS[@]}] $exp: make $target EXP=$exp"
    status=0
    "$MAKE_CMD" -C "$REPO_ROOT" "$target" "EXP=$exp" >&2 2> >(tee "$MAKE_LOG" >&2) || status=$?
    wait # tee has written everything before the log is read
    stop_server "$exp"
    CURRENT=""
    if ((status == 0)); then
      RESULT[$exp]="done"
    else
      RESULT[$exp]="failed $(failed_target "$MAKE_LOG")"
      failed=1
      log "$exp: ${RESULT[$exp]} (exit $status)$([[ "${KEEP_GOING:-0}" == 1 ]] && echo '; going on (KEEP_GOING=1)')"
    fi
  done
  print_summary
  if ((failed)); then
    die "the sweep did not finish every experiment" \
      "fix what the output above says, then run the same make sweep again: finished steps are kept"
  fi
}

main "$@"
