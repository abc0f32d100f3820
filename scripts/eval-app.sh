#!/usr/bin/env bash
# make eval-app: EvalScope's result viewer (`evalscope app`, the report's section 8.2)
# over this repo's results, bound to 127.0.0.1 only. Runs in the foreground: Ctrl-C stops it.
#   EVAL_APP_PORT=9000 (EvalScope's default) picks the port.
# The viewer lists <outputs>/<run>/reports/<model>/ one level deep, while results
# live in $RESULTS_ROOT/<exp>/<served name>/<bench>/: it is pointed at a folder of
# links named <served name>-<bench>, one per evaluation of every experiment.
set -euo pipefail
export STEP_NAME=eval-app
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/server.sh
source "$REPO_ROOT/scripts/lib/server.sh"

# Recreates VIEW_DIR's links to every evaluation that has a report; prints how many.
link_runs() {
  local reports run served count=0
  rm -rf "$VIEW_DIR"
  mkdir -p "$VIEW_DIR"
  for reports in "$RESULTS_ROOT"/*/*/*/reports; do
    [[ -d "$reports" ]] || continue
    run="$(dirname "$reports")"
    served="$(basename "$(dirname "$run")")"
    ln -s "$run" "$VIEW_DIR/$served-$(basename "$run")"
    count=$((count + 1))
  done
  printf '%s' "$count"
}

main() {
  SKIP_GPU_CHECK=1 load_env
  local port="${EVAL_APP_PORT:-9000}"
  VIEW_DIR="$RESULTS_ROOT/.evalscope-app"
  local cmd=(evalscope app --host 127.0.0.1 --port "$port" --outputs "$VIEW_DIR")
  if is_dry_run; then
    printf '# %s: one link <served name>-<bench> per evaluation in %s/<exp>/<served name>/<bench>\n' \
      "$(display_path "$VIEW_DIR")" "$(display_path "$RESULTS_ROOT")"
    run_cmd "${cmd[@]}"
    return 0
  fi
  require_command evalscope
  if port_in_use "$port"; then
    die "port $port is already in use by $(port_holder "$port")" "set EVAL_APP_PORT to a free port"
  fi
  local count
  count="$(link_runs)"
  ((count > 0)) || die "no evaluation results in $(display_path "$RESULTS_ROOT")" "run 'make eval-ceval' or 'make smoke' first"
  log "open http://127.0.0.1:$port (Ctrl-C stops it): $count evaluations from $(display_path "$RESULTS_ROOT")"
  run_cmd "${cmd[@]}"
}

main "$@"
