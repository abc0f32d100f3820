#!/usr/bin/env bats
# preflight's remote checks (scripts/py/check_remote.py): the SwanLab key and the
# model and dataset on their hub. Every request goes to tests/stubs/hub_server.py
# on 127.0.0.1 or to a closed loopback port; no test contacts a public host.
# The helper runs with the project venv's python (real swanlab, requests, PyYAML).

load test_helper

setup() {
  load_assertions
  clean_environment
  SOURCE_ROOT="$SRC_ROOT"
  [[ -x "$SOURCE_ROOT/.venv/bin/python" ]] || fail "needs the project venv (make env)"
  unset HF_TOKEN HF_HOME HF_ENDPOINT HF_HUB_OFFLINE MODELSCOPE_API_TOKEN MODELSCOPE_ENDPOINT MODELSCOPE_DOMAIN \
    MODELSCOPE_CACHE USE_HF
  REPO="$BATS_TEST_TMPDIR/repo"
  mkdir -p "$REPO/.venv" "$BATS_TEST_TMPDIR/home"
  cp -r "$SOURCE_ROOT/Makefile" "$SOURCE_ROOT/scripts" "$SOURCE_ROOT/configs" "$SOURCE_ROOT/env" "$REPO/"
  sha256sum "$REPO/env/requirements-cpu.lock" | cut -d' ' -f1 >"$REPO/.venv/.lab-lock.sha256"
  # Nothing may land in the user's home: the tests look there for the key.
  export HOME="$BATS_TEST_TMPDIR/home"
  PATH="$SOURCE_ROOT/.venv/bin:$PATH"
  EXP=t-remote
  EXP_DIR="$REPO/configs/$EXP"
  STATE="$BATS_TEST_TMPDIR/state"
  CACHE="$BATS_TEST_TMPDIR/cache"
  write_experiment "model: lab/model-a" "dataset:" "  - lab/data-a#500"
  printf 'GPU_FREE_MIB_PER_GPU=0\nDISK_OUTPUT_GIB=0\nDISK_EXPORT_GIB=0\nDISK_CACHE_GIB=0\n' >"$EXP_DIR/requirements.env"
  cat >"$BATS_TEST_TMPDIR/test.env" <<EOF
GPU=cpu
SWANLAB_MODE=local
SERVE_PORT=$(free_port)
OUTPUT_ROOT=$BATS_TEST_TMPDIR/output
EXPORT_ROOT=$BATS_TEST_TMPDIR/export
RESULTS_ROOT=$BATS_TEST_TMPDIR/results
CACHE_ROOT=$CACHE
OFFLINE=0
EOF
  export ENV_FILE="$BATS_TEST_TMPDIR/test.env" EXP LAB_STATE_DIR="$STATE" HUB_LOG="$BATS_TEST_TMPDIR/hub.log"
  FAKE_KEY="lab-fake-token-$RANDOM$RANDOM-do-not-leak"
}

teardown() {
  if [[ -n "${HUB_PID:-}" ]]; then kill "$HUB_PID" 2>/dev/null || true; wait "$HUB_PID" 2>/dev/null || true; fi
}

# write_experiment LINE...: sft.yaml of the test experiment.
write_experiment() {
  mkdir -p "$EXP_DIR"
  printf '%s\n' "$@" "tuner_type: lora" >"$EXP_DIR/sft.yaml"
}

# start_hub: the stub hub on a free port; HUB_URL points at it, ModelScope and HF use it.
start_hub() {
  local port
  port="$(free_port)"
  : >"$HUB_LOG"
  python3 "$SOURCE_ROOT/tests/stubs/hub_server.py" "$port" "$HUB_LOG" &
  HUB_PID=$!
  wait_for_port "$port"
  HUB_URL="http://127.0.0.1:$port"
  export MODELSCOPE_ENDPOINT="$HUB_URL" HF_ENDPOINT="$HUB_URL"
}

preflight() { run "$REPO/scripts/preflight.sh"; }

