#!/usr/bin/env bash
# make table EXPS="a b c": the thesis's results table, report/table-a-b-c.csv, .tex (booktabs) and
# .md: the base model once per base model and each experiment's fine-tuned model, one column per
# benchmark in the lab's table's order, from checked results only (scripts/py/table.py). Each
# experiment's paths are gathered the way make report gathers them. DRY_RUN=1 prints the command.
set -euo pipefail
export STEP_NAME=table
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/server.sh
source "$REPO_ROOT/scripts/lib/server.sh"
# shellcheck source=lib/commands.sh
source "$REPO_ROOT/scripts/lib/commands.sh"

main() {
  local exps written status=0
  read -ra exps <<<"${EXPS:-}"
  ((${#exps[@]} >= 1)) || die "make table needs one or more experiments (EXPS='')" \
    'name them: make table EXPS="gpt-oss-20b-sft-v1 gpt-oss-20b-sft-r32"'
  check_exps "${exps[@]}"
  local cmd=(python "$REPO_ROOT/scripts/py/table.py")
  add_experiment_args cmd "${exps[@]}"
  cmd+=(--out-dir "$REPORT_DIR" --deploy-venv "$DEPLOY_VENV_DIR" --env-file "$(repo_relative "$ENV_FILE")")
  if is_dry_run; then
    print_cmd "${cmd[@]}"
    return 0
  fi
  require_command python
  mkdir -p "$REPORT_DIR"
  # Not run_cmd: that records the command in one experiment's steps.jsonl, and the table is none of theirs.
  print_cmd "${cmd[@]}" | sed 's/^/+ /' >&2
  written="$("${cmd[@]}")" || status=$?
  ((status == 0)) || die "could not write the table (exit $status)" "read the error above"
  log "done: $(repo_relative "${written%.md}").{csv,tex,md}"
}

main "$@"
