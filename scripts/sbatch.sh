#!/usr/bin/env bash
# shellcheck disable=SC2016 # single-quoted $ and $(...) are what this script prints
# make sbatch: the whole experiment as a Slurm batch script on stdout, the twin of
# make runbook for clusters: NNODES nodes with the GPUs of GPU each run this
# checkout's own `make train` with their rank (srun), then the first node runs the
# rest of the pipeline (make all eval-base arena report: export, serving, the evaluations of
# the fine-tuned and the base model, the report).
#   make sbatch GPU=0,1,2,3 NNODES=2 > job.sh && sbatch job.sh
#   make sbatch GPU=0,1,2,3 NNODES=2 SUBMIT=1     writes .state/<exp>/sbatch.sh and submits it
# EXPS="a b c": a job array (#SBATCH --array=0-2, JOBS=N: at most N tasks at once), task i
# running the i-th experiment of EXPS with the body make sbatch EXP=<it> prints, on ports of
# its own (SERVE_PORT + 2i, MASTER_PORT + i); SUBMIT=1 writes .state/sbatch-array.sh.
# The job's partition, account, time limit and CPUs come from the env file (JOB_*).
# Secrets never appear in it: the makes read them from the env file or the environment.
set -euo pipefail
export STEP_NAME=sbatch
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"

CPUS_PER_GPU=8 # the gpt-oss config's dataloader_num_workers, per training process
# Settings the job does not take from the printing shell: secrets (never printed),
# what Slurm decides per node (NODE_RANK, MASTER_ADDR), and the job's own lines.
NOT_PASSED_ON=(SWANLAB_TOKEN SERVE_API_KEY NODE_RANK MASTER_ADDR GPU NNODES MASTER_PORT
  JOB_PARTITION JOB_ACCOUNT JOB_TIME_LIMIT JOB_CPUS_PER_NODE)

# The env keys set in this environment (the make command line, or exported): they
# win over the env file here, so the job gets them too. Call before load_env.
collect_overrides() {
  local key
  OVERRIDES=()
  JOB_OVERRIDES=()
  for key in "${ENV_KEYS[@]}"; do
    [[ -n "${!key:-}" ]] || continue
    if [[ "$key" == JOB_* ]]; then JOB_OVERRIDES+=("$key=${!key}"); fi
    [[ " ${NOT_PASSED_ON[*]} " != *" $key "* ]] || continue
    OVERRIDES+=("$key=${!key}")
  done
}

validate_job_settings() {
  local key
  for key in JOB_PARTITION JOB_ACCOUNT; do
    [[ -z "${!key:-}" || "${!key}" =~ ^[A-Za-z0-9_.,-]+$ ]] ||
      die "$key='${!key}' is not a Slurm ${key#JOB_} name" "set $key to a name sinfo or sacctmgr lists (letters, digits, . _ - ,), or leave it empty"
  done
  [[ -z "${JOB_TIME_LIMIT:-}" || "$JOB_TIME_LIMIT" =~ ^(([0-9]+-)?[0-9]+(:[0-9]+){0,2}|UNLIMITED|infinite)$ ]] ||
    die "JOB_TIME_LIMIT='$JOB_TIME_LIMIT' is not a Slurm time limit" "use minutes, HH:MM:SS or D-HH:MM:SS (e.g. JOB_TIME_LIMIT=2-00:00:00), or leave it empty"
  [[ -z "${JOB_CPUS_PER_NODE:-}" || "$JOB_CPUS_PER_NODE" =~ ^[1-9][0-9]*$ ]] ||
    die "JOB_CPUS_PER_NODE='$JOB_CPUS_PER_NODE' is not a number of CPUs" "set it to the CPUs the training may use on each node, or leave it empty ($CPUS_PER_GPU per GPU)"
  CPUS_PER_NODE="${JOB_CPUS_PER_NODE:-$((CPUS_PER_GPU * NPROC))}"
}

