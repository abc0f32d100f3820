#!/usr/bin/env bash
# What a finished experiment costs to run again: `make smoke` and `make status EXP=smoke`
# on a finished smoke run, each RUNS times (default 5), the median wall time of each, and
# whether any tool was started (a traced command in make smoke's output). Target: ≤ 1 s.
#   scripts/bench/noop.sh [RUNS]      (needs a finished make smoke; seconds to run)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
RUNS="${1:-5}"
SMOKE=(EXP=smoke ENV_FILE=env/smoke.env)
LOG="$(mktemp "${TMPDIR:-/tmp}/noop.XXXXXX.log")"

# median_seconds COMMAND...: the median wall time of RUNS runs of COMMAND (output to the log).
median_seconds() {
  local times=() start end i
  for ((i = 0; i < RUNS; i++)); do
    start="$(date +%s%N)"
    "$@" >>"$LOG" 2>&1 || { echo "noop: '$*' failed; see $LOG" >&2; exit 1; }
    end="$(date +%s%N)"
    times+=("$(((end - start) / 1000000))")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p"
}

[[ -f .state/smoke/experiment-with-base.done || -f report/smoke.manifest.json ]] ||
  { echo "noop: run make smoke first (this measures a finished one)" >&2; exit 1; }
make smoke >>"$LOG.settle" 2>&1 # settles anything not yet finished, so the runs below are no-ops
smoke_ms="$(median_seconds make smoke)"
status_ms="$(median_seconds make status "${SMOKE[@]}")"
tools="$(grep -c '^+ ' "$LOG" || true)"
printf 'finished make smoke, median of %s:      %5d ms\n' "$RUNS" "$smoke_ms"
printf 'make status EXP=smoke, median of %s:   %5d ms\n' "$RUNS" "$status_ms"
printf 'tool commands started (traced lines):  %5d\n' "$tools"
echo "log: $LOG"
