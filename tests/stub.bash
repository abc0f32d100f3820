#!/usr/bin/env bash
# One stub for the external programs the pipeline calls: swift, nvidia-smi, curl,
# and Slurm's sbatch, srun and scontrol. test_helper.bash links it under those names
# into a stubs/ dir at the front of PATH; it acts on the name it was called by.
# Every call appends a block to $STUB_LOG (in one write: calls from several
# processes at once do not mix):
#   == NAME
#   path: $0                   (which copy was run: stubs/swift or .venv-lmdeploy/bin/swift)
#   argv: ARG1 ARG2 ...        (the whole argv on one line, space-joined)
#   arg: ARG                   (one line per argument)
#   env: VAR=VALUE | env: VAR unset
#   env: SWANLAB_API_KEY sha256=HASH | env: SWANLAB_API_KEY unset  (never the value)
# Behaviour is configured by STUB_* variables (see each function).
set -euo pipefail

name="$(basename "$0")"
: "${STUB_LOG:?STUB_LOG is not set}"
: "${STUB_STATE:=$(dirname "$STUB_LOG")}"

log_call() {
  local arg var block
  block="$(
    printf '== %s\n' "$name"
    printf 'path: %s\n' "$0"
    printf 'argv: %s\n' "$*"
    for arg in "$@"; do printf 'arg: %s\n' "$arg"; done
    for var in CUDA_VISIBLE_DEVICES NPROC_PER_NODE MASTER_PORT NNODES NODE_RANK MASTER_ADDR SWANLAB_LOG_DIR HF_HUB_OFFLINE; do
      if [[ -n "${!var+x}" ]]; then printf 'env: %s=%s\n' "$var" "${!var}"; else printf 'env: %s unset\n' "$var"; fi
    done
    if [[ -n "${SWANLAB_API_KEY+x}" ]]; then
      printf 'env: SWANLAB_API_KEY sha256=%s\n' "$(printf '%s' "$SWANLAB_API_KEY" | sha256sum | cut -d' ' -f1)"
    else
      printf 'env: SWANLAB_API_KEY unset\n'
    fi
  )"
  printf '%s\n' "$block" >>"$STUB_LOG"
}

# The value following FLAG in the argv, or nothing.
flag_value() {
  local flag="$1"
  shift
  while (($#)); do
    if [[ "$1" == "$flag" && $# -ge 2 ]]; then printf '%s' "$2"; return 0; fi
    shift
  done
}

# nvidia-smi -L lists STUB_GPU_COUNT GPUs (default 8); --query-gpu=index,memory.free
# says each has STUB_GPU_FREE_MIB free (default 81000).
stub_nvidia_smi() {
  local i
  case "$*" in
    -L)
      for ((i = 0; i < ${STUB_GPU_COUNT:-8}; i++)); do
        printf 'GPU %d: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-0000-0000-0000-%012d)\n' "$i" "$i"
      done
      ;;
    *--query-gpu=index,memory.free*)
      for ((i = 0; i < ${STUB_GPU_COUNT:-8}; i++)); do printf '%d, %d\n' "$i" "${STUB_GPU_FREE_MIB:-81000}"; done
      ;;
  esac
}

# write_checkpoint DIR STEP: a complete ms-swift LoRA checkpoint.
write_checkpoint() {
  mkdir -p "$1"
  : >"$1/adapter_model.safetensors"
  : >"$1/optimizer.pt"
  : >"$1/scheduler.pt"
  printf '{"global_step": %d, "log_history": [{"step": %d, "eval_loss": 0.5}]}\n' "$2" "$2" >"$1/trainer_state.json"
}

# Several nodes (NNODES > 1), like torchrun's static rendezvous: rank 0 listens on
# MASTER_PORT until every other rank has joined (at most STUB_RENDEZVOUS_SECONDS,
# default 30); a rank > 0 joins only when it reaches MASTER_ADDR:MASTER_PORT.
stub_rendezvous() {
  local rank="${NODE_RANK:-0}" joined="$STUB_STATE/rendezvous" listener i waited=0
  mkdir -p "$joined"
  if ((rank > 0)); then
    (: >"/dev/tcp/$MASTER_ADDR/$MASTER_PORT") 2>/dev/null || { echo "stub torchrun: no rendezvous at $MASTER_ADDR:$MASTER_PORT" >&2; return 1; }
    touch "$joined/rank-$rank"
    return 0
  fi
  python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1]))); s.listen(64); time.sleep(600)' "$MASTER_PORT" &
  listener=$!
  for ((i = 1; i < NNODES; i++)); do
    until [[ -e "$joined/rank-$i" ]]; do
      if ((waited >= ${STUB_RENDEZVOUS_SECONDS:-30} * 10)); then
        kill "$listener"
        echo "stub torchrun: rank $i did not join" >&2
        return 1
      fi
      sleep 0.1
      waited=$((waited + 1))
    done
  done
  kill "$listener"
  rm -f "$joined"/rank-*
}

