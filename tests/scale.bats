#!/usr/bin/env bats
# Several nodes, several GPUs, DeepSpeed: the commands built (dry run and stub swift,
# whose sft waits like torchrun's rendezvous), what each node's train.sh does, the
# settings' checks, what the fingerprints count as an input, and the evaluation
# concurrency on several serving GPUs. The real two-node CPU training is in
# tests/smoke/multinode.bats.

bats_require_minimum_version 1.5.0

load test_helper

setup() {
  common_setup
  CFG="configs/$DEFAULT_EXP"
  PORT="$(free_port)"
}

teardown() {
  local pid
  for pid in "${NODE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  common_teardown
}

NODE_PIDS=()

# start_node RANK [VAR=VALUE...]: scripts/train.sh as node RANK in the background,
# its output in $TMP/rank-RANK.log.
start_node() {
  local rank="$1"
  shift
  env NODE_RANK="$rank" "$@" scripts/train.sh >"$TMP/rank-$rank.log" 2>&1 &
  NODE_PIDS[rank]=$!
}

# wait_node RANK: waits for node RANK and sets NODE_STATUS to its exit status.
# (Not under `run`: a subshell cannot wait for the test's own children.)
wait_node() {
  NODE_STATUS=0
  wait "${NODE_PIDS[$1]}" || NODE_STATUS=$?
  unset 'NODE_PIDS[$1]'
}

two_nodes_env() { write_env GPU=0,1,2,3 NNODES=2 MASTER_ADDR=127.0.0.1 "MASTER_PORT=$PORT"; }

# The digest of the training inputs under the current settings (what sync-state computes).
train_digest() {
  DRY_RUN='' scripts/sync-state.sh train >/dev/null 2>&1 || return 1
  jq -r .digest ".state/$DEFAULT_EXP/inputs/train.json"
}

# ---------------------------------------------------------------- commands

@test "make train DRY_RUN, node rank 1 of 2 with 4 GPUs and ZeRO-3: the torchrun environment and --deepspeed zero3" {
  write_env
  run --separate-stderr make train DRY_RUN=1 GPU=0,1,2,3 NNODES=2 NODE_RANK=1 MASTER_ADDR=10.1.2.3 DEEPSPEED=zero3
  assert_success
  assert_line "# node rank 1 of 2: waits for rank 0's torchrun at 10.1.2.3:29500, checks that its inputs are rank 0's, then runs"
  assert_line --partial " SWANLAB_LOG_DIR=$OUT/results/$DEFAULT_EXP/swanlog NNODES=2 NODE_RANK=1 MASTER_ADDR=10.1.2.3 NPROC_PER_NODE=4 MASTER_PORT=29500 swift sft $CFG/sft.yaml \\"
  assert_line "    --deepspeed zero3"
  assert_line --partial "CUDA_VISIBLE_DEVICES=0,1,2,3 "
  assert_equal "$(stub_calls swift)" 0
}

@test "one node: neither NNODES, NODE_RANK nor MASTER_ADDR in the command; no DeepSpeed unless asked" {
  write_env GPU=0,1,2,3
  DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line --partial "SWANLAB_LOG_DIR=$OUT/results/$DEFAULT_EXP/swanlog NPROC_PER_NODE=4 MASTER_PORT=29500 swift sft"
  refute_output --partial NNODES
  refute_output --partial NODE_RANK
  refute_output --partial MASTER_ADDR
  refute_output --partial --deepspeed
}

@test "two CPU nodes: one process each (NPROC_PER_NODE=1) with the rendezvous environment" {
  write_env GPU=cpu NNODES=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29541
  DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line --partial "SWANLAB_LOG_DIR=$OUT/results/$DEFAULT_EXP/swanlog NNODES=2 NODE_RANK=0 MASTER_ADDR=127.0.0.1 NPROC_PER_NODE=1 MASTER_PORT=29541 swift sft"
  assert_line "    --use_cpu true"
}

