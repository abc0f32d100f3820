# shellcheck shell=bash
# shellcheck disable=SC2034 # the settings defined here are read by the scripts that source this file
# The one place that reads settings: the env file, overridden by the process
# environment (so `make all GPU=6` and `GPU=6 make all` win over the file).
# Source it after common.sh, then call load_env.
# shellcheck source=/dev/null
source "${BASH_SOURCE[0]%/*}/common.sh"
loaded_before env && return 0

# Every key an env file may set; env/example.env documents each one.
ENV_KEYS=(GPU SWANLAB_TOKEN SWANLAB_PROJECT SWANLAB_MODE SWANLAB_API_HOST NO_PROXY SERVE_HOST SERVE_PORT
  SERVE_API_KEY MODEL DATASET OUTPUT_ROOT EXPORT_ROOT RESULTS_ROOT CACHE_ROOT OFFLINE MASTER_PORT
  SKIP_REMOTE_CHECKS REMOTE_CHECK_TIMEOUT REPLACE_CHANGED NNODES NODE_RANK MASTER_ADDR DEEPSPEED
  JOB_PARTITION JOB_ACCOUNT JOB_TIME_LIMIT JOB_CPUS_PER_NODE JUDGE_API_URL JUDGE_MODEL EVALSCOPE_WARM EVALSCOPE_HTML
  HUMAN_EVAL_HOST HUMAN_EVAL_PORT)
REMOTE_CHECKS=(swanlab hub)
# ms-swift 4.6's DeepSpeed presets (swift/config/<name>.json); a JSON file of one's own goes in sft.yaml.
DEEPSPEED_PRESETS=(zero0 zero1 zero2 zero3 zero2_offload zero3_offload)
DEFAULT_EXP=gpt-oss-20b-sft-v1

is_env_key() {
  local key
  for key in "${ENV_KEYS[@]}"; do [[ "$1" == "$key" ]] && return 0; done
  return 1
}

