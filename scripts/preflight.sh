#!/usr/bin/env bash
# make preflight (and the first thing `make train` does): checks in seconds what
# would otherwise fail after model loading, reports every failed check with its
# fix, and exits non-zero if any failed. Under DRY_RUN=1 it checks only the files
# (configs, dataset) and prints nothing on stdout, so a runbook stays a script.
set -euo pipefail
export STEP_NAME=preflight
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/config_keys.sh
source "$REPO_ROOT/scripts/lib/config_keys.sh"
# shellcheck source=lib/nodes.sh
source "$REPO_ROOT/scripts/lib/nodes.sh"
# shellcheck source=lib/server.sh
source "$REPO_ROOT/scripts/lib/server.sh"
# shellcheck source=lib/commands.sh
source "$REPO_ROOT/scripts/lib/commands.sh"
# shellcheck source=lib/eval_config.sh
source "$REPO_ROOT/scripts/lib/eval_config.sh"
# shellcheck source=lib/variants.sh
source "$REPO_ROOT/scripts/lib/variants.sh"

FAILED_CHECKS=0

# fail MESSAGE FIX: reports a failed check and goes on with the next one.
fail() {
  printf '[%s] error: %s\n' "$STEP_NAME" "$1" >&2
  printf '[%s] fix: %s\n' "$STEP_NAME" "$2" >&2
  FAILED_CHECKS=$((FAILED_CHECKS + 1))
}

# --- the experiment's configs ----------------------------------------------------

# The top-level keys of a config, dashes read as underscores (like swift).
yaml_top_level_keys() {
  local -A settings=()
  local key
  load_config "$1" settings
  for key in "${!settings[@]}"; do [[ "$key" == *.* ]] || printf '%s\n' "${key//-/_}"; done
}

# check_config_flags COMMAND: every key of configs/$EXP/COMMAND.yaml is a flag of `swift COMMAND`.
check_config_flags() {
  local command="$1" config="$EXP_DIR/$1.yaml" known="$REPO_ROOT/env/swift-$1-args.txt" key unknown=()
  [[ -f "$config" ]] || return 0
  if [[ ! -f "$known" ]]; then
    fail "$(repo_relative "$known") is missing, so $(repo_relative "$config") cannot be checked" "run scripts/gen-swift-args.sh"
    return 0
  fi
  while IFS= read -r key; do
    grep -qxF -- "$key" "$known" || unknown+=("$key")
  done < <(yaml_top_level_keys "$config")
  for key in "${unknown[@]}"; do
    fail "$(repo_relative "$config"): '$key' is not a flag of swift $command ($(head -n 1 "$known" | sed 's/^# //; s/:.*//'))" \
      "rename or remove '$key' in $(repo_relative "$config"); accepted names: $(repo_relative "$known")"
  done
}

# check_machine_keys COMMAND: configs/$EXP/COMMAND.yaml sets none of the machine settings
# (MACHINE_KEYS, lib/config_keys.sh): the flag would silently override the config.
check_machine_keys() {
  local command="$1" config="$EXP_DIR/$1.yaml" pair keys
  [[ -f "$config" ]] || return 0
  keys="$(yaml_top_level_keys "$config")"
  for pair in ${MACHINE_KEYS[$command]}; do
    grep -qxF -- "${pair%%:*}" <<<"$keys" || continue
    fail "$(repo_relative "$config") sets '${pair%%:*}', which the scripts set from ${pair#*:} (the env file or the make command line); the flag would silently override the config" \
      "remove '${pair%%:*}' from $(repo_relative "$config") and set ${pair#*:} instead"
  done
}

# A variant's configs are generated from its variant.yaml and its base's configs
# (make variants): a hand edit, or a base changed since, would run something its
# variant.yaml does not say.
check_variant_files() {
  is_variant "$CONFIG_EXP" || return 0
  local line problems
  problems="$(variant_py generate --check "$CONFIG_EXP" 2>&1)" && return 0
  while IFS= read -r line; do
    [[ "$line" == "[variants] error: "* ]] || continue
    fail "${line#"[variants] error: "}" \
      "edit configs/$CONFIG_EXP/variant.yaml (never the generated files), then run make variants and commit both"
  done <<<"$problems"
}

