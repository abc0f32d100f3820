#!/usr/bin/env bash
# make status: progress of the current experiment's run, read by scripts/py/runparse.py
# from $RUN_DIR (step / total, latest train and eval loss, elapsed time, time left),
# the newest checkpoint, each step's state, and whether the model server is up.
# Read-only: it records nothing and starts nothing. Safe to run in a loop:
#   watch -n 30 make status EXP=...
set -euo pipefail
export STEP_NAME=status
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/checkpoints.sh
source "$REPO_ROOT/scripts/lib/checkpoints.sh"
# shellcheck source=lib/fingerprint.sh
source "$REPO_ROOT/scripts/lib/fingerprint.sh"

# The run's progress, from the report's own parser (scripts/py/runparse.py): one
# reading of logging.jsonl and trainer_state.json for make status and make report.
run_progress() { "$(config_python)" "$REPO_ROOT/scripts/py/runparse.py" progress "$1"; }

field() { jq -r --arg k "$2" '.[$k] // empty | tostring' <<<"$1"; }

# A number with 4 decimals, or the fallback text.
fmt4() { if [[ -n "$1" ]]; then printf '%.4f' "$1"; else printf '%s' "$2"; fi; }

print_train_status() {
  local log="$RUN_DIR/logging.jsonl" progress checkpoint finished=0
  printf 'experiment:  %s\n' "$EXP"
  printf 'run dir:     %s\n' "${RUN_DIR#"$REPO_ROOT"/}"
  if [[ ! -d "$RUN_DIR" ]]; then
    printf 'training:    no run yet (start it with: make train EXP=%s)\n' "$EXP"
    return 0
  fi
  if [[ ! -s "$log" ]]; then
    printf 'training:    started, nothing logged yet (%s is empty or missing)\n' "${log#"$REPO_ROOT"/}"
    return 0
  fi
  progress="$(run_progress "$RUN_DIR")" || die "cannot read the run in ${RUN_DIR#"$REPO_ROOT"/} (see above)" "check the file with: tail -n 3 $log"
  local step total
  step="$(field "$progress" step)"
  total="$(field "$progress" max_steps)"
  if [[ "$(field "$progress" finished)" == true ]]; then finished=1; fi
  if ((finished)); then
    printf 'training:    finished: step %s/%s in %ss, train_loss %s\n' "${step:-?}" "${total:-?}" \
      "$(field "$progress" train_runtime)" "$(fmt4 "$(field "$progress" train_loss)" '?')"
  elif [[ -n "$step" && -n "$total" && "$total" != 0 ]]; then
    printf 'training:    step %s/%s (%d%%), epoch %s\n' "$step" "$total" "$((100 * step / total))" "$(field "$progress" epoch)"
  else
    printf 'training:    started, no step logged yet\n'
  fi
  printf 'train loss:  %s%s\n' "$(fmt4 "$(field "$progress" loss)" 'not logged yet')" \
    "$([[ -n "$(field "$progress" loss_step)" ]] && printf ' (step %s)' "$(field "$progress" loss_step)")"
  printf 'eval loss:   %s%s\n' "$(fmt4 "$(field "$progress" eval_loss)" 'not evaluated yet')" \
    "$([[ -n "$(field "$progress" eval_step)" ]] && printf ' (step %s)' "$(field "$progress" eval_step)")"
  printf 'elapsed:     %s\n' "$(field "$progress" elapsed)"
  if ((!finished)); then
    printf 'time left:   %s (ms-swift estimate at %s s/step)\n' "$(field "$progress" remaining)" "$(field "$progress" speed)"
  fi
  if [[ -n "$(field "$progress" memory_gib)" ]]; then printf 'GPU memory:  %s GiB (peak reserved)\n' "$(field "$progress" memory_gib)"; fi
  checkpoint="$(last_complete_checkpoint "$RUN_DIR")"
  if [[ -n "$checkpoint" ]]; then checkpoint="${checkpoint#"$RUN_DIR"/}"; else checkpoint="none yet"; fi
  printf 'checkpoint:  %s\n' "$checkpoint"
  # Is the trainer still running? Its log grows; a stale one means it stopped.
  if ((!finished)); then
    local age=$(($(date +%s) - $(stat -c %Y "$log")))
    printf 'last log:    %ss ago%s\n' "$age" "$( ((age > 1800)) && printf ' (stopped? make train resumes from the last checkpoint)')"
  fi
}

