#!/usr/bin/env bash
# make stop: stop the server started by `make deploy`, with all its child processes.
set -euo pipefail
export STEP_NAME=stop
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"

main() {
  SKIP_GPU_CHECK=1 load_env
  # shellcheck source=lib/server.sh
  source "$REPO_ROOT/scripts/lib/server.sh"
  local pid
  pid="$(server_pid)"
  if [[ -z "$pid" ]]; then
    log "no server of ours is running"
    return 0
  fi
  if is_dry_run; then printf 'kill -TERM -- -%s\n' "$pid"; return 0; fi
  stop_server_group "$pid"
  log "stopped server (process group $pid)"
}

main "$@"
