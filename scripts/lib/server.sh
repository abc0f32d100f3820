# shellcheck shell=bash
# shellcheck disable=SC2034 # globals set here are read by the scripts that source this file
# The model server started by `make deploy`: its files, its API, its process group.
# One server per experiment (its fine-tuned or its base model), its files in
# .state/<exp>/server/: experiments of a sweep serve side by side, each on its own port.
# Its functions read load_env's settings when called.
# shellcheck source=/dev/null
source "${BASH_SOURCE[0]%/*}/common.sh"
loaded_before server && return 0
# shellcheck source=/dev/null
source "$REPO_ROOT/scripts/lib/env.sh"

# The server's files: its pid, the name it serves, its log and the digest of what it serves
# (lib/fingerprint.sh: serve, serve-base), in the experiment's server folder or the one
# use_server_dir DIR chose (make stop ALL=1 visits every experiment's).
use_server_dir() { SERVER_DIR="$1"; }
server_dir() { printf '%s' "${SERVER_DIR:-$STATE_DIR/$EXP/server}"; }
server_file() {
  local name
  case "$1" in
    pid) name=pid ;;
    name) name=served_model_name ;;
    log) name=deploy.log ;;
    digest) name=inputs_digest ;;
    *) die "server_file: unknown file '$1'" "use pid, name, log or digest" ;;
  esac
  printf '%s/%s' "$(server_dir)" "$name"
}
forget_server() { rm -f "$(server_file pid)" "$(server_file name)" "$(server_file digest)"; }

# The models an experiment serves, each named by its SIDE: "" the merged export, served as
# $EXP on SERVE_PORT; --base the base model, as $EXP-base on SERVE_PORT + 1 (a new server on
# the port just stopped would wait up to a minute for the old connections' TIME_WAIT to end).
is_base_side() {
  case "${1:-}" in
    "") return 1 ;;
    --base) return 0 ;;
    *) die "unknown side '$1' of the served model" "pass --base for the base model, nothing for the fine-tuned one" ;;
  esac
}
# served_name [-v VAR] SIDE, served_port [-v VAR] SIDE: printed, or with -v (as printf's) put
# into VAR without a subshell (the fingerprints name every evaluation of both models).
served_name() {
  local into=()
  if [[ "${1:-}" == -v ]]; then into=(-v "$2"); shift 2; fi
  # shellcheck disable=SC2059 # "${into[@]}" is -v VAR or nothing, the format is the next word
  if is_base_side "${1:-}"; then printf "${into[@]}" '%s-base' "$EXP"; else printf "${into[@]}" '%s' "$EXP"; fi
}
served_port() {
  local into=()
  if [[ "${1:-}" == -v ]]; then into=(-v "$2"); shift 2; fi
  # shellcheck disable=SC2059 # "${into[@]}" is -v VAR or nothing, the format is the next word
  if is_base_side "${1:-}"; then printf "${into[@]}" '%s' "$((10#$SERVE_PORT + 1))"; else printf "${into[@]}" '%s' "$SERVE_PORT"; fi
}
deploy_target() { if is_base_side "${1:-}"; then printf deploy-base; else printf deploy; fi; }

# served_model [SIDE]: what swift deploy loads: the export, or the base model of sft.yaml (call
# load_sft_config in the script's shell first, or each $(served_model --base) reads it again); a
# relative local path in a config is relative to the repo, like the tools see it.
served_model() {
  local model="$EXPORT_DIR"
  if is_base_side "${1:-}"; then model="${MODEL:-$(sft_setting model)}"; fi
  if [[ "$model" != /* && -e "$REPO_ROOT/$model" ]]; then model="$REPO_ROOT/$model"; fi
  printf '%s' "$model"
}

# api_base [-v VAR] [SIDE]: where clients connect; a server bound to every interface is still
# reached on loopback.
api_base() {
  local into=() host="$SERVE_HOST" port
  if [[ "${1:-}" == -v ]]; then into=(-v "$2"); shift 2; fi
  [[ "$host" == 0.0.0.0 || "$host" == :: ]] && host=127.0.0.1
  [[ "$host" == *:* ]] && host="[$host]"
  served_port -v port "${1:-}"
  # shellcheck disable=SC2059 # "${into[@]}" is -v VAR or nothing, the format is the next word
  printf "${into[@]}" 'http://%s:%s/v1' "$host" "$port"
}

api_curl_config() {
  if [[ -n "${SERVE_API_KEY:-}" ]]; then printf 'header = "Authorization: Bearer %s"\n' "$SERVE_API_KEY"; fi
}

# api_curl SIDE PATH [CURL_ARGS...]: asks the server of SIDE ("" or --base). The API key
# travels in a config file on a pipe (-K /dev/fd/N), never in argv; stdin stays free for a
# request body (--data-binary @-).
api_curl() {
  local url
  url="$(api_base "$1")$2"
  curl --silent --show-error --noproxy '*' --max-time "${API_TIMEOUT:-10}" -K <(api_curl_config) "${@:3}" "$url"
}

# served_models [SIDE]: the model names the server at SIDE's port serves; nothing (and
# success) when no server answers.
served_models() { api_curl "${1:-}" /models 2>/dev/null | jq -r '.data[]?.id' 2>/dev/null || true; }

# is_serving [SIDE]: the server at SIDE's port serves SIDE's model.
is_serving() { served_models "${1:-}" | grep -qxF "$(served_name "${1:-}")"; }

# The pid (= process group) of our server, or nothing. A pid file whose process
# is gone, or now belongs to a program other than swift, is removed.
server_pid() {
  [[ -f "$(server_file pid)" ]] || return 0
  local pid
  pid="$(cat "$(server_file pid)")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE 'swift|serve_with_api_key'; then
    printf '%s' "$pid"
    return 0
  fi
  warn "removing stale pid file $(server_file pid) (process $pid is gone or not our server)"
  forget_server
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
  [[ -f "$(server_file log)" ]] || return 0
  printf -- '--- last lines of %s ---\n' "$(server_file log)" >&2
  tail -n "${LOG_TAIL_LINES:-30}" "$(server_file log)" >&2
  printf -- '---\n' >&2
}

# print_server_start WORD...: the server's command as a printed script starts it (make deploy
# DRY_RUN=1, the runbook): in a session of its own, in the background, output to its log.
print_server_start() {
  local n words=("$@")
  n="$(cmd_argv_start "$@")"
  print_cmd "${words[@]:0:n}" setsid "${words[@]:n}" | sed -e "\$ s|\$| > $(display_path "$(server_file log)") 2>\&1 \&|"
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
  forget_server
}

# die_not_serving SIDE [WHERE]: stops with why SIDE's model is not served (another model, or
# no server at all) and the make target that serves it.
die_not_serving() {
  local models name target
  models="$(served_models "$1" | paste -sd, - || true)" name="$(served_name "$1")" target="$(deploy_target "$1")"
  if [[ -n "$models" ]]; then
    die "the server at $(api_base "$1") serves [$models], not $name" "run 'make stop $target EXP=$EXP'"
  fi
  die "no server answers at $(api_base "$1")${2:-}" "start it with 'make $target EXP=$EXP'"
}
