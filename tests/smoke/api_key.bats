#!/usr/bin/env bats
# The real smoke server with SERVE_API_KEY: requests need the key, and the key
# shows up in no process listing and no log. Needs export/smoke and .venv, so
# tests/run.sh runs it after make smoke.

load ../test_helper

setup() {
  smoke_setup
  export LAB_STATE_DIR="$BATS_TEST_TMPDIR/state"
  export SERVE_API_KEY="lab-fake-serve-key-$RANDOM$RANDOM"
  SERVE_PORT="$(free_port)"
  export SERVE_PORT
}

teardown() { scripts/stop.sh >/dev/null 2>&1 || true; }

@test "a server with SERVE_API_KEY rejects requests without it and never shows it" {
  run scripts/deploy.sh
  assert_success
  refute_output --partial "$SERVE_API_KEY"
  run ps -eo args
  refute_output --partial "$SERVE_API_KEY"
  run scripts/health.sh
  assert_success
  refute_output --partial "$SERVE_API_KEY"
  # ms-swift answers a missing or wrong key with HTTP 400 "API key error".
  run curl -s -w ' %{http_code}' --noproxy '*' "http://127.0.0.1:$SERVE_PORT/v1/chat/completions" \
    -H 'Content-Type: application/json' -d '{"model":"smoke","messages":[{"role":"user","content":"hi"}],"max_tokens":4}'
  assert_output --partial "API key error"
  assert_output --regexp ' 400$'

  run grep -rl -- "$SERVE_API_KEY" "$LAB_STATE_DIR"
  assert_failure
}
