#!/usr/bin/env bats
# scripts/preflight.sh and scripts/check-dataset.sh, run in a copy of the repo with
# a temporary env file and experiment, and the stub nvidia-smi (GPUs 0 and 1, with
# 81000 and 1000 MiB free).

load test_helper

GOOD_ROW='{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}'

setup() {
  common_setup
  SOURCE_ROOT="$SRC_ROOT"
  make_venv_stamp "$REPO/env/requirements-cpu.lock"
  export STUB_GPU_COUNT=2 STUB_GPU_FREE_MIB=81000,1000
  EXP=t-preflight
  EXP_DIR="$REPO/configs/$EXP"
  DATA="$BATS_TEST_TMPDIR/data.jsonl"
  write_experiment
  printf '%s\n' "$GOOD_ROW" "$GOOD_ROW" "$GOOD_ROW" >"$DATA"
  write_env_file
  export ENV_FILE="$BATS_TEST_TMPDIR/test.env" EXP
}

teardown() {
  if [[ -n "${HTTP_PID:-}" ]]; then kill "$HTTP_PID" 2>/dev/null || true; wait "$HTTP_PID" 2>/dev/null || true; fi
  common_teardown
}

# The venv stamp scripts/setup-env.sh writes (no .venv/bin, so PATH is left alone).
make_venv_stamp() {
  mkdir -p "$REPO/.venv"
  sha256sum "$1" | cut -d' ' -f1 >"$REPO/.venv/.lab-lock.sha256"
}

write_env_file() {
  cat >"$BATS_TEST_TMPDIR/test.env" <<EOF
GPU=cpu
SWANLAB_MODE=local
SERVE_HOST=127.0.0.1
SERVE_PORT=$(free_port)
OUTPUT_ROOT=$BATS_TEST_TMPDIR/out put
EXPORT_ROOT=$BATS_TEST_TMPDIR/export
RESULTS_ROOT=$BATS_TEST_TMPDIR/results
CACHE_ROOT=$BATS_TEST_TMPDIR/cache
OFFLINE=1
EOF
}

# write_experiment [EXTRA_SFT_LINE]: a small experiment whose dataset is $DATA.
write_experiment() {
  mkdir -p "$EXP_DIR"
  printf 'model: %s\ntuner_type: lora\ndataset:\n  - %s\nmax_length: 512\n%s\n' \
    "$BATS_TEST_TMPDIR/model" "$DATA" "${1:-}" >"$EXP_DIR/sft.yaml"
  mkdir -p "$BATS_TEST_TMPDIR/model"
  printf 'GPU_FREE_MIB_PER_GPU=61440\nDISK_OUTPUT_GIB=0\nDISK_EXPORT_GIB=0\nDISK_CACHE_GIB=0\n' >"$EXP_DIR/requirements.env"
}

# write_data ROW...: the dataset, one row a line.
write_data() { printf '%s\n' "$@" >"$DATA"; }

preflight() { run "$REPO/scripts/preflight.sh"; }

@test "preflight passes on a good setup and names the dataset's row count" {
  preflight
  assert_success
  assert_output --partial "3 rows, all valid"
  assert_output --partial "all checks passed for $EXP"
}

@test "the embedded default (smoke) passes" {
  # make builds the tiny model before preflight (TRAIN_PREREQS); without it, its
  # path would be a hub id that OFFLINE=1 finds in no cache.
  mkdir -p "$REPO/build/tiny-gpt-oss"
  echo '{}' >"$REPO/build/tiny-gpt-oss/config.json"
  EXP=smoke ENV_FILE="$REPO/env/smoke.env" SERVE_PORT="$(free_port)" run "$REPO/scripts/preflight.sh"
  assert_success
  assert_output --partial "all checks passed for smoke"
}

@test "dataset: a line that is not JSON fails with its line number and the bad-row count" {
  write_data "$GOOD_ROW" '{"conversations": [' "$GOOD_ROW" 'not json'
  preflight
  assert_failure
  assert_output --partial "data.jsonl:2: row is not valid JSON (2 of 4 rows bad)"
  assert_output --partial "fix: correct or remove the bad rows"
}

@test "dataset: a row without conversations fails" {
  write_data "$GOOD_ROW" "$GOOD_ROW" '{"messages": []}'
  preflight
  assert_failure
  assert_output --partial 'data.jsonl:3: row has no "conversations" (1 of 3 rows bad)'
}

@test "dataset: an unknown role fails naming the role" {
  write_data '{"conversations": [{"from": "user", "value": "hi"}, {"from": "gpt", "value": "a"}]}' "$GOOD_ROW"
  preflight
  assert_failure
  assert_output --partial 'data.jsonl:1: row conversations: message 1 has unknown role "user"'
  assert_output --partial "(1 of 2 rows bad)"
}