# print_directives [ARRAY_RANGE]: the job's resources; with a range, those of each array task.
print_directives() {
  printf '#!/usr/bin/env bash\n'
  if [[ -n "${1:-}" ]]; then
    printf '#SBATCH --job-name=sweep\n#SBATCH --array=%s\n' "$1"
  else
    printf '#SBATCH --job-name=%s\n' "$EXP"
  fi
  printf '#SBATCH --nodes=%s\n' "$NNODES"
  printf '#SBATCH --ntasks-per-node=1\n'
  if [[ "$GPU" != cpu ]]; then printf '#SBATCH --gres=gpu:%s\n' "$NPROC"; fi
  printf '#SBATCH --cpus-per-task=%s\n' "$CPUS_PER_NODE"
  if [[ -n "${JOB_TIME_LIMIT:-}" ]]; then printf '#SBATCH --time=%s\n' "$JOB_TIME_LIMIT"; fi
  if [[ -n "${JOB_PARTITION:-}" ]]; then printf '#SBATCH --partition=%s\n' "$JOB_PARTITION"; fi
  if [[ -n "${JOB_ACCOUNT:-}" ]]; then printf '#SBATCH --account=%s\n' "$JOB_ACCOUNT"; fi
  # In the directory it is submitted from, which always exists (a missing folder
  # would make the job fail without a log); appended to when the job is requeued.
  if [[ -n "${1:-}" ]]; then printf '#SBATCH --output=slurm-%%x-%%A_%%a.out\n'; else printf '#SBATCH --output=slurm-%%x-%%j.out\n'; fi
  printf '#SBATCH --open-mode=append\n'
  printf '#SBATCH --requeue\n'
}

# made_by WHAT: the make command line that printed the script (WHAT: EXP=... or EXPS=...).
made_by() {
  local line pair
  line="make sbatch $1 GPU=$GPU NNODES=$NNODES ENV_FILE=$(repo_relative "$ENV_FILE")"
  for pair in "${OVERRIDES[@]}" "${JOB_OVERRIDES[@]}"; do line+=" $(shell_quote "$pair")"; done
  printf '%s' "$line"
}

print_header() {
  cat <<EOF
# Slurm batch script of experiment $EXP: $NNODES node(s) x GPU=$GPU, env file $(repo_relative "$ENV_FILE"), commit $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown).
# Made by: $(made_by "EXP=$EXP")
# Submit it from the repository root, in a checkout every node sees (shared storage, like
# OUTPUT_ROOT): sbatch job.sh. Each node runs this checkout's make train with its rank, then
# the first node runs the rest (export, serving, evaluations, report). Requeued, the job
# goes on where it stopped: finished steps are kept, the training resumes from its checkpoint.
EOF
  if [[ "$SWANLAB_MODE" == cloud ]]; then
    printf '# SWANLAB_TOKEN: read from the env file, or exported before sbatch (sbatch passes the environment on).\n'
  fi
  print_preamble
}

print_preamble() {
  printf 'set -euo pipefail\n'
  printf ': "${SLURM_JOB_NODELIST:?run this through sbatch}"\n'
}

