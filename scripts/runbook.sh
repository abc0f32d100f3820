#!/usr/bin/env bash
# shellcheck disable=SC2016 # single-quoted $ and $(...) are what this script prints
# make runbook: the whole experiment as one linear bash script on stdout, for the
# GPU profile asked for (whatever machine prints it), from the same command
# builders the make targets run (lib/commands.sh, lib/eval_config.sh):
#   make runbook EXP=... GPU=... ENV_FILE=... > runbook.sh && bash runbook.sh
# environment, preflight, train, export, serve (and wait until it answers), health,
# evaluations, stop; the base model the same way; the arena (base vs fine-tuned); the report. Values known only when
# it runs are shell substitutions; secrets are "$SWANLAB_TOKEN" / "$SERVE_API_KEY".
# Outputs of an earlier run are moved aside (kept), never mixed with the new ones. The base
# model's evaluations that the store of shared evaluations holds for the same inputs are
# linked, not evaluated again (lib/store.sh).
# PREREQ_CMD: the command that builds the experiment's own prerequisites
# (configs/<exp>/experiment.mk), printed as its dry run.
set -euo pipefail
export STEP_NAME=runbook
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/fingerprint.sh
source "$REPO_ROOT/scripts/lib/fingerprint.sh"

SERVER_WAIT_SECONDS="${DEPLOY_TIMEOUT:-900}"

# Each part of the runbook is a function step_NAME, run in order at the end; `bash
# runbook.sh NAME` starts at that step (e.g. after fixing what stopped it).
RUNBOOK_STEPS=()
open_step() {
  RUNBOOK_STEPS+=("$1")
  printf '\n# ---------------------------------------------------------------- %s\nstep_%s() {\n' "$2" "$1"
}
close_step() { printf '}\n'; }

# Moves an earlier run's output aside, as the steps do.
print_move_aside() {
  printf '[[ ! -e %s ]] || mv %s %s.replaced-"$(date -u +%%Y%%m%%dT%%H%%M%%SZ)"\n' "$(display_path "$1")" \
    "$(display_path "$1")" "$(display_path "$1")"
}

