#!/usr/bin/env bats
# make deploy and make stop (scripts/deploy.sh, scripts/stop.sh): the swift deploy command per
# GPU setup, the server in its own process group, ports, and what is refused.

load test_helper

setup() {
  common_setup
  CFG="configs/$DEFAULT_EXP"
}
teardown() { common_teardown; }

@test "deploy DRY_RUN GPU=6: lmdeploy's venv, no transformers backend" {
  write_env GPU=6
  DRY_RUN=1 run scripts/deploy.sh
  assert_success
  assert_line "mkdir -p .state/$DEFAULT_EXP/server"
  assert_line "CUDA_VISIBLE_DEVICES=6 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope setsid .venv-lmdeploy/bin/swift deploy $CFG/deploy.yaml \\"
  assert_line "    --model $EXPORT_DIR \\"
  assert_line "    --served_model_name $DEFAULT_EXP \\"
  assert_line "    --host 127.0.0.1 \\"
  assert_line "    --port 8000 > .state/$DEFAULT_EXP/server/deploy.log 2>&1 &"
  assert_line "#   infer_backend: lmdeploy"
  refute_output --partial "--infer_backend"
  refute_output --partial "--lmdeploy_tp"
}

@test "deploy DRY_RUN GPU=0,1,2,3: tensor parallel over the four GPUs" {
  write_env GPU=0,1,2,3
  DRY_RUN=1 run scripts/deploy.sh
  assert_success
  assert_line --partial "CUDA_VISIBLE_DEVICES=0,1,2,3 "
  assert_line "    --lmdeploy_tp 4 > .state/$DEFAULT_EXP/server/deploy.log 2>&1 &"
}

@test "deploy DRY_RUN GPU=cpu: the project's swift with the transformers backend" {
  write_env GPU=cpu SERVE_PORT=8011
  DRY_RUN=1 run scripts/deploy.sh
  assert_success
  assert_line "HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope setsid swift deploy $CFG/deploy.yaml \\"
  assert_line "    --port 8011 \\"
  assert_line "    --infer_backend transformers > .state/$DEFAULT_EXP/server/deploy.log 2>&1 &"
}

@test "deploy --base DRY_RUN serves the base model under <exp>-base" {
  write_env GPU=6
  DRY_RUN=1 run scripts/deploy.sh --base
  assert_success
  assert_line "    --model openai-mirror/gpt-oss-20b \\"
  assert_line "    --served_model_name $DEFAULT_EXP-base \\"
}