print_server_status() {
  local pid name="" models side=""
  # The base model's server listens on SERVE_PORT + 1.
  if [[ "$(cat "$(server_file name)" 2>/dev/null)" == "$(served_name --base)" ]]; then side=--base; fi
  pid="$(server_pid 2>/dev/null || true)"
  [[ -f "$(server_file name)" ]] && name="$(cat "$(server_file name)")"
  models="$( (API_TIMEOUT=3 served_models "$side" || true) | paste -sd, -)"
  if [[ -n "$models" ]]; then
    printf 'server:      up at %s serving [%s]%s\n' "$(api_base "$side")" "$models" "${pid:+ (pid $pid)}"
  elif [[ -n "$pid" ]]; then
    printf 'server:      process %s%s running, not answering at %s yet\n' "$pid" "${name:+ ($name)}" "$(api_base "$side")"
  else
    printf 'server:      not running (make deploy EXP=%s)\n' "$EXP"
  fi
}

# shared_elsewhere STEP: not done here, but the store of shared evaluations holds it, complete.
shared_elsewhere() { [[ "${STEP_STORE[$1]:--}" == "done" && "${STEP_STATUS[$1]:-none}" != "done" ]]; }

# shared_source STEP: where a done shared step's results are (lib/store.sh), or nothing.
shared_source() {
  is_shared_step "$1" || return 0
  if [[ "${STEP_PRODUCER[$1]}" != "$EXP" ]]; then
    printf ' (shared: evaluated by %s, evaluation fingerprint %s)' "${STEP_PRODUCER[$1]}" "${STEP_DIGEST[$1]:0:12}"
  else
    printf ' (shared with experiments of the same evaluation inputs: fingerprint %s)' "${STEP_DIGEST[$1]:0:12}"
  fi
}

# Each step: done and up to date, done but its inputs changed (which), partly done, or not run.
print_steps_status() {
  INPUTS_DIR="$(mktemp -d)" # a look only: nothing of .state changes
  trap 'rm -rf "$INPUTS_DIR"' EXIT
  local step changes steps=() stamp width=28
  compute_experiment_inputs
  # The steps in pipeline order (scripts/pipeline.mk); the base model's in eval.yaml's mode.
  while read -r stamp; do
    [[ "$stamp" != eval* ]] || ((${#BENCHMARKS[@]} > 0)) || continue
    while read -r step; do [[ "$step" == *@* ]] || steps+=("$step"); done < <(fingerprinted_steps "$stamp")
  done < <(pipeline_stamped_steps)
  for step in "${steps[@]}"; do ((${#step} < width)) || width=$((${#step} + 1)); done
  printf 'steps:\n'
  for step in "${steps[@]}"; do
    if shared_elsewhere "$step"; then
      printf '  %-*s evaluated already by %s (evaluation fingerprint %s): make links it, serving nothing\n' "$width" "$step" \
        "${STEP_PRODUCER[$step]}" "${STEP_DIGEST[$step]:0:12}"
      continue
    fi
    case "${STEP_STATUS[$step]:-none}" in
      done) printf '  %-*s done, up to date%s\n' "$width" "$step" "$(shared_source "$step")" ;;
      partial) printf '  %-*s started with the current inputs, not finished (make resumes it)\n' "$width" "$step" ;;
      unknown) printf '  %-*s has outputs without a record of their inputs (make redoes it)\n' "$width" "$step" ;;
      none) printf '  %-*s not run\n' "$width" "$step" ;;
      changed)
        printf '  %-*s done, but its inputs changed since:\n' "$width" "$step"
        changes="$(describe_input_changes "$(step_record "$step")" "$(inputs_file "$step")" | grep -v '^  upstream\.' || true)"
        printf '%s\n' "${changes:-  (a step it builds on)}" | head -n 5 | sed 's/^/  /'
        ;;
    esac
  done
}

main() {
  SKIP_GPU_CHECK=1 load_env
  if is_dry_run; then
    printf 'python scripts/py/runparse.py progress %s\n' "$(display_path "$RUN_DIR")"
    printf "curl --noproxy '*' %s/models\n" "$(api_base)"
    return 0
  fi
  require_command jq
  print_train_status
  print_steps_status
  print_server_status
}

main "$@"