@test "dataset: human and gpt that do not alternate fail" {
  write_data "$GOOD_ROW" \
    '{"conversations": [{"from": "human", "value": "q"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}' \
    '{"conversations": [{"from": "gpt", "value": "a"}, {"from": "human", "value": "q"}]}'
  preflight
  assert_failure
  assert_output --partial "data.jsonl:2: row conversations: message 2 is human after another human"
  assert_output --partial "(2 of 3 rows bad)"
}

@test "dataset: an empty or blank value fails" {
  write_data "$GOOD_ROW" \
    '{"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": "  "}]}' \
    '{"conversations": [{"from": "human", "value": ""}, {"from": "gpt", "value": "a"}]}'
  preflight
  assert_failure
  assert_output --partial "data.jsonl:2: row conversations: message 3 (gpt) has an empty value (2 of 3 rows bad)"
}

@test "dataset: a system message first is accepted; a dataset path that does not exist fails" {
  write_data '{"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}'
  preflight
  assert_success
  DATASET="$BATS_TEST_TMPDIR/missing.jsonl" run "$REPO/scripts/preflight.sh"
  assert_failure
  assert_output --partial "dataset '$BATS_TEST_TMPDIR/missing.jsonl' not found"
}

@test "dataset: a hub id's rows are not checked, with a note" {
  sed -i "s|  - $DATA|  - org/some-dataset|" "$EXP_DIR/sft.yaml"
  SKIP_REMOTE_CHECKS=hub run "$REPO/scripts/preflight.sh" # tests/preflight-remote.bats asks a stub hub
  assert_success
  assert_output --partial "dataset 'org/some-dataset' is a hub id: its rows are not checked here"
}

@test "dataset: entries in ms-swift's syntax are read as ms-swift reads them (scripts/py/lab/configs.py)" {
  # A local file with a sample count is checked; a local folder with a subset is local (not a
  # missing path); a hub id with a hub prefix, subsets and a count is a hub id.
  mkdir -p "$BATS_TEST_TMPDIR/sets"
  sed -i "s|  - $DATA|  - $DATA#2\\n  - $BATS_TEST_TMPDIR/sets:train\\n  - hf::org/some-dataset:default#10|" "$EXP_DIR/sft.yaml"
  SKIP_REMOTE_CHECKS=hub run "$REPO/scripts/preflight.sh"
  assert_success
  assert_output --partial "3 rows, all valid"
  assert_output --partial "dataset '$BATS_TEST_TMPDIR/sets:train' is not a .jsonl file: not checked"
  assert_output --partial "dataset 'hf::org/some-dataset:default#10' is a hub id: its rows are not checked here"
  refute_output --partial "not found"
}

@test "check-dataset.sh checks 5000 rows in a few seconds" {
  local i
  for ((i = 0; i < 5000; i++)); do printf '%s\n' "$GOOD_ROW"; done >"$DATA"
  SECONDS=0
  run "$REPO/scripts/check-dataset.sh" "$DATA"
  assert_success
  assert_output --partial "5000 rows, all valid"
  ((SECONDS < 5))
}

@test "a GPU with too little free memory fails naming the GPU and the need" {
  GPU=0,1 run "$REPO/scripts/preflight.sh"
  assert_failure
  assert_output --partial "GPU 1 has 1000 MiB free; $EXP needs 61440 MiB per GPU"
  assert_output --partial "now: GPU=0"
  refute_output --partial "GPU 0 has"
}

@test "a GPU that does not exist fails (env loader)" {
  GPU=7 run "$REPO/scripts/preflight.sh"
  assert_failure
  assert_output --partial "GPU 7 does not exist here"
}

@test "too little disk fails naming the file system and the need" {
  sed -i 's/^DISK_EXPORT_GIB=.*/DISK_EXPORT_GIB=999999/' "$EXP_DIR/requirements.env"
  preflight
  assert_failure
  assert_output --regexp "has [0-9]+ GiB free; this run needs 999999 GiB there \(EXPORT_ROOT 999999 GiB\)"
}

@test "a read-only output directory fails naming the root" {
  [[ $EUID -ne 0 ]] || skip "root can write to a read-only directory"
  mkdir -p "$BATS_TEST_TMPDIR/ro"
  chmod 555 "$BATS_TEST_TMPDIR/ro"
  OUTPUT_ROOT="$BATS_TEST_TMPDIR/ro/output" run "$REPO/scripts/preflight.sh"
  chmod 755 "$BATS_TEST_TMPDIR/ro"
  assert_failure
  assert_output --partial "OUTPUT_ROOT $BATS_TEST_TMPDIR/ro/output/$EXP cannot be written"
}

