#!/usr/bin/env bats
# Env-file loading (scripts/lib/env.sh): every error stops with what failed and
# the fix, and the command line / environment wins over the file.

load test_helper

setup() { common_setup; }
teardown() { common_teardown; }

# Each case below runs the train step for real (not a dry run), so the loader's
# checks all apply; none of them may get as far as calling swift.
assert_no_swift() { assert_equal "$(stub_calls swift)" 0; }

@test "explicit ENV_FILE that does not exist" {
  ENV_FILE="$TMP/nope.env" run scripts/train.sh
  assert_failure
  assert_line "[train] error: env file '$TMP/nope.env' not found"
  assert_line "[train] fix: create it (cp env/example.env env/local.env) or pass ENV_FILE=<existing file>"
  assert_no_swift
}

@test "relative ENV_FILE is resolved against the repo and reported as such" {
  ENV_FILE=env/missing.env run scripts/train.sh
  assert_failure
  assert_line "[train] error: env file '$REPO/env/missing.env' not found"
}

@test "no ENV_FILE and no env/local.env: a real run stops" {
  run scripts/train.sh
  assert_failure
  assert_line "[train] error: env file env/local.env not found"
  assert_line "[train] fix: cp env/example.env env/local.env and edit it, or pass ENV_FILE=env/smoke.env for the CPU smoke run"
  assert_no_swift
}

@test "no env/local.env: a dry run previews with env/example.env" {
  DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line "[train] warning: env/local.env not found; previewing with env/example.env"
  assert_output --partial "CUDA_VISIBLE_DEVICES=6 "
}

@test "env/local.env is the default env file" {
  printf '%s\n' GPU=0,1 "OUTPUT_ROOT=$TMP/out/output" >env/local.env
  DRY_RUN=1 run scripts/train.sh
  assert_success
  refute_output --partial "previewing with env/example.env"
  assert_output --partial "CUDA_VISIBLE_DEVICES=0,1 "
}

@test "unknown key" {
  write_env GPU=cpu SWANLAB_KEY=abc
  run scripts/train.sh
  assert_failure
  assert_line "[train] error: $ENV_FILE:9: unknown key 'SWANLAB_KEY'"
  assert_line --partial "[train] fix: use one of: GPU SWANLAB_TOKEN SWANLAB_PROJECT SWANLAB_MODE"
  assert_line --partial "(see env/example.env)"
  assert_no_swift
}

@test "malformed line" {
  write_env GPU=cpu "this is not a setting"
  run scripts/train.sh
  assert_failure
  assert_line "[train] error: $ENV_FILE:9: not a KEY=VALUE line"
  assert_line "[train] fix: write settings as KEY=value, one per line"
  assert_no_swift
}

@test "GPU='6,' (trailing comma) is malformed" {
  write_env "GPU=6,"
  run scripts/train.sh
  assert_failure
  assert_line "[train] error: GPU='6,' is not valid"
  assert_line "[train] fix: use cpu, one index (GPU=6) or a comma list without spaces (GPU=0,1,2,3)"
  assert_no_swift
}

@test "GPU='a' is malformed" {
  write_env GPU=a
  run scripts/train.sh
  assert_failure
  assert_line "[train] error: GPU='a' is not valid"
  assert_line "[train] fix: use cpu, one index (GPU=6) or a comma list without spaces (GPU=0,1,2,3)"
}

@test "GPU='0, 1' (space) is malformed" {
  write_env "GPU=0, 1"
  run scripts/train.sh
  assert_failure
  assert_line "[train] error: GPU='0, 1' is not valid"
  assert_line "[train] fix: use cpu, one index (GPU=6) or a comma list without spaces (GPU=0,1,2,3)"
}

@test "GPU='1,1' lists a GPU twice" {
  write_env GPU=1,1
  run scripts/train.sh
  assert_failure
  assert_line "[train] error: GPU='1,1' lists GPU 1 twice"
  assert_line "[train] fix: list each GPU index once"
  assert_no_swift
}

