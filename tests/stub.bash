#!/usr/bin/env bash
# One stub for the external programs the pipeline calls: swift, nvidia-smi, curl.
# test_helper.bash links it under those names into a stubs/ dir at the front of
# PATH; it acts on the name it was called by. Every call appends a block to
# $STUB_LOG:
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
  local arg var
  {
    printf '== %s\n' "$name"
    printf 'path: %s\n' "$0"
    printf 'argv: %s\n' "$*"
    for arg in "$@"; do printf 'arg: %s\n' "$arg"; done
    for var in CUDA_VISIBLE_DEVICES NPROC_PER_NODE MASTER_PORT SWANLAB_LOG_DIR HF_HUB_OFFLINE; do
      if [[ -n "${!var+x}" ]]; then printf 'env: %s=%s\n' "$var" "${!var}"; else printf 'env: %s unset\n' "$var"; fi
    done
    if [[ -n "${SWANLAB_API_KEY+x}" ]]; then
      printf 'env: SWANLAB_API_KEY sha256=%s\n' "$(printf '%s' "$SWANLAB_API_KEY" | sha256sum | cut -d' ' -f1)"
    else
      printf 'env: SWANLAB_API_KEY unset\n'
    fi
  } >>"$STUB_LOG"
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

# nvidia-smi -L lists STUB_GPU_COUNT GPUs (default 8).
stub_nvidia_smi() {
  local i
  [[ "${1:-}" == -L ]] || return 0
  for ((i = 0; i < ${STUB_GPU_COUNT:-8}; i++)); do
    printf 'GPU %d: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-0000-0000-0000-%012d)\n' "$i" "$i"
  done
}

# write_checkpoint DIR STEP: a complete ms-swift LoRA checkpoint.
write_checkpoint() {
  mkdir -p "$1"
  : >"$1/adapter_model.safetensors"
  : >"$1/optimizer.pt"
  : >"$1/scheduler.pt"
  printf '{"global_step": %d, "log_history": [{"step": %d, "eval_loss": 0.5}]}\n' "$2" "$2" >"$1/trainer_state.json"
}

# swift sft: a finished run in --output_dir (checkpoint-$STUB_SFT_STEP, logging.jsonl
#   ending with train_runtime); STUB_SFT_EXIT=N fails without the final summary;
#   STUB_SFT_SECONDS=S touches $STUB_STATE/sft-started and trains for S seconds.
# swift export: config.json (with a quantization_config) in --output_dir.
# swift deploy: marks the served name as served (for the curl stub), then waits.
stub_swift() {
  local out step
  case "${1:-}" in
    sft)
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

log_call "$@"
case "$name" in
  swift) stub_swift "$@" ;;
  nvidia-smi) stub_nvidia_smi "$@" ;;
  curl) stub_curl "$@" ;;
  *) echo "stub.bash: no behaviour for '$name'" >&2; exit 127 ;;
esac
