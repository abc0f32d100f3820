#!/usr/bin/env bash
# make train: LoRA SFT with ms-swift from configs/$EXP/sft.yaml.
# The run dir records what it is made from (lab-inputs.json) and, once finished,
# lab-train.json. Same inputs: a finished run is kept, an interrupted one resumes
# from its last complete checkpoint. Other inputs: the run is not touched, and the
# step stops naming what changed, unless REPLACE_CHANGED=1 moves it aside (kept).
# On several nodes (NNODES > 1) every node runs this with its NODE_RANK; rank 0 alone
# decides about the run dir and records it (lib/nodes.sh).
set -euo pipefail
export STEP_NAME=train
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/checkpoints.sh
source "$REPO_ROOT/scripts/lib/checkpoints.sh"
# shellcheck source=lib/nodes.sh
source "$REPO_ROOT/scripts/lib/nodes.sh"
# shellcheck source=lib/fingerprint.sh
source "$REPO_ROOT/scripts/lib/fingerprint.sh"

# The SwanLab run id of this run dir, made once, random: a fresh run dir is a new run.
ensure_swanlab_run_id() {
  [[ -f "$SWANLAB_RUN_ID_FILE" ]] && return 0
  mkdir -p "$RUN_DIR"
  # Letters and digits only: SwanLab rewrites other characters in its folder names.
  printf '%s\n' "$(head -c 512 /dev/urandom | tr -dc 'a-z0-9' | head -c 21)" | write_atomically "$SWANLAB_RUN_ID_FILE"
}

# A run made from other inputs: stop (hours of GPU work are not thrown away
# silently), or with REPLACE_CHANGED=1 keep it aside and start a new one.
handle_changed_run() {
  local what="made from other inputs" run_rel moved
  run_rel="$(repo_relative "$RUN_DIR")"
  [[ "${STEP_STATUS[train]}" == unknown ]] && what="without a record of its inputs (lab-inputs.json)"
  if [[ "${REPLACE_CHANGED:-0}" == 1 ]]; then
    move_aside "$RUN_DIR" moved
    log "$run_rel was $what; moved it to $(repo_relative "$moved") (REPLACE_CHANGED=1)"
    return 0
  fi
  if [[ -f "$RUN_DIR/lab-inputs.json" ]]; then
    log "what changed since $run_rel was trained:"
    describe_input_changes "$RUN_DIR/lab-inputs.json" "$(inputs_file train)" >&2
  fi
  die "$run_rel holds a training run $what; not touching it (a changed configuration never resumes old checkpoints)" \
    "train under a new name (make train EXP=<new name>, with configs/<new name>/), or move it away (mv $run_rel $run_rel.old), or rerun with REPLACE_CHANGED=1 to move it aside automatically"
}

# Records the finished run: the digest of its inputs and its last checkpoint.
mark_finished() {
  jq -n --arg digest "${STEP_DIGEST[train]}" --arg checkpoint "$(repo_relative "$(last_complete_checkpoint "$RUN_DIR")")" \
    --arg finished "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    '{inputs_digest: $digest, last_checkpoint: $checkpoint, finished_at: $finished}' |
    write_atomically "$RUN_DIR/lab-train.json"
}

# A node of rank > 0 trains with rank 0: it waits for rank 0's torchrun (which opens
# its port only after rank 0 recorded the inputs and chose the checkpoint), checks that
# its own inputs are the same, and resumes from the checkpoint rank 0 resumes from.
train_on_other_node() {
  if step_done train; then
    log "training of $EXP already finished with these inputs in $(repo_relative "$RUN_DIR")"
    return 0
  fi
  if [[ "${STEP_STATUS[train]}" == partial ]] && training_finished "$RUN_DIR"; then
    log "training of $EXP had finished; rank 0 records it"
    return 0
  fi
  wait_for_master || die "rank 0's torchrun does not answer at $MASTER_ADDR:$MASTER_PORT after ${MASTER_WAIT_TIMEOUT:-900}s" \
    "start make train with NODE_RANK=0 on the node at MASTER_ADDR (same EXP, NNODES and MASTER_PORT); MASTER_WAIT_TIMEOUT=<seconds> waits longer"
  local -A first=()
  read_first_node_record first
  if [[ "${first[digest]}" != "${STEP_DIGEST[train]}" ]]; then
    write_node_record "$NODE_RANK" "" false
    log "what differs between rank 0's inputs (left) and this node's (right):"
    describe_input_changes "$RUN_DIR/lab-inputs.json" "$(inputs_file train)" >&2
    die "the training inputs of node rank $NODE_RANK differ from rank 0's ($(repo_relative "$RUN_DIR")/lab-inputs.json): the nodes would not train one model" \
      "give every node the same checkout, configs, dataset, model, lock and GPU count, then run make train on each again; stop rank 0's training first (under Slurm, srun --kill-on-bad-exit does)"
  fi
  write_node_record "$NODE_RANK" "" true
  local cmd
  build_train_cmd cmd "$SWANLAB_RUN_ID_FILE"
  if [[ -n "${first[resume]}" ]]; then
    log "resuming from ${first[resume]}, as rank 0"
    cmd+=(--resume_from_checkpoint "${first[resume]}")
  fi
  run_cmd "${cmd[@]}"
  log "node rank $NODE_RANK done; rank 0 records the finished run"
}

