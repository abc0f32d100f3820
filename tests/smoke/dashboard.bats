#!/usr/bin/env bats
# make dashboard on the real smoke run (tests/run.sh runs it after make smoke): SwanLab's
# local dashboard, opened in headless Chromium (Debian's package) with every host but
# 127.0.0.1 unresolvable, lists the smoke run's training and evaluation runs and draws
# the training run's charts.

load ../test_helper

setup() {
  smoke_setup
  command -v chromium >/dev/null || fail "chromium is not installed (apt-get install -y chromium)"
}

teardown() {
  if [[ -n "${DASHBOARD_PID:-}" ]]; then kill -- "-$DASHBOARD_PID" 2>/dev/null || true; fi
}

# The page as Chromium has it after its scripts ran, with no network beyond loopback.
rendered_page() {
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$BATS_TEST_TMPDIR/chromium" \
    --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" --virtual-time-budget=15000 \
    --dump-dom "$1" 2>"$BATS_TEST_TMPDIR/chromium.log"
}

@test "make dashboard serves the smoke run's local SwanLab runs, offline, on 127.0.0.1" {
  local port
  port="$(free_port)"
  DASHBOARD_PORT="$port" setsid make dashboard >"$BATS_TEST_TMPDIR/dashboard.log" 2>&1 &
  DASHBOARD_PID=$!
  wait_for_port "$port" 300 || { cat "$BATS_TEST_TMPDIR/dashboard.log"; fail "the dashboard did not start"; }
  run grep -F "[dashboard] open http://127.0.0.1:$port" "$BATS_TEST_TMPDIR/dashboard.log"
  assert_success
  # Bound to loopback only.
  run ss -ltnH "sport = :$port"
  assert_output --partial "127.0.0.1:$port"
  # The project page lists the training run and both models' evaluation runs.
  run rendered_page "http://127.0.0.1:$port/"
  assert_success
  assert_output --partial ">lab-smoke<"
  for run_name in smoke smoke-eval smoke-base-eval; do
    grep -qF ">$run_name<" <<<"$output" || fail "the dashboard does not list the run $run_name"
  done
  # The training run's page draws its charts (canvases) of the training and held-out loss.
  local id
  id="$(curl -s --noproxy '*' "http://127.0.0.1:$port/api/v1/project" | jq -r '.data.experiments[] | select(.name == "smoke") | .id')"
  [[ "$id" =~ ^[0-9]+$ ]] || fail "no experiment 'smoke' in the dashboard's API"
  run rendered_page "http://127.0.0.1:$port/experiment/$id"
  assert_success
  assert_output --partial ">train/loss<"
  assert_output --partial ">eval/loss<"
  assert_output --partial "<canvas"
}
