# shellcheck shell=bash
# shellcheck disable=SC2034 # globals set here are read by the scripts that source this file
# The model server started by `make deploy`: its files, its API, its process group.
# One server per experiment (its fine-tuned or its base model), its files in
# .state/<exp>/server/: experiments of a sweep serve side by side, each on its own port.
# The one library that reads the env file's settings when sourced: source it after load_env
# (checked).

# use_server_dir DIR: the server's files are in DIR (make stop ALL=1 visits every experiment's).
use_server_dir() {
  SERVER_DIR="$1"
  SERVER_PID_FILE="$SERVER_DIR/pid"
  SERVER_NAME_FILE="$SERVER_DIR/served_model_name"
  SERVER_LOG_FILE="$SERVER_DIR/deploy.log"
  SERVER_DIGEST_FILE="$SERVER_DIR/inputs_digest" # what it serves (lib/fingerprint.sh: serve, serve-base)
}
[[ -n "${ENV_LOADED:-}" ]] || die "scripts/lib/server.sh was sourced before load_env (it needs EXP and STATE_DIR)" \
  "call load_env (scripts/lib/env.sh) first, then source scripts/lib/server.sh"
use_server_dir "$STATE_DIR/$EXP/server"

# Where clients connect: a server bound to every interface is still reached on loopback.
api_base() {
  local host="$SERVE_HOST"
  [[ "$host" == 0.0.0.0 || "$host" == :: ]] && host=127.0.0.1
  [[ "$host" == *:* ]] && host="[$host]"
  printf 'http://%s:%s/v1' "$host" "${SERVED_PORT:-$SERVE_PORT}"
}

api_curl_config() {
  if [[ -n "${SERVE_API_KEY:-}" ]]; then printf 'header = "Authorization: Bearer %s"\n' "$SERVE_API_KEY"; fi
}

# api_curl PATH [CURL_ARGS...]: the API key travels in a config file on a pipe
# (-K /dev/fd/N), never in argv; stdin stays free for a request body (--data-binary @-).
api_curl() {
  local path="$1"
  shift
  curl --silent --show-error --noproxy '*' --max-time "${API_TIMEOUT:-10}" -K <(api_curl_config) "$@" "$(api_base)$path"
}

# The served model names; nothing (and success) when no server answers.
served_models() { api_curl /models 2>/dev/null | jq -r '.data[]?.id' 2>/dev/null || true; }

is_serving() { served_models | grep -qxF "$1"; }

# The pid (= process group) of our server, or nothing. A pid file whose process
# is gone, or now belongs to a program other than swift, is removed.
server_pid() {
  [[ -f "$SERVER_PID_FILE" ]] || return 0
  local pid
  pid="$(cat "$SERVER_PID_FILE")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE 'swift|serve_with_api_key'; then
    printf '%s' "$pid"
    return 0
  fi
  warn "removing stale pid file $SERVER_PID_FILE (process $pid is gone or not our server)"
  rm -f "$SERVER_PID_FILE" "$SERVER_NAME_FILE" "$SERVER_DIGEST_FILE"
}

port_in_use() { (: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Whether a new server could bind the port the way swift deploy checks it (no
# SO_REUSEADDR): connections of a stopped server linger in TIME_WAIT for up to 60 s
# and make swift drift to the next port although nothing listens.
port_bindable() {
  "$(config_python)" -c 'import socket, sys; socket.socket().bind(("", int(sys.argv[1])))' "$1" 2>/dev/null
}

# wait_until_port_bindable PORT: waits out TIME_WAIT (at most PORT_WAIT_TIMEOUT s).
wait_until_port_bindable() {
  local waited=0 limit="${PORT_WAIT_TIMEOUT:-90}"
  port_bindable "$1" && return 0
  log "port $1 still has connections of a stopped server in TIME_WAIT; waiting up to ${limit}s"
  until port_bindable "$1"; do
    ((waited < limit)) || return 1
    sleep 2
    waited=$((waited + 2))
  done
}

# Names the program listening on a port, where ss can tell.
port_holder() {
  local holder=""
  if command -v ss >/dev/null 2>&1; then
    holder="$(ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'users:(([^)]*))' | head -n 1)"
  fi
  printf '%s' "${holder:-an unknown program}"
}

print_server_log_tail() {
  [[ -f "$SERVER_LOG_FILE" ]] || return 0
  printf -- '--- last lines of %s ---\n' "$SERVER_LOG_FILE" >&2
  tail -n "${LOG_TAIL_LINES:-30}" "$SERVER_LOG_FILE" >&2
  printf -- '---\n' >&2
}

# stop_server_group PID: TERM the whole group, wait, then KILL what is left.
stop_server_group() {
  local pid="$1" tenths=0
  kill -TERM -- "-$pid" 2>/dev/null || true
  while kill -0 -- "-$pid" 2>/dev/null && ((tenths < ${STOP_TIMEOUT:-30} * 10)); do
    sleep 0.1
    tenths=$((tenths + 1))
  done
  if kill -0 -- "-$pid" 2>/dev/null; then
    warn "server group $pid ignored SIGTERM for ${STOP_TIMEOUT:-30}s; sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$SERVER_PID_FILE" "$SERVER_NAME_FILE" "$SERVER_DIGEST_FILE"
}

# The model, name and port to serve: the merged export on SERVE_PORT, or with --base
# the base model on SERVE_PORT + 1 (a new server on the port just stopped would wait
# up to a minute for the old connections' TIME_WAIT to end).
resolve_served_model() {
  SERVED_PORT="$SERVE_PORT"
  if [[ "${1:-}" == --base ]]; then
    SERVED_PORT=$((10#$SERVE_PORT + 1))
    load_sft_config
    SERVED_MODEL="${MODEL:-$(sft_setting model)}"
    SERVED_NAME="$EXP-base"
    DEPLOY_TARGET=deploy-base
  else
    SERVED_MODEL="$EXPORT_DIR"
    SERVED_NAME="$EXP"
    DEPLOY_TARGET=deploy
  fi
  # A relative local path in a config is relative to the repo, like the tools see it.
  if [[ "$SERVED_MODEL" != /* && -e "$REPO_ROOT/$SERVED_MODEL" ]]; then SERVED_MODEL="$REPO_ROOT/$SERVED_MODEL"; fi
}

# die_not_serving [WHERE]: stops with why $SERVED_NAME is not served (another model,
# or no server at all) and the make target that serves it. Call resolve_served_model first.
die_not_serving() {
  local models
  models="$(served_models | paste -sd, - || true)"
  if [[ -n "$models" ]]; then
    die "the server at $(api_base) serves [$models], not $SERVED_NAME" "run 'make stop $DEPLOY_TARGET EXP=$EXP'"
  fi
  die "no server answers at $(api_base)${1:-}" "start it with 'make $DEPLOY_TARGET EXP=$EXP'"
}
