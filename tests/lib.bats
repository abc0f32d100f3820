#!/usr/bin/env bats
# The shell libraries (scripts/lib): what each needs when it is sourced. Every one but
# server.sh only defines functions and constants (its functions read load_env's settings when
# called), so a script may source them in any order after common.sh; server.sh reads EXP and
# STATE_DIR when sourced, and says so when load_env has not run.

load test_helper

setup() {
  common_setup
  write_env GPU=cpu
}

teardown() { common_teardown; }

@test "every library but server.sh can be sourced right after common.sh" {
  local lib
  for lib in scripts/lib/*.sh; do
    [[ "$lib" != scripts/lib/common.sh && "$lib" != scripts/lib/server.sh ]] || continue
    run bash -c 'set -euo pipefail; source scripts/lib/common.sh; source "$1"; echo sourced' _ "$lib"
    assert_success
    assert_output sourced
  done
}

@test "server.sh sourced before load_env stops naming the fix; the fix followed, it names the experiment's server" {
  run bash -c 'set -euo pipefail; source scripts/lib/common.sh; source scripts/lib/env.sh; source scripts/lib/server.sh; echo sourced'
  assert_failure
  assert_output "[lab] error: scripts/lib/server.sh was sourced before load_env (it needs EXP and STATE_DIR)
[lab] fix: call load_env (scripts/lib/env.sh) first, then source scripts/lib/server.sh"
  run bash -c 'set -euo pipefail; source scripts/lib/common.sh; source scripts/lib/env.sh; load_env; source scripts/lib/server.sh; echo "$SERVER_PID_FILE"'
  assert_success
  assert_output "$REPO/.state/$DEFAULT_EXP/server/pid"
}
