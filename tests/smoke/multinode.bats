#!/usr/bin/env bats
# Two nodes on one machine, for real: two `make train` of the smoke experiment with
# NNODES=2, NODE_RANK 0 and 1, MASTER_ADDR=127.0.0.1 (CPU, gloo), in one checkout as
# the nodes of a cluster share one. They finish with one run: one set of checkpoints
# whose global step counts the batches of both ranks.
# Needs .venv and the tiny model (build/tiny-gpt-oss), so tests/run.sh runs it after make smoke.

load ../test_helper

setup() {
  load_assertions
  clean_environment
  use_project_python
  SRC="$SRC_ROOT"
  # A copy of the checkout, so that its stamps and run lock are not the real smoke run's.
  REPO="$BATS_TEST_TMPDIR/repo"
  mkdir -p "$REPO"
  cp -R "$SRC/Makefile" "$SRC/scripts" "$SRC/configs" "$SRC/env" "$REPO/"
  ln -s "$SRC/.venv" "$REPO/.venv"
  cp -R "$SRC/build" "$REPO/" && touch "$REPO/build/tiny-gpt-oss/config.json" # newer than its sources: not rebuilt
  cd "$REPO" || return 1
  OUTPUT_ROOT="$BATS_TEST_TMPDIR/output"
  RUN_DIR="$OUTPUT_ROOT/smoke"
}

teardown() {
  local pid
  for pid in "${NODE_PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}

NODE_PIDS=()

# sft.yaml's value of KEY.
sft() { .venv/bin/python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))[sys.argv[2]])' configs/smoke/sft.yaml "$1"; }

# optimizer_steps WORLD_SIZE TRAIN_ROWS: the steps of the run, as the trainer counts them:
# each rank gets ceil(rows / world) rows (the sampler pads), in batches of
# per_device_train_batch_size; an optimizer step per gradient_accumulation_steps batches.
optimizer_steps() {
  local per_rank batches
  per_rank=$((($2 + $1 - 1) / $1))
  batches=$(((per_rank + BATCH - 1) / BATCH))
  printf '%d' $((EPOCHS * (batches / ACCUMULATION)))
}

@test "two make train processes with NNODES=2, ranks 0 and 1 on 127.0.0.1: one run, a global step that counts both ranks" {
  local master_port serve_port rank started
  master_port="$(free_port)"
  serve_port="$(free_port)"
  started=$SECONDS
  for rank in 0 1; do
    setsid make train EXP=smoke ENV_FILE=env/smoke.env NNODES=2 NODE_RANK="$rank" MASTER_ADDR=127.0.0.1 \
      MASTER_PORT="$master_port" SERVE_PORT="$serve_port" OUTPUT_ROOT="$OUTPUT_ROOT" >"$BATS_TEST_TMPDIR/rank-$rank.log" 2>&1 &
    NODE_PIDS[rank]=$!
  done
  local status
  for rank in 0 1; do
    status=0
    wait "${NODE_PIDS[$rank]}" || status=$?
    unset 'NODE_PIDS[rank]'
    if ((status != 0)); then tail -n 30 "$BATS_TEST_TMPDIR/rank-$rank.log" >&3; fi
    assert_equal "rank $rank exit $status" "rank $rank exit 0"
  done
  echo "# two-node training: $((SECONDS - started)) s" >&3

  # Both processes were ranks of one world of two, rank 1 behind rank 0's rendezvous.
  run grep -h 'world_size: 2' "$BATS_TEST_TMPDIR/rank-0.log" "$BATS_TEST_TMPDIR/rank-1.log"
  assert_line --partial "rank: 0, local_rank: 0, world_size: 2"
  assert_line --partial "rank: 1, local_rank: 0, world_size: 2"
  run cat "$BATS_TEST_TMPDIR/rank-1.log"
  assert_line "[preflight] rank 0's torchrun answers at 127.0.0.1:$master_port"
  assert_line "[train-node1] node rank 1 done; rank 0 records the finished run"

  # The expected steps, from the data and the config: with two processes each optimizer
  # step takes twice the rows, so the run has about half the steps of one process.
  BATCH="$(sft per_device_train_batch_size)"
  ACCUMULATION="$(sft gradient_accumulation_steps)"
  EPOCHS="$(sft num_train_epochs)"
  local rows val train_rows two one
  rows="$(grep -c . configs/smoke/data/mh-sharegpt-sample.jsonl)"
  val="$(grep -c . "$RUN_DIR/val_dataset.jsonl")"
  train_rows=$((rows - val))
  two="$(optimizer_steps 2 "$train_rows")"
  one="$(optimizer_steps 1 "$train_rows")"
  echo "# $train_rows training rows: $two steps on 2 ranks, $one on 1" >&3
  ((two < one))

  # One set of checkpoints, written by rank 0, holding both ranks' RNG states; the last is step $two.
  local last="$RUN_DIR/checkpoint-$two"
  run jq -e --argjson steps "$two" '.global_step == $steps and .max_steps == $steps' "$last/trainer_state.json"
  assert_success
  assert [ -f "$last/rng_state_0.pth" ]
  assert [ -f "$last/rng_state_1.pth" ]
  assert [ -f "$last/adapter_model.safetensors" ]
  run jq -r 'select(."global_step/max_steps") | ."global_step/max_steps"' "$RUN_DIR/logging.jsonl"
  assert_line "$two/$two"
  refute_line --regexp "/$one\$"
  run find "$OUTPUT_ROOT" -mindepth 1 -maxdepth 1
  assert_output "$RUN_DIR"
  # One SwanLab run (rank 0 logs), one record of the run; both nodes' digests are the run's.
  run find "$REPO/results/smoke/swanlog" -mindepth 1 -maxdepth 1 -name 'run-*'
  assert_equal "${#lines[@]}" 1
  local digest
  digest="$(jq -r .digest "$RUN_DIR/lab-inputs.json")"
  assert_equal "$(jq -r .inputs_digest "$RUN_DIR/lab-train.json")" "$digest"
  assert_equal "$(jq -r .last_checkpoint "$RUN_DIR/lab-train.json")" "$last"
  assert_equal "$(jq -r .inputs_digest "$RUN_DIR/lab-node-0.json")" "$digest"
  assert_equal "$(jq -r '"\(.inputs_digest) \(.matches_rank_0)"' "$RUN_DIR/lab-node-1.json")" "$digest true"
}
