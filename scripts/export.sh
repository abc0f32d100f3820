#!/usr/bin/env bash
# make export: merge the LoRA of a checkpoint into the base model (safetensors,
# 2GB shards) at $EXPORT_ROOT/$EXP. CHECKPOINT=last (default) | best | <path>.
set -euo pipefail
export STEP_NAME=export
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/checkpoints.sh
source "$REPO_ROOT/scripts/lib/checkpoints.sh"

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
  reset_cmd
  CMD=(python -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c.pop("quantization_config", None); json.dump(c, open(p, "w"), indent=2)'
    "$1/config.json")
  run_cmd
}

main() {
  load_env
  begin_step
  local checkpoint partial="$EXPORT_DIR.partial"
  checkpoint="$(choose_checkpoint)"
  reset_cmd
  add_common_tool_env
  CMD=(swift export "$EXP_DIR/export.yaml" --adapters "$checkpoint" --output_dir "$partial" --exist_ok true)
  if is_dry_run; then
    print_config_as_comments "${EXP_DIR#"$REPO_ROOT"/}/export.yaml"
    run_cmd
    strip_quantization_config "$partial"
    printf 'mv %s %s\n' "$(display_path "$partial")" "$(display_path "$EXPORT_DIR")"
    return 0
  fi
  require_command swift
  log "merging $checkpoint"
  # Write beside the target, then move: an interrupted export never looks finished.
  mkdir -p "$EXPORT_ROOT"
  rm -rf "$partial"
  run_cmd
  [[ -f "$partial/config.json" ]] || die "swift export wrote no config.json in $partial" "read the log above"
  strip_quantization_config "$partial"
  jq -n --arg checkpoint "$checkpoint" --arg command "$(print_cmd)" '{checkpoint: $checkpoint, command: $command}' \
    >"$partial/lab-export.json"
  rm -rf "$EXPORT_DIR"
  mv "$partial" "$EXPORT_DIR"
  log "done: $EXPORT_DIR"
}

main "$@"
