#!/usr/bin/env bash
# make train: LoRA SFT with ms-swift from configs/$EXP/sft.yaml.
# A run that was interrupted resumes from its last complete checkpoint.
set -euo pipefail
export STEP_NAME=train
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/checkpoints.sh
source "$REPO_ROOT/scripts/lib/checkpoints.sh"

build_train_cmd() {
  reset_cmd
  add_common_tool_env
  CMD_ENV+=("SWANLAB_LOG_DIR=$RUN_DIR/swanlog")
  # A resumed training continues the same SwanLab run (one id per run dir).
  if [[ -f "$SWANLAB_RUN_ID_FILE" ]]; then
    CMD_ENV+=("SWANLAB_RUN_ID=$(cat "$SWANLAB_RUN_ID_FILE")" SWANLAB_RESUME=allow)
  fi
  if ((NPROC > 1)); then CMD_ENV+=("NPROC_PER_NODE=$NPROC" "MASTER_PORT=$MASTER_PORT"); fi
  if [[ "$SWANLAB_MODE" == cloud ]]; then CMD_SECRET_ENV+=(SWANLAB_API_KEY=SWANLAB_TOKEN); fi
  CMD=(swift sft "$EXP_DIR/sft.yaml" --output_dir "$RUN_DIR" --add_version false
    --swanlab_mode "$SWANLAB_MODE" --swanlab_project "$SWANLAB_PROJECT" --swanlab_exp_name "$EXP")
  if [[ -n "${MODEL:-}" ]]; then CMD+=(--model "$MODEL"); fi
  if [[ -n "${DATASET:-}" ]]; then CMD+=(--dataset "$DATASET"); fi
  if [[ "$GPU" == cpu ]]; then CMD+=(--use_cpu true); fi
}

# The run dir records the command that created it; resuming with another
# configuration would mix two experiments in one directory.
check_resumable() {
  local recorded="$RUN_DIR/lab-command.txt"
  [[ -f "$recorded" ]] || return 0
  if ! diff -q "$recorded" <(print_cmd) >/dev/null; then
    die "$RUN_DIR holds checkpoints of a different configuration (see $recorded)" \
      "move that directory away, or train under a new experiment name (EXP=...)"
  fi
}

# The SwanLab run id of this run dir, made once, random: a fresh run dir is a new run.
ensure_swanlab_run_id() {
  [[ -f "$SWANLAB_RUN_ID_FILE" ]] && return 0
  mkdir -p "$RUN_DIR"
  # Letters and digits only: SwanLab rewrites other characters in its folder names.
  printf '%s\n' "$(head -c 512 /dev/urandom | tr -dc 'a-z0-9' | head -c 21)" | write_atomically "$SWANLAB_RUN_ID_FILE"
}

main() {
  load_env
  begin_step
  SWANLAB_RUN_ID_FILE="$RUN_DIR/swanlab-run-id"
  is_dry_run || ensure_swanlab_run_id
  build_train_cmd
  if is_dry_run; then
    print_config_as_comments "${EXP_DIR#"$REPO_ROOT"/}/sft.yaml"
    if [[ ! -f "$SWANLAB_RUN_ID_FILE" ]]; then
      printf '# a real run also sets SWANLAB_RUN_ID (a new id, kept in %s) and SWANLAB_RESUME=allow\n' \
        "$(display_path "$SWANLAB_RUN_ID_FILE")"
    fi
    run_cmd
    return 0
  fi
  require_command swift
  require_command jq
  if training_finished "$RUN_DIR"; then
    log "training of $EXP already finished in $RUN_DIR"
    return 0
  fi
  local checkpoint
  checkpoint="$(last_complete_checkpoint "$RUN_DIR")"
  if [[ -n "$checkpoint" ]]; then
    check_resumable
    log "resuming from $checkpoint"
  fi
  mkdir -p "$RUN_DIR"
  print_cmd | write_atomically "$RUN_DIR/lab-command.txt"
  if [[ -n "$checkpoint" ]]; then CMD+=(--resume_from_checkpoint "$checkpoint"); fi
  run_cmd
  training_finished "$RUN_DIR" || die "swift sft exited without its final summary in $RUN_DIR/logging.jsonl" \
    "read the log above; 'make train' resumes from the last complete checkpoint"
  log "done: $(last_complete_checkpoint "$RUN_DIR")"
}

main "$@"