# The key is in no output and in no file the run left in the test's directories.
assert_key_not_leaked() {
  refute_output --partial "$FAKE_KEY"
  run grep -rlF -- "$FAKE_KEY" "$BATS_TEST_TMPDIR" --exclude=test.env
  assert_failure
}

# --- hubs ---------------------------------------------------------------------------

@test "hub: a model and dataset found on ModelScope pass; revisions and sizes go to hub-revisions.json" {
  start_hub
  preflight
  assert_success
  assert_output --partial "model 'lab/model-a' on ModelScope: revision commit2, 3.0 MiB, to download"
  assert_output --partial "dataset 'lab/data-a' on ModelScope: revision commit2, 8.0 MiB, to download"
  run jq -c . "$STATE/$EXP/hub-revisions.json"
  assert_output '{"model":{"id":"lab/model-a","hub":"modelscope","revision":"commit2","size_bytes":3145728},"dataset":{"id":"lab/data-a","hub":"modelscope","revision":"commit2","size_bytes":8388608}}'
  run cat "$HUB_LOG"
  assert_line "GET /api/v1/models/lab/model-a/repo/files auth=no"
  assert_line "GET /api/v1/datasets/lab/data-a/repo/tree auth=no"
}

@test "hub: use_hf asks Hugging Face, with the token from HF_TOKEN; a local dataset is left out of the record" {
  printf '%s\n' '{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "a"}]}' >"$BATS_TEST_TMPDIR/d.jsonl"
  write_experiment "model: lab/model-a" "use_hf: true" "dataset:" "  - $BATS_TEST_TMPDIR/d.jsonl"
  start_hub
  HF_TOKEN=hf-test-token preflight
  assert_success
  assert_output --partial "model 'lab/model-a' on Hugging Face: revision 0123456789abcdef0123456789abcdef01234567"
  run jq -c . "$STATE/$EXP/hub-revisions.json"
  assert_output '{"model":{"id":"lab/model-a","hub":"huggingface","revision":"0123456789abcdef0123456789abcdef01234567","size_bytes":3145728}}'
  run cat "$HUB_LOG"
  assert_output "GET /api/models/lab/model-a/revision/main auth=yes"
}

@test "hub: an unknown model id fails naming the id, and no revisions are recorded" {
  write_experiment "model: lab/missing-model" "dataset:" "  - lab/data-a"
  start_hub
  preflight
  assert_failure
  assert_output --partial "error: model 'lab/missing-model' on ModelScope does not exist, and it is no local path either (HTTP 404)"
  assert_output --partial "fix: correct the id in the experiment's sft.yaml or MODEL in the env file (if it is private: export MODELSCOPE_API_TOKEN=<token>)"
  assert_output --partial "1 check(s) failed"
  [[ ! -e "$STATE/$EXP/hub-revisions.json" ]]
}

@test "hub: an unknown dataset given as DATASET fails naming DATASET" {
  start_hub
  DATASET=lab/missing-data preflight
  assert_failure
  assert_output --partial "error: dataset 'lab/missing-data' on ModelScope does not exist"
  assert_output --partial "DATASET in the env file"
}

@test "hub: a gated Hugging Face model names the access and the token it needs" {
  write_experiment "model: lab/gated-model" "use_hf: true" "dataset:" "  - lab/data-a"
  start_hub
  preflight
  assert_failure
  assert_output --partial "error: model 'lab/gated-model' on Hugging Face is gated or private, and no token was given (HTTP 403)"
  assert_output --partial "fix: request access on the model's Hugging Face page, then export HF_TOKEN=<your Hugging Face token>"
}

@test "hub: a private ModelScope dataset names MODELSCOPE_API_TOKEN; with a token, the missing access" {
  write_experiment "model: lab/model-a" "dataset:" "  - lab/private-data"
  start_hub
  preflight
  assert_failure
  assert_output --partial "error: dataset 'lab/private-data' on ModelScope is private or gated: ModelScope refused it without a token (HTTP 401)"
  assert_output --partial "fix: export MODELSCOPE_API_TOKEN=<a ModelScope token with access>"
  MODELSCOPE_API_TOKEN=ms-test-token preflight
  assert_failure
  assert_output --partial "is gated or private, and your token has no access (HTTP 403)"
}