@test "deploy GPU=6 with stubs: starts .venv-lmdeploy/bin/swift in the background; stop ends it" {
  local port
  port="$(free_port)"
  write_env GPU=6 "SERVE_PORT=$port"
  mark_done train export
  mkdir -p "$REPO/.venv-lmdeploy/bin"
  ln -s "$SRC_ROOT/tests/stubs/stub" "$REPO/.venv-lmdeploy/bin/swift"
  STUB_CURL_WAIT_SERVED=5 run scripts/deploy.sh
  assert_success
  assert_line --partial "[deploy] serving $DEFAULT_EXP at http://127.0.0.1:$port/v1 (pid "
  # The stub's record of its call may reach the log a moment after deploy saw it serving
  # (a busy machine: make test's two lanes); wait for it rather than race it.
  local waited
  for ((waited = 0; waited < 100; waited++)); do ((${#STUB_LOG} > 0)) && grep -qx '== swift' "$STUB_LOG" && break; sleep 0.1; done
  run stub_call swift
  assert_line "path: $REPO/.venv-lmdeploy/bin/swift"
  assert_line "argv: deploy $REPO/$CFG/deploy.yaml --model $EXPORT_DIR --served_model_name $DEFAULT_EXP --host 127.0.0.1 --port $port"
  assert_line "env: CUDA_VISIBLE_DEVICES=6"
  local pid
  pid="$(cat "$REPO/.state/$DEFAULT_EXP/server/pid")"
  assert_equal "$(cat "$REPO/.state/$DEFAULT_EXP/server/served_model_name")" "$DEFAULT_EXP"
  kill -0 "$pid"
  assert_file_contains "$REPO/.state/$DEFAULT_EXP/server/deploy.log" "Uvicorn running on http://127.0.0.1:$port"

  # A second deploy finds it serving and starts nothing.
  STUB_CURL_WAIT_SERVED=5 run scripts/deploy.sh
  assert_success
  assert_line "[deploy] already serving $DEFAULT_EXP at http://127.0.0.1:$port/v1 (pid $pid)"
  assert_equal "$(stub_calls swift)" 1

  run scripts/stop.sh
  assert_success
  assert_line "[stop] stopped the server of $DEFAULT_EXP (process group $pid)"
  assert_file_not_exist "$REPO/.state/$DEFAULT_EXP/server/pid"
  run kill -0 -- "-$pid"
  assert_failure
}

@test "deploy GPU=cpu with stubs: swift from PATH with --infer_backend transformers" {
  local port
  port="$(free_port)"
  write_env GPU=cpu "SERVE_PORT=$port"
  mark_done train export
  STUB_CURL_WAIT_SERVED=5 run scripts/deploy.sh
  assert_success
  run stub_call swift
  assert_line "path: $STUBS/swift"
  assert_line "argv: deploy $REPO/$CFG/deploy.yaml --model $EXPORT_DIR --served_model_name $DEFAULT_EXP --host 127.0.0.1 --port $port --infer_backend transformers"
  assert_line "env: CUDA_VISIBLE_DEVICES unset"
}

@test "deploy refuses a port that is already in use" {
  local port
  port="$(free_port)"
  start_listener "$port"
  write_env GPU=cpu "SERVE_PORT=$port"
  mark_done train export
  run scripts/deploy.sh
  assert_failure
  assert_line --partial "[deploy] error: port $port is already in use by "
  assert_line "[deploy] fix: stop that program, or set SERVE_PORT to a free port in $ENV_FILE (the base model uses SERVE_PORT + 1)"
  assert_equal "$(stub_calls swift)" 0
  assert_file_not_exist "$REPO/.state/$DEFAULT_EXP/server/pid"
}

@test "deploy refuses when nothing was exported" {
  write_env GPU=cpu "SERVE_PORT=$(free_port)"
  run scripts/deploy.sh
  assert_failure
  assert_line "[deploy] error: $EXPORT_DIR is not the merge of the current training"
  assert_line "[deploy] fix: run 'make export EXP=$DEFAULT_EXP' first"
  assert_equal "$(stub_calls swift)" 0
}

@test "stop without a server does nothing" {
  write_env GPU=cpu
  run scripts/stop.sh
  assert_success
  assert_line "[stop] no server of $DEFAULT_EXP is running"
}

@test "one server per experiment: two serve side by side (.state/<exp>/server/), make stop stops EXP's, ALL=1 every one (an old .state/server/ too)" {
  local port_a port_b pid_a pid_b legacy
  port_a="$(free_port)"
  port_b="$(free_port)"
  write_env GPU=cpu
  cp -R "$CFG" configs/other
  mark_done train export
  EXP=other mark_done train export
  SERVE_PORT="$port_a" STUB_CURL_WAIT_SERVED=5 run scripts/deploy.sh
  assert_success
  EXP=other SERVE_PORT="$port_b" STUB_CURL_WAIT_SERVED=5 run scripts/deploy.sh
  assert_success
  assert_line --partial "[deploy] serving other at http://127.0.0.1:$port_b/v1 (pid "
  pid_a="$(cat ".state/$DEFAULT_EXP/server/pid")"
  pid_b="$(cat .state/other/server/pid)"
  [[ "$pid_a" != "$pid_b" ]]
  assert_equal "$(cat .state/other/server/served_model_name)" other
  assert_file_contains .state/other/server/deploy.log "Uvicorn running on http://127.0.0.1:$port_b"
  kill -0 -- "-$pid_a"
  kill -0 -- "-$pid_b"

  EXP=other run scripts/stop.sh
  assert_success
  assert_line "[stop] stopped the server of other (process group $pid_b)"
  run kill -0 -- "-$pid_b"
  assert_failure
  kill -0 -- "-$pid_a" # the other experiment's still serves

  # A server started before servers were per experiment: its files in .state/server/.
  mkdir -p .state/server
  setsid bash -c 'exec -a swift-legacy sleep 60' &
  legacy=$!
  echo "$legacy" >.state/server/pid
  echo old-exp >.state/server/served_model_name
  ALL=1 run scripts/stop.sh
  assert_success
  assert_line "[stop] stopped the server of $DEFAULT_EXP (process group $pid_a)"
  assert_line "[stop] stopped the server of old-exp (process group $legacy)"
  run kill -0 -- "-$pid_a"
  assert_failure
  run kill -0 "$legacy"
  assert_failure
  ALL=1 run scripts/stop.sh
  assert_line "[stop] no server of this checkout is running"
  ALL=yes run scripts/stop.sh
  assert_failure
  assert_line "[stop] error: ALL='yes' is not 0 or 1"
}
