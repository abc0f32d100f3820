#!/usr/bin/env bash
# make sweep EXPS="a b c" [GPUS="0 1 2,3" | JOBS=N] [KEEP_GOING=1] [WITH_BASE=1]: each
# experiment's whole pipeline with the repo's own make (make all EXP=a, or make
# experiment-with-base EXP=a with WITH_BASE=1: the base model's evaluations too), then make
# stop EXP=a.
#
# One at a time by default, with the settings of the command line and the env file, one server
# at a time (every server of this checkout is stopped first). Several at once: GPUS has one entry
# per slot (a GPU index, a comma list of GPUs for one experiment, or cpu), JOBS how many run at
# once (default: one per GPUS entry; JOBS alone needs GPU=cpu). Then each experiment takes a
# free slot (GPU=<entry>) and gets ports of its own: the i-th of EXPS (from 0) serves on
# SERVE_PORT + 2i (its base model on the next one) and trains with MASTER_PORT + i. Each
# experiment has its own server (.state/<exp>/server/) and run lock (lib/runlock.sh); what
# they share (the venv, the smoke's tiny model: make prereqs) is made once before they start.
#
# Each experiment's output goes to .state/<exp>/sweep.log (one at a time: also to stderr).
# Resumable: make's stamps skip the steps already done, so a sweep run again goes on where it
# stopped and a finished one runs no tool. A failure stops the sweep: the experiments not
# started are not reached, those running beside it are interrupted (their finished steps kept);
# KEEP_GOING=1 runs every experiment whatever fails. Prints a summary (experiment, result,
# report, log) on stdout and exits non-zero when one failed. DRY_RUN=1 prints the makes.
set -euo pipefail
export STEP_NAME=sweep
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"

MAKE_CMD="${MAKE:-make}"
# Each experiment's make is a top-level make of its own: it holds that experiment's run lock
# while it runs, not for the whole sweep (lib/runlock.sh).
unset LAB_RUN_OWNER
REPORTS="${REPORT_DIR:-$REPO_ROOT/report}"
declare -A RESULT=()
declare -A RUNNING=()  # pid of a running make (its process group) -> index in EXPERIMENTS
declare -A SLOT_OF=()  # pid -> its slot in SLOTS
declare -A STOPPED=()  # pid -> 1 when the sweep interrupted it
EXPERIMENTS=()
SLOTS=()      # the GPU setting of each slot; "" keeps the env file's
FREE_SLOTS=() # slot indices nobody runs on
AT_ONCE=1
TARGET=all
FAILED=0

