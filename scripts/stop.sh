#!/usr/bin/env bash
# make stop: stop the experiment's server (started by `make deploy`, `make all`, ...) with
# all its child processes. ALL=1 stops the server of every experiment of this checkout
# (a sweep runs one per experiment).
set -euo pipefail
export STEP_NAME=stop
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/server.sh
source "$REPO_ROOT/scripts/lib/server.sh"

stop_experiment_server() {
  local pid
  pid="$(server_pid)"
  if [[ -z "$pid" ]]; then
    log "no server of $EXP is running"
    return 0
  fi
  if is_dry_run; then printf 'kill -TERM -- -%s\n' "$pid"; return 0; fi
  stop_server_group "$pid"
  log "stopped the server of $EXP (process group $pid)"
}

# stop_server_of NAME DIR: `make stop EXP=NAME`, for the server whose files are in DIR.
stop_server_of() {
  EXP="$1"
  use_server_dir "$2"
  stop_experiment_server
}

# Every .state/<exp>/server/pid, each stopped as `make stop EXP=<exp>` would; and a server
# started before servers were per experiment (.state/server/, until 2026-12-05).
stop_all_servers() {
  local pid_file dir name found=0
  for pid_file in "$STATE_DIR"/*/server/pid "$STATE_DIR/server/pid"; do
    [[ -f "$pid_file" ]] || continue
    found=1
    dir="$(dirname "$pid_file")"
    name="$(basename "$(dirname "$dir")")"
    if [[ "$dir" == "$STATE_DIR/server" ]]; then name="$(cat "$dir/served_model_name" 2>/dev/null || echo '?')"; fi
    (stop_server_of "$name" "$dir")
  done
  ((found)) || log "no server of this checkout is running"
}

main() {
  SKIP_GPU_CHECK=1 load_env
  case "${ALL:-0}" in
    0) stop_experiment_server ;;
    1) stop_all_servers ;;
    *) die "ALL='$ALL' is not 0 or 1" "make stop stops the server of EXP; make stop ALL=1 stops every experiment's" ;;
  esac
}

main "$@"
