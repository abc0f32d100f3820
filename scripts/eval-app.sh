#!/usr/bin/env bash
# make eval-app: EvalScope's result viewer (`evalscope app`, the report's section 8.2)
# over this repo's results, bound to 127.0.0.1 only. Runs in the foreground: Ctrl-C stops it.
#   EVAL_APP_PORT=9000 (EvalScope's default) picks the port.
set -euo pipefail
export STEP_NAME=eval-app
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"

main() {
  SKIP_GPU_CHECK=1 load_env
  local port="${EVAL_APP_PORT:-9000}"
  reset_cmd
  CMD=(evalscope app --host 127.0.0.1 --port "$port" --outputs "$RESULTS_ROOT")
  if is_dry_run; then run_cmd; return 0; fi
  require_command evalscope
  [[ -d "$RESULTS_ROOT" ]] || die "no results yet in $RESULTS_ROOT" "run 'make eval-ceval' or 'make smoke' first"
  # shellcheck source=lib/server.sh
  source "$REPO_ROOT/scripts/lib/server.sh"
  if port_in_use "$port"; then
    die "port $port is already in use by $(port_holder "$port")" "set EVAL_APP_PORT to a free port"
  fi
  log "open http://127.0.0.1:$port (Ctrl-C stops it); results from $(display_path "$RESULTS_ROOT")"
  run_cmd
}

main "$@"