print_header() {
  cat <<EOF
#!/usr/bin/env bash
# Runbook of experiment $EXP: GPU=$GPU, env file $(repo_relative "$ENV_FILE"), commit $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown).
# Made by: make runbook EXP=$EXP GPU=$GPU ENV_FILE=$(repo_relative "$ENV_FILE")
# Run it from the repository root: bash runbook.sh
EOF
  if [[ "$SWANLAB_MODE" == cloud ]]; then printf '# Export first: SWANLAB_TOKEN (your SwanLab key; it reaches tools only through their environment)\n'; fi
  if [[ -n "${SERVE_API_KEY:-}" ]]; then printf '# Export first: SERVE_API_KEY (the key clients of the server must send)\n'; fi
  cat <<EOF
set -euo pipefail
[[ -f Makefile && -f configs/$CONFIG_EXP/sft.yaml ]] || { echo "runbook: run this from the repository root" >&2; exit 1; }
EOF
  if [[ "$SWANLAB_MODE" == cloud ]]; then printf ': "${SWANLAB_TOKEN:?export SWANLAB_TOKEN first}"\n'; fi
  if [[ -n "${SERVE_API_KEY:-}" ]]; then printf ': "${SERVE_API_KEY:?export SERVE_API_KEY first}"\n'; fi
  local auth=""
  [[ -n "${SERVE_API_KEY:-}" ]] && auth=' -K <(printf '"'"'header = "Authorization: Bearer %s"\\n'"'"' "$SERVE_API_KEY")'
  cat <<EOF

# api PATH [CURL ARGS...]: a request to the server (the key, if any, never in argv).
API="$(api_base)"
api() { local path="\$1"; shift; curl -sSf --noproxy '*' --max-time 120$auth "\$@" "\$API\$path"; }

# wait_for_server NAME PID LOG: until the server lists NAME; its log's tail if it dies or times out.
wait_for_server() {
  local waited=0
  until api /models 2>/dev/null | jq -e --arg name "\$1" 'any(.data[]; .id == \$name)' >/dev/null; do
    if ! kill -0 "\$2" 2>/dev/null; then tail -n 30 "\$3" >&2; echo "runbook: the server exited" >&2; exit 1; fi
    if ((waited >= $SERVER_WAIT_SECONDS)); then
      tail -n 30 "\$3" >&2; kill -TERM -- "-\$2" 2>/dev/null || true
      echo "runbook: \$1 not served after ${SERVER_WAIT_SECONDS}s" >&2; exit 1
    fi
    sleep 1; waited=\$((waited + 1))
  done
  echo "runbook: serving \$1 after \${waited}s" >&2
}

# stop_server: the whole process group of the server started last, then wait until it is gone.
SERVER_PID=""
stop_server() {
  [[ -n "\$SERVER_PID" ]] || return 0
  kill -TERM -- "-\$SERVER_PID" 2>/dev/null || true
  while kill -0 -- "-\$SERVER_PID" 2>/dev/null; do sleep 0.2; done
  SERVER_PID=""
}
trap stop_server EXIT # a failed step leaves no server behind

# wait_until_bindable PORT: a stopped server's connections linger in TIME_WAIT, and
# swift deploy would then move to the next port.
wait_until_bindable() {
  local waited=0
  until python3 -c 'import socket, sys; socket.socket().bind(("", int(sys.argv[1])))' "\$1" 2>/dev/null; do
    ((waited < 90)) || { echo "runbook: port \$1 stays busy" >&2; exit 1; }
    sleep 2; waited=\$((waited + 2))
  done
}

# health NAME: the server lists NAME and one chat completion has content.
health() {
  api /models | jq -e --arg name "\$1" 'any(.data[]; .id == \$name)' >/dev/null
  api /chat/completions -H 'Content-Type: application/json' \\
    --data-binary "\$(jq -nc --arg m "\$1" '{model: \$m, messages: [{role: "user", content: "你好，请用一句话介绍你自己。"}], max_tokens: 32, temperature: 0}')" |
    jq -e '.choices[0].message.content | length > 0' >/dev/null
  echo "runbook: \$1 answered" >&2
}
EOF
}

print_environment() {
  open_step environment "environment ($DEVICE_PROFILE profile)"
  RUNBOOK=1 DRY_RUN=1 GPU="$GPU" "$REPO_ROOT/scripts/setup-env.sh" 2>/dev/null
  printf 'export PATH="$PWD/.venv/bin:$PATH"\n'
  close_step
}

print_prerequisites() {
  [[ -n "${PREREQ_CMD:-}" ]] || return 0
  open_step prerequisites "prerequisites of $EXP (configs/$CONFIG_EXP/experiment.mk)"
  # shellcheck disable=SC2086 # PREREQ_CMD is a command line from the Makefile
  DRY_RUN=1 $PREREQ_CMD 2>/dev/null
  close_step
}

print_preflight() {
  open_step preflight "preflight: checks in seconds what would fail after the model loaded"
  printf 'EXP=%s ENV_FILE=%s GPU=%s scripts/preflight.sh\n' "$EXP" "$(display_path "$ENV_FILE")" "$GPU"
  close_step
}

print_train() {
  open_step train "train"
  print_config_as_comments "configs/$CONFIG_EXP/sft.yaml"
  print_move_aside "$RUN_DIR"
  local cmd
  build_train_cmd cmd
  print_cmd "${cmd[@]}"
  close_step
}

print_export() {
  open_step export "export: merge the LoRA of the last checkpoint"
  print_config_as_comments "configs/$CONFIG_EXP/export.yaml"
  local partial="$EXPORT_DIR.partial" cmd
  printf 'CHECKPOINT="$(ls -d %s/checkpoint-* | sort -V | tail -n 1)"\n' "$(display_path "$RUN_DIR")"
  printf 'rm -rf %s\n' "$(display_path "$partial")"
  build_export_cmd cmd "$(shell_expr '"$CHECKPOINT"')" "$partial"
  print_cmd "${cmd[@]}"
  print_cmd python -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c.pop("quantization_config", None); json.dump(c, open(p, "w"), indent=2)' \
    "$partial/config.json"
  printf 'rm -rf %s && mv %s %s\n' "$(display_path "$EXPORT_DIR")" "$(display_path "$partial")" "$(display_path "$EXPORT_DIR")"
  close_step
}