@test "empty GPU" {
  write_env GPU=
  run scripts/train.sh
  assert_failure
  assert_line "[train] error: GPU is not set"
  assert_line "[train] fix: set GPU=cpu, GPU=6 or GPU=0,1,2,3 in $ENV_FILE or on the make command line"
}

@test "GPU index that nvidia-smi -L does not list" {
  write_env GPU=0,6
  STUB_GPU_COUNT=2 run scripts/train.sh
  assert_failure
  assert_line "[train] error: GPU 6 does not exist here (nvidia-smi -L lists: 0,1)"
  assert_line "[train] fix: set GPU to listed indices, e.g. GPU=0"
  assert_equal "$(stub_call nvidia-smi | grep '^argv:')" "argv: -L"
  assert_no_swift
}

@test "GPU set but no nvidia-smi on PATH" {
  write_env GPU=6
  # A PATH with only the programs the loader needs (a GPU host has a real nvidia-smi).
  local bin="$TMP/nonvidia" tool
  mkdir -p "$bin"
  for tool in bash env dirname basename cat sed grep stat find xargs sort paste head; do
    ln -s "$(command -v "$tool")" "$bin/$tool"
  done
  ln -s "$SRC_ROOT/tests/stubs/stub" "$bin/swift"
  PATH="$bin" run scripts/train.sh
  assert_failure
  assert_line "[train] error: GPU=6 but nvidia-smi is not on PATH (no NVIDIA driver here)"
  assert_line "[train] fix: use GPU=cpu on this machine"
  assert_no_swift
}

@test "SERVE_PORT that is not a number" {
  write_env GPU=cpu SERVE_PORT=80a0
  run scripts/deploy.sh
  assert_failure
  assert_line "[deploy] error: SERVE_PORT='80a0' is not a port number"
  assert_line "[deploy] fix: set SERVE_PORT to a number from 1 to 65534, e.g. 8000 (the base model's server uses SERVE_PORT + 1)"
  assert_equal "$(stub_calls swift)" 0
}

@test "SERVE_PORT out of range (70000 and 0)" {
  write_env GPU=cpu SERVE_PORT=70000
  run scripts/deploy.sh
  assert_failure
  assert_line "[deploy] error: SERVE_PORT='70000' is not a port number"
  assert_line "[deploy] fix: set SERVE_PORT to a number from 1 to 65534, e.g. 8000 (the base model's server uses SERVE_PORT + 1)"
  SERVE_PORT=0 run scripts/deploy.sh
  assert_failure
  assert_line "[deploy] error: SERVE_PORT='0' is not a port number"
}

@test "SWANLAB_MODE=cloud without a token" {
  write_env GPU=cpu SWANLAB_MODE=cloud SWANLAB_TOKEN=
  run scripts/train.sh
  assert_failure
  assert_line "[train] error: SWANLAB_MODE=cloud but SWANLAB_TOKEN is empty"
  assert_line "[train] fix: put your key in SWANLAB_TOKEN, or set SWANLAB_MODE=local"
  assert_no_swift
}

@test "SWANLAB_MODE that is neither cloud nor local" {
  write_env GPU=cpu SWANLAB_MODE=offline
  run scripts/train.sh
  assert_failure
  assert_line "[train] error: SWANLAB_MODE='offline' is not valid"
  assert_line "[train] fix: use cloud, local, or leave it empty (cloud when a token is set)"
}

@test "a judge without its API, an API without a judge, and served with an API are refused" {
  write_env GPU=cpu JUDGE_MODEL=qwen-judge
  run scripts/train.sh
  assert_failure
  assert_line "[train] error: JUDGE_MODEL=qwen-judge needs JUDGE_API_URL, an http(s) address of an OpenAI-compatible API (without one EvalScope would call a hosted model)"
  assert_line "[train] fix: set JUDGE_API_URL (e.g. http://127.0.0.1:9000/v1), or empty JUDGE_MODEL to skip the judged benchmarks"
  write_env GPU=cpu JUDGE_API_URL=http://127.0.0.1:9000/v1
  run scripts/train.sh
  assert_failure
  assert_line "[train] error: JUDGE_API_URL is set but JUDGE_MODEL is empty"
  write_env GPU=cpu JUDGE_MODEL=served JUDGE_API_URL=http://127.0.0.1:9000/v1
  run scripts/train.sh
  assert_failure
  assert_line "[train] error: JUDGE_MODEL=served judges with the served model itself, but JUDGE_API_URL is set too"
  assert_no_swift
}