# swift sft: a finished run in --output_dir (checkpoint-$STUB_SFT_STEP, logging.jsonl
#   ending with train_runtime), written by rank 0 alone after the rendezvous (above);
#   STUB_SFT_EXIT=N fails without the final summary;
#   STUB_SFT_SECONDS=S touches $STUB_STATE/sft-started and trains for S seconds.
# swift export: config.json (with a quantization_config) in --output_dir.
# swift deploy: marks the served name as served (for the curl stub), then waits.
stub_swift() {
  local out step
  case "${1:-}" in
    sft)
      if ((${NNODES:-1} > 1)); then stub_rendezvous || exit 1; fi
      ((${NODE_RANK:-0} == 0)) || return 0
      out="$(flag_value --output_dir "$@")"
      step="${STUB_SFT_STEP:-4}"
      mkdir -p "$out"
      printf '{"loss": 1.5, "global_step/max_steps": "%d/%d"}\n' "$step" "$step" >>"$out/logging.jsonl"
      if [[ -n "${STUB_SFT_EXIT:-}" ]]; then exit "$STUB_SFT_EXIT"; fi
      if [[ -n "${STUB_SFT_SECONDS:-}" ]]; then touch "$STUB_STATE/sft-started"; sleep "$STUB_SFT_SECONDS"; fi
      write_checkpoint "$out/checkpoint-$step" "$step"
      printf '{"train_runtime": 12.5, "train_loss": 1.4}\n' >>"$out/logging.jsonl"
      ;;
    export)
      out="$(flag_value --output_dir "$@")"
      mkdir -p "$out"
      printf '{"architectures": ["GptOssForCausalLM"], "torch_dtype": "bfloat16", "quantization_config": {"quant_method": "mxfp4"}}\n' \
        >"$out/config.json"
      : >"$out/model-00001-of-00001.safetensors"
      ;;
    deploy)
      printf 'INFO: Uvicorn running on http://127.0.0.1:%s (Press CTRL+C to quit)\n' "$(flag_value --port "$@")"
      printf '%s\n' "$(flag_value --served_model_name "$@")" >>"$STUB_STATE/served"
      sleep "${STUB_DEPLOY_SECONDS:-60}"
      ;;
  esac
}