# Picks the env file: ENV_FILE if given, else env/local.env. A dry run may
# preview the runbook from env/example.env before local.env exists.
resolve_env_file() {
  if [[ -n "${ENV_FILE:-}" ]]; then
    [[ "$ENV_FILE" == /* ]] || ENV_FILE="$REPO_ROOT/$ENV_FILE"
    [[ -f "$ENV_FILE" ]] || die "env file '$ENV_FILE' not found" \
      "create it (cp env/example.env env/local.env) or pass ENV_FILE=<existing file>"
  elif [[ -f "$REPO_ROOT/env/local.env" ]]; then
    ENV_FILE="$REPO_ROOT/env/local.env"
  elif is_dry_run; then
    ENV_FILE="$REPO_ROOT/env/example.env"
    warn "env/local.env not found; previewing with env/example.env"
  else
    die "env file env/local.env not found" \
      "cp env/example.env env/local.env and edit it, or pass ENV_FILE=env/smoke.env for the CPU smoke run"
  fi
}

# Parses KEY=VALUE lines without executing the file. Values already set in
# the environment win; quotes around a value are removed.
read_env_file() {
  local file="$1" line key value lineno=0
  while IFS= read -r line || [[ -n "$line" ]]; do
    lineno=$((lineno + 1))
    line="${line%$'\r'}"
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] ||
      die "$file:$lineno: not a KEY=VALUE line" "write settings as KEY=value, one per line"
    key="${BASH_REMATCH[2]}"
    value="${BASH_REMATCH[3]}"
    is_env_key "$key" || die "$file:$lineno: unknown key '$key'" \
      "use one of: ${ENV_KEYS[*]} (see env/example.env)"
    if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then value="${BASH_REMATCH[1]}"; fi
    if [[ -z "${!key:-}" ]]; then printf -v "$key" '%s' "$value"; fi
  done <"$file"
}

warn_if_env_file_shared() {
  grep -qE '^[[:space:]]*(export[[:space:]]+)?(SWANLAB_TOKEN|SERVE_API_KEY)=[^[:space:]]' "$1" || return 0
  local mode
  mode="$(stat -c '%a' "$1" 2>/dev/null)" || return 0
  if [[ "${mode: -2}" != 00 ]]; then
    warn "$1 holds a secret and is readable by other users (mode $mode); run: chmod 600 $1"
  fi
}

validate_gpu() {
  [[ -n "${GPU:-}" ]] || die "GPU is not set" "set GPU=cpu, GPU=6 or GPU=0,1,2,3 in $ENV_FILE or on the make command line"
  if [[ "$GPU" == cpu ]]; then return 0; fi
  [[ "$GPU" =~ ^[0-9]+(,[0-9]+)*$ ]] ||
    die "GPU='$GPU' is not valid" "use cpu, one index (GPU=6) or a comma list without spaces (GPU=0,1,2,3)"
  local -A seen=()
  local index
  IFS=, read -ra GPU_INDICES <<<"$GPU"
  for index in "${GPU_INDICES[@]}"; do
    [[ -z "${seen[$index]:-}" ]] || die "GPU='$GPU' lists GPU $index twice" "list each GPU index once"
    seen[$index]=1
  done
}

# Each requested index must be a GPU that `nvidia-smi -L` lists.
check_gpus_exist() {
  [[ "$GPU" == cpu ]] && return 0
  command -v nvidia-smi >/dev/null 2>&1 ||
    die "GPU=$GPU but nvidia-smi is not on PATH (no NVIDIA driver here)" "use GPU=cpu on this machine"
  local listed index
  listed="$(nvidia-smi -L 2>/dev/null | sed -n 's/^GPU \([0-9][0-9]*\):.*/\1/p')" ||
    die "nvidia-smi -L failed" "check the NVIDIA driver with nvidia-smi"
  for index in "${GPU_INDICES[@]}"; do
    grep -qx "$index" <<<"$listed" ||
      die "GPU $index does not exist here (nvidia-smi -L lists: $(echo "$listed" | paste -sd, -))" \
        "set GPU to listed indices, e.g. GPU=$(echo "$listed" | head -1)"
  done
}

validate_port() {
  if [[ "$SERVE_PORT" =~ ^[0-9]{1,5}$ ]] && ((10#$SERVE_PORT >= 1 && 10#$SERVE_PORT <= 65534)); then return 0; fi
  die "SERVE_PORT='$SERVE_PORT' is not a port number" "set SERVE_PORT to a number from 1 to 65534, e.g. 8000 (the base model's server uses SERVE_PORT + 1)"
}

# NNODES nodes train together (torchrun's rendezvous at MASTER_ADDR:MASTER_PORT, served
# by the node of NODE_RANK 0); one node needs none of them.
validate_nodes() {
  NNODES="${NNODES:-1}"
  NODE_RANK="${NODE_RANK:-0}"
  MASTER_PORT="${MASTER_PORT:-29500}"
  if [[ ! "$NNODES" =~ ^[0-9]{1,4}$ ]] || ((10#$NNODES < 1)); then
    die "NNODES='$NNODES' is not a number of nodes" "set NNODES=1 (this machine alone) or the number of nodes that train together, e.g. NNODES=2"
  fi
  NNODES=$((10#$NNODES))
  if [[ ! "$NODE_RANK" =~ ^[0-9]{1,4}$ ]] || ((10#$NODE_RANK >= NNODES)); then
    die "NODE_RANK='$NODE_RANK' is not a node rank from 0 to $((NNODES - 1)) (NNODES=$NNODES)" \
      "set NODE_RANK to this node's rank: 0 on the node at MASTER_ADDR, 1 to $((NNODES - 1)) on the others"
  fi
  NODE_RANK=$((10#$NODE_RANK))
  if [[ ! "$MASTER_PORT" =~ ^[0-9]{1,5}$ ]] || ((10#$MASTER_PORT < 1 || 10#$MASTER_PORT > 65535)); then
    die "MASTER_PORT='$MASTER_PORT' is not a port number" "set MASTER_PORT to a number from 1 to 65535, e.g. 29500"
  fi
  ((NNODES > 1)) || return 0
  [[ -n "${MASTER_ADDR:-}" ]] || die "NNODES=$NNODES but MASTER_ADDR is empty" \
    "set MASTER_ADDR to the address of the node of rank 0, the same on every node"
  [[ "$MASTER_ADDR" =~ ^[A-Za-z0-9._:-]+$ ]] ||
    die "MASTER_ADDR='$MASTER_ADDR' is not a host name or address" "set MASTER_ADDR to the host name or IP address of the node of rank 0"
}

# DEEPSPEED: one of ms-swift's presets, for GPU training.
validate_deepspeed() {
  [[ -n "${DEEPSPEED:-}" ]] || return 0
  local preset
  for preset in "${DEEPSPEED_PRESETS[@]}"; do [[ "$DEEPSPEED" != "$preset" ]] || break; done
  [[ "$DEEPSPEED" == "$preset" ]] || die "DEEPSPEED='$DEEPSPEED' is not a DeepSpeed preset of ms-swift" \
    "use one of: ${DEEPSPEED_PRESETS[*]}, or leave it empty (a JSON config of your own: 'deepspeed: path.json' in sft.yaml)"
  [[ "$GPU" != cpu ]] || die "DEEPSPEED=$DEEPSPEED needs GPUs, but GPU=cpu" "leave DEEPSPEED empty for a CPU run, or set GPU to the GPUs to train on"
}

is_loopback_host() { [[ "$1" == 127.* || "$1" == localhost || "$1" == ::1 ]]; }

# cloud when a token is set, local otherwise; SWANLAB_MODE forces one.
resolve_swanlab_mode() {
  case "${SWANLAB_MODE:-}" in
    "") if [[ -n "${SWANLAB_TOKEN:-}" ]]; then SWANLAB_MODE=cloud; else SWANLAB_MODE=local; fi ;;
    cloud) [[ -n "${SWANLAB_TOKEN:-}" ]] ||
      die "SWANLAB_MODE=cloud but SWANLAB_TOKEN is empty" "put your key in SWANLAB_TOKEN, or set SWANLAB_MODE=local" ;;
    local) ;;
    *) die "SWANLAB_MODE='$SWANLAB_MODE' is not valid" "use cloud, local, or leave it empty (cloud when a token is set)" ;;
  esac
}

# SKIP_REMOTE_CHECKS: a comma list of preflight's remote checks to skip; REMOTE_CHECK_TIMEOUT: seconds.
validate_remote_settings() {
  local check
  SKIP_REMOTE_CHECKS="${SKIP_REMOTE_CHECKS:-}"
  for check in ${SKIP_REMOTE_CHECKS//,/ }; do
    [[ " ${REMOTE_CHECKS[*]} " == *" $check "* ]] || die "SKIP_REMOTE_CHECKS='$SKIP_REMOTE_CHECKS' names an unknown check '$check'" \
      "list some of: $(IFS=,; printf '%s' "${REMOTE_CHECKS[*]}") (e.g. SKIP_REMOTE_CHECKS=hub), or leave it empty"
  done
  REMOTE_CHECK_TIMEOUT="${REMOTE_CHECK_TIMEOUT:-5}"
  if [[ ! "$REMOTE_CHECK_TIMEOUT" =~ ^[0-9]{1,3}$ ]] || ((10#$REMOTE_CHECK_TIMEOUT < 1)); then
    die "REMOTE_CHECK_TIMEOUT='$REMOTE_CHECK_TIMEOUT' is not a number of seconds" "set REMOTE_CHECK_TIMEOUT to a whole number from 1 to 999, e.g. 5"
  fi
}

# The LLM judge of the judged benchmarks: JUDGE_MODEL at JUDGE_API_URL (an OpenAI-compatible
# API; its key only as JUDGE_API_KEY in the environment), or JUDGE_MODEL=served.
validate_judge() {
  JUDGE_MODEL="${JUDGE_MODEL:-}" JUDGE_API_URL="${JUDGE_API_URL:-}"
  if [[ -n "$JUDGE_API_URL" && -z "$JUDGE_MODEL" ]]; then
    die "JUDGE_API_URL is set but JUDGE_MODEL is empty" "set JUDGE_MODEL to the judge's model name at $JUDGE_API_URL, or empty both"
  fi
  if [[ -n "$JUDGE_MODEL" && "$JUDGE_MODEL" != served && ! "$JUDGE_API_URL" =~ ^https?://[^[:space:]]+$ ]]; then
    die "JUDGE_MODEL=$JUDGE_MODEL needs JUDGE_API_URL, an http(s) address of an OpenAI-compatible API (without one EvalScope would call a hosted model)" \
      "set JUDGE_API_URL (e.g. http://127.0.0.1:9000/v1), or empty JUDGE_MODEL to skip the judged benchmarks"
  fi
  if [[ "$JUDGE_MODEL" == served && -n "$JUDGE_API_URL" ]]; then
    die "JUDGE_MODEL=served judges with the served model itself, but JUDGE_API_URL is set too" "empty JUDGE_API_URL, or name the judge's model in JUDGE_MODEL"
  fi
}

# A pilot (make pilot, PILOT=1) runs an experiment's configs at a small scale under its own
# name, <exp>-pilot: every folder, stamp, fingerprint, served name and report derives from
# EXP, so none is the full run's. EXP=<exp>-pilot names the pilot of <exp> unless
# configs/<exp>-pilot is an experiment of its own (lib/common.sh is_pilot_name). Sets EXP,
# PILOT_OF (the experiment piloted, empty for a full run) and CONFIG_EXP (whose configs/
# folder runs).
resolve_pilot() {
  if [[ "${PILOT:-0}" == 1 && -f "$REPO_ROOT/configs/$EXP/sft.yaml" ]] && ! is_pilot_name "$EXP"; then EXP="$EXP-pilot"; fi
  PILOT_OF=""
  if is_pilot_name "$EXP"; then PILOT_OF="${EXP%-pilot}"; fi
  CONFIG_EXP="${PILOT_OF:-$EXP}"
}
is_pilot() { [[ -n "${PILOT_OF:-}" ]]; }

abs_path() { if [[ "$1" == /* ]]; then printf '%s' "$1"; else printf '%s/%s' "$REPO_ROOT" "$1"; fi; }

load_env() {
  resolve_env_file
  read_env_file "$ENV_FILE"
  warn_if_env_file_shared "$ENV_FILE"

  EXP="${EXP:-$DEFAULT_EXP}"
  check_experiment "$EXP"
  resolve_pilot
  EXP_DIR="$REPO_ROOT/configs/$CONFIG_EXP"

  validate_gpu
  # make env only picks a profile, so it may run before the driver is set up.
  if ! is_dry_run && [[ "${SKIP_GPU_CHECK:-0}" != 1 ]]; then check_gpus_exist; fi
  SERVE_HOST="${SERVE_HOST:-127.0.0.1}"
  SERVE_PORT="${SERVE_PORT:-8000}"
  validate_port
  # SKIP_SECRET_CHECKS=1: scripts/sync-state.sh, which make runs without the secrets
  # given on its command line (they would show in a process listing); the steps check.
  if ! is_loopback_host "$SERVE_HOST" && [[ -z "${SERVE_API_KEY:-}" && "${SKIP_SECRET_CHECKS:-0}" != 1 ]]; then
    die "SERVE_HOST=$SERVE_HOST exposes the server beyond this machine without a key" \
      "set SERVE_API_KEY in $ENV_FILE, or keep SERVE_HOST=127.0.0.1"
  fi
  if [[ "${SKIP_SECRET_CHECKS:-0}" == 1 && "${SWANLAB_MODE:-}" == cloud ]]; then SWANLAB_MODE=local; fi
  resolve_swanlab_mode
  validate_remote_settings
  validate_judge
  SWANLAB_PROJECT="${SWANLAB_PROJECT:-multi-model-psychology}"
  NO_PROXY="${NO_PROXY:-127.0.0.1,localhost,::1}"
  validate_nodes
  validate_deepspeed
  OFFLINE="${OFFLINE:-0}"
  EVALSCOPE_WARM="${EVALSCOPE_WARM:-0}"
  [[ "$EVALSCOPE_WARM" == 0 || "$EVALSCOPE_WARM" == 1 ]] || die "EVALSCOPE_WARM='$EVALSCOPE_WARM' is not 0 or 1" \
    "set 1 to fork each evaluation from one warm launcher (a CPU run), or 0 for a fresh process each (the default)"
  EVALSCOPE_HTML="${EVALSCOPE_HTML:-1}"
  [[ "$EVALSCOPE_HTML" == 0 || "$EVALSCOPE_HTML" == 1 ]] || die "EVALSCOPE_HTML='$EVALSCOPE_HTML' is not 0 or 1" \
    "set 0 to skip EvalScope's HTML page of each evaluation (a CPU run), or 1 to write it (the default)"

  OUTPUT_ROOT="$(abs_path "${OUTPUT_ROOT:-output}")"
  EXPORT_ROOT="$(abs_path "${EXPORT_ROOT:-export}")"
  RESULTS_ROOT="$(abs_path "${RESULTS_ROOT:-results}")"
  CACHE_ROOT="$(abs_path "${CACHE_ROOT:-.cache}")"
  RUN_DIR="$OUTPUT_ROOT/$EXP"
  EXPORT_DIR="$EXPORT_ROOT/$EXP"
  RESULTS_DIR="$RESULTS_ROOT/$EXP"
  STATE_DIR="${LAB_STATE_DIR:-$REPO_ROOT/.state}" # LAB_STATE_DIR: for tests; make keeps its stamps in .state

  if [[ "$GPU" == cpu ]]; then DEVICE_PROFILE=cpu; NPROC=1; else DEVICE_PROFILE=gpu; NPROC="${#GPU_INDICES[@]}"; fi
  VENV_DIR="$REPO_ROOT/.venv"
  DEPLOY_VENV_DIR="$REPO_ROOT/.venv-lmdeploy"
  if [[ -d "$VENV_DIR/bin" ]]; then PATH="$VENV_DIR/bin:$PATH"; fi
  export PATH NO_PROXY no_proxy="$NO_PROXY" EXP
  ENV_LOADED=1 # lib/server.sh checks it when sourced
}

# The lock a venv of this machine's profile is built from (DEVICE_PROFILE: cpu or gpu).
profile_lock() { printf '%s/env/requirements-%s.lock' "$REPO_ROOT" "$DEVICE_PROFILE"; }
DEPLOY_LOCK="$REPO_ROOT/env/requirements-lmdeploy.lock"

# A venv records the sha256 of the lock it was built from in this stamp, written
# last by scripts/setup-env.sh: no stamp means an unfinished install.
venv_stamp() { printf '%s/.lab-lock.sha256' "$1"; }
lock_digest() { sha256sum "$1" | cut -d' ' -f1; }

# add_common_tool_env CMD: adds to command CMD (common.sh) the environment every tool gets:
# device selection, caches, offline switches.
add_common_tool_env() {
  local -n add_common_tool_env_out="$1"
  if [[ "$GPU" != cpu ]]; then add_common_tool_env_out+=("CUDA_VISIBLE_DEVICES=$GPU"); fi
  add_common_tool_env_out+=("HF_HOME=$CACHE_ROOT/huggingface" "MODELSCOPE_CACHE=$CACHE_ROOT/modelscope")
  # A self-hosted SwanLab: the tools log where preflight checked the key.
  if [[ -n "${SWANLAB_API_HOST:-}" ]]; then add_common_tool_env_out+=("SWANLAB_API_HOST=$SWANLAB_API_HOST"); fi
  if [[ "$OFFLINE" == 1 ]]; then
    add_common_tool_env_out+=(HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1)
  fi
}
