#!/usr/bin/env bash
# make dashboard: SwanLab's local dashboard (`swanlab watch`, swanboard from the lock)
# over the experiment's local runs (training and evaluations, $RESULTS_DIR/swanlog),
# on 127.0.0.1 only, offline: the page loads only its own assets. Runs in the
# foreground: Ctrl-C stops it. DASHBOARD_PORT=5092 (SwanLab's default) picks the port.
# Upload the runs later with `swanlab sync` (docs/troubleshooting.md, "SwanLab offline").
set -euo pipefail
export STEP_NAME=dashboard
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/server.sh
source "$REPO_ROOT/scripts/lib/server.sh"
# shellcheck source=lib/commands.sh
source "$REPO_ROOT/scripts/lib/commands.sh"

main() {
  SKIP_GPU_CHECK=1 load_env
  local port="${DASHBOARD_PORT:-5092}" log_dir
  log_dir="$(swanlab_log_dir)"
  local cmd=(swanlab watch "$log_dir" --host 127.0.0.1 --port "$port")
  if is_dry_run; then run_cmd "${cmd[@]}"; return 0; fi
  require_command swanlab
  if port_in_use "$port"; then
    die "port $port is already in use by $(port_holder "$port")" "set DASHBOARD_PORT to a free port"
  fi
  # swanlab writes the dashboard's index (runs.swanlab) for runs in local mode.
  [[ -f "$log_dir/runs.swanlab" ]] || die "no local SwanLab runs of $EXP in $(display_path "$log_dir")" \
    "run 'make train EXP=$EXP' (or 'make smoke') with SWANLAB_MODE=local first; cloud runs are on swanlab.cn"
  log "open http://127.0.0.1:$port (Ctrl-C stops it): the local SwanLab runs of $EXP in $(display_path "$log_dir")"
  run_cmd "${cmd[@]}"
}

main "$@"