@test "hub: a hub that does not answer times out after REMOTE_CHECK_TIMEOUT, once per hub" {
  write_experiment "model: lab/slow-model" "dataset:" "  - lab/slow-data"
  start_hub
  SECONDS=0
  REMOTE_CHECK_TIMEOUT=1 preflight
  assert_failure
  ((SECONDS < 6))
  assert_output --partial "error: ModelScope ($HUB_URL) did not answer within 1 s about model 'lab/slow-model'"
  assert_output --partial "or skip this check with SKIP_REMOTE_CHECKS=hub"
  assert_output --partial "dataset 'lab/slow-data': not checked, ModelScope is unreachable"
}

@test "hub: an unreachable hub (closed port) fails at once" {
  MODELSCOPE_ENDPOINT="http://127.0.0.1:$(free_port)"
  export MODELSCOPE_ENDPOINT
  SECONDS=0
  preflight
  assert_failure
  ((SECONDS < 5))
  assert_output --partial "error: cannot reach ModelScope ($MODELSCOPE_ENDPOINT) to check model 'lab/model-a' (ConnectionError)"
}

@test "hub: a download larger than the free disk of CACHE_ROOT fails the disk check" {
  write_experiment "model: lab/huge-model" "dataset:" "  - lab/data-a"
  start_hub
  preflight
  assert_failure
  assert_output --partial "model 'lab/huge-model' on ModelScope: revision commit0, 1048576.0 GiB, to download"
  assert_output --regexp "has [0-9]+ GiB free; this run needs 1048577 GiB there \(.*CACHE_ROOT 1048577 GiB\)"
}

@test "hub: a model already in the cache needs no disk for its download" {
  write_experiment "model: lab/huge-model" "dataset:" "  - lab/data-a"
  mkdir -p "$CACHE/modelscope/models/lab--huge-model/snapshots/master"
  echo '{}' >"$CACHE/modelscope/models/lab--huge-model/snapshots/master/config.json"
  start_hub
  preflight
  assert_success
  assert_output --partial "model 'lab/huge-model' on ModelScope: revision commit0, 1048576.0 GiB, in the cache ($CACHE/modelscope/models/lab--huge-model/snapshots/master)"
}

@test "hub, OFFLINE=1: no request; what is not in the cache is named" {
  start_hub
  mkdir -p "$CACHE/modelscope/models/lab/model-a"
  echo '{}' >"$CACHE/modelscope/models/lab/model-a/config.json"
  OFFLINE=1 preflight
  assert_failure
  assert_output --partial "model 'lab/model-a' is in the ModelScope cache ($CACHE/modelscope/models/lab/model-a)"
  assert_output --partial "error: OFFLINE=1, but dataset 'lab/data-a#500' is neither a local path nor in the ModelScope cache under $CACHE/modelscope"
  assert_output --partial "fix: download it once with OFFLINE=0 (make train fills CACHE_ROOT), or point DATASET in the env file at a local copy"
  run cat "$HUB_LOG"
  assert_output ""
}

@test "hub, OFFLINE=1: Hugging Face's cache layout counts too" {
  write_experiment "model: lab/model-a" "use_hf: true" "dataset:" "  - lab/data-a"
  mkdir -p "$CACHE/huggingface/hub/models--lab--model-a/snapshots/abc" "$CACHE/huggingface/hub/datasets--lab--data-a/snapshots/abc"
  touch "$CACHE/huggingface/hub/models--lab--model-a/snapshots/abc/config.json" "$CACHE/huggingface/hub/datasets--lab--data-a/snapshots/abc/x.jsonl"
  OFFLINE=1 preflight
  assert_success
  assert_output --partial "dataset 'lab/data-a' is in the Hugging Face cache"
}