# curl: reads its -K config and --data-binary @- body from stdin in argv order,
# as curl does, and logs both (auth header redacted to "(set)"). Answers
#   .../models            with the names the swift deploy stub serves, or $STUB_CURL_MODELS
#   .../chat/completions  with $STUB_CURL_CHAT (default: a completion saying 你好),
#                         or an error when the request body has no messages
# STUB_CURL_EXIT=N fails like an unreachable server.
# STUB_CURL_WAIT_SERVED=S makes .../models wait up to S s for the deploy stub.
stub_curl() {
  local url="" stdin_used=0 config="" body="" arg prev="" names i
  for arg in "$@"; do
    case "$prev" in
      -K | --config)
        if [[ "$arg" == - ]]; then
          if ((stdin_used == 0)); then config="$(cat)"; stdin_used=1; fi
        else config="$(cat "$arg")"; fi
        ;;
      --data-binary | -d | --data)
        if [[ "$arg" == @- ]]; then
          if ((stdin_used == 0)); then body="$(cat)"; stdin_used=1; fi
        else body="$arg"; fi
        ;;
    esac
    [[ "$arg" == http://* || "$arg" == https://* ]] && url="$arg"
    prev="$arg"
  done
  {
    if [[ "$config" == *Authorization* ]]; then printf 'curl-config: Authorization (set)\n'; fi
    printf 'curl-body: %s\n' "$body"
  } >>"$STUB_LOG"
  if [[ -n "${STUB_CURL_EXIT:-}" ]]; then
    echo "curl: (7) Failed to connect" >&2
    exit "$STUB_CURL_EXIT"
  fi
  case "$url" in
    */models)
      if [[ -n "${STUB_CURL_MODELS:-}" ]]; then printf '%s\n' "$STUB_CURL_MODELS"; return 0; fi
      # STUB_CURL_WAIT_SERVED=S: like a server still loading, answer once the
      # deploy stub has started (up to S seconds), so deploy's first poll succeeds.
      for ((i = 0; i < ${STUB_CURL_WAIT_SERVED:-0} * 10; i++)); do
        [[ -s "$STUB_STATE/served" ]] && break
        sleep 0.1
      done
      names="$(cat "$STUB_STATE/served" 2>/dev/null || true)"
      jq -nc --arg names "$names" '{object: "list", data: [$names | splits("\n") | select(. != "") | {id: ., object: "model"}]}'
      ;;
    */chat/completions)
      # Like the real server: a request without messages gets an error, not a completion.
      if [[ -z "$body" ]] || ! jq -e '.messages | length > 0' <<<"$body" >/dev/null 2>&1; then
        printf '{"object": "error", "message": "request body has no messages", "code": 400}\n'
      elif [[ -n "${STUB_CURL_CHAT+x}" ]]; then
        printf '%s\n' "$STUB_CURL_CHAT"
      else
        printf '%s\n' '{"choices": [{"message": {"role": "assistant", "content": "你好"}}]}'
      fi
      ;;
  esac
}

# srun [OPTIONS] COMMAND...: runs COMMAND once per node (--nodes=N), all at once, each
# with SLURM_NODEID/SLURM_PROCID set and CUDA_VISIBLE_DEVICES=$STUB_SLURM_GPUS when
# set (Slurm's GPUs of the node); fails when one of them fails.
stub_srun() {
  local nodes=1 i status=0 pids=()
  while (($#)); do
    case "$1" in
      --nodes=*) nodes="${1#--nodes=}" ;;
      -*) ;;
      *) break ;;
    esac
    shift
  done
  for ((i = 0; i < nodes; i++)); do
    env SLURM_NODEID="$i" SLURM_PROCID="$i" SLURM_LOCALID=0 \
      ${STUB_SLURM_GPUS:+"CUDA_VISIBLE_DEVICES=$STUB_SLURM_GPUS"} "$@" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || status=1; done
  return "$status"
}

# scontrol show hostnames LIST: the job's hosts, $STUB_SLURM_HOSTS (default two
# loopback addresses, so that a stub rank 0 is reachable at the first).
stub_scontrol() {
  [[ "${1:-} ${2:-}" == "show hostnames" ]] || { echo "stub scontrol: only 'show hostnames'" >&2; return 1; }
  local hosts
  read -ra hosts <<<"${STUB_SLURM_HOSTS:-127.0.0.1 127.0.0.2}"
  printf '%s\n' "${hosts[@]}"
}

# sbatch FILE: keeps a copy of the script in $STUB_STATE/sbatch-script and the environment
# it would hand to the job in sbatch-env, and answers as sbatch does.
stub_sbatch() {
  cp "${@: -1}" "$STUB_STATE/sbatch-script"
  env >"$STUB_STATE/sbatch-env"
  printf 'Submitted batch job 4242\n'
}

log_call "$@"
case "$name" in
  swift) stub_swift "$@" ;;
  nvidia-smi) stub_nvidia_smi "$@" ;;
  curl) stub_curl "$@" ;;
  srun) stub_srun "$@" ;;
  scontrol) stub_scontrol "$@" ;;
  sbatch) stub_sbatch "$@" ;;
  *) echo "stub.bash: no behaviour for '$name'" >&2; exit 127 ;;
esac
