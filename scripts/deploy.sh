#!/usr/bin/env bash
# make deploy: serve the merged model (or with --base the base model) with
# `swift deploy` in the background on $SERVE_HOST:$SERVE_PORT (the base model on
# SERVE_PORT + 1), an OpenAI-compatible API.
# lmdeploy on GPU machines, transformers on CPU. Does nothing if it already serves it.
set -euo pipefail
export STEP_NAME=deploy
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/commands.sh
source "$REPO_ROOT/scripts/lib/commands.sh"

# Refuses to start next to a server we do not own: swift deploy would silently
# move to another port and every later step would talk to the wrong server.
check_port_free() {
  if port_in_use "$SERVED_PORT"; then
    die "port $SERVED_PORT is already in use by $(port_holder "$SERVED_PORT")" \
      "stop that program, or set SERVE_PORT to a free port in $ENV_FILE (the base model uses SERVE_PORT + 1)"
  fi
  wait_until_port_bindable "$SERVED_PORT" ||
    die "port $SERVED_PORT cannot be bound (connections still in TIME_WAIT)" "wait a minute, or set another SERVE_PORT"
}

wait_until_serving() {
  local pid="$1" timeout="${DEPLOY_TIMEOUT:-900}" waited=0 actual_port
  while ! is_serving "$SERVED_NAME"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      print_server_log_tail
      rm -f "$SERVER_PID_FILE" "$SERVER_NAME_FILE" "$SERVER_DIGEST_FILE"
      die "swift deploy exited before serving $SERVED_NAME" "read the log above ($SERVER_LOG_FILE)"
    fi
    actual_port="$(sed -n 's/.*Uvicorn running on [a-z]*:\/\/[^ ]*:\([0-9][0-9]*\).*/\1/p' "$SERVER_LOG_FILE" | tail -n 1)"
    if [[ -n "$actual_port" && "$actual_port" != "$SERVED_PORT" ]]; then
      stop_server_group "$pid"
      die "swift deploy moved to port $actual_port because $SERVED_PORT was taken; stopped it" \
        "free port $SERVED_PORT or set another SERVE_PORT"
    fi
    if ((waited >= timeout)); then
      print_server_log_tail
      stop_server_group "$pid"
      die "server not ready after ${timeout}s; stopped it" "read the log above; raise DEPLOY_TIMEOUT for a slow model load"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  log "serving $SERVED_NAME at $(api_base) (pid $pid, ready after ${waited}s, log $SERVER_LOG_FILE)"
}

# Sets SERVE_DIGEST: the fingerprint of the model as served (what the evaluations
# check before asking anything). The fine-tuned model must be exported from the
# current training first.
served_inputs_digest() {
  # shellcheck source=lib/eval_config.sh
  source "$REPO_ROOT/scripts/lib/eval_config.sh"
  # shellcheck source=lib/fingerprint.sh
  source "$REPO_ROOT/scripts/lib/fingerprint.sh"
  compute_inputs serve
  resolve_served_model "${1:-}"
  build_deploy_cmd
  if [[ "${1:-}" == --base ]]; then
    SERVE_DIGEST="${STEP_DIGEST[serve-base]}"
  else
    step_done "export" ||
      die "$(repo_relative "$EXPORT_DIR") is not the merge of the current training" "run 'make export EXP=$EXP' first"
    SERVE_DIGEST="${STEP_DIGEST[serve]}"
  fi
}

main() {
  load_env
  begin_step
  # shellcheck source=lib/server.sh
  source "$REPO_ROOT/scripts/lib/server.sh"
  resolve_served_model "${1:-}"
  build_deploy_cmd
  if is_dry_run; then
    print_config_as_comments "${EXP_DIR#"$REPO_ROOT"/}/deploy.yaml"
    printf '# in the background, in a process group of its own (make stop ends the group):\n'
    printf 'mkdir -p %s\n' "$(display_path "$SERVER_DIR")"
    CMD=(setsid "${CMD[@]}")
    print_cmd | sed -e "\$ s|\$| > $(display_path "$SERVER_LOG_FILE") 2>\&1 \&|"
    return 0
  fi
  require_command "${CMD[0]}" "run 'make env' first (GPU machines need .venv-lmdeploy)"
  require_command curl "install curl"
  served_inputs_digest "${1:-}"
  local pid
  pid="$(server_pid)"
  if [[ -n "$pid" && "$(cat "$SERVER_DIGEST_FILE" 2>/dev/null)" != "$SERVE_DIGEST" &&
    "$(cat "$SERVER_NAME_FILE" 2>/dev/null)" == "$SERVED_NAME" ]]; then
    log "our server (pid $pid) serves an older build of $SERVED_NAME; restarting it"
    stop_server_group "$pid"
    pid=""
  fi
  if [[ -n "$pid" ]]; then
    if is_serving "$SERVED_NAME"; then
      log "already serving $SERVED_NAME at $(api_base) (pid $pid)"
      return 0
    fi
    if [[ "$(cat "$SERVER_NAME_FILE" 2>/dev/null)" != "$SERVED_NAME" ]]; then
      die "our server (pid $pid) is running $(cat "$SERVER_NAME_FILE" 2>/dev/null || echo 'another model')" \
        "run 'make stop' first"
    fi
    log "server pid $pid is still starting"
    wait_until_serving "$pid"
    return 0
  fi
  [[ -e "$SERVED_MODEL" || "${1:-}" == --base ]] ||
    die "no merged model at $SERVED_MODEL" "run 'make export EXP=$EXP' first"
  check_port_free
  mkdir -p "$SERVER_DIR"
  start_cmd_detached "$SERVER_LOG_FILE"
  pid="$STARTED_PID"
  printf '%s\n' "$pid" >"$SERVER_PID_FILE"
  printf '%s\n' "$SERVED_NAME" >"$SERVER_NAME_FILE"
  printf '%s\n' "$SERVE_DIGEST" >"$SERVER_DIGEST_FILE"
  wait_until_serving "$pid"
}

main "$@"
