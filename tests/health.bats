#!/usr/bin/env bats
# make health (scripts/health.sh): the server lists the model and one chat completion answers;
# every failure shows the server log's tail.

load test_helper

setup() { common_setup; }
teardown() { common_teardown; }

serving_json() { printf '{"data":[{"id":"%s"}]}' "$1"; }

@test "health: lists the model, then one chat completion with Content-Type and max_tokens" {
  write_env GPU=cpu
  STUB_CURL_MODELS="$(serving_json "$DEFAULT_EXP")" run scripts/health.sh
  assert_success
  assert_line "[health] ok: $DEFAULT_EXP at http://127.0.0.1:8000/v1 answered: 你好"
  run stub_call curl
  assert_line "arg: http://127.0.0.1:8000/v1/chat/completions"
  assert_line "arg: Content-Type: application/json"
  assert_line "arg: --noproxy"
  # The request body really reaches the server.
  local body
  body="$(sed -n 's/^curl-body: //p' <<<"$output")"
  run jq -c '{model, max_tokens, n: (.messages | length)}' <<<"$body"
  assert_output "{\"model\":\"$DEFAULT_EXP\",\"max_tokens\":32,\"n\":1}"
}

@test "health fails with the server log's tail when the completion is empty" {
  write_env GPU=cpu
  mkdir -p "$REPO/.state/$DEFAULT_EXP/server"
  printf 'INFO: loading model\nERROR: generation produced no tokens\n' >"$REPO/.state/$DEFAULT_EXP/server/deploy.log"
  STUB_CURL_MODELS="$(serving_json "$DEFAULT_EXP")" \
    STUB_CURL_CHAT='{"choices":[{"message":{"role":"assistant","content":""}}]}' run scripts/health.sh
  assert_failure
  assert_line "--- last lines of $REPO/.state/$DEFAULT_EXP/server/deploy.log ---"
  assert_line "ERROR: generation produced no tokens"
  assert_line "[health] error: chat completion returned empty content: {\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"\"}}]}"
  assert_line "[health] fix: check the server log above; restart with 'make stop deploy'"
}

@test "health fails when nothing serves the model" {
  write_env GPU=cpu
  STUB_CURL_EXIT=7 run scripts/health.sh
  assert_failure
  assert_line "[health] error: no server answers at http://127.0.0.1:8000/v1/models after 0s"
  assert_line "[health] fix: start it with 'make deploy EXP=$DEFAULT_EXP'"
}

@test "health fails when the server serves another model" {
  write_env GPU=cpu
  STUB_CURL_MODELS="$(serving_json smoke)" run scripts/health.sh
  assert_failure
  assert_line "[health] error: the server at http://127.0.0.1:8000/v1 serves [smoke], not $DEFAULT_EXP"
  assert_line "[health] fix: run 'make stop deploy EXP=$DEFAULT_EXP'"
}

@test "health sends SERVE_API_KEY in curl's config, not in argv" {
  write_env GPU=cpu SERVE_API_KEY=key-SECRET-456
  STUB_CURL_MODELS="$(serving_json "$DEFAULT_EXP")" run scripts/health.sh
  assert_success
  refute_output --partial key-SECRET-456
  run stub_call curl
  assert_line "curl-config: Authorization (set)"
  refute_output --partial key-SECRET-456
}

@test "health DRY_RUN prints the two curl requests" {
  write_env GPU=cpu
  DRY_RUN=1 run scripts/health.sh
  assert_success
  assert_line "curl --noproxy '*' http://127.0.0.1:8000/v1/models"
  assert_line --partial "curl --noproxy '*' http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' -d '{\"model\":\"$DEFAULT_EXP\",\"messages\":[{\"role\":\"user\",\"content\":\"你好，请用一句话介绍你自己。\"}],\"max_tokens\":32,"
  assert_equal "$(stub_calls curl)" 0
}

@test "health fails with the server log's tail when the response body is empty" {
  write_env GPU=cpu
  mkdir -p "$REPO/.state/$DEFAULT_EXP/server"
  printf 'ERROR: worker died\n' >"$REPO/.state/$DEFAULT_EXP/server/deploy.log"
  STUB_CURL_MODELS="$(serving_json "$DEFAULT_EXP")" STUB_CURL_CHAT='' run scripts/health.sh
  assert_failure
  assert_line "--- last lines of $REPO/.state/$DEFAULT_EXP/server/deploy.log ---"
  assert_line "ERROR: worker died"
  assert_line "[health] error: chat completion returned empty content: "
}
