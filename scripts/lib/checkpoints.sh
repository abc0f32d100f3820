# shellcheck shell=bash
# Finding checkpoints that ms-swift finished writing.
# shellcheck source=/dev/null
source "${BASH_SOURCE[0]%/*}/common.sh"
loaded_before checkpoints && return 0

# A checkpoint is complete once the trainer wrote its state (written after the
# weights, optimizer and scheduler) and that state parses.
is_complete_checkpoint() {
  local dir="$1"
  [[ -f "$dir/trainer_state.json" && -f "$dir/optimizer.pt" && -f "$dir/scheduler.pt" ]] || return 1
  compgen -G "$dir/adapter_model.*" >/dev/null || compgen -G "$dir/model*.safetensors" >/dev/null || return 1
  jq -e '.global_step' "$dir/trainer_state.json" >/dev/null 2>&1
}

# Prints the complete checkpoints of a run dir, newest (highest step) first.
# Sorts the names, not the paths: a run dir like .../gpt-oss-20b-sft-v1 has dashes too.
complete_checkpoints() {
  local name
  [[ -d "$1" ]] || return 0
  while IFS= read -r name; do
    if is_complete_checkpoint "$1/$name"; then printf '%s\n' "$1/$name"; fi
  done < <(find "$1" -mindepth 1 -maxdepth 1 -type d -name 'checkpoint-*' -printf '%f\n' | sort -t- -k2,2nr)
}

# No `| head -n 1`: under pipefail the writer's SIGPIPE would fail the caller.
last_complete_checkpoint() {
  local all
  all="$(complete_checkpoints "$1")"
  if [[ -n "$all" ]]; then printf '%s\n' "${all%%$'\n'*}"; fi
}

# The complete checkpoint with the lowest eval_loss, from the newest trainer state.
best_checkpoint() {
  local run_dir="$1" newest step
  newest="$(last_complete_checkpoint "$run_dir")"
  [[ -n "$newest" ]] || return 0
  while IFS= read -r step; do
    if is_complete_checkpoint "$run_dir/checkpoint-$step"; then printf '%s\n' "$run_dir/checkpoint-$step"; return 0; fi
  done < <(jq -r '[.log_history[] | select(.eval_loss != null)] | sort_by(.eval_loss) | .[].step' "$newest/trainer_state.json")
}

# True when the run's logging.jsonl holds the trainer's final summary (train_runtime),
# as the report's parser reads it (scripts/py/runparse.py; common.sh's config_python).
training_finished() {
  [[ -f "$1/logging.jsonl" ]] || return 1
  "$(config_python)" "$REPO_ROOT/scripts/py/runparse.py" finished "$1" 2>/dev/null
}