@test "hub: SKIP_REMOTE_CHECKS=hub skips it with a note; an unknown name is an error" {
  start_hub
  SKIP_REMOTE_CHECKS=hub preflight
  assert_success
  assert_output --partial "model and dataset ids: not checked on their hub (SKIP_REMOTE_CHECKS=hub)"
  run cat "$HUB_LOG"
  assert_output ""
  SKIP_REMOTE_CHECKS=hubs preflight
  assert_failure
  assert_output --partial "error: SKIP_REMOTE_CHECKS='hubs' names an unknown check 'hubs'"
  assert_output --partial "fix: list some of: swanlab,hub"
}

# --- SwanLab --------------------------------------------------------------------------

@test "swanlab: cloud mode with a key SwanLab accepts passes" {
  start_hub
  SKIP_REMOTE_CHECKS=hub SWANLAB_MODE=cloud SWANLAB_TOKEN=good-key SWANLAB_API_HOST="$HUB_URL" preflight
  assert_success
  assert_output --partial "SwanLab: the key is accepted by $HUB_URL (user tester)"
  run cat "$HUB_LOG"
  assert_output "POST /api/login/api_key auth=yes"
}

@test "swanlab: a rejected key fails in seconds with 'check SWANLAB_TOKEN'; the key is nowhere" {
  start_hub
  SECONDS=0
  SKIP_REMOTE_CHECKS=hub SWANLAB_MODE=cloud SWANLAB_TOKEN="$FAKE_KEY" SWANLAB_API_HOST="$HUB_URL" preflight
  assert_failure
  ((SECONDS < 10))
  assert_output --partial "error: SwanLab at $HUB_URL rejected the key (HTTP 401)"
  assert_output --partial "fix: check SWANLAB_TOKEN"
  assert_key_not_leaked
}

@test "swanlab: no SwanLab to reach (closed port) names local mode and swanlab sync" {
  local host
  host="http://127.0.0.1:$(free_port)"
  SKIP_REMOTE_CHECKS=hub SWANLAB_MODE=cloud SWANLAB_TOKEN="$FAKE_KEY" SWANLAB_API_HOST="$host" preflight
  assert_failure
  assert_output --partial "error: no network to SwanLab: cannot connect to $host"
  assert_output --partial "fix: set SWANLAB_MODE=local and upload the run later with \`swanlab sync\`"
  assert_key_not_leaked
}

# --- the public sources of fetched benchmarks (configs/benchmarks.yaml: fetch, hub) ------------

# write_eval BENCH...: eval.yaml of the test experiment, the benchmarks' sets not fetched yet.
write_eval() {
  local bench
  {
    printf 'benchmarks: [%s]\ndefaults: {max_tokens: 16, temperature: 0, answer_mode: final}\n' "$(IFS=,; printf '%s' "$*")"
    for bench in "$@"; do printf '%s:\n  local_path: data/%s\n' "$bench" "$bench"; done
  } >"$EXP_DIR/eval.yaml"
}

@test "sources: each fetched benchmark's source is asked on its hub; a set already fetched is not" {
  write_eval psydt-turns cpsyexam-single cpsycoune
  start_hub
  GITHUB_API_URL="$HUB_URL" preflight
  assert_success
  assert_output --partial "benchmark cpsycoune: its source, dataset 'CAS-SIAT-XinHai/CPsyCoun' on GitHub, answers"
  assert_output --partial "benchmark psydt-turns: its source, dataset 'YIRONGCHEN/PsyDTCorpus' on ModelScope, answers"
  assert_output --partial "benchmark cpsyexam-single: its source, dataset 'CAS-SIAT-XinHai/CPsyExam' on Hugging Face, answers"
  run cat "$HUB_LOG"
  assert_line "GET /api/v1/datasets/YIRONGCHEN/PsyDTCorpus/repo/tree auth=no"
  assert_line "GET /api/datasets/CAS-SIAT-XinHai/CPsyExam/revision/main auth=no"
  assert_line "GET /repos/CAS-SIAT-XinHai/CPsyCoun/commits/1954f2e2d01d3b0f568e1673a525a6d3d9a34c03 auth=no"
  mkdir -p "$REPO/data/psydt-turns" "$REPO/data/cpsyexam-single" "$REPO/data/cpsycoune"
  preflight
  assert_success
  refute_output --partial "benchmark psydt-turns"
  run grep -c "PsyDTCorpus" "$HUB_LOG"
  assert_output 1
}