# The experiment's needs (configs/$EXP/requirements.env), read without executing it.
load_requirements() {
  local file="$EXP_DIR/requirements.env" line key value lines=()
  for key in "${REQUIREMENT_KEYS[@]}"; do printf -v "$key" '%s' ""; done
  if [[ ! -f "$file" ]]; then
    fail "$(repo_relative "$file") not found: the GPU memory and disk this run needs are unknown" \
      "copy configs/gpt-oss-20b-sft-v1/requirements.env to $(repo_relative "$file") and adjust the sizes"
    return 1
  fi
  mapfile -t lines <"$file"
  for line in "${lines[@]}"; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    if [[ "$line" =~ ^([A-Z_]+)=([0-9]+)[[:space:]]*$ ]] && [[ " ${REQUIREMENT_KEYS[*]} " == *" ${BASH_REMATCH[1]} "* ]]; then
      key="${BASH_REMATCH[1]}"
      value="${BASH_REMATCH[2]}"
      printf -v "$key" '%s' "$((10#$value))"
    else
      fail "$(repo_relative "$file"): '$line' is not one of ${REQUIREMENT_KEYS[*]} set to a whole number" \
        "write KEY=number lines, e.g. DISK_EXPORT_GIB=42"
      return 1
    fi
  done
  for key in "${REQUIREMENT_KEYS[@]}"; do
    if [[ -z "${!key}" ]]; then
      fail "$(repo_relative "$file") does not set $key" "add $key=<number> to $(repo_relative "$file")"
      return 1
    fi
  done
}

# --- dataset ---------------------------------------------------------------------

# The run's model and dataset entries as ms-swift reads them, MODEL and DATASET of the env file
# instead of the config's: scripts/py/swift_ids.py, whose parser (scripts/py/lab/configs.py) the
# hub check and the fingerprints share, so no copy of ms-swift's syntax lives in bash. One line an
# entry: KIND WHERE VALUE RAW CACHED, tab-separated (WHERE: local, hub or missing; see its header).
SWIFT_ENTRIES=""
load_swift_entries() {
  local args=(--config "$EXP_DIR/sft.yaml" --repo-root "$REPO_ROOT" --cache-root "$CACHE_ROOT")
  if [[ -n "${MODEL:-}" ]]; then args+=(--model "$MODEL"); fi
  if [[ -n "${DATASET:-}" ]]; then args+=(--dataset "$DATASET"); fi
  SWIFT_ENTRIES="$("$(config_python)" "$REPO_ROOT/scripts/py/swift_ids.py" "${args[@]}")" ||
    die "cannot read the model and dataset of $(repo_relative "$EXP_DIR")/sft.yaml (see above)" "fix the file"
}

# swift_entries KIND: the loaded entries of that kind (model or dataset), one a line.
swift_entries() { awk -F'\t' -v kind="$1" '$1 == kind' <<<"$SWIFT_ENTRIES"; }

check_datasets() {
  local where value raw
  while IFS=$'\t' read -r _ where value raw _; do
    case "$where" in
      missing)
        fail "dataset '$raw' not found" "set DATASET in $(repo_relative "$ENV_FILE"), or the dataset entry in $(repo_relative "$EXP_DIR")/sft.yaml, to an existing file"
        ;;
      hub) log "dataset '$raw' is a hub id: its rows are not checked here (ms-swift downloads it)" ;;
      *)
        if [[ "$value" != *.jsonl ]]; then
          log "dataset '$raw' is not a .jsonl file: not checked"
        else
          "$REPO_ROOT/scripts/check-dataset.sh" "$value" || FAILED_CHECKS=$((FAILED_CHECKS + 1))
        fi
        ;;
    esac
  done < <(swift_entries dataset)
}

# --- remote: the SwanLab key, the hubs (scripts/py/check_remote.py) ------------------

HUB_DOWNLOAD_BYTES="" # what the hub check found still to download into CACHE_ROOT

remote_check_skipped() { [[ ",$SKIP_REMOTE_CHECKS," == *",$1,"* ]]; }

# remote_check ARG...: the helper, from the repo root with the venv's python (once
# make env ran); it prints its own errors and fixes and exits with their count.
remote_check() {
  local python="$VENV_DIR/bin/python"
  [[ -x "$python" ]] || python=python3
  cd "$REPO_ROOT" && exec "$python" "$REPO_ROOT/scripts/py/check_remote.py" "$@"
}