@test "2 nodes x 4 GPUs with stubs: each node's swift gets its rank, the same command otherwise; rank 0 alone records the run" {
  two_nodes_env
  start_node 0
  start_node 1
  wait_node 0
  assert_equal "$NODE_STATUS" 0
  wait_node 1
  assert_equal "$NODE_STATUS" 0
  assert_equal "$(stub_calls swift)" 2
  local rank block
  for rank in 0 1; do
    block="$(stub_call swift "$((rank + 1))")"
    # Rank 1 starts its swift only once rank 0's answers, so the calls come in rank order.
    grep -qx "env: NODE_RANK=$rank" <<<"$block"
    grep -qx "env: NNODES=2" <<<"$block"
    grep -qx "env: MASTER_ADDR=127.0.0.1" <<<"$block"
    grep -qx "env: MASTER_PORT=$PORT" <<<"$block"
    grep -qx "env: NPROC_PER_NODE=4" <<<"$block"
    grep -qx "env: CUDA_VISIBLE_DEVICES=0,1,2,3" <<<"$block"
  done
  assert_equal "$(stub_call swift 1 | grep '^argv:')" "$(stub_call swift 2 | grep '^argv:')"
  run cat "$TMP/rank-1.log"
  assert_line "[train-node1] node rank 1 done; rank 0 records the finished run"
  # Both nodes recorded the same digest of the inputs; rank 0 the run's record and its end.
  assert_equal "$(jq -r .inputs_digest "$RUN_DIR/lab-node-0.json")" "$(jq -r .digest "$RUN_DIR/lab-inputs.json")"
  assert_equal "$(jq -r .inputs_digest "$RUN_DIR/lab-node-1.json")" "$(jq -r .digest "$RUN_DIR/lab-inputs.json")"
  assert_equal "$(jq -r .matches_rank_0 "$RUN_DIR/lab-node-1.json")" true
  assert_equal "$(jq -r .inputs_digest "$RUN_DIR/lab-train.json")" "$(jq -r .digest "$RUN_DIR/lab-inputs.json")"
  run find "$RUN_DIR" -maxdepth 1 -name 'checkpoint-*'
  assert_equal "${#lines[@]}" 1
  run jq -r 'select(.event == "end") | .step' ".state/$DEFAULT_EXP/steps.jsonl"
  assert_line train
  assert_line train-node1
  # Finished: neither node trains again.
  start_node 0
  start_node 1
  wait_node 0
  assert_equal "$NODE_STATUS" 0
  wait_node 1
  assert_equal "$NODE_STATUS" 0
  run cat "$TMP/rank-0.log" "$TMP/rank-1.log"
  assert_line "[train] training of $DEFAULT_EXP already finished with these inputs in $RUN_DIR"
  assert_line "[train-node1] training of $DEFAULT_EXP already finished with these inputs in $RUN_DIR"
  assert_equal "$(stub_calls swift)" 2
}

@test "a node whose inputs differ from rank 0's stops naming what differs, and rank 0 names that node" {
  two_nodes_env
  start_node 0 STUB_RENDEZVOUS_SECONDS=5
  # Two GPUs instead of four: another world size, another training.
  start_node 1 GPU=0,1
  wait_node 1
  assert [ "$NODE_STATUS" -ne 0 ]
  run cat "$TMP/rank-1.log"
  assert_line "[train-node1] what differs between rank 0's inputs (left) and this node's (right):"
  assert_line '  env: ["NNODES=2", "NPROC_PER_NODE=4"] -> ["NNODES=2", "NPROC_PER_NODE=2"]'
  assert_line "[train-node1] error: the training inputs of node rank 1 differ from rank 0's ($RUN_DIR/lab-inputs.json): the nodes would not train one model"
  assert_equal "$(jq -r .matches_rank_0 "$RUN_DIR/lab-node-1.json")" false
  wait_node 0
  assert [ "$NODE_STATUS" -ne 0 ]
  run cat "$TMP/rank-0.log"
  assert_line "[train] warning: node rank 1 ($(hostname)) stopped: its training inputs differ from this node's (its log says which)"
  assert_file_not_exist "$RUN_DIR/lab-train.json"
}

