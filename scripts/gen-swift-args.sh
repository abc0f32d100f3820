#!/usr/bin/env bash
# Writes the flag names the locked ms-swift accepts for sft, export and deploy to
# env/swift-{sft,export,deploy}-args.txt, one per line, so preflight can check a
# config's keys in milliseconds instead of importing swift (about 20 s).
# Run it after changing the ms-swift version in the locks:  scripts/gen-swift-args.sh [PYTHON]
set -euo pipefail
export STEP_NAME=gen-swift-args
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

PYTHON="${1:-$REPO_ROOT/.venv/bin/python}"
[[ -x "$PYTHON" ]] || die "$PYTHON not found" "run 'make env' first, or pass a venv's python"

# The parser swift itself builds (swift.utils.parse_args), so aliases and the
# no_<flag> forms of booleans are included. Dash spellings (--max-length) are left
# out: preflight reads a key's dashes as underscores, like the parser does.
# shellcheck disable=SC2016 # Python source, not shell
LIST_FLAGS_PY='
import sys
import swift
import swift.arguments as arguments
from swift.utils.utils import _patch_get_type_hints
from transformers import HfArgumentParser

out_dir = sys.argv[1]
for command, class_name in (("sft", "SftArguments"), ("export", "ExportArguments"), ("deploy", "DeployArguments")):
    with _patch_get_type_hints():
        parser = HfArgumentParser([getattr(arguments, class_name)])
    names = {opt[2:] for action in parser._actions for opt in action.option_strings if opt.startswith("--")}
    names = sorted(n for n in names if "-" not in n and n != "help")
    # ENV: a block of environment variables that swift reads from a YAML config itself.
    lines = [f"# ms-swift {swift.__version__} {class_name}: flags `swift {command}` accepts (scripts/gen-swift-args.sh)", "ENV"] + names
    with open(f"{out_dir}/swift-{command}-args.txt", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"swift {command}: {len(names)} flags")
'

main() {
  TMP_DIR="$(mktemp -d)"
  trap 'rm -rf "$TMP_DIR"' EXIT
  log "asking ms-swift for its flags (imports swift: about 20 s)"
  "$PYTHON" -c "$LIST_FLAGS_PY" "$TMP_DIR" 2>/dev/null | sed "s/^/[$STEP_NAME] /" >&2
  local command
  for command in sft export deploy; do
    mv -f "$TMP_DIR/swift-$command-args.txt" "$REPO_ROOT/env/swift-$command-args.txt"
  done
  log "wrote env/swift-{sft,export,deploy}-args.txt"
}

main "$@"