# Logs in once with the key, through the environment only (as train.sh gives it to swift).
check_swanlab_key() {
  [[ "$SWANLAB_MODE" == cloud ]] || return 0
  if remote_check_skipped swanlab; then
    log "SwanLab key: not checked (SKIP_REMOTE_CHECKS=$SKIP_REMOTE_CHECKS)"
    return 0
  fi
  local status=0
  (
    export SWANLAB_API_KEY="$SWANLAB_TOKEN" REMOTE_CHECK_TIMEOUT
    if [[ -n "${SWANLAB_API_HOST:-}" ]]; then export SWANLAB_API_HOST; fi
    remote_check swanlab
  ) || status=$?
  FAILED_CHECKS=$((FAILED_CHECKS + status))
}

# Any model or dataset entry that is not an existing path is a hub id for ms-swift.
has_hub_ids() { cut -f2 <<<"$SWIFT_ENTRIES" | grep -qvx local; }

# Online: the ids exist on their hub, with revision and size (kept for the run's
# fingerprint in hub-revisions.json). Offline: they are in the cache.
check_hub_ids() {
  if remote_check_skipped hub; then
    log "model and dataset ids: not checked on their hub (SKIP_REMOTE_CHECKS=$SKIP_REMOTE_CHECKS)"
    return 0
  fi
  has_hub_ids || return 0
  local args=(hub --config "$EXP_DIR/sft.yaml" --repo-root "$REPO_ROOT" --cache-root "$CACHE_ROOT"
    --revisions-out "$STATE_DIR/$EXP/hub-revisions.json") out status=0
  if [[ -n "${MODEL:-}" ]]; then args+=(--model "$MODEL"); fi
  if [[ -n "${DATASET:-}" ]]; then args+=(--dataset "$DATASET"); fi
  if [[ "$OFFLINE" == 1 ]]; then args+=(--offline); fi
  # The caches and token files the tools get (add_common_tool_env).
  out="$(HF_HOME="$CACHE_ROOT/huggingface" MODELSCOPE_CACHE="$CACHE_ROOT/modelscope" \
    REMOTE_CHECK_TIMEOUT="$REMOTE_CHECK_TIMEOUT" remote_check "${args[@]}")" || status=$?
  FAILED_CHECKS=$((FAILED_CHECKS + status))
  if [[ "$OFFLINE" != 1 && "$out" =~ ^[0-9]+$ ]]; then HUB_DOWNLOAD_BYTES="$out"; fi
}

# The public sources of the benchmarks fetched on the real run (a `hub` in configs/benchmarks.yaml)
# answer, as the model and dataset do; skipped with the hub check (SKIP_REMOTE_CHECKS=hub).
check_bench_sources() {
  [[ -f "$EXP_DIR/eval.yaml" ]] || return 0
  if remote_check_skipped hub; then
    log "benchmark sources: not checked on their hub (SKIP_REMOTE_CHECKS=$SKIP_REMOTE_CHECKS)"
    return 0
  fi
  local args=(sources --eval-config "$EXP_DIR/eval.yaml" --repo-root "$REPO_ROOT") status=0
  if [[ "$OFFLINE" == 1 ]]; then args+=(--offline); fi
  (
    export REMOTE_CHECK_TIMEOUT
    remote_check "${args[@]}"
  ) || status=$?
  FAILED_CHECKS=$((FAILED_CHECKS + status))
}

# --- machine: GPUs, disk, ports, venv ---------------------------------------------

check_gpu_free_memory() {
  [[ "$GPU" == cpu ]] && return 0
  ((GPU_FREE_MIB_PER_GPU > 0)) || return 0
  local free_list index free enough=()
  if ! free_list="$(nvidia-smi --query-gpu=index,memory.free --format=csv,noheader,nounits 2>/dev/null)"; then
    fail "nvidia-smi could not report the GPUs' free memory" "check the NVIDIA driver with nvidia-smi"
    return 0
  fi
  while IFS=', ' read -r index free; do
    [[ "$free" =~ ^[0-9]+$ ]] && ((free >= GPU_FREE_MIB_PER_GPU)) && enough+=("$index")
  done <<<"$free_list"
  local enough_list
  enough_list="$(IFS=,; printf '%s' "${enough[*]:-none}")"
  for index in "${GPU_INDICES[@]}"; do
    free="$(awk -F', *' -v gpu="$index" '$1 == gpu { print $2 }' <<<"$free_list")"
    [[ "$free" =~ ^[0-9]+$ ]] || free=0
    if ((free < GPU_FREE_MIB_PER_GPU)); then
      fail "GPU $index has $free MiB free; $EXP needs $GPU_FREE_MIB_PER_GPU MiB per GPU ($(repo_relative "$EXP_DIR")/requirements.env)" \
        "pick GPUs with enough free memory (now: GPU=$enough_list; see nvidia-smi), or wait for the jobs on GPU $index"
    fi
  done
}