# ms-swift 4.6 appends the held-out split to <output_dir>/val_dataset.jsonl at every start
# (swift/pipelines/train/sft.py, _save_val_dataset): a run resumed or restarted in the same
# folder would hold every held-out row twice, and the evaluations on it (dialog, dialog-judge,
# perf, make human-pack) would count each conversation twice. The earlier split is set aside
# before swift starts and compared with the one it writes.
HELDOUT_EARLIER=val_dataset.earlier.jsonl
set_aside_heldout_split() {
  [[ -f "$RUN_DIR/val_dataset.jsonl" ]] || return 0
  # An earlier copy set aside by a start that was interrupted again stays the one to compare.
  if [[ -f "$RUN_DIR/$HELDOUT_EARLIER" ]]; then rm -f "$RUN_DIR/val_dataset.jsonl"; return 0; fi
  mv "$RUN_DIR/val_dataset.jsonl" "$RUN_DIR/$HELDOUT_EARLIER"
}

check_heldout_split() {
  [[ -f "$RUN_DIR/$HELDOUT_EARLIER" ]] || return 0
  cmp -s "$RUN_DIR/$HELDOUT_EARLIER" "$RUN_DIR/val_dataset.jsonl" ||
    die "the held-out split swift wrote when resuming ($(repo_relative "$RUN_DIR")/val_dataset.jsonl) is not the one of the run's first start ($HELDOUT_EARLIER beside it): the evaluations would not use the rows training held out" \
      "compare the two files; to train from scratch instead, move $(repo_relative "$RUN_DIR") aside and run make train EXP=$EXP again"
  rm -f "$RUN_DIR/$HELDOUT_EARLIER"
}

main() {
  load_env
  if ((NODE_RANK > 0)); then export STEP_NAME="train-node$NODE_RANK"; fi
  begin_step
  SWANLAB_RUN_ID_FILE="$RUN_DIR/swanlab-run-id"
  if is_dry_run; then
    local cmd
    build_train_cmd cmd "$SWANLAB_RUN_ID_FILE"
    print_config_as_comments "${EXP_DIR#"$REPO_ROOT"/}/sft.yaml"
    if ((NODE_RANK > 0)); then
      printf "# node rank %s of %s: waits for rank 0's torchrun at %s:%s, checks that its inputs are rank 0's, then runs\n" \
        "$NODE_RANK" "$NNODES" "$MASTER_ADDR" "$MASTER_PORT"
    elif [[ ! -f "$SWANLAB_RUN_ID_FILE" ]]; then
      printf '# a real run also sets SWANLAB_RUN_ID (a new id, kept in %s) and SWANLAB_RESUME=allow\n' \
        "$(display_path "$SWANLAB_RUN_ID_FILE")"
    fi
    run_cmd "${cmd[@]}"
    return 0
  fi
  require_command swift
  require_command jq
  compute_inputs train
  if ((NODE_RANK > 0)); then
    train_on_other_node
    return 0
  fi
  case "${STEP_STATUS[train]}" in
    done)
      log "training of $EXP already finished with these inputs in $(repo_relative "$RUN_DIR")"
      return 0
      ;;
    changed | unknown) handle_changed_run ;;
  esac
  local checkpoint=""
  if [[ "${STEP_STATUS[train]}" == partial ]]; then
    if training_finished "$RUN_DIR"; then
      check_heldout_split
      mark_finished
      log "training of $EXP had finished; recorded it"
      return 0
    fi
    checkpoint="$(last_complete_checkpoint "$RUN_DIR")"
  fi
  ensure_swanlab_run_id
  local cmd
  build_train_cmd cmd "$SWANLAB_RUN_ID_FILE"
  record_inputs train "$RUN_DIR"
  print_cmd "${cmd[@]}" | write_atomically "$RUN_DIR/lab-command.txt"
  if is_multi_node; then
    # An earlier run's node records go; the other nodes write theirs once this node's torchrun answers.
    rm -f "$RUN_DIR"/lab-node-*.json
    write_node_record 0 "$checkpoint"
  fi
  if [[ -n "$checkpoint" ]]; then
    log "resuming from $checkpoint (same inputs)"
    cmd+=(--resume_from_checkpoint "$checkpoint")
  fi
  set_aside_heldout_split
  local status=0
  run_cmd "${cmd[@]}" || status=$?
  if ((status != 0)); then
    if is_multi_node; then report_mismatched_nodes; fi
    exit "$status"
  fi
  training_finished "$RUN_DIR" || die "swift sft exited without its final summary in $RUN_DIR/logging.jsonl" \
    "read the log above; 'make train' resumes from the last complete checkpoint"
  check_heldout_split
  mark_finished
  log "done: $(last_complete_checkpoint "$RUN_DIR")"
}

main "$@"
