#!/usr/bin/env bash
# make export: merge the LoRA of a checkpoint into the base model (safetensors,
# 2GB shards) at $EXPORT_ROOT/$EXP. CHECKPOINT=last (default) | best | <path>.
set -euo pipefail
export STEP_NAME=export
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/checkpoints.sh
source "$REPO_ROOT/scripts/lib/checkpoints.sh"
# shellcheck source=lib/fingerprint.sh
source "$REPO_ROOT/scripts/lib/fingerprint.sh"

choose_checkpoint() {
  local choice="${CHECKPOINT:-last}" found=""
  if is_dry_run; then
    case "$choice" in
      last) printf '%s' "$RUN_DIR/last-checkpoint" ;;
      best) printf '%s' "$RUN_DIR/<checkpoint with the lowest eval_loss>" ;;
      *) printf '%s' "$choice" ;;
    esac
    return 0
  fi
  case "$choice" in
    last) found="$(last_complete_checkpoint "$RUN_DIR")" ;;
    best) found="$(best_checkpoint "$RUN_DIR")" ;;
    *)
      is_complete_checkpoint "$choice" || die "CHECKPOINT=$choice is not a complete checkpoint directory" \
        "use CHECKPOINT=last, CHECKPOINT=best or a path like $RUN_DIR/checkpoint-100"
      found="$choice"
      ;;
  esac
  [[ -n "$found" ]] || die "no complete checkpoint in $RUN_DIR (CHECKPOINT=$choice)" "run 'make train EXP=$EXP' first"
  printf '%s' "$found"
}

# Strips a quantization_config left from the (MXFP4) base: the merged weights are bf16.
# Python rather than jq: jq 1.6 rewrites 7.0 as 7, and transformers then rejects
# the config (swiglu_limit must be a float). The file is still in the .partial dir.
strip_quantization_config() {
  run_cmd python -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c.pop("quantization_config", None); json.dump(c, open(p, "w"), indent=2)' \
    "$1/config.json"
}

# The merged model records what it was made from: its inputs (the training's
# digest among them), the checkpoint merged and the command.
write_export_record() {
  local partial="$1" checkpoint="$2" command="$3" adapter
  adapter="$(compgen -G "$checkpoint/adapter_model.*" | head -n 1 || true)"
  record_inputs export "$partial"
  jq -n --arg digest "${STEP_DIGEST[export]}" --arg checkpoint "$(repo_relative "$checkpoint")" \
    --arg adapter_sha256 "$(if [[ -n "$adapter" ]]; then sha256sum "$adapter" | cut -d' ' -f1; fi)" \
    --arg command "$command" \
    '{inputs_digest: $digest, checkpoint: $checkpoint, adapter_sha256: $adapter_sha256, command: $command}' \
    >"$partial/lab-export.json"
}

main() {
  load_env
  begin_step
  local checkpoint partial="$EXPORT_DIR.partial" cmd
  checkpoint="$(choose_checkpoint)"
  build_export_cmd cmd "$checkpoint" "$partial"
  if is_dry_run; then
    print_config_as_comments "${EXP_DIR#"$REPO_ROOT"/}/export.yaml"
    run_cmd "${cmd[@]}"
    strip_quantization_config "$partial"
    printf 'rm -rf %s && mv %s %s\n' "$(display_path "$EXPORT_DIR")" "$(display_path "$partial")" "$(display_path "$EXPORT_DIR")"
    return 0
  fi
  require_command swift
  compute_inputs export
  step_done "train" ||
    die "the training in $(repo_relative "$RUN_DIR") is not finished with the current inputs" "run 'make train EXP=$EXP' first"
  if step_done "export"; then
    log "$(repo_relative "$EXPORT_DIR") is already the merge of this training and export config"
    return 0
  fi
  log "merging $checkpoint"
  # Write beside the target, then move: an interrupted export never looks finished.
  mkdir -p "$EXPORT_ROOT"
  rm -rf "$partial"
  run_cmd "${cmd[@]}"
  [[ -f "$partial/config.json" ]] || die "swift export wrote no config.json in $partial" "read the log above"
  local command
  command="$(print_cmd "${cmd[@]}")"
  strip_quantization_config "$partial"
  write_export_record "$partial" "$checkpoint" "$command"
  if [[ -e "$EXPORT_DIR" ]]; then log "replacing $(repo_relative "$EXPORT_DIR") (made from other inputs; the checkpoints it came from are kept)"; fi
  rm -rf "$EXPORT_DIR"
  mv "$partial" "$EXPORT_DIR"
  log "done: $EXPORT_DIR"
}

main "$@"