# The nearest existing directory at or above a path.
existing_parent() {
  local path="$1"
  while [[ ! -e "$path" ]]; do path="$(dirname "$path")"; done
  printf '%s' "$path"
}

is_non_empty_dir() { [[ -d "$1" ]] && [[ -n "$(ls -A "$1" 2>/dev/null)" ]]; }

# The base model is a local folder, or in its hub's cache under CACHE_ROOT already.
base_model_is_present() {
  local where cached
  IFS=$'\t' read -r _ where _ _ cached < <(swift_entries model) || return 1
  [[ "$where" == local || -n "$cached" ]]
}

# Adds NEED GiB for PATH to its file system (paths on one disk share its free space).
declare -A DISK_NEED_GIB=() DISK_AVAIL_KIB=() DISK_USES=()
add_disk_need() {
  local label="$1" path="$2" need="$3" parent avail mount
  parent="$(existing_parent "$path")"
  if [[ ! -w "$parent" ]]; then
    fail "$label $path cannot be written ($parent is read-only)" "point ${label} in $(repo_relative "$ENV_FILE") at a writable directory"
    return 0
  fi
  ((need > 0)) || return 0
  read -r avail mount < <(df -k --output=avail,target "$parent" 2>/dev/null | tail -n 1) || true
  if [[ ! "${avail:-}" =~ ^[0-9]+$ ]]; then
    fail "df cannot tell the free space of $parent ($label)" "check that $parent is a mounted, readable file system"
    return 0
  fi
  DISK_NEED_GIB[$mount]=$((${DISK_NEED_GIB[$mount]:-0} + need))
  DISK_AVAIL_KIB[$mount]="$avail"
  DISK_USES[$mount]+="${DISK_USES[$mount]:+, }$label $need GiB"
}

check_disk_space() {
  add_disk_need OUTPUT_ROOT "$RUN_DIR" "$DISK_OUTPUT_GIB"
  if is_non_empty_dir "$EXPORT_DIR"; then
    add_disk_need EXPORT_ROOT "$EXPORT_DIR" 0 # an export is there: it is replaced in place
  else
    add_disk_need EXPORT_ROOT "$EXPORT_DIR" "$DISK_EXPORT_GIB"
  fi
  add_disk_need RESULTS_ROOT "$RESULTS_DIR" 0
  if [[ -n "$HUB_DOWNLOAD_BYTES" ]]; then # the hubs' own sizes, rounded up to GiB
    add_disk_need CACHE_ROOT "$CACHE_ROOT" $(((HUB_DOWNLOAD_BYTES + (1 << 30) - 1) >> 30))
  elif base_model_is_present; then
    add_disk_need CACHE_ROOT "$CACHE_ROOT" 0
  else
    add_disk_need CACHE_ROOT "$CACHE_ROOT" "$DISK_CACHE_GIB"
  fi
  local mount avail_gib need_gib
  for mount in "${!DISK_NEED_GIB[@]}"; do
    avail_gib=$((${DISK_AVAIL_KIB[$mount]} / 1024 / 1024))
    need_gib="${DISK_NEED_GIB[$mount]}"
    if ((avail_gib < need_gib)); then
      fail "$mount has $avail_gib GiB free; this run needs $need_gib GiB there (${DISK_USES[$mount]})" \
        "free space on $mount, or point those roots in $(repo_relative "$ENV_FILE") at a disk with room"
    fi
  done
}

# check_port_free NAME PORT: nothing listens on PORT (our own server may).
check_port_free() {
  local name="$1" port="$2"
  port_in_use "$port" || return 0
  if [[ "$name" == SERVE_PORT* && -n "$(server_pid)" ]]; then
    log "port $port is held by this repo's server (make stop stops it)"
    return 0
  fi
  fail "port $port ($name) is in use by $(port_holder "$port")" \
    "set $name in $(repo_relative "$ENV_FILE") to a free port, or stop that program"
}

