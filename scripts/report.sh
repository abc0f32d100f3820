#!/usr/bin/env bash
# make report: report/$EXP.md (Chinese), its appendix report/$EXP.appendix.md (the commands and
# the step log), report/$EXP.html (the report as one self-contained page), report/$EXP-loss.png,
# report/$EXP-accuracy.png and report/$EXP.manifest.json from the run's own files. Python only
# parses and renders (scripts/py/report.py); this script gathers what only the shell knows: git
# state, GPUs, core count. Parts not run yet show as 未运行 with the make target to run.
set -euo pipefail
export STEP_NAME=report
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/fingerprint.sh
source "$REPO_ROOT/scripts/lib/fingerprint.sh"


# The report's fingerprint: the completion markers it reads, the template and the
# report code. Unchanged since the last report: nothing to write.
report_inputs() {
  compute_experiment_inputs report
}

main() {
  SKIP_GPU_CHECK=1 load_env
  # A pilot's report is the full run projected from it (scripts/pilot-report.sh).
  if is_pilot; then exec "$REPO_ROOT/scripts/pilot-report.sh"; fi
  begin_step
  if ! is_dry_run; then
    report_inputs
    if step_done report && [[ -f "$REPORT_DIR/$EXP.md" && -f "$REPORT_DIR/$EXP.appendix.md" && -f "$REPORT_DIR/$EXP.html" ]]; then
      log "${REPORT_DIR#"$REPO_ROOT"/}/$EXP.md is up to date with the run's files"
      return 0
    fi
  fi
  local cmd
  build_report_cmd cmd
  if is_dry_run; then run_cmd "${cmd[@]}"; return 0; fi
  require_command python
  cmd+=(--current-inputs "$(inputs_dir)" --inputs-digest "${STEP_DIGEST[report]}")
  mkdir -p "$REPORT_DIR"
  local status=0
  run_cmd "${cmd[@]}" || status=$?
  ((status == 0)) || die "could not write the report (exit $status)" "read the error above"
  log "done: ${REPORT_DIR#"$REPO_ROOT"/}/$EXP.md"
}

main "$@"
