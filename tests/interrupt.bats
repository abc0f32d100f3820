#!/usr/bin/env bats
# Ctrl-C during `make all` must not leave the model server (which runs in a
# session of its own, out of reach of the terminal's SIGINT) behind.

load test_helper

setup() {
  common_setup
  # A venv that matches the lock, so `make env` and preflight have nothing to do.
  venv_up_to_date
  # Training and export already done; the evaluation hangs until interrupted.
  mkdir -p "$EXPORT_DIR"
  printf '{"architectures": ["GptOssForCausalLM"]}\n' >"$EXPORT_DIR/config.json"
  export STUB_EVAL_SECONDS=60
}

teardown() {
  if [[ -n "${MAKE_PID:-}" ]]; then kill -KILL -- "-$MAKE_PID" 2>/dev/null || true; fi
  common_teardown
}

@test "Ctrl-C during make all stops the server it started" {
  write_env GPU=cpu "SERVE_PORT=$(free_port)"
  mark_done train export
  # A background job inherits SIGINT ignored; a terminal's make would not. The test's PATH is
  # handed through: a pyenv shim puts its own python first, before the stubs.
  TEST_PATH="$PATH" setsid python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.environ["PATH"] = os.environ.pop("TEST_PATH"); os.execvp("make", sys.argv[1:])' \
    make all >"$TMP/make.log" 2>&1 &
  MAKE_PID=$!
  wait_for_file "$TMP/eval-started" 300 || { cat "$TMP/make.log" >&2; false; }
  server_pid="$(cat ".state/$DEFAULT_EXP/server/pid")"
  kill -0 -- "-$server_pid"

  # What the terminal does on Ctrl-C: SIGINT to the whole foreground process group.
  kill -INT -- "-$MAKE_PID"
  wait "$MAKE_PID" || true
  MAKE_PID=

  run kill -0 -- "-$server_pid"
  assert_failure
  assert_file_not_exists ".state/$DEFAULT_EXP/server/pid"
  run cat "$TMP/make.log"
  assert_output --partial "stopped the server of $DEFAULT_EXP (process group $server_pid)"
  refute_output --partial "report.sh"
}