check_ports() {
  check_port_free SERVE_PORT "$SERVE_PORT"
  check_port_free "SERVE_PORT (+ 1, the base model's server)" "$((10#$SERVE_PORT + 1))"
  # Rank 0's torchrun listens on MASTER_PORT; the other nodes connect to it (check_master).
  if ((NODE_RANK == 0 && (NPROC > 1 || NNODES > 1))); then check_port_free MASTER_PORT "$MASTER_PORT"; fi
}

# A node of rank > 0 waits for rank 0's rendezvous port: rank 0's torchrun opens it
# seconds after its make train starts, and the nodes of a job do not start at the
# same instant. Last, and only when every other check passed: a failure is reported at once.
check_master() {
  ((NODE_RANK > 0 && FAILED_CHECKS == 0)) || return 0
  if wait_for_master; then
    log "rank 0's torchrun answers at $MASTER_ADDR:$MASTER_PORT"
    return 0
  fi
  fail "node rank $NODE_RANK: nothing answers at $MASTER_ADDR:$MASTER_PORT (rank 0's torchrun) after ${MASTER_WAIT_TIMEOUT:-900}s" \
    "start make train with NODE_RANK=0 on the node at MASTER_ADDR (same EXP, NNODES, MASTER_PORT), check that this node reaches it (firewall), or wait longer with MASTER_WAIT_TIMEOUT=<seconds>"
}

# DeepSpeed, when DEEPSPEED or sft.yaml asks for it: the venv can import it (the GPU
# lock pins it; it compiles its ops when first used).
check_deepspeed() {
  local setting="${DEEPSPEED:-$(sft_setting deepspeed)}" python="$VENV_DIR/bin/python" out
  [[ -n "$setting" && -x "$python" ]] || return 0 # check_venvs reports a missing venv
  if ! out="$("$python" -c 'import deepspeed' 2>&1)"; then
    fail "DeepSpeed ($setting) is asked for, but 'import deepspeed' fails in $(repo_relative "$VENV_DIR"): $(tail -n 1 <<<"$out")" \
      "run make env with a GPU profile (env/requirements-gpu.lock pins deepspeed); the docs/scale-out.md says what a node needs"
  fi
}

# check_venv DIR LOCK: the venv was built from this lock (scripts/setup-env.sh's stamp).
check_venv() {
  local dir="$1" lock="$2" stamp digest
  stamp="$(venv_stamp "$dir")"
  digest="$(lock_digest "$lock")"
  if [[ ! -f "$stamp" ]]; then
    fail "$(repo_relative "$dir") is missing or was not finished (no $(repo_relative "$stamp"))" "run: make env"
  elif [[ "$(cat "$stamp")" != "$digest" ]]; then
    fail "$(repo_relative "$dir") was built from another version of $(repo_relative "$lock")" "run: make env"
  fi
}

check_venvs() {
  check_venv "$VENV_DIR" "$(profile_lock)"
  if [[ "$DEVICE_PROFILE" == gpu ]]; then check_venv "$DEPLOY_VENV_DIR" "$DEPLOY_LOCK"; fi
}

main() {
  load_env # the env file and its values, GPU indices, port syntax, SwanLab key: fatal at once
  begin_step
  load_sft_config
  check_deepspeed_setting # DEEPSPEED against sft.yaml's deepspeed: fatal at once, like load_env's checks
  local command
  for command in "${SWIFT_CONFIGS[@]}"; do
    check_config_flags "$command"
    check_machine_keys "$command"
  done
  check_variant_files
  load_swift_entries
  check_datasets
  if is_dry_run; then
    log "dry run: checked the configs and the dataset; SwanLab, hubs, GPU memory, disk, ports and venv are checked on a real run"
  else
    check_swanlab_key
    check_hub_ids
    check_bench_sources
    if load_requirements; then
      check_gpu_free_memory
      check_disk_space
    fi
    check_ports
    check_venvs
    check_deepspeed
    check_master
  fi
  if ((FAILED_CHECKS > 0)); then
    die "$FAILED_CHECKS check(s) failed for $EXP (see above)" "fix each one as its message says, then rerun make preflight"
  fi
  log "all checks passed for $EXP (GPU=$GPU, env file $(repo_relative "$ENV_FILE"))"
}

main "$@"
