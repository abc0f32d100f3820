# shellcheck shell=bash
# shellcheck disable=SC2034 # TMP, REPO, RUN_DIR, ... are read by the .bats files
# The one helper every suite loads (`load test_helper`, from tests/smoke: `load
# ../test_helper`). Two kinds of setup:
#
# common_setup, for the suites on stubs. Each test gets, under $BATS_TEST_TMPDIR:
#   repo/    a copy of the repo's Makefile, scripts/, configs/, env/ and report/, so a
#            test's .state/, pid files and stamps never touch the real checkout (and no
#            .venv there shadows the stubs on PATH)
#   stubs/   swift, evalscope, nvidia-smi, curl and python, all tests/stubs/stub, first
#            on PATH (stub_tools adds more)
#   out/     OUTPUT_ROOT, EXPORT_ROOT, RESULTS_ROOT, CACHE_ROOT of the test env file
#   stub.log what the stubs were called with (see tests/stubs/stub)
#
# smoke_setup, for the suites on the real smoke run's outputs (tests/smoke/, run by
# tests/run.sh after make smoke): the repo itself, EXP=smoke, env/smoke.env.

SRC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEFAULT_EXP=gpt-oss-20b-sft-v1
bats_require_minimum_version 1.5.0

# load_assertions: bats-support, bats-assert and bats-file. Their load.bash files source each of
# their files through a $(dirname ...) subshell, about 0.1 s a test on 2 busy cores, for each
# of some 370 tests: joined once per run into one file in their order (join_assertions), which
# each test sources, its frames left out of failure traces as bats leaves out the libraries'. A
# library laid out otherwise is loaded as bats loads it.
ASSERTION_LIBRARIES=(bats-support bats-assert bats-file)
load_assertions() {
  local dir="$BATS_RUN_TMPDIR/bats-libraries" lib
  if [[ -f "$dir/joined.bash" ]] || { mkdir -p "$dir" && join_assertions "$dir/joined.bash"; }; then
    # shellcheck source=/dev/null
    source "$dir/joined.bash"
    bats_add_debug_exclude_path "$dir" # (bats compares the folder of each frame's file)
    return
  fi
  for lib in "${ASSERTION_LIBRARIES[@]}"; do bats_load_library "$lib"; done
}