@test "a port in use fails naming the port" {
  local port
  port="$(free_port)"
  python3 -m http.server "$port" --bind 127.0.0.1 --directory "$BATS_TEST_TMPDIR" >/dev/null 2>&1 &
  HTTP_PID=$!
  for _ in $(seq 50); do (: >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  SERVE_PORT="$port" run "$REPO/scripts/preflight.sh"
  assert_failure
  assert_output --partial "port $port (SERVE_PORT) is in use"
  assert_output --partial "set SERVE_PORT in"
}

@test "a port held by this repo's own server passes" {
  local port
  port="$(free_port)"
  mkdir -p "$BATS_TEST_TMPDIR/swift-server" "$REPO/.state/$EXP/server"
  # server_pid knows our server by its pid file and "swift" in its command line.
  python3 -m http.server "$port" --bind 127.0.0.1 --directory "$BATS_TEST_TMPDIR/swift-server" >/dev/null 2>&1 &
  HTTP_PID=$!
  echo "$HTTP_PID" >"$REPO/.state/$EXP/server/pid"
  for _ in $(seq 50); do (: >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  SERVE_PORT="$port" run "$REPO/scripts/preflight.sh"
  assert_success
  assert_output --partial "port $port is held by this repo's server"
}

@test "an unknown flag in sft.yaml fails naming the key and the file" {
  write_experiment "train_type: lora"
  preflight
  assert_failure
  assert_output --partial "configs/$EXP/sft.yaml: 'train_type' is not a flag of swift sft"
  assert_output --partial "accepted names: env/swift-sft-args.txt"
}

@test "an unknown flag in export.yaml fails too" {
  printf 'ckpt_dir: output/x\nmerge_lora: true\n' >"$EXP_DIR/export.yaml"
  preflight
  assert_failure
  assert_output --partial "configs/$EXP/export.yaml: 'ckpt_dir' is not a flag of swift export"
}

@test "a venv built from another lock fails with make env" {
  echo 0000 >"$REPO/.venv/.lab-lock.sha256"
  preflight
  assert_failure
  assert_output --partial ".venv was built from another version of env/requirements-cpu.lock"
  assert_output --partial "fix: run: make env"
}

@test "every failed check is reported, not only the first" {
  write_experiment "train_type: lora"
  write_data "not json"
  rm "$REPO/.venv/.lab-lock.sha256"
  preflight
  assert_failure
  assert_output --partial "'train_type' is not a flag"
  assert_output --partial "data.jsonl:1: row is not valid JSON"
  assert_output --partial "fix: run: make env"
  assert_output --partial "3 check(s) failed"
}

@test "DRY_RUN=1 skips the machine checks and prints nothing on stdout" {
  echo 0000 >"$REPO/.venv/.lab-lock.sha256"
  DRY_RUN=1 GPU=1 run --separate-stderr "$REPO/scripts/preflight.sh"
  assert_success
  assert_output ""
  # shellcheck disable=SC2154 # set by run --separate-stderr
  [[ "$stderr" == *"dry run: checked the configs and the dataset"* ]]
}

@test "a machine setting written in a config is refused, naming both places" {
  printf 'port: 9000\n' >"$EXP_DIR/deploy.yaml"
  printf 'output_dir: /tmp/elsewhere\n' >>"$EXP_DIR/sft.yaml"
  DRY_RUN=1 preflight
  assert_failure
  assert_line "[preflight] error: configs/$EXP/deploy.yaml sets 'port', which the scripts set from SERVE_PORT (the env file or the make command line); the flag would silently override the config"
  assert_line "[preflight] fix: remove 'port' from configs/$EXP/deploy.yaml and set SERVE_PORT instead"
  assert_line --partial "[preflight] error: configs/$EXP/sft.yaml sets 'output_dir', which the scripts set from OUTPUT_ROOT"
}

@test "the shipped configs set no machine setting, and each experiment has one system prompt file for training and serving" {
  local dir exp sft deploy base
  for dir in "$SOURCE_ROOT"/configs/*/; do
    exp="$(basename "$dir")"
    [[ -f "$dir/sft.yaml" ]] || continue
    sft="$(sed -n 's/^system:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$dir/sft.yaml")"
    deploy="$(sed -n 's/^system:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$dir/deploy.yaml")"
    assert_equal "$deploy" "$sft"
    # A variant keeps its base's one prompt (configs/<exp>/variant.yaml: from: <base>).
    base="$exp"
    if [[ -f "$dir/variant.yaml" ]]; then base="$("$LAB_PYTHON" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["from"])' "$dir/variant.yaml")"; fi
    assert_equal "$sft" "configs/$base/system.txt"
    # ms-swift reads the file as it is: a trailing newline would become part of the prompt.
    [[ "$(tail -c 1 "$SOURCE_ROOT/$sft" | od -An -c | tr -d ' ')" != '\n' ]]
    EXP="$exp" DRY_RUN=1 SKIP_REMOTE_CHECKS=swanlab,hub run "$REPO/scripts/preflight.sh"
    refute_output --partial "which the scripts set from"
  done
}