@test "an interrupted 2-node run: rank 0 picks the checkpoint, rank 1 resumes from the same one" {
  two_nodes_env
  mark_done train && rm "$RUN_DIR/lab-train.json" # started with these inputs, not finished
  make_checkpoint "$RUN_DIR/checkpoint-2" 2
  make_checkpoint "$RUN_DIR/checkpoint-3" 3 partial
  start_node 0
  start_node 1
  wait_node 0
  assert_equal "$NODE_STATUS" 0
  wait_node 1
  assert_equal "$NODE_STATUS" 0
  run cat "$TMP/rank-1.log"
  assert_line "[train-node1] resuming from $RUN_DIR/checkpoint-2, as rank 0"
  assert_equal "$(jq -r .resume_from_checkpoint "$RUN_DIR/lab-node-0.json")" "$RUN_DIR/checkpoint-2"
  run stub_call swift 2
  assert_line "env: NODE_RANK=1"
  assert_line "arg: --resume_from_checkpoint"
  assert_line "arg: $RUN_DIR/checkpoint-2"
}

@test "a node of rank 1 whose rank 0 never answers stops after MASTER_WAIT_TIMEOUT, saying what to start" {
  two_nodes_env
  MASTER_WAIT_TIMEOUT=2 NODE_RANK=1 run scripts/train.sh
  assert_failure
  assert_line "[train-node1] node rank 1: waiting up to 2s for rank 0's torchrun at 127.0.0.1:$PORT"
  assert_line "[train-node1] error: rank 0's torchrun does not answer at 127.0.0.1:$PORT after 2s"
  assert_line --partial "[train-node1] fix: start make train with NODE_RANK=0 on the node at MASTER_ADDR"
  assert_equal "$(stub_calls swift)" 0
  assert_file_not_exist "$RUN_DIR/lab-inputs.json"
}

@test "a node of rank > 0 only trains: make all or make export there is refused before any step" {
  two_nodes_env
  NODE_RANK=1 run make all
  assert_failure
  assert_line "[state] error: NODE_RANK=1: a node of rank > 0 only trains (make train), not 'make all'"
  assert_line "[state] fix: run make all on the node of rank 0 (NODE_RANK=0) once the training is done"
  run make export NODE_RANK=1
  assert_failure
  assert_line --partial "not 'make export'"
  assert_equal "$(stub_calls swift)" 0
}

# ---------------------------------------------------------------- settings

@test "node settings are checked: NNODES, NODE_RANK within NNODES, MASTER_ADDR required with several nodes, MASTER_PORT" {
  write_env GPU=cpu
  NNODES=0 DRY_RUN=1 run scripts/train.sh
  assert_failure
  assert_line "[train] error: NNODES='0' is not a number of nodes"
  NNODES=2 NODE_RANK=2 MASTER_ADDR=10.0.0.1 DRY_RUN=1 run scripts/train.sh
  assert_failure
  assert_line "[train] error: NODE_RANK='2' is not a node rank from 0 to 1 (NNODES=2)"
  NNODES=2 DRY_RUN=1 run scripts/train.sh
  assert_failure
  assert_line "[train] error: NNODES=2 but MASTER_ADDR is empty"
  assert_line "[train] fix: set MASTER_ADDR to the address of the node of rank 0, the same on every node"
  NNODES=2 MASTER_ADDR='a b' DRY_RUN=1 run scripts/train.sh
  assert_failure
  assert_line "[train] error: MASTER_ADDR='a b' is not a host name or address"
  MASTER_PORT=99999 DRY_RUN=1 run scripts/train.sh
  assert_failure
  assert_line "[train] error: MASTER_PORT='99999' is not a port number"
}