@test "sources: an unknown source fails naming the benchmark and the suite; OFFLINE=1 names the unfetched set" {
  sed -i 's|hub: modelscope:YIRONGCHEN/PsyDTCorpus|hub: modelscope:lab/missing-corpus|' "$REPO/configs/benchmarks.yaml"
  write_eval psydt-turns
  start_hub
  preflight
  assert_failure
  assert_output --partial "error: benchmark psydt-turns: dataset 'lab/missing-corpus' on ModelScope does not exist"
  assert_output --partial "fix: fix hub: modelscope:lab/missing-corpus of psydt-turns in configs/benchmarks.yaml"
  : >"$HUB_LOG"
  OFFLINE=1 preflight
  assert_failure
  assert_output --partial "error: OFFLINE=1, but benchmark psydt-turns's questions are not fetched yet (from modelscope:lab/missing-corpus)"
  run cat "$HUB_LOG"
  refute_output --partial "missing-corpus"
}

@test "sources: SKIP_REMOTE_CHECKS=hub skips them with the model and dataset" {
  write_eval psydt-turns
  start_hub
  SKIP_REMOTE_CHECKS=hub preflight
  assert_success
  assert_output --partial "benchmark sources: not checked on their hub (SKIP_REMOTE_CHECKS=hub)"
  run cat "$HUB_LOG"
  assert_output ""
}

@test "swanlab: local mode asks nothing; SKIP_REMOTE_CHECKS=swanlab skips cloud mode's login with a note" {
  start_hub
  SKIP_REMOTE_CHECKS=hub SWANLAB_TOKEN="$FAKE_KEY" SWANLAB_MODE=local SWANLAB_API_HOST="$HUB_URL" preflight
  assert_success
  SKIP_REMOTE_CHECKS=swanlab,hub SWANLAB_MODE=cloud SWANLAB_TOKEN="$FAKE_KEY" SWANLAB_API_HOST="$HUB_URL" preflight
  assert_success
  assert_output --partial "SwanLab key: not checked (SKIP_REMOTE_CHECKS=swanlab,hub)"
  run cat "$HUB_LOG"
  assert_output ""
}

@test "smoke: make train in cloud mode with a rejected key stops in preflight within 10 s, before swift runs" {
  start_hub
  mkdir -p "$REPO/build/tiny-gpt-oss"
  echo '{}' >"$REPO/build/tiny-gpt-oss/config.json" # as make builds it before preflight
  STUBS="$BATS_TEST_TMPDIR/stubs" && mkdir -p "$STUBS" && stub_tools swift
  export STUB_LOG="$BATS_TEST_TMPDIR/stub.log" && : >"$STUB_LOG"
  unset ENV_FILE EXP LAB_STATE_DIR
  cd "$REPO"
  SECONDS=0
  PATH="$STUBS:$PATH" run make train EXP=smoke ENV_FILE=env/smoke.env SWANLAB_MODE=cloud \
    SWANLAB_TOKEN="$FAKE_KEY" SWANLAB_API_HOST="$HUB_URL" SERVE_PORT="$(free_port)"
  assert_failure
  ((SECONDS < 10))
  assert_output --partial "[preflight] error: SwanLab at $HUB_URL rejected the key (HTTP 401)"
  assert_output --partial "[preflight] fix: check SWANLAB_TOKEN"
  assert_equal "$(stub_calls swift)" 0
  assert_file_not_exist "$REPO/.state/smoke/train.done"
  assert_key_not_leaked
}
