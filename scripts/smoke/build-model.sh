#!/usr/bin/env bash
# Builds the smoke experiment's tiny gpt-oss: build-model.sh OUTPUT_DIR CORPUS.jsonl...
set -euo pipefail
export STEP_NAME=tiny-model
# shellcheck source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"

(($# >= 2)) || die "usage: build-model.sh OUTPUT_DIR CORPUS.jsonl..."
SKIP_GPU_CHECK=1 load_env
run_cmd PYTHONHASHSEED=0 python "$REPO_ROOT/scripts/smoke/build_tiny_model.py" "$@"