@test "non-loopback SERVE_HOST without SERVE_API_KEY" {
  write_env GPU=cpu SERVE_HOST=0.0.0.0
  run scripts/deploy.sh
  assert_failure
  assert_line "[deploy] error: SERVE_HOST=0.0.0.0 exposes the server beyond this machine without a key"
  assert_line "[deploy] fix: set SERVE_API_KEY in $ENV_FILE, or keep SERVE_HOST=127.0.0.1"
  assert_equal "$(stub_calls swift)" 0
}

@test "non-loopback SERVE_HOST with SERVE_API_KEY is accepted" {
  write_env GPU=cpu SERVE_HOST=0.0.0.0 SERVE_API_KEY=k-123
  DRY_RUN=1 run scripts/deploy.sh
  assert_success
  assert_output --partial "--host 0.0.0.0"
  refute_output --partial "k-123"
}

@test "unknown EXP" {
  write_env GPU=cpu
  EXP=nope run scripts/train.sh
  assert_failure
  assert_line "[train] error: experiment 'nope' has no config (configs/nope/sft.yaml)"
  assert_line "[train] fix: pick one of: $(find configs -mindepth 2 -maxdepth 2 -name sft.yaml -printf '%h\n' | xargs -n1 basename | sort | paste -sd' ' -)"
  assert_no_swift
}

@test "EXP that is not a plain name" {
  write_env GPU=cpu
  EXP=../etc run scripts/train.sh
  assert_failure
  assert_line "[train] error: EXP='../etc' is not a valid experiment name"
}

@test "the environment wins over the file: GPU=6 overrides the file's GPU" {
  write_env GPU=cpu
  GPU=6 DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_output --partial "CUDA_VISIBLE_DEVICES=6 "
  refute_output --partial "--use_cpu"
}

@test "make's command line wins over the file: make train GPU=6" {
  write_env GPU=cpu MASTER_PORT=29500
  run make train GPU=0,1 MASTER_PORT=29999 DRY_RUN=1
  assert_success
  assert_output --partial "CUDA_VISIBLE_DEVICES=0,1 "
  assert_output --partial "NPROC_PER_NODE=2 MASTER_PORT=29999 "
  refute_output --partial "--use_cpu"
}

@test "quotes around values are stripped" {
  write_env_raw GPU='"3"' "SWANLAB_PROJECT='quoted-proj'" 'SWANLAB_MODE="local"' "OUTPUT_ROOT=\"$OUT/output\""
  DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_output --partial "CUDA_VISIBLE_DEVICES=3 "
  assert_output --partial "--swanlab_project quoted-proj "
  assert_output --partial "--swanlab_mode local "
  refute_output --partial "'quoted-proj'"
}

@test "comments, blank lines, CRLF endings and 'export KEY=' are accepted" {
  printf '# a comment\n\nexport GPU=2\r\nSWANLAB_PROJECT=crlf-proj\r\nOUTPUT_ROOT=%s\n' "$OUT/output" >"$TMP/test.env"
  ENV_FILE="$TMP/test.env" DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_output --partial "CUDA_VISIBLE_DEVICES=2 "
  assert_output --partial "--swanlab_project crlf-proj "
}

@test "an env file holding a token and readable by others gets a chmod warning" {
  write_env GPU=cpu SWANLAB_TOKEN=sk-test-SECRET-123
  chmod 644 "$ENV_FILE"
  DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line "[train] warning: $ENV_FILE holds a secret and is readable by other users (mode 644); run: chmod 600 $ENV_FILE"
  refute_output --partial "SECRET"
}
