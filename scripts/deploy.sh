#!/usr/bin/env bash
# make deploy: serve the merged model (or with --base the base model) with
# `swift deploy` in the background on $SERVE_HOST:$SERVE_PORT (the base model on
# SERVE_PORT + 1), an OpenAI-compatible API.
# lmdeploy on GPU machines, transformers on CPU. Does nothing if it already serves it.
set -euo pipefail
export STEP_NAME=deploy
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/fingerprint.sh
source "$REPO_ROOT/scripts/lib/fingerprint.sh"

# Refuses to start next to a server we do not own: swift deploy would silently
# move to another port and every later step would talk to the wrong server.
check_port_free() {
  if port_in_use "$PORT"; then
    die "port $PORT is already in use by $(port_holder "$PORT")" \
      "stop that program, or set SERVE_PORT to a free port in $ENV_FILE (the base model uses SERVE_PORT + 1)"
  fi
  wait_until_port_bindable "$PORT" ||
    die "port $PORT cannot be bound (connections still in TIME_WAIT)" "wait a minute, or set another SERVE_PORT"
}

wait_until_serving() {
  local pid="$1" timeout="${DEPLOY_TIMEOUT:-900}" waited=0 actual_port
  while ! is_serving "$SIDE"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      print_server_log_tail
      forget_server
      die "swift deploy exited before serving $NAME" "read the log above ($(server_file log))"
    fi
    actual_port="$(sed -n 's/.*Uvicorn running on [a-z]*:\/\/[^ ]*:\([0-9][0-9]*\).*/\1/p' "$(server_file log)" | tail -n 1)"
    if [[ -n "$actual_port" && "$actual_port" != "$PORT" ]]; then
      stop_server_group "$pid"
      die "swift deploy moved to port $actual_port because $PORT was taken; stopped it" \
        "free port $PORT or set another SERVE_PORT"
    fi
    if ((waited >= timeout)); then
      print_server_log_tail
      stop_server_group "$pid"
      die "server not ready after ${timeout}s; stopped it" "read the log above; raise DEPLOY_TIMEOUT for a slow model load"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  log "serving $NAME at $(api_base "$SIDE") (pid $pid, ready after ${waited}s, log $(server_file log))"
}

# Sets SERVE_DIGEST: the fingerprint of the model as served (what the evaluations
# check before asking anything). The fine-tuned model must be exported from the
# current training first.
served_inputs_digest() {
  compute_inputs serve
  if [[ -n "$SIDE" ]]; then
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
  load_sft_config
  SIDE="${1:-}" # --base: the base model
  NAME="$(served_name "$SIDE")" PORT="$(served_port "$SIDE")"
  local cmd
  build_deploy_cmd cmd "$SIDE"
  if is_dry_run; then
    print_config_as_comments "${EXP_DIR#"$REPO_ROOT"/}/deploy.yaml"
    printf '# in the background, in a process group of its own (make stop ends the group):\n'
    printf 'mkdir -p %s\n' "$(display_path "$(server_dir)")"
    print_server_start "${cmd[@]}"
    return 0
  fi
  require_command "${cmd[$(cmd_argv_start "${cmd[@]}")]}" "run 'make env' first (GPU machines need .venv-lmdeploy)"
  require_command curl "install curl"
  served_inputs_digest
  local pid
  pid="$(server_pid)"
  if [[ -n "$pid" && "$(cat "$(server_file digest)" 2>/dev/null)" != "$SERVE_DIGEST" &&
    "$(cat "$(server_file name)" 2>/dev/null)" == "$NAME" ]]; then
    log "our server (pid $pid) serves an older build of $NAME; restarting it"
    stop_server_group "$pid"
    pid=""
  fi
  if [[ -n "$pid" ]]; then
    if is_serving "$SIDE"; then
      log "already serving $NAME at $(api_base "$SIDE") (pid $pid)"
      return 0
    fi
    if [[ "$(cat "$(server_file name)" 2>/dev/null)" != "$NAME" ]]; then
      die "our server (pid $pid) is running $(cat "$(server_file name)" 2>/dev/null || echo 'another model')" \
        "run 'make stop' first"
    fi
    log "server pid $pid is still starting"
    wait_until_serving "$pid"
    return 0
  fi
  [[ -n "$SIDE" || -e "$EXPORT_DIR" ]] ||
    die "no merged model at $EXPORT_DIR" "run 'make export EXP=$EXP' first"
  check_port_free
  mkdir -p "$(server_dir)"
  start_cmd_detached pid "$(server_file log)" "${cmd[@]}"
  printf '%s\n' "$pid" >"$(server_file pid)"
  printf '%s\n' "$NAME" >"$(server_file name)"
  printf '%s\n' "$SERVE_DIGEST" >"$(server_file digest)"
  wait_until_serving "$pid"
}

main "$@"