# The settings every make below gets, on every node (the env file gives the rest).
print_settings() {
  local pair line="export"
  printf '[[ -f Makefile && -f configs/%s/sft.yaml ]] || { echo "sbatch: submit this from the repository root" >&2; exit 1; }\n' "$CONFIG_EXP"
  for pair in "EXP=$EXP" "ENV_FILE=$(repo_relative "$ENV_FILE")" "GPU=$GPU" "NNODES=$NNODES" "MASTER_PORT=$MASTER_PORT" \
    "${OVERRIDES[@]}"; do
    line+=" ${pair%%=*}=$(shell_quote "${pair#*=}")"
  done
  printf '\n# The settings of every make below, on every node (the env file gives the rest).\n%s\n' "$line"
  cat <<'EOF'

# The job's first node runs rank 0 and hosts torchrun's rendezvous.
mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
((${#nodes[@]} == NNODES)) || { echo "sbatch: the job has ${#nodes[@]} node(s), NNODES=$NNODES" >&2; exit 1; }
export MASTER_ADDR="${nodes[0]}"
EOF
  if [[ "$GPU" != cpu ]]; then
    printf '# The GPUs of a node are the ones Slurm gave the job there (not always 0 to N-1).\n'
    printf 'if [[ -n "${CUDA_VISIBLE_DEVICES:-}" ]]; then GPU="$CUDA_VISIBLE_DEVICES"; fi\n'
  fi
}

print_steps() {
  printf '\n# The venv and the prerequisites once, here, for every node (one checkout); the checks.\n'
  print_cmd make env preflight
  printf '\n# Training: the same make train on every node with its rank; one that fails stops them all.\n'
  local task='NODE_RANK="$SLURM_NODEID" exec make train'
  if [[ "$GPU" != cpu ]]; then task='NODE_RANK="$SLURM_NODEID" GPU="${CUDA_VISIBLE_DEVICES:-$GPU}" exec make train'; fi
  # srun does not inherit sbatch's --cpus-per-task (Slurm 22.05+): each step asks again.
  local cmd=(srun "--nodes=$NNODES" --ntasks-per-node=1 "--cpus-per-task=$CPUS_PER_NODE")
  if [[ "$GPU" != cpu ]]; then cmd+=("--gres=gpu:$NPROC"); fi
  cmd+=(--export=ALL --kill-on-bad-exit=1 --wait=60 bash -c "$task")
  print_cmd "${cmd[@]}"
  cmd=(make all eval-base arena report)
  # A pilot (make sbatch PILOT=1) has no base-model evaluation; its report is the projection.
  if is_pilot; then
    cmd=(make all)
    printf '\n# The rest on this node: export, serving, evaluations, the projection of the full run; no server left behind.\n'
  else
    printf '\n# The rest on this node: export, serving, evaluations, the base model'"'"'s, the arena, the report; no server left behind.\n'
  fi
  printf "trap 'make stop' EXIT\n"
  print_cmd "${cmd[@]}"
}

# The experiment's part of the script: what a job array's task runs too.
print_experiment_body() {
  print_settings
  print_steps
}

print_script() {
  print_directives
  print_header
  print_experiment_body
}

# print_task_body INDEX: the body of the INDEX-th experiment, as make sbatch EXP=<it>
# SERVE_PORT=<port> MASTER_PORT=<port> prints it: ports of its own, as in make sweep (tasks
# may share a node): SERVE_PORT + 2 x INDEX (its base model on the next), MASTER_PORT + INDEX.
# Run it in a subshell.
print_task_body() {
  local pair kept=()
  EXP="${EXPERIMENTS[$1]}"
  SERVE_PORT=$((10#$SERVE_PORT + 2 * $1)) MASTER_PORT=$((10#$MASTER_PORT + $1))
  for pair in "${OVERRIDES[@]}"; do [[ "$pair" == SERVE_PORT=* ]] || kept+=("$pair"); done
  OVERRIDES=("${kept[@]}" "SERVE_PORT=$SERVE_PORT")
  load_env
  print_experiment_body
}

# print_array_script: one job array, task i the i-th experiment of EXPERIMENTS with its body.
print_array_script() {
  local index last=$((${#EXPERIMENTS[@]} - 1)) range
  range="0-$last${JOBS:+%$JOBS}"
  print_directives "$range"
  cat <<EOF
# Slurm job array of ${#EXPERIMENTS[@]} experiments, one task each:$(for index in "${!EXPERIMENTS[@]}"; do printf ' %s %s;' "$index" "${EXPERIMENTS[index]}"; done)
# each $NNODES node(s) x GPU=$GPU, env file $(repo_relative "$ENV_FILE"), commit $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown).
# Made by: $(made_by "EXPS=$(shell_quote "${EXPERIMENTS[*]}")${JOBS:+ JOBS=$JOBS}")
# Submit it from the repository root, in a checkout every node sees (shared storage, like
# OUTPUT_ROOT): sbatch job.sh. Task i runs what make sbatch EXP=<experiment i> prints for one
# experiment (below): its training on its node(s), then the rest, with its own run lock and
# server (.state/<exp>/), and ports of its own (tasks may share a node): SERVE_PORT + 2i,
# MASTER_PORT + i. Requeued, a task goes on where it stopped.
EOF
  if [[ "$SWANLAB_MODE" == cloud ]]; then
    printf '# SWANLAB_TOKEN: read from the env file, or exported before sbatch (sbatch passes the environment on).\n'
  fi
  print_preamble
  printf ': "${SLURM_ARRAY_TASK_ID:?run this through sbatch, as the job array it is}"\n'
  printf 'case "$SLURM_ARRAY_TASK_ID" in\n'
  for index in "${!EXPERIMENTS[@]}"; do
    printf '  %d) # %s\n' "$index" "${EXPERIMENTS[index]}"
    (print_task_body "$index") | sed 's/^./    &/'
    printf '    ;;\n'
  done
  printf '  *) echo "sbatch: the job array has tasks 0-%d, not $SLURM_ARRAY_TASK_ID" >&2; exit 1 ;;\nesac\n' "$last"
}

# submit FILE PRINTER: the script PRINTER prints goes to FILE and to sbatch (SUBMIT=1).
submit() {
  command -v sbatch >/dev/null 2>&1 || die "SUBMIT=1, but sbatch is not on PATH (no Slurm client on this machine)" \
    "run it on the cluster's login node, or print the script here (make sbatch ... > job.sh) and submit it there with sbatch job.sh"
  local file="$1"
  mkdir -p "$(dirname "$file")"
  "$2" | write_atomically "$file"
  log "wrote $(repo_relative "$file"); submitting it from $REPO_ROOT"
  # sbatch hands its environment to the job: not this make's (its command line in MAKEFLAGS
  # would override the job's own settings, e.g. GPU, in every make of the job).
  cd "$REPO_ROOT" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u LAB_RUN_OWNER -u SUBMIT sbatch "$file"
}

# EXPS: the experiments of a job array, each a valid name with a config, named once; JOBS,
# how many tasks run at once.
read_experiments() {
  EXPERIMENTS=()
  read -ra EXPERIMENTS <<<"${EXPS:-}"
  ((${#EXPERIMENTS[@]} > 0)) || return 0
  check_exps "${EXPERIMENTS[@]}"
  [[ -z "${JOBS:-}" || "$JOBS" =~ ^[1-9][0-9]{0,3}$ ]] ||
    die "JOBS='$JOBS' is not a number of array tasks to run at once" "set JOBS to a whole number from 1, or leave it empty (no limit of ours)"
  EXP="${EXPERIMENTS[0]}" # the job's resources: those of every task
}

main() {
  collect_overrides
  read_experiments
  # Only printed, like the runbook: env/example.env may stand in for a missing env/local.env
  # (never for a job that is submitted).
  if [[ "${SUBMIT:-0}" != 1 ]]; then export DRY_RUN=1; fi
  MASTER_ADDR=the-jobs-first-node # the job finds it in Slurm's node list
  export SKIP_GPU_CHECK=1
  load_env
  ((NODE_RANK == 0)) || warn "NODE_RANK=$NODE_RANK is ignored: each node of the job gets its rank from Slurm"
  validate_job_settings
  local printer=print_script file="$STATE_DIR/$EXP/sbatch.sh"
  if ((${#EXPERIMENTS[@]} > 0)); then printer=print_array_script file="$STATE_DIR/sbatch-array.sh"; fi
  case "${SUBMIT:-0}" in
    0) "$printer" ;;
    1) submit "$file" "$printer" ;;
    *) die "SUBMIT='$SUBMIT' is not 0 or 1" "make sbatch prints the script; make sbatch SUBMIT=1 submits it" ;;
  esac
}

main "$@"