# A pilot's runbook records its steps' times in .state/<exp>/steps.jsonl, as make does:
# its report projects the full run from them (scripts/pilot-report.sh).
print_pilot_events_header() {
  is_pilot || return 0
  cat <<EOF

# lab_event STEP EVENT [DETAIL]: the pilot's step times, where make records them (its report reads them).
lab_event() {
  mkdir -p $(display_path "$STATE_DIR/$EXP")
  jq -nc --arg time "\$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg step "\$1" --arg event "\$2" --arg detail "\${3:-}" \\
    '{time: \$time, step: \$step, event: \$event} + (if \$detail == "" then {} else {detail: \$detail} end)' \\
    >>$(display_path "$STATE_DIR/$EXP/steps.jsonl")
}
EOF
}
print_event() { if is_pilot; then printf 'lab_event %s %s%s\n' "$1" "$2" "${3:+ '$3'}"; fi; }

# The base model's evaluations the store of shared evaluations holds, complete, for the inputs
# of this runbook (lib/store.sh): printed as links to them, not evaluated again. Known only
# where the fingerprints can be computed (after make env); none otherwise.
find_stored_evaluations() {
  "$(config_python)" -c 'import yaml' 2>/dev/null || return 0
  INPUTS_DIR="$(mktemp -d)"
  trap 'rm -rf "$INPUTS_DIR"' EXIT
  compute_experiment_inputs
}
is_stored() { [[ "${STEP_STORE[$1]:--}" == "done" ]]; }

# all_base_stored: every evaluation of the base model (each answer mode) is in the store.
all_base_stored() {
  local mode bench modes
  mapfile -t modes < <(evaluation_modes --base)
  for mode in "${modes[@]}"; do
    for bench in "${BENCHMARKS[@]}"; do is_stored "$(eval_step_name "$bench" --base "$mode")" || return 1; done
  done
}

# print_link_stored BENCH SIDE MODE: the results folder of BENCH on SIDE's model in MODE links to
# its step's store entry.
print_link_stored() {
  local step digest entry dir
  step="$(eval_step_name "$1" "$2" "$3")"
  digest="${STEP_DIGEST[$step]}"
  entry="$(store_entry "$digest")"
  dir="$RESULTS_DIR/$(result_name "$2" "$3")/$1"
  printf '# %s on %s: evaluated already by %s (evaluation fingerprint %s): linked, not evaluated again
' "$1" "$(result_name "$2" "$3")" \
    "${STEP_PRODUCER[$step]}" "${digest:0:12}"
  printf '[[ -f %s/%s ]] || { echo "runbook: %s is not here; print the runbook where it is, or run make eval-base" >&2; exit 1; }\n' \
    "$(display_path "$entry")" "$EVAL_DONE_FILE" "$(display_path "$entry")"
  printf 'mkdir -p %s && ln -sfn %s %s\n' "$(display_path "$(dirname "$dir")")" \
    "$(realpath -m --relative-to="$(dirname "$dir")" "$entry")" "$(display_path "$dir")"
}

# print_linked_base_evaluations STEP: every evaluation of the base model is in the store: links, no server.
print_linked_base_evaluations() {
  local mode bench modes
  open_step "$1" "the base model's evaluations: shared with experiments of the same evaluation inputs (results/.store)"
  mapfile -t modes < <(evaluation_modes --base)
  for mode in "${modes[@]}"; do
    for bench in "${BENCHMARKS[@]}"; do print_link_stored "$bench" --base "$mode"; done
  done
  close_step
}

