#!/usr/bin/env bash
# make test: shellcheck, the bats suites, pytest, then the real end-to-end CPU
# smoke pipeline (make smoke) and checks of what it wrote.
# SKIP_SMOKE=1 runs only the fast suites.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

START_SECONDS="$(date +%s)"
# Each phase with the seconds since the start, so a slow phase shows in CI's log.
log() { printf '[test %4ds] %s\n' "$(($(date +%s) - START_SECONDS))" "$*" >&2; }

# Run under `make test`, this inherits make's run-lock owner; the makes the tests
# start must each be their own (tests/state.bats and tests/smoke/inputs.bats check the lock).
unset LAB_RUN_OWNER

# Two lanes share the cores, each with a torch process at times (training, the server):
# one OpenMP thread each, or their spinning threads starve one another. Measured on 2
# cores: two smoke trainings at once took 157 s with 2 threads each, 29 s with 1; alone,
# 22 s with 2 and 27 s with 1 (the tiny model gains little from a second thread).
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# bats, its libraries, GNU parallel (bats --jobs), shellcheck, headless Chromium (the
# dashboard and report tests) and a Chinese font (the report's screenshot) come from the
# distribution (Debian: bats bats-assert bats-support bats-file parallel shellcheck chromium
# fonts-wqy-microhei); installed here when we are root.
ensure_test_tools() {
  local missing=()
  command -v bats >/dev/null || missing+=(bats)
  [[ -d /usr/lib/bats/bats-assert ]] || missing+=(bats-assert bats-support bats-file)
  command -v parallel >/dev/null || missing+=(parallel)
  command -v shellcheck >/dev/null || missing+=(shellcheck)
  command -v jq >/dev/null || missing+=(jq)
  command -v curl >/dev/null || missing+=(curl)
  command -v chromium >/dev/null || missing+=(chromium)
  [[ -n "$(fc-list :lang=zh 2>/dev/null)" ]] || missing+=(fonts-wqy-microhei)
  ((${#missing[@]} == 0)) && return 0
  if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    printf '[test] error: missing %s\n[test] fix: sudo apt-get install -y %s\n' "${missing[*]}" "${missing[*]}" >&2
    exit 1
  fi
}

ensure_test_tools
make env ENV_FILE=env/smoke.env

# Every suite must pass (set -e stops at the first failure), so at the end the
# number passed is the number run.
passed=0

# run_bats FILE...: runs the suites and counts their tests.
run_bats() {
  bats --timing "$@" # each test's milliseconds: a slow one shows in CI's log
  passed=$((passed + $(bats --count "$@")))
}

# The stubbed bats suites, the longest first (seconds in make test on 2 cores, 2026-12-06:
# sweep 83, eval 77, arena 71, shared 69, pilot 60, runbook 60, sbatch 40, preflight-remote 38,
# scale 37, experiments 31, preflight 30, state 29), then the others: run a file at a time per
# job, the longest start first and none is left alone at the end. A file's tests one after the
# other: GNU parallel starts the next file the moment one ends, where bats' own scheduler of
# the tests within a file polls for a free slot once a second (bats 1.8, semaphore.bash): the
# suites took 283 s that way, 220 s file by file (alone on 2 cores, the same CPU time).
stub_suites() {
  local name file listed=()
  for name in sweep eval arena shared pilot runbook sbatch preflight-remote scale experiments preflight state; do
    if [[ -f "tests/$name.bats" ]]; then listed+=("tests/$name.bats"); fi
  done
  printf '%s\n' "${listed[@]}"
  for file in tests/*.bats; do
    if [[ " ${listed[*]} " != *" $file "* ]]; then printf '%s\n' "$file"; fi
  done
}

# The fast lane: shellcheck and the stubbed bats suites (each test has its own repo copy
# and free ports). fast_lane JOBS: the suites at most JOBS at a time.
fast_lane() {
  local suites
  mapfile -t suites < <(stub_suites)
  log "shellcheck"
  make lint
  log "bats"
  run_bats --jobs "$1" --no-parallelize-within-files "${suites[@]}"
}

# pytest (the unit tests, the gpt-oss replay against EvalScope); none reads a smoke run.
run_pytest() {
  log "pytest"
  .venv/bin/python -m pytest -q tests
  passed=$((passed + $(.venv/bin/python -m pytest -q --collect-only tests | grep -c '::')))
}

# SKIP_SMOKE=1: the fast lane and pytest alone, two suites at a time.
if [[ "${SKIP_SMOKE:-0}" == 1 ]]; then
  fast_lane "$(nproc)"
  run_pytest
  printf 'tests: %d passed, 0 failed\n' "$passed"
  exit 0
fi

# Three lanes at once on the machine's cores: the real smoke suites here, one after the
# other (they share the smoke run and its ports); beside them the fast lane (shellcheck, the
# stubbed suites two at a time) and the runbook lane: the smoke pilot's runbook as pasted
# in a clean tree (its own ports), compared at the end with what make pilot gave and what make
# smoke ran (tests/check_repro.sh), then the smoke suites that need make smoke's run but none of
# the main lane's, then pytest. Every lane waits at times (a server loading, a stub's sleep, a
# poll): three keep both cores busy (2026-12-05, a fresh clone: with two lanes the cores were
# idle 17% of the run). Each phase logs its seconds since the start.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/lab-test.XXXXXX")"
side_lane() {
  fast_lane 2
  printf '%s\n' "$passed" >"$WORK/side-passed"
  log "the fast lane is done"
}
runbook_lane() {
  log "the smoke pilot's runbook as pasted in a clean tree"
  tests/check_repro.sh runbook "$WORK/repro"
  # Two nodes need make smoke's tiny model and venv, nothing else of its run (a copy of the
  # checkout, ports of their own): here once make smoke is done, off the main lane.
  until [[ -e "$WORK/smoke-done" ]]; do sleep 2; done
  log "two nodes on one machine (real smoke training: two make train, NNODES=2, CPU, gloo)"
  run_bats tests/smoke/multinode.bats
  # Two suites that read the smoke run and change nothing the main lane's suites read: here,
  # between outputs.bats (the dashboard adds to the step log it checks) and variants.bats
  # (its sweep makes smoke again), while the main lane's inputs.bats works on a copy.
  until [[ -e "$WORK/outputs-done" ]]; do sleep 2; done
  log "SwanLab's local dashboard in headless Chromium (real smoke runs)"
  run_bats tests/smoke/dashboard.bats
  log "server API key (real smoke server)"
  run_bats tests/smoke/api_key.bats
  : >"$WORK/side-smoke-done"
  # On a copy of the smoke run as make smoke left it (tests/lib/smoke-copy.sh): it writes the
  # human ratings into the copy's report while the main lane's suites make smoke again.
  log "blind human evaluation (real smoke replies, on a copy: make human-pack N=6, three raters in headless Chromium, server killed and restarted, make human-report)"
  SMOKE_ROOT="$WORK/smoke-copy" run_bats tests/smoke/human.bats
  # pytest here, idle by now, rather than after the fast lane's bats, which ends last.
  run_pytest
  printf '%s\n' "$passed" >"$WORK/runbook-passed"
  log "the runbook lane is done"
}
runbook_lane >"$WORK/runbook-lane.log" 2>&1 &
RUNBOOK_PID=$!
side_lane >"$WORK/side.log" 2>&1 &
SIDE_PID=$!
trap 'kill "$SIDE_PID" "$RUNBOOK_PID" 2>/dev/null || true' EXIT

# The real pipeline, from clean, with a recognisable fake key planted: it must
# never show up in anything printed or written.
log "smoke pipeline (real CPU run)"
export FAKE_TOKEN="lab-fake-token-$RANDOM$RANDOM-do-not-leak"
smoke_log="$WORK/smoke.log"
make clean
if ! make smoke SWANLAB_TOKEN="$FAKE_TOKEN" SWANLAB_MODE=local >"$smoke_log" 2>&1; then
  tail -n 60 "$smoke_log" >&2
  log "make smoke failed (its log: $smoke_log)"
  exit 1
fi
tests/lib/smoke-copy.sh "$PWD" "$WORK/smoke-copy"
: >"$WORK/smoke-done"
SMOKE_LOG="$smoke_log" run_bats tests/smoke/outputs.bats
: >"$WORK/outputs-done"

log "outputs bound to their inputs (real smoke, on a copy: evaluation cache; a changed hyperparameter retrains, killed with SIGKILL and resumed)"
run_bats tests/smoke/inputs.bats

# The dashboard and API key suites (the runbook lane) done, or that lane ended.
while [[ ! -e "$WORK/side-smoke-done" ]] && kill -0 "$RUNBOOK_PID" 2>/dev/null; do sleep 2; done

log "variants (real smoke: make sweep runs smoke-r4 and smoke-experts side by side; the experts' adapter; make compare with smoke)"
run_bats tests/smoke/variants.bats

log "the pilot (real smoke: make pilot EXP=smoke, its projection, the smoke run left as it was)"
run_bats tests/smoke/pilot.bats
# What make smoke ran and make pilot gave (check_repro compares the runbooks with them).
tests/check_repro.sh reference "$WORK/reference"

log "waiting for the fast lane and the runbook"
side_status=0 runbook_status=0
wait "$SIDE_PID" || side_status=$?
wait "$RUNBOOK_PID" || runbook_status=$?
trap - EXIT
cat "$WORK/side.log" "$WORK/runbook-lane.log"
((side_status == 0)) || { log "the fast lane failed (above)"; exit 1; }
((runbook_status == 0)) || { log "the runbook lane failed (above)"; exit 1; }
log "reproducibility: the pilot's runbook against make pilot; the smoke runbook against make smoke's commands"
tests/check_repro.sh compare "$WORK/repro" "$WORK/reference"
passed=$((passed + $(cat "$WORK/side-passed") + $(cat "$WORK/runbook-passed") + 1))

printf 'tests: %d passed, 0 failed\n' "$passed"
