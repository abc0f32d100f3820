#!/usr/bin/env bash
# make report: report/$EXP.md (Chinese), report/$EXP-loss.png, report/$EXP-accuracy.png and
# report/$EXP.manifest.json from the run's own files. Python only parses and renders
# (scripts/py/report.py); this script gathers what only the shell knows: git state,
# GPUs, core count. Parts not run yet show as 未运行 with the make target to run.
set -euo pipefail
export STEP_NAME=report
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/commands.sh
source "$REPO_ROOT/scripts/lib/commands.sh"
# shellcheck source=lib/fingerprint.sh
source "$REPO_ROOT/scripts/lib/fingerprint.sh"


git_commit() { git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || printf 'unknown'; }

# 1 when the tree differs from the commit, untracked files included (ignored outputs do not count).
git_dirty() {
  if [[ -n "$(git -C "$REPO_ROOT" status --porcelain 2>/dev/null)" ]]; then printf 1; else printf 0; fi
}

gpu_names() {
  command -v nvidia-smi >/dev/null 2>&1 || return 0
  [[ "$GPU" == cpu ]] && return 0
  local index
  for index in "${GPU_INDICES[@]}"; do
    nvidia-smi --query-gpu=name --format=csv,noheader -i "$index" 2>/dev/null || true
  done
}

# The report's fingerprint: the completion markers it reads, the template and the
# report code. Unchanged since the last report: nothing to write.
report_inputs() {
  # shellcheck source=lib/server.sh
  source "$REPO_ROOT/scripts/lib/server.sh"
  # shellcheck source=lib/eval_config.sh
  source "$REPO_ROOT/scripts/lib/eval_config.sh"
  compute_experiment_inputs report
}

main() {
  SKIP_GPU_CHECK=1 load_env
  begin_step
  if ! is_dry_run; then
    report_inputs
    if step_done report && [[ -f "$REPORT_DIR/$EXP.md" ]]; then
      log "${REPORT_DIR#"$REPO_ROOT"/}/$EXP.md is up to date with the run's files"
      return 0
    fi
  fi
  reset_cmd
  CMD=(python "$REPO_ROOT/scripts/py/report.py"
    --exp "$EXP"
    --run-dir "$RUN_DIR" --export-dir "$EXPORT_DIR" --results-dir "$RESULTS_DIR"
    --steps "$STATE_DIR/$EXP/steps.jsonl" --config "$EXP_DIR/sft.yaml"
    --lock-file "$(profile_lock)" --template "$(report_template)"
    --out-dir "$REPORT_DIR" --profile "$DEVICE_PROFILE" --gpu-setting "$GPU"
    --deploy-venv "$DEPLOY_VENV_DIR" --env-file "${ENV_FILE#"$REPO_ROOT"/}")
  if is_dry_run; then
    # The facts below are measured at run time; the dry run shows where they come from.
    CMD+=(--git-commit '<git rev-parse HEAD>' --git-dirty '<1 if git status shows changes>'
      --cpu-cores '<nproc>' --gpus '<nvidia-smi --query-gpu=name, one a line>')
    run_cmd
    return 0
  fi
  require_command python
  CMD+=(--git-commit "$(git_commit)" --git-dirty "$(git_dirty)" --cpu-cores "$(nproc)" --gpus "$(gpu_names)"
    --current-inputs "$(inputs_dir)" --inputs-digest "${STEP_DIGEST[report]}")
  mkdir -p "$REPORT_DIR"
  local status=0
  run_cmd || status=$?
  ((status == 0)) || die "could not write the report (exit $status)" "read the error above"
  log "done: ${REPORT_DIR#"$REPO_ROOT"/}/$EXP.md"
}

main "$@"