@test "DEEPSPEED: a preset of ms-swift, GPUs only" {
  write_env GPU=0,1
  DEEPSPEED=zero4 DRY_RUN=1 run scripts/train.sh
  assert_failure
  assert_line "[train] error: DEEPSPEED='zero4' is not a DeepSpeed preset of ms-swift"
  assert_line --partial "[train] fix: use one of: zero0 zero1 zero2 zero3 zero2_offload zero3_offload"
  DEEPSPEED=zero2_offload DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line "    --deepspeed zero2_offload"
  GPU=cpu DEEPSPEED=zero2 DRY_RUN=1 run scripts/train.sh
  assert_failure
  assert_line "[train] error: DEEPSPEED=zero2 needs GPUs, but GPU=cpu"
}

@test "the config is the truth: sft.yaml's deepspeed runs as written, a DEEPSPEED that contradicts it is an error naming both" {
  write_env GPU=0,1,2,3
  printf 'deepspeed: zero2\n' >>"$CFG/sft.yaml"
  DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line "#   deepspeed: zero2"
  refute_line --partial "    --deepspeed"
  DEEPSPEED=zero2 DRY_RUN=1 run scripts/train.sh
  assert_success
  refute_line --partial "    --deepspeed"
  DEEPSPEED=zero3 DRY_RUN=1 run scripts/train.sh
  assert_failure
  assert_line "[train] error: DEEPSPEED=zero3 (env file $ENV_FILE or the make command line) contradicts 'deepspeed: zero2' in configs/$DEFAULT_EXP/sft.yaml"
  assert_line "[train] fix: the config is the truth: remove DEEPSPEED, or change 'deepspeed' in configs/$DEFAULT_EXP/sft.yaml"
  # make stops before any step (the fingerprints build the same command).
  run make train DEEPSPEED=zero3
  assert_failure
  assert_line --partial "contradicts 'deepspeed: zero2'"
  assert_equal "$(stub_calls swift)" 0
}

@test "DeepSpeed on one GPU is launched through torchrun too (one process), from the env file or sft.yaml" {
  write_env GPU=6
  DEEPSPEED=zero2 DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line --partial "SWANLAB_LOG_DIR=$OUT/results/$DEFAULT_EXP/swanlog NPROC_PER_NODE=1 MASTER_PORT=29500 swift sft"
  printf 'deepspeed: zero2\n' >>"$CFG/sft.yaml"
  DRY_RUN=1 run scripts/train.sh
  assert_success
  assert_line --partial "SWANLAB_LOG_DIR=$OUT/results/$DEFAULT_EXP/swanlog NPROC_PER_NODE=1 MASTER_PORT=29500 swift sft"
}

@test "DeepSpeed with stubs: swift sft gets --deepspeed from the env file" {
  write_env GPU=0,1,2,3 DEEPSPEED=zero3
  run scripts/train.sh
  assert_success
  run stub_call swift
  assert_line "arg: --deepspeed"
  assert_line "arg: zero3"
}

# ---------------------------------------------------------------- fingerprints

@test "fingerprint: which node and where they meet are locations; the node count and DeepSpeed are inputs" {
  write_env GPU=0,1,2,3 SKIP_REMOTE_CHECKS=swanlab,hub
  local one two other_rank more_nodes zero3
  one="$(train_digest)"
  two="$(NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 train_digest)"
  other_rank="$(NNODES=2 NODE_RANK=1 MASTER_ADDR=node-a.cluster MASTER_PORT=29999 train_digest)"
  more_nodes="$(NNODES=3 MASTER_ADDR=10.0.0.1 train_digest)"
  zero3="$(DEEPSPEED=zero3 train_digest)"
  [[ "$one" =~ ^[0-9a-f]{64}$ ]]
  assert_equal "$other_rank" "$two"
  [[ "$two" != "$one" && "$more_nodes" != "$two" && "$zero3" != "$one" ]]
  # A DeepSpeed JSON of the experiment's own counts by content.
  printf 'deepspeed: %s/ds.json\n' "$TMP" >>"$CFG/sft.yaml"
  echo '{"zero_optimization": {"stage": 2}}' >"$TMP/ds.json"
  local before
  before="$(train_digest)"
  echo '{"zero_optimization": {"stage": 3}}' >"$TMP/ds.json"
  [[ "$(train_digest)" != "$before" ]]
}