# join_assertions FILE: the files the libraries' load.bash source, in their order, into FILE;
# fails when a load.bash holds anything else, or a library is not in BATS_LIB_PATH.
join_assertions() {
  local lib dir path line tmp
  tmp="$(mktemp "$1.XXXXXX")"
  for lib in "${ASSERTION_LIBRARIES[@]}"; do
    dir=""
    while read -r -d: path; do
      if [[ -f "$path/$lib/load.bash" ]]; then dir="$path/$lib"; break; fi
    done <<<"${BATS_LIB_PATH:-/usr/lib/bats}:"
    [[ -n "$dir" ]] || { rm -f "$tmp"; return 1; }
    while IFS= read -r line; do
      [[ -z "$line" || "$line" == '#'* ]] && continue
      [[ "$line" =~ ^source\ \"\$\(dirname\ \"\$\{BASH_SOURCE\[0\]\}\"\)/(src/[a-z_]+\.bash)\"$ ]] || { rm -f "$tmp"; return 1; }
      cat "$dir/${BASH_REMATCH[1]}" >>"$tmp"
    done <"$dir/load.bash"
  done
  mv "$tmp" "$1" # (tests running at once each join; any one's file is the same)
}

# Nothing from the caller's environment (or an outer make) may leak into a test.
clean_environment() {
  unset GPU SWANLAB_TOKEN SWANLAB_PROJECT SWANLAB_MODE NO_PROXY no_proxy SERVE_HOST SERVE_PORT \
    SERVE_API_KEY MODEL DATASET OUTPUT_ROOT EXPORT_ROOT RESULTS_ROOT CACHE_ROOT OFFLINE MASTER_PORT \
    ENV_FILE EXP DRY_RUN CHECKPOINT SKIP_GPU_CHECK SWANLAB_API_KEY CUDA_VISIBLE_DEVICES \
    NPROC_PER_NODE MAKEFLAGS MAKELEVEL MFLAGS STEP_NAME REPO_ROOT LAB_RUN_OWNER SWANLAB_API_HOST SKIP_REMOTE_CHECKS \
    REMOTE_CHECK_TIMEOUT REPLACE_CHANGED LAB_STATE_DIR REPORT_DIR NNODES NODE_RANK MASTER_ADDR DEEPSPEED \
    JOB_PARTITION JOB_ACCOUNT JOB_TIME_LIMIT JOB_CPUS_PER_NODE SUBMIT SLURM_JOB_NODELIST SLURM_NODEID \
    JUDGE_API_URL JUDGE_MODEL JUDGE_API_KEY PILOT EVALSCOPE_WARM EVALSCOPE_HTML
}

# The project venv's Python reads the configs (PyYAML) and renders the report.
use_project_python() {
  if [[ -x "$SRC_ROOT/.venv/bin/python" ]]; then export LAB_PYTHON="$SRC_ROOT/.venv/bin/python"; fi
}

common_setup() {
  load_assertions
  clean_environment

  TMP="$BATS_TEST_TMPDIR"
  REPO="$TMP/repo"
  mkdir -p "$REPO"
  # -a: the times kept, so the spec cache (scripts/py/fingerprint.py) can keep a spec made
  # from files older than its racy window, as in a checkout.
  cp -a "$SRC_ROOT/Makefile" "$SRC_ROOT/scripts" "$SRC_ROOT/configs" "$SRC_ROOT/env" "$SRC_ROOT/report" "$REPO/"
  rm -f "$REPO/env/local.env" "$REPO"/report/*.md.tmp
  find "$REPO/report" -maxdepth 1 -type f ! -name '*.zh.md' ! -name '*.zh.tex' -delete # the templates stay
  # The configs' readings (common.sh's config_lines), shared by the run's tests: each is named by
  # the digest of all it was read from, so a test reads again what it changed, and only that.
  mkdir -p "$REPO/.cache" "$BATS_RUN_TMPDIR/config-cache"
  ln -s "$BATS_RUN_TMPDIR/config-cache" "$REPO/.cache/config"

  STUBS="$TMP/stubs"
  mkdir -p "$STUBS"
  stub_tools swift evalscope nvidia-smi curl python
  PATH="$STUBS:$PATH"
  export PATH
  export STUB_LOG="$TMP/stub.log" STUB_STATE="$TMP" STUB_HELDOUT="$SRC_ROOT/tests/fixtures/heldout/val_dataset.jsonl"
  export STUB_GPU_COUNT=8
  : >"$STUB_LOG"

  # Fast failure paths: no step waits long for a server that never comes.
  export DEPLOY_TIMEOUT=10 HEALTH_TIMEOUT=0 STOP_TIMEOUT=5
  use_project_python
  plant_fetched_sets

  OUT="$TMP/out"
  RUN_DIR="$OUT/output/$DEFAULT_EXP"
  EXPORT_DIR="$OUT/export/$DEFAULT_EXP"
  cd "$REPO" || return 1
}

# plant_fetched_sets: the sets the real experiments fetch from their public source
# (configs/benchmarks.yaml: fetch) are already in the copy, as after a first run, one file per
# listed task with the smoke sample's questions: no test contacts a public host. Built once
# per bats run (build_fetched_sets), then copied.
plant_fetched_sets() {
  local built="$BATS_RUN_TMPDIR/fetched-sets"
  [[ -d "$built" ]] || build_fetched_sets "$built"
  mkdir -p "$REPO/data"
  cp -a "$built/." "$REPO/data/"
}

# build_fetched_sets DIR: the planted sets in DIR; tests running at once (bats --jobs) each
# build their own and the first to rename it into place wins.
build_fetched_sets() {
  local tmp kind task
  tmp="$(mktemp -d "$1.XXXXXX")"
  for kind in single multi; do
    mkdir -p "$tmp/cpsyexam/$kind"
    while read -r task; do
      cp "$(compgen -G "$SRC_ROOT/configs/smoke/data/cpsyexam/$kind/*_val.jsonl" | head -n 1)" "$tmp/cpsyexam/$kind/${task}_val.jsonl"
    done < <("${LAB_PYTHON:-python3}" -c 'import sys, yaml
print("\n".join(yaml.safe_load(open(sys.argv[1], encoding="utf-8"))[sys.argv[2]]["subsets"]))' \
      "$SRC_ROOT/configs/benchmarks.yaml" "cpsyexam-$kind")
  done
  cp -r "$SRC_ROOT/configs/smoke/data/psydt" "$tmp/psydt"
  cp -r "$SRC_ROOT/configs/smoke/data/cpsycoune" "$tmp/cpsycoune"
  mv -T "$tmp" "$1" 2>/dev/null || rm -rf "$tmp"
}

# stub_tools NAME...: NAME on PATH is tests/stubs/stub (common_setup puts the usual
# ones there). Copies, not links: a test that replaces one cannot touch the original.
stub_tools() {
  local tool
  for tool in "$@"; do cp -f "$SRC_ROOT/tests/stubs/stub" "$STUBS/$tool"; done
}

# unstub_tool NAME: NAME is not on PATH at all (as on a machine without it).
unstub_tool() { rm -f "$STUBS/$1"; }

# smoke_copy DIR: a copy of the checkout with the real smoke run (tests/lib/smoke-copy.sh), for
# suites that change configs or outputs.
smoke_copy() { "$SRC_ROOT/tests/lib/smoke-copy.sh" "$SRC_ROOT" "$1"; }

# fixture_setup, for the suites on fixture runs (report, status): the repo's own scripts
# with a temp env file (GPU=cpu), temp output roots, state and report dirs; use_run NAME
# puts tests/fixtures/runs/NAME/smoke in place as the smoke run.
fixture_setup() {
  load_assertions
  clean_environment
  use_project_python
  REPO="$SRC_ROOT"
  FIXTURES="$REPO/tests/fixtures"
  TMP="$BATS_TEST_TMPDIR"
  mkdir -p "$TMP/output" "$TMP/results"
  printf '%s\n' GPU=cpu SWANLAB_MODE=local SERVE_HOST=127.0.0.1 SERVE_PORT=1 "OUTPUT_ROOT=$TMP/output" \
    "EXPORT_ROOT=$TMP/export" "RESULTS_ROOT=$TMP/results" "CACHE_ROOT=$TMP/cache" >"$TMP/test.env"
  export ENV_FILE="$TMP/test.env" EXP=smoke LAB_STATE_DIR="$TMP/state" REPORT_DIR="$TMP/report"
}

use_run() { cp -r "$FIXTURES/runs/$1/smoke" "$TMP/output/smoke"; }

# SMOKE_ROOT: the checkout with the real smoke run the smoke suites read: this one, or a copy of
# it (tests/lib/smoke-copy.sh) where tests/run.sh runs a suite beside the others.
SMOKE_ROOT="${SMOKE_ROOT:-$SRC_ROOT}"

smoke_setup() {
  load_assertions
  clean_environment
  use_project_python
  cd "$SMOKE_ROOT" || return 1
  export EXP=smoke ENV_FILE=env/smoke.env
  RUN_DIR=output/smoke
  EXPORT_DIR=export/smoke
}

common_teardown() {
  local pid_file pid
  # Every experiment's server (.state/<exp>/server/pid), none left behind.
  for pid_file in "${REPO:-/nonexistent}"/.state/*/server/pid; do
    [[ -f "$pid_file" ]] || continue
    pid="$(cat "$pid_file")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -KILL -- "-$pid" 2>/dev/null
  done
  if [[ -n "${LISTENER_PID:-}" ]]; then kill "$LISTENER_PID" 2>/dev/null; wait "$LISTENER_PID" 2>/dev/null; fi
  return 0
}

# write_env [KEY=VALUE ...]: writes $TMP/test.env (the example's keys, paths under
# $TMP/out) with the given lines appended, and exports ENV_FILE pointing at it.
# A later line for the same key does not override: pass only keys not set here,
# or use write_env_raw.
write_env() {
  ENV_FILE="$TMP/test.env"
  {
    printf '%s\n' "SWANLAB_PROJECT=multi-model-psychology" "NO_PROXY=127.0.0.1,localhost,::1" \
      "OUTPUT_ROOT=$OUT/output" "EXPORT_ROOT=$OUT/export" "RESULTS_ROOT=$OUT/results" \
      "CACHE_ROOT=$OUT/cache" "OFFLINE=0"
    if (($#)); then printf '%s\n' "$@"; fi
  } >"$ENV_FILE"
  chmod 600 "$ENV_FILE"
  export ENV_FILE
}

# write_env_raw LINE...: an env file with exactly these lines.
write_env_raw() {
  ENV_FILE="$TMP/test.env"
  printf '%s\n' "$@" >"$ENV_FILE"
  chmod 600 "$ENV_FILE"
  export ENV_FILE
}

# venv_up_to_date [VENV [LOCK]]: VENV (.venv) as make env leaves it for env/requirements-LOCK.lock
# (cpu): its bin/ and the lock's stamp, so make env and preflight have nothing to do (the stubs
# stand in for its tools).
venv_up_to_date() {
  local venv="${1:-.venv}"
  mkdir -p "$venv/bin"
  sha256sum "env/requirements-${2:-cpu}.lock" | cut -d' ' -f1 >"$venv/.lab-lock.sha256"
}

# evaluate_only EXP BENCH...: configs/EXP/eval.yaml evaluates only these benchmarks, for a
# test of the orchestration around them (every benchmark's command: tests/eval.bats, the GPU
# runbook in tests/runbook.bats, the real smoke).
evaluate_only() {
  local list
  list="$(IFS=,; echo "${*:2}")"
  perl -0pi -e 's/^benchmarks: \[[^\]]*\]/benchmarks: ['"${list//,/, }"']/m or die "no benchmarks list\n"' "$REPO/configs/$1/eval.yaml"
}

# stub_call NAME [N]: the log block of the Nth call (1-based; default the last) to NAME.
stub_call() {
  awk -v name="$1" -v want="${2:-0}" '
    /^== / { inblock = ($2 == name); if (inblock) { n++; block[n] = "" } next }
    /^curl-/ { if (inblock) block[n] = block[n] $0 "\n"; next }
    inblock { block[n] = block[n] $0 "\n" }
    END { i = (want == 0 ? n : want); if (i > 0 && i <= n) printf "%s", block[i] }
  ' "$STUB_LOG"
}

# stub_calls NAME: how many times NAME was called.
stub_calls() { grep -cx "== $1" "$STUB_LOG" || true; }

# stub_args NAME [N]: the arguments of that call, one a line.
stub_args() { stub_call "$@" | sed -n 's/^arg: //p'; }

# stub_arg NAME N FLAG: the value following FLAG in that call's arguments.
stub_arg() { stub_args "$1" "$2" | sed -n "/^$3\$/{n;p;q}"; }

# stub_serves NAME...: the stub curl answers /models with these names (a server we
# did not start, or one the deploy stub started earlier).
stub_serves() { printf '%s\n' "$@" >"$STUB_STATE/served"; }

# make_checkpoint DIR STEP [partial]: a checkpoint as ms-swift writes it; "partial"
# leaves out trainer_state.json, as an interrupted save does.
make_checkpoint() {
  mkdir -p "$1"
  : >"$1/adapter_model.safetensors"
  : >"$1/optimizer.pt"
  : >"$1/scheduler.pt"
  if [[ "${3:-}" != partial ]]; then
    printf '{"global_step": %d, "log_history": []}\n' "$2" >"$1/trainer_state.json"
  fi
}

# heldout_split RUN_DIR: the held-out split ms-swift leaves in a run dir (3 conversations).
heldout_split() {
  mkdir -p "$1"
  cp "$STUB_HELDOUT" "$1/val_dataset.jsonl"
}

# mark_done STEP...: STEP's outputs recorded as made from the current inputs
# (train, export, eval-<served>-<bench>; serving, serving-base for our server),
# as the step writes them when it succeeds. Run in the test's repo copy.
mark_done() { "$SRC_ROOT/tests/lib/mark-done.sh" "$@"; }

# free_port: a TCP port on 127.0.0.1 nothing listens on, below the kernel's ephemeral
# range: a client connection of another test (or of the smoke run beside it) is given
# ports from that range and could take the port before our server binds it.
free_port() {
  local port low=32768 _high
  read -r low _high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  ((low > 20000 + 4096)) || low=60000 # an unusual range: fall back to the old one
  while :; do
    port=$((20000 + RANDOM % (low - 20000)))
    if ! (: >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then printf '%s\n' "$port"; return 0; fi
  done
}

# wait_for_port PORT [TENTHS]: polls until something listens on 127.0.0.1:PORT (default 5 s).
wait_for_port() {
  local i
  for ((i = 0; i < ${2:-50}; i++)); do
    (: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# start_listener PORT: a tiny HTTP server on 127.0.0.1:PORT (LISTENER_PID), stopped in teardown.
start_listener() {
  python3 -m http.server "$1" --bind 127.0.0.1 >/dev/null 2>&1 &
  LISTENER_PID=$!
  wait_for_port "$1" || { echo "listener on port $1 did not start" >&2; return 1; }
}

# wait_for_file FILE [TENTHS]: polls until FILE exists (default 5 s).
wait_for_file() {
  local i
  for ((i = 0; i < ${2:-50}; i++)); do
    [[ -e "$1" ]] && return 0
    sleep 0.1
  done
  return 1
}
