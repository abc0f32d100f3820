#!/usr/bin/env bash
# make compare EXPS="a b c": report/compare-a-b-c.md (Chinese), its loss and score charts,
# experiments side by side: the configuration keys that differ, the training summaries, every
# benchmark with its difference to the first experiment, each one's provenance. Each
# experiment's paths are gathered the way scripts/report.sh gathers them (load_env per
# experiment: the same env file, roots and names); scripts/py/compare.py reads them with the
# report's own parser and renders report/compare.zh.md. An experiment without a config is an
# error; one never trained shows as not run. DRY_RUN=1 prints the command.
set -euo pipefail
export STEP_NAME=compare
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/server.sh
source "$REPO_ROOT/scripts/lib/server.sh"
# shellcheck source=lib/commands.sh
source "$REPO_ROOT/scripts/lib/commands.sh"

COMPARE_TEMPLATE="$REPO_ROOT/report/compare.zh.md"

# check_experiments NAME...: two or more experiments, each with a config, each once.
check_experiments() {
  (($# >= 2)) || die "make compare needs two or more experiments (EXPS='$*')" \
    'name them: make compare EXPS="gpt-oss-20b-sft-v1 gpt-oss-20b-sft-r32" (the first is the reference)'
  check_exps "$@"
}

main() {
  local exps
  read -ra exps <<<"${EXPS:-}"
  check_experiments "${exps[@]}"
  local cmd=(python "$REPO_ROOT/scripts/py/compare.py")
  add_experiment_args cmd "${exps[@]}"
  cmd+=(--template "$COMPARE_TEMPLATE" --out-dir "$REPORT_DIR" --deploy-venv "$DEPLOY_VENV_DIR"
    --env-file "$(repo_relative "$ENV_FILE")")
  if is_dry_run; then
    # shellcheck disable=SC2016 # printed for the shell that runs it
    cmd+=(--git-commit "$(shell_expr '"$(git rev-parse HEAD)"')")
    print_cmd "${cmd[@]}"
    return 0
  fi
  cmd+=(--git-commit "$(git_commit)" --git-dirty "$(git_dirty)")
  require_command python
  mkdir -p "$REPORT_DIR"
  local status=0 written
  # Not run_cmd: that records the command in one experiment's steps.jsonl, and a comparison is none of theirs.
  print_cmd "${cmd[@]}" | sed 's/^/+ /' >&2
  written="$("${cmd[@]}")" || status=$?
  ((status == 0)) || die "could not write the comparison (exit $status)" "read the error above"
  log "done: $(repo_relative "$written") (and its -loss.png, -scores.png)"
}

main "$@"