# ---------------------------------------------------------------- preflight

preflight_env() {
  venv_up_to_date .venv "${1:-cpu}"
  shift
  write_env "SERVE_PORT=$(free_port)" SKIP_REMOTE_CHECKS=swanlab,hub "MASTER_PORT=$PORT" "$@"
}

@test "preflight on rank 0 of two CPU nodes: MASTER_PORT held by another program fails" {
  preflight_env cpu GPU=cpu NNODES=2 MASTER_ADDR=127.0.0.1
  start_listener "$PORT"
  EXP=smoke run scripts/preflight.sh
  assert_failure
  assert_line --regexp "^\[preflight\] error: port $PORT \(MASTER_PORT\) is in use by "
}

@test "preflight on rank 1 waits for rank 0's port, then passes; without it, it fails naming the address" {
  preflight_env cpu GPU=cpu NNODES=2 MASTER_ADDR=127.0.0.1
  MASTER_WAIT_TIMEOUT=2 NODE_RANK=1 EXP=smoke run scripts/preflight.sh
  assert_failure
  assert_line "[preflight] error: node rank 1: nothing answers at 127.0.0.1:$PORT (rank 0's torchrun) after 2s"
  (sleep 3 && exec python3 -m http.server "$PORT" --bind 127.0.0.1 >/dev/null 2>&1) &
  # shellcheck disable=SC2034 # common_teardown stops it
  LISTENER_PID=$!
  NODE_RANK=1 EXP=smoke run scripts/preflight.sh
  assert_success
  assert_line "[preflight] node rank 1: waiting up to 900s for rank 0's torchrun at 127.0.0.1:$PORT"
  assert_line "[preflight] rank 0's torchrun answers at 127.0.0.1:$PORT"
}

@test "preflight: DeepSpeed asked for, the venv must import it" {
  preflight_env gpu GPU=0,1 DEEPSPEED=zero2
  # The venv's python: no deepspeed module, then one.
  cp "$SRC_ROOT/tests/stubs/stub" .venv/bin/python
  venv_up_to_date .venv-lmdeploy lmdeploy
  EXP=smoke run scripts/preflight.sh
  assert_failure
  assert_line "[preflight] error: DeepSpeed (zero2) is asked for, but 'import deepspeed' fails in .venv: ModuleNotFoundError: No module named 'deepspeed'"
  STUB_DEEPSPEED=1 EXP=smoke run scripts/preflight.sh
  assert_success
  refute_line --partial "import deepspeed"
}

# ---------------------------------------------------------------- serving on several GPUs

@test "several serving GPUs: lmdeploy tensor parallel over them, evaluation concurrency eval_batch_size x GPUs" {
  write_env GPU=0,1,2,3
  DRY_RUN=1 run scripts/deploy.sh
  assert_success
  assert_line --partial "    --lmdeploy_tp 4 "
  DRY_RUN=1 run scripts/eval.sh ceval
  assert_success
  assert_line "    --eval-batch-size 32 \\"
  GPU=6 DRY_RUN=1 run scripts/eval.sh ceval
  assert_success
  refute_output --partial --eval-batch-size
  sed -i 's/^  eval_batch_size: 8 .*/  eval_batch_size: 4/' "$CFG/eval.yaml"
  GPU=6 DRY_RUN=1 run scripts/eval.sh ceval
  assert_line "    --eval-batch-size 4 \\"
  sed -i 's/^  eval_batch_size: 4$/  eval_batch_size: many/' "$CFG/eval.yaml"
  DRY_RUN=1 run scripts/eval.sh ceval
  assert_failure
  assert_line --partial "eval_batch_size 'many' is not a positive number"
}
