#!/usr/bin/env bash
# make health: the server lists the served model, and one chat completion
# returns non-empty content. With --base, checks the base-model server.
set -euo pipefail
export STEP_NAME=health
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/server.sh
source "$REPO_ROOT/scripts/lib/server.sh"

HEALTH_PROMPT='你好，请用一句话介绍你自己。'

# chat_request SIDE: one short question to SIDE's model.
chat_request() {
  jq -nc --arg model "$(served_name "$1")" --arg prompt "$HEALTH_PROMPT" --argjson max_tokens "${HEALTH_MAX_TOKENS:-32}" \
    '{model: $model, messages: [{role: "user", content: $prompt}], max_tokens: $max_tokens, temperature: 0}'
}

print_health_runbook() {
  local side="$1" auth=""
  [[ -n "${SERVE_API_KEY:-}" ]] && auth=" -H \"Authorization: Bearer \$SERVE_API_KEY\""
  printf "curl --noproxy '*' %s/models%s\n" "$(api_base "$side")" "$auth"
  printf "curl --noproxy '*' %s/chat/completions%s -H 'Content-Type: application/json' -d %s\n" \
    "$(api_base "$side")" "$auth" "$(shell_quote "$(chat_request "$side")")"
}

fail() {
  print_server_log_tail
  die "$1" "${2:-check the server log above; restart with 'make stop deploy'}"
}

main() {
  load_env
  begin_step
  local side="${1:-}" name # --base: the base model's server
  name="$(served_name "$side")"
  if is_dry_run; then print_health_runbook "$side"; return 0; fi
  require_command curl "install curl"
  require_command jq

  local timeout="${HEALTH_TIMEOUT:-60}" waited=0
  until is_serving "$side"; do
    if ((waited >= timeout)); then
      print_server_log_tail
      die_not_serving "$side" "/models after ${timeout}s"
    fi
    sleep 2
    waited=$((waited + 2))
  done

  local response content
  response="$(API_TIMEOUT="${HEALTH_CHAT_TIMEOUT:-120}" api_curl "$side" /chat/completions \
    -H 'Content-Type: application/json' --data-binary "$(chat_request "$side")" 2>&1)" ||
    fail "chat completion request failed: $response"
  content="$(jq -r '.choices[0].message.content // empty' <<<"$response" 2>/dev/null)" ||
    fail "chat completion did not return JSON: ${response:0:300}"
  [[ -n "${content//[[:space:]]/}" ]] || fail "chat completion returned empty content: ${response:0:300}"
  log "ok: $name at $(api_base "$side") answered: ${content:0:80}"
  # For the report: the answer, beside this step's start and end in steps.jsonl.
  record_event result "$name ok at $(api_base "$side"): ${content:0:80}"
}

main "$@"
