#!/usr/bin/env bash
# What the Make layer costs: the smoke experiment run through make and as the bare
# tool commands (the runbook, from its prerequisites step on: the same commands
# without the fingerprints, stamps, checks and logging), side by side; then a
# finished `make smoke` run again, which must start no tool.
#   scripts/bench/make_overhead.sh        (about 6 minutes on 2 CPU cores; needs make env)
# Removes the smoke outputs (make clean) and leaves a finished make smoke behind.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SMOKE=(EXP=smoke ENV_FILE=env/smoke.env)

seconds() { # seconds COMMAND...: wall time of COMMAND, its output to the log
  local start end
  start="$(date +%s.%N)"
  "$@" >>"$LOG" 2>&1 || { echo "make_overhead: '$*' failed; see $LOG" >&2; exit 1; }
  end="$(date +%s.%N)"
  echo "$end - $start" | bc
}

LOG="$(mktemp "${TMPDIR:-/tmp}/make-overhead.XXXXXX.log")"
[[ -x .venv/bin/python ]] || { echo "make_overhead: run make env first" >&2; exit 1; }
make "${SMOKE[@]}" runbook >"$LOG.runbook.sh" 2>>"$LOG"

make clean >>"$LOG" 2>&1
bare="$(PATH="$PWD/.venv/bin:$PATH" seconds bash "$LOG.runbook.sh" prerequisites)"
make clean >>"$LOG" 2>&1
through_make="$(seconds make smoke)"
again="$(LOG="$LOG.again" seconds make smoke)"
tools_again="$(grep -c '^+ ' "$LOG.again" || true)"

printf 'smoke, bare tool commands (runbook):  %6.1f s\n' "$bare"
printf 'smoke, make clean smoke:              %6.1f s\n' "$through_make"
printf 'overhead ratio (make / bare):         %6.3f\n' "$(echo "$through_make / $bare" | bc -l)"
printf 'finished make smoke run again:        %6.1f s (tool commands traced in its output: %s)\n' "$again" "$tools_again"
echo "log: $LOG"
