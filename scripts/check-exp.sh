#!/usr/bin/env bash
# Stops with the experiment message when EXP names no experiment: scripts/check-exp.sh NAME
# (the Makefile runs it before any step, a dry run included, where no script would say it).
set -euo pipefail
export STEP_NAME=make
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
check_experiment "${1:-}"
