#!/usr/bin/env bash
# Variants of an experiment (docs/variants.md): configs/<name>/variant.yaml
# states what differs from its base; the native configs beside it are generated from the
# base's and kept in git, so each variant runs without this repo's scripts too.
#   make new-exp FROM=<exp> NAME=<name> SET="k=v k=v" [CONFIG=sft] [WHY="..."]   one variant
#   make new-grid FROM=<exp> GRID="k=v1,v2,v3 k1=a,b+k2=c,d" [WHY="..."]         one per value
#   make variants                                                                regenerate all
#   scripts/variants.sh check [NAME...]    exit 1 when a variant's files are not what it makes
set -euo pipefail
export STEP_NAME=variants
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/config_keys.sh
source "$REPO_ROOT/scripts/lib/config_keys.sh"
# shellcheck source=lib/server.sh
source "$REPO_ROOT/scripts/lib/server.sh"
# shellcheck source=lib/commands.sh
source "$REPO_ROOT/scripts/lib/commands.sh"
# shellcheck source=lib/eval_config.sh
source "$REPO_ROOT/scripts/lib/eval_config.sh"
# shellcheck source=lib/variants.sh
source "$REPO_ROOT/scripts/lib/variants.sh"

VENV_DIR="$REPO_ROOT/.venv" # config_python: the venv's PyYAML (no env file is needed to write configs)

main() {
  local command="${1:-}"
  shift || true
  case "$command" in
    new)
      if is_dry_run; then
        printf 'scripts/py/variant.py new --from %s --name %s --set %s --config %s\n' "$(shell_quote "${FROM:-}")" \
          "$(shell_quote "${NAME:-}")" "$(shell_quote "${SET:-}")" "$(shell_quote "${CONFIG:-sft}")"
        return 0
      fi
      variant_py new --from "${FROM:-}" --name "${NAME:-}" --set "${SET:-}" --config "${CONFIG:-sft}" --why "${WHY:-}"
      ;;
    grid)
      if is_dry_run; then
        printf 'scripts/py/variant.py grid --from %s --grid %s\n' "$(shell_quote "${FROM:-}")" "$(shell_quote "${GRID:-}")"
        return 0
      fi
      variant_py grid --from "${FROM:-}" --grid "${GRID:-}" --why "${WHY:-}"
      ;;
    generate)
      if is_dry_run; then printf 'scripts/py/variant.py generate %s\n' "$*"; return 0; fi
      variant_py generate "$@"
      ;;
    check) variant_py generate --check "$@" ;;
    *) die "unknown command '$command'" "use: scripts/variants.sh new|grid|generate|check (make new-exp, make new-grid, make variants)" ;;
  esac
}

main "$@"