# print_serve_and_evaluate SIDE STEP: serve SIDE's model ("" or --base), wait, health, every
# benchmark, stop.
print_serve_and_evaluate() {
  local side="$1" mode modes
  if [[ -n "$side" ]] && all_base_stored; then print_linked_base_evaluations "$2"; return 0; fi
  open_step "${2:-serve}" "serve $(served_name "$side"), check it, evaluate it, stop it"
  print_start_server "$side"
  mapfile -t modes < <(evaluation_modes "$side")
  print_event eval start
  for mode in "${modes[@]}"; do print_evaluations "$side" "$mode"; done
  print_event eval end "exit 0"
  printf 'stop_server\n'
  close_step
}

# print_start_server SIDE: serve SIDE's model, wait until it answers, check it.
print_start_server() {
  local side="$1" name
  name="$(served_name "$side")"
  print_config_as_comments "configs/$CONFIG_EXP/deploy.yaml"
  local cmd
  build_deploy_cmd cmd "$side"
  printf 'mkdir -p %s\n' "$(display_path "$(server_dir)")"
  printf 'API=%s\n' "$(api_base "$side")"
  print_event deploy start
  printf 'wait_until_bindable %s\n' "$(served_port "$side")"
  print_server_start "${cmd[@]}"
  printf 'SERVER_PID=$!\n'
  printf 'wait_for_server %s "$SERVER_PID" %s\n' "$name" "$(display_path "$(server_file log)")"
  print_event deploy end "exit 0"
  print_event health start
  printf 'health %s\n' "$name"
  print_event health end "exit 0"
}

# print_arena: base vs fine-tuned (make arena): a general_arena run per pair on both models'
# replies, their result, SwanLab. A judge that is the served model (JUDGE_MODEL=served, a
# placeholder) is the fine-tuned model's server, served again for it.
print_arena() {
  [[ -n "$ARENA_BENCH" ]] || return 0
  local pair pairs cmd
  # shellcheck disable=SC2034 # filled and read by name (read_bench, build_arena_cmd)
  local -A arena_settings=()
  read_bench arena_settings "$ARENA_BENCH"
  open_step arena "arena: $EXP against $EXP-base on the replies of $(bench_words arena_settings pairs), each prompt judged in both orders"
  if [[ -z "${JUDGE_MODEL:-}" ]]; then
    printf '# no judge configured (JUDGE_MODEL, JUDGE_API_URL): skipped\n:\n'
    close_step
    return 0
  fi
  if [[ "$JUDGE_MODEL" == served ]]; then print_start_server ""; fi
  print_move_aside "$(arena_dir)"
  bench_list pairs arena_settings pairs
  for pair in "${pairs[@]}"; do
    build_arena_cmd cmd arena_settings "$pair"
    print_cmd "${cmd[@]}"
  done
  build_arena_result_cmd cmd arena_settings "$(arena_dir)/$EVAL_DONE_FILE"
  print_cmd "${cmd[@]}"
  printf '# the arena to SwanLab\n'
  build_eval_log_cmd cmd "$(result_name "")" "$(arena_dir)/$EVAL_DONE_FILE"
  print_cmd "${cmd[@]}"
  if [[ "$JUDGE_MODEL" == served ]]; then printf 'stop_server\n'; fi
  close_step
}