# check_experiments: EXPS names experiments with a config, each once.
check_experiments() {
  read -ra EXPERIMENTS <<<"${EXPS:-}"
  ((${#EXPERIMENTS[@]} > 0)) || die "EXPS is empty: no experiment to run" \
    'name them: make sweep EXPS="gpt-oss-20b-sft-v1 gpt-oss-20b-sft-r32" (folders of configs/)'
  check_exps "${EXPERIMENTS[@]}"
}

# read_settings: the env file's GPU, ports and state folder as the first experiment's make sees
# them (every experiment of a sweep shares the env file and the command line). Sets ENV_GPU,
# BASE_SERVE_PORT, BASE_MASTER_PORT and STATE_DIR.
read_settings() {
  local settings
  settings="$(EXP="${EXPERIMENTS[0]}" SKIP_GPU_CHECK=1 load_env && printf '%s\t%s\t%s\t%s' "$GPU" "$SERVE_PORT" "$MASTER_PORT" "$STATE_DIR")" ||
    exit 1
  IFS=$'\t' read -r ENV_GPU BASE_SERVE_PORT BASE_MASTER_PORT STATE_DIR <<<"$settings"
}

# plan_slots: SLOTS from GPUS (or JOBS copies of the env's GPU=cpu), AT_ONCE from JOBS.
plan_slots() {
  local jobs="${JOBS:-}" entry index indices
  local -A owner=()
  if [[ -n "$jobs" && ! "$jobs" =~ ^[1-9][0-9]{0,3}$ ]]; then
    die "JOBS='$jobs' is not a number of experiments to run at once" "set JOBS to a whole number from 1, e.g. JOBS=2"
  fi
  read -ra SLOTS <<<"${GPUS:-}"
  for entry in "${SLOTS[@]}"; do
    [[ "$entry" == cpu || "$entry" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "GPUS entry '$entry' is not cpu, a GPU index or a comma list of them" \
      'give one entry per experiment that runs at once, separated by spaces: GPUS="0 1 2 3", GPUS="0,1 2,3" or GPUS="cpu cpu"'
    [[ "$entry" == cpu ]] && continue
    IFS=, read -ra indices <<<"$entry"
    for index in "${indices[@]}"; do
      [[ -z "${owner[$index]:-}" ]] || die "GPUS gives GPU $index to two experiments at once ('${owner[$index]}' and '$entry')" \
        "give each entry GPUs of its own (an experiment on several GPUs: one entry like 0,1)"
      owner[$index]="$entry"
    done
  done
  if ((${#SLOTS[@]} == 0)); then
    if [[ -n "$jobs" ]] && ((jobs > 1)) && [[ "$ENV_GPU" != cpu ]]; then
      die "JOBS=$jobs would run $jobs experiments on the same GPUs (GPU=$ENV_GPU)" \
        "give each its own with GPUS, e.g. make sweep GPUS=\"0 1\" (JOBS alone is for GPU=cpu)"
    fi
    for ((index = 0; index < ${jobs:-1}; index++)); do SLOTS+=(""); done
  fi
  AT_ONCE="${jobs:-${#SLOTS[@]}}"
  ((AT_ONCE <= ${#SLOTS[@]})) || die "JOBS=$jobs, but GPUS has ${#SLOTS[@]} entries (one per experiment running at once)" \
    "lower JOBS, or add entries to GPUS"
  ((AT_ONCE <= ${#EXPERIMENTS[@]})) || AT_ONCE=${#EXPERIMENTS[@]}
  for ((index = 0; index < ${#SLOTS[@]}; index++)); do FREE_SLOTS+=("$index"); done
}

# check_slot_gpus: every GPU of GPUS exists here (as each make would check, but before any starts).
check_slot_gpus() {
  local entry
  for entry in "${SLOTS[@]}"; do
    [[ -n "$entry" && "$entry" != cpu ]] || continue
    (GPU="$entry" && validate_gpu && check_gpus_exist) || exit 1
  done
}

side_by_side() { ((AT_ONCE > 1)); }

# make_args INDEX SLOT: the make command line of experiment INDEX on SLOT.
make_args() {
  local index="$1" gpu="${SLOTS[$2]}"
  ARGS=("$TARGET" "EXP=${EXPERIMENTS[index]}")
  if [[ -n "$gpu" ]]; then ARGS+=("GPU=$gpu"); fi
  if side_by_side; then ARGS+=("SERVE_PORT=$((10#$BASE_SERVE_PORT + 2 * index))" "MASTER_PORT=$((10#$BASE_MASTER_PORT + index))"); fi
}

sweep_log() { printf '%s/%s/sweep.log' "$STATE_DIR" "$1"; }

print_plan() {
  local index
  if side_by_side; then
    printf '# up to %d at once, each on a free entry of GPUS (in this order when they take equally long); output in %s\n' \
      "$AT_ONCE" "$(repo_relative "$(sweep_log '<exp>')")"
  fi
  for index in "${!EXPERIMENTS[@]}"; do
    make_args "$index" "$((index % ${#SLOTS[@]}))"
    printf 'make %s\nmake stop EXP=%s\n' "${ARGS[*]}" "${EXPERIMENTS[index]}"
  done
}

# failed_target LOG: where it failed, "at <make target>" from make's own error line
# (make: *** [Makefile:N: .state/<exp>/train.done] Error 1), or "before any step".
failed_target() {
  local target
  target="$(sed -n 's/.*\*\*\* \[[^]]*:[0-9]*: \([^]]*\)\] .*/\1/p' "$1" | head -n 1)"
  target="${target##*/}"
  target="${target%.done}"
  case "$target" in
    "" | all) # make all's own line follows its sub-make's
      if grep -q 'stopped before any step' "$1"; then echo "before any step"; else echo "at ? (see its log)"; fi ;;
    experiment | experiment-with-base) echo "at report" ;; # their own recipe is the report
    *) echo "at $target" ;;
  esac
}

stop_server() {
  "$MAKE_CMD" -s -C "$REPO_ROOT" stop "EXP=$1" >&2 || warn "could not stop the server of $1 (make stop EXP=$1)"
}

# stop_servers_first: one at a time, the sweep's is this checkout's only server (as before
# servers were per experiment); side by side, each experiment's own server of an earlier run
# (it may listen on another port than the one the sweep gives it).
stop_servers_first() {
  local exp
  if side_by_side; then
    for exp in "${EXPERIMENTS[@]}"; do stop_server "$exp"; done
  else
    log "one server at a time: stopping every server of this checkout first, if one runs"
    "$MAKE_CMD" -s -C "$REPO_ROOT" stop ALL=1 "EXP=${EXPERIMENTS[0]}" >&2 || warn "could not stop the servers (make stop ALL=1)"
  fi
}

# make_prereqs: what the experiments share, once, before they run side by side: for each
# experiment, with a CPU entry of GPUS and with a GPU entry (the venvs differ).
make_prereqs() {
  local exp entry gpus=() cpu_seen=0 gpu_seen=0
  side_by_side || return 0
  for entry in "${SLOTS[@]}"; do
    if [[ "${entry:-$ENV_GPU}" == cpu ]]; then
      ((cpu_seen++)) || gpus+=("${entry:-$ENV_GPU}")
    else
      ((gpu_seen++)) || gpus+=("${entry:-$ENV_GPU}")
    fi
  done
  for exp in "${EXPERIMENTS[@]}"; do
    for entry in "${gpus[@]}"; do
      "$MAKE_CMD" -s -C "$REPO_ROOT" prereqs "EXP=$exp" "GPU=$entry" >&2 ||
        die "could not make what $exp needs before the experiments start (make prereqs EXP=$exp GPU=$entry, above)" \
          "fix what the output above says, then run the same make sweep again"
    done
  done
}

# start_experiment INDEX: its make in a process group of its own (the sweep stops it as a
# whole), on the first free slot, its output in its log (one at a time: shown too).
start_experiment() {
  local index="$1" exp="${EXPERIMENTS[$1]}" slot="${FREE_SLOTS[0]}" log_file pid
  FREE_SLOTS=("${FREE_SLOTS[@]:1}")
  make_args "$index" "$slot"
  log_file="$(sweep_log "$exp")"
  mkdir -p "$(dirname "$log_file")"
  : >"$log_file"
  log "[$((index + 1))/${#EXPERIMENTS[@]}] $exp: make ${ARGS[*]} (output: $(repo_relative "$log_file"))"
  setsid "$MAKE_CMD" -C "$REPO_ROOT" "${ARGS[@]}" >"$log_file" 2>&1 </dev/null &
  pid=$!
  RUNNING[$pid]="$index"
  SLOT_OF[$pid]="$slot"
  if ! side_by_side; then tail -n +1 -f --pid="$pid" "$log_file" >&2 & fi
}

# print_log_tail EXP: why it failed, when its output was not shown as it ran.
print_log_tail() {
  side_by_side || return 0
  printf -- '--- last lines of %s ---\n' "$(repo_relative "$(sweep_log "$1")")" >&2
  tail -n "${LOG_TAIL_LINES:-20}" "$(sweep_log "$1")" >&2
  printf -- '---\n' >&2
}

# interrupt_running REASON: TERM each running make's process group (a training resumes from
# its last checkpoint on the next run); they end through the main loop's wait.
interrupt_running() {
  local pid
  for pid in "${!RUNNING[@]}"; do
    [[ -z "${STOPPED[$pid]:-}" ]] || continue
    log "${EXPERIMENTS[${RUNNING[$pid]}]}: interrupting it ($1)"
    STOPPED[$pid]=1
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
}

# finish_experiment PID STATUS: its result, its server stopped, its slot free again.
finish_experiment() {
  local pid="$1" status="$2" index exp output
  index="${RUNNING[$pid]}"
  exp="${EXPERIMENTS[index]}"
  unset "RUNNING[$pid]"
  FREE_SLOTS+=("${SLOT_OF[$pid]}")
  if ! side_by_side; then wait || true; fi # the log's tail has shown everything
  # (Not through a process substitution: wait -n in the main loop waits for the makes only.)
  output="$(stop_server "$exp" 2>&1)" || true
  printf '%s\n' "$output" | tee -a "$(sweep_log "$exp")" >&2
  if ((status == 0)); then
    RESULT[$exp]="done"
    log "$exp: done"
  elif [[ -n "${STOPPED[$pid]:-}" ]]; then
    RESULT[$exp]="interrupted"
  else
    RESULT[$exp]="failed $(failed_target "$(sweep_log "$exp")")"
    FAILED=1
    print_log_tail "$exp"
    log "$exp: ${RESULT[$exp]} (exit $status; its output: $(repo_relative "$(sweep_log "$exp")"))$([[ "${KEEP_GOING:-0}" == 1 ]] && echo '; going on (KEEP_GOING=1)')"
    if [[ "${KEEP_GOING:-0}" != 1 ]]; then interrupt_running "$exp failed; KEEP_GOING=1 would let it run"; fi
  fi
}

print_summary() {
  local exp report failed=0 width=10
  for exp in "${EXPERIMENTS[@]}"; do ((${#exp} > width)) && width=${#exp}; done
  for exp in "${EXPERIMENTS[@]}"; do [[ "${RESULT[$exp]:-}" != failed* ]] || failed=$((failed + 1)); done
  printf '\nsweep of %d experiment(s): %d failed\n' "${#EXPERIMENTS[@]}" "$failed"
  printf '  %-*s  %-28s  %-*s  %s\n' "$width" experiment result "$((width + 10))" report log
  for exp in "${EXPERIMENTS[@]}"; do
    report="—"
    # Only a finished experiment's report is its sweep's: another one may be of an earlier run.
    if [[ "${RESULT[$exp]:-}" == "done" && -f "$REPORTS/$exp.md" ]]; then report="$(repo_relative "$REPORTS/$exp.md")"; fi
    printf '  %-*s  %-28s  %-*s  %s\n' "$width" "$exp" "${RESULT[$exp]:-not reached}" "$((width + 10))" "$report" \
      "$(if [[ -n "${RESULT[$exp]:-}" ]]; then repo_relative "$(sweep_log "$exp")"; else echo —; fi)"
  done
}

# Ctrl-C (or TERM): the makes run in sessions of their own, out of the terminal's reach: each is
# stopped, waited for, its server stopped.
on_interrupt() {
  trap - INT TERM
  local pid
  interrupt_running "the sweep was interrupted"
  for pid in "${!RUNNING[@]}"; do
    wait "$pid" 2>/dev/null || true
    finish_experiment "$pid" 130
  done
  print_summary
  exit 130
}

run_experiments() {
  local next=0 pid status
  while ((next < ${#EXPERIMENTS[@]} || ${#RUNNING[@]} > 0)); do
    while ((${#RUNNING[@]} < AT_ONCE && next < ${#EXPERIMENTS[@]})); do
      if ((FAILED)) && [[ "${KEEP_GOING:-0}" != 1 ]]; then next=${#EXPERIMENTS[@]}; break; fi
      start_experiment "$next"
      next=$((next + 1))
    done
    ((${#RUNNING[@]} > 0)) || break
    status=0
    wait -n -p pid "${!RUNNING[@]}" || status=$?
    finish_experiment "$pid" "$status"
  done
}

main() {
  check_experiments
  if [[ "${WITH_BASE:-0}" == 1 ]]; then TARGET=experiment-with-base; fi
  read_settings
  plan_slots
  if is_dry_run; then print_plan; return 0; fi
  check_slot_gpus
  trap on_interrupt INT TERM
  stop_servers_first
  make_prereqs
  if side_by_side; then log "up to $AT_ONCE experiments at once, on GPUS=\"${SLOTS[*]}\""; fi
  run_experiments
  print_summary
  if ((FAILED)); then
    die "the sweep did not finish every experiment" \
      "fix what the output above says, then run the same make sweep again: finished steps are kept"
  fi
}

main "$@"
