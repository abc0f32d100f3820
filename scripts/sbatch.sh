#!/usr/bin/env bash
# shellcheck disable=SC2016 # single-quoted $ and $(...) are what this script prints
# make sbatch: the whole experiment as a Slurm batch script on stdout, the twin of
# make runbook for clusters: NNODES nodes with the GPUs of GPU each run this
# checkout's own `make train` with their rank (srun), then the first node runs the
# rest of the pipeline (make all eval-base report: export, serving, the evaluations of
# the fine-tuned and the base model, the report).
#   make sbatch GPU=0,1,2,3 NNODES=2 > job.sh && sbatch job.sh
#   make sbatch GPU=0,1,2,3 NNODES=2 SUBMIT=1     writes .state/<exp>/sbatch.sh and submits it
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

print_directives() {
  printf '#!/usr/bin/env bash\n'
  printf '#SBATCH --job-name=%s\n' "$EXP"
  printf '#SBATCH --nodes=%s\n' "$NNODES"
  printf '#SBATCH --ntasks-per-node=1\n'
  if [[ "$GPU" != cpu ]]; then printf '#SBATCH --gres=gpu:%s\n' "$NPROC"; fi
  printf '#SBATCH --cpus-per-task=%s\n' "$CPUS_PER_NODE"
  if [[ -n "${JOB_TIME_LIMIT:-}" ]]; then printf '#SBATCH --time=%s\n' "$JOB_TIME_LIMIT"; fi
  if [[ -n "${JOB_PARTITION:-}" ]]; then printf '#SBATCH --partition=%s\n' "$JOB_PARTITION"; fi
  if [[ -n "${JOB_ACCOUNT:-}" ]]; then printf '#SBATCH --account=%s\n' "$JOB_ACCOUNT"; fi
  # In the directory it is submitted from, which always exists (a missing folder
  # would make the job fail without a log); appended to when the job is requeued.
  printf '#SBATCH --output=slurm-%%x-%%j.out\n'
  printf '#SBATCH --open-mode=append\n'
  printf '#SBATCH --requeue\n'
}

print_header() {
  local made_by pair
  made_by="make sbatch EXP=$EXP GPU=$GPU NNODES=$NNODES ENV_FILE=$(repo_relative "$ENV_FILE")"
  for pair in "${OVERRIDES[@]}" "${JOB_OVERRIDES[@]}"; do made_by+=" $(shell_quote "$pair")"; done
  cat <<EOF
# Slurm batch script of experiment $EXP: $NNODES node(s) x GPU=$GPU, env file $(repo_relative "$ENV_FILE"), commit $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown).
# Made by: $made_by
# Submit it from the repository root, in a checkout every node sees (shared storage, like
# OUTPUT_ROOT): sbatch job.sh. Each node runs this checkout's make train with its rank, then
# the first node runs the rest (export, serving, evaluations, report). Requeued, the job
# goes on where it stopped: finished steps are kept, the training resumes from its checkpoint.
EOF
  if [[ "$SWANLAB_MODE" == cloud ]]; then
    printf '# SWANLAB_TOKEN: read from the env file, or exported before sbatch (sbatch passes the environment on).\n'
  fi
  cat <<EOF
set -euo pipefail
[[ -f Makefile && -f configs/$CONFIG_EXP/sft.yaml ]] || { echo "sbatch: submit this from the repository root" >&2; exit 1; }
: "\${SLURM_JOB_NODELIST:?run this through sbatch}"
EOF
}

# The settings every make below gets, on every node (the env file gives the rest).
print_settings() {
  local pair line="export"
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
  reset_cmd
  CMD=(make env preflight)
  print_cmd
  printf '\n# Training: the same make train on every node with its rank; one that fails stops them all.\n'
  local task='NODE_RANK="$SLURM_NODEID" exec make train'
  if [[ "$GPU" != cpu ]]; then task='NODE_RANK="$SLURM_NODEID" GPU="${CUDA_VISIBLE_DEVICES:-$GPU}" exec make train'; fi
  reset_cmd
  # srun does not inherit sbatch's --cpus-per-task (Slurm 22.05+): each step asks again.
  CMD=(srun "--nodes=$NNODES" --ntasks-per-node=1 "--cpus-per-task=$CPUS_PER_NODE")
  if [[ "$GPU" != cpu ]]; then CMD+=("--gres=gpu:$NPROC"); fi
  CMD+=(--export=ALL --kill-on-bad-exit=1 --wait=60 bash -c "$task")
  print_cmd
  reset_cmd
  CMD=(make all eval-base report)
  # A pilot (make sbatch PILOT=1) has no base-model evaluation; its report is the projection.
  if is_pilot; then
    CMD=(make all)
    printf '\n# The rest on this node: export, serving, evaluations, the projection of the full run; no server left behind.\n'
  else
    printf '\n# The rest on this node: export, serving, evaluations, the base model'"'"'s, the report; no server left behind.\n'
  fi
  printf "trap 'make stop' EXIT\n"
  print_cmd
}

print_script() {
  print_directives
  print_header
  print_settings
  print_steps
}

# SUBMIT=1: the script goes to .state/<exp>/sbatch.sh and to sbatch.
submit() {
  command -v sbatch >/dev/null 2>&1 || die "SUBMIT=1, but sbatch is not on PATH (no Slurm client on this machine)" \
    "run it on the cluster's login node, or print the script here (make sbatch ... > job.sh) and submit it there with sbatch job.sh"
  local file="$STATE_DIR/$EXP/sbatch.sh"
  mkdir -p "$(dirname "$file")"
  print_script | write_atomically "$file"
  log "wrote $(repo_relative "$file"); submitting it from $REPO_ROOT"
  # sbatch hands its environment to the job: not this make's (its command line in MAKEFLAGS
  # would override the job's own settings, e.g. GPU, in every make of the job).
  cd "$REPO_ROOT" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u LAB_RUN_OWNER -u SUBMIT sbatch "$file"
}

main() {
  collect_overrides
  # Only printed, like the runbook: env/example.env may stand in for a missing env/local.env
  # (never for a job that is submitted).
  if [[ "${SUBMIT:-0}" != 1 ]]; then export DRY_RUN=1; fi
  MASTER_ADDR=the-jobs-first-node # the job finds it in Slurm's node list
  SKIP_GPU_CHECK=1 load_env
  ((NODE_RANK == 0)) || warn "NODE_RANK=$NODE_RANK is ignored: each node of the job gets its rank from Slurm"
  validate_job_settings
  case "${SUBMIT:-0}" in
    0) print_script ;;
    1) submit ;;
    *) die "SUBMIT='$SUBMIT' is not 0 or 1" "make sbatch prints the script; make sbatch SUBMIT=1 submits it" ;;
  esac
}

main "$@"