# print_evaluations SIDE MODE: every benchmark of SIDE's model in that answer mode ("": eval.yaml's),
# then their checked results to SwanLab. A pilot's runbook records each one's seconds.
print_evaluations() {
  local side="$1" mode="$2" bench results=() seconds="" cmd step_cmd
  local -A settings=()
  if [[ -n "$mode" ]]; then printf '# %s in answer mode %s as well (eval.yaml: base_extra_modes)\n' "$(served_name "$side")" "$mode"; fi
  # shellcheck disable=SC2016 # printed for the shell that runs the printed script
  if is_pilot; then seconds="$(shell_expr '"$((SECONDS - eval_started))"')"; fi
  for bench in "${BENCHMARKS[@]}"; do
    if is_stored "$(eval_step_name "$bench" "$side" "$mode")"; then print_link_stored "$bench" "$side" "$mode"; continue; fi
    read_bench settings "$bench" "$mode"
    build_eval_cmd cmd settings "$side"
    if judge_unconfigured settings; then
      printf '# %s: scored by an LLM judge; none is configured (JUDGE_MODEL, JUDGE_API_URL): skipped\n' "$bench"
      continue
    fi
    describe_bench settings "$side"
    print_move_aside "${settings[work_dir]}"
    if [[ -n "${settings[heldout_rows]}" ]]; then
      build_heldout_cmd step_cmd settings
      print_cmd "${step_cmd[@]}"
    fi
    if [[ -n "${settings[fetch]}" ]]; then
      printf '# its questions, fetched from the public source when not there yet
[[ -d %s ]] ||
' "$(display_path "${settings[local_path]}")"
      build_fetch_cmd step_cmd settings
      print_cmd "${step_cmd[@]}"
    fi
    if [[ -n "${settings[contamination_limit]}" ]]; then
      printf '# its overlap with the training set, before its first question
'
      build_contamination_cmd step_cmd settings
      print_cmd "${step_cmd[@]}"
    fi
    if [[ -n "$seconds" ]]; then printf 'eval_started=$SECONDS\n'; fi
    print_cmd "${cmd[@]}"
    build_eval_result_cmd step_cmd settings "$side" "${settings[work_dir]}/$EVAL_DONE_FILE" "" "$seconds"
    print_cmd "${step_cmd[@]}"
    results+=("${settings[work_dir]}/$EVAL_DONE_FILE")
  done
  printf '# the checked results of %s to SwanLab, one run\n' "$(result_name "$side" "$mode")"
  build_eval_log_cmd cmd "$(result_name "$side" "$mode")" "${results[@]}"
  print_cmd "${cmd[@]}"
}

# A pilot's report: the full run projected from it.
print_pilot_report() {
  open_step report "report: report/$EXP.md, the full run of $PILOT_OF projected from this pilot"
  local cmd
  build_pilot_report_cmd cmd
  print_cmd "${cmd[@]}"
  close_step
}

print_report() {
  open_step report "report: report/$EXP.md from the run's own files"
  local cmd
  build_report_cmd cmd
  print_cmd "${cmd[@]}"
  close_step
}

# print_pipeline_step STEP: one step of scripts/pipeline.mk (the order comes from there).
print_pipeline_step() {
  case "$1" in
    train) print_train ;;
    export) print_export ;;
    evals) print_serve_and_evaluate "" serve ;;
    eval-base) is_pilot || print_serve_and_evaluate --base serve_base ;; # a pilot projects, it compares nothing
    arena) is_pilot || print_arena ;;
    report) if is_pilot; then print_pilot_report; else print_report; fi ;;
    *) die "the runbook has no printer for step '$1' of scripts/pipeline.mk" "add one to print_pipeline_step in scripts/runbook.sh" ;;
  esac
}

main() {
  export DRY_RUN=1 # everything below is printed, nothing runs
  SKIP_GPU_CHECK=1 load_env
  load_sft_config
  ((NNODES == 1)) || die "make runbook is the script of one machine, but NNODES=$NNODES" \
    "for several nodes print a Slurm batch script (make sbatch NNODES=$NNODES), or run make train NODE_RANK=<rank> on each node"
  load_eval_config
  find_stored_evaluations
  print_header
  print_pilot_events_header
  print_environment
  print_prerequisites
  print_preflight
  local step
  while read -r step; do print_pipeline_step "$step"; done < <(pipeline_steps)
  cat <<EOF

# ---------------------------------------------------------------- run the steps in order
STEPS=(${RUNBOOK_STEPS[*]})
first="\${1:-\${STEPS[0]}}"
[[ " \${STEPS[*]} " == *" \$first "* ]] || { echo "runbook: no step '\$first' (steps: \${STEPS[*]})" >&2; exit 2; }
started=0
for step in "\${STEPS[@]}"; do
  [[ "\$step" == "\$first" ]] && started=1
  if ((started)); then $(if is_pilot; then printf '%s' 'lab_event "$step" start; '; fi)"step_\$step"$(if is_pilot; then printf '%s' '; lab_event "$step" end "exit 0"'; fi); fi
done
echo "runbook: done: report/$EXP.md" >&2
EOF
}

main "$@"
