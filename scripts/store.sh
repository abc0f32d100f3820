#!/usr/bin/env bash
# scripts/store.sh clean-smoke: make clean's part of the store of shared evaluations
# (results/.store, lib/store.sh): the entries a smoke run made (smoke, its variants and
# pilots: smoke-*) that no other experiment's results link to. Another experiment's entries,
# and entries that record no maker, stay. DRY_RUN=1 prints what it would remove.
set -euo pipefail
export STEP_NAME=clean
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

STORE="$REPO_ROOT/results/.store"

is_smoke_run() { [[ "$1" == smoke || "$1" == smoke-* ]]; }

# linked_by_others: the entries the results of an experiment that is no smoke run link to.
linked_by_others() {
  local link exp
  for link in "$REPO_ROOT"/results/*/*/*; do
    [[ -L "$link" ]] || continue
    exp="${link#"$REPO_ROOT"/results/}"
    exp="${exp%%/*}"
    is_smoke_run "$exp" || readlink -f "$link"
  done
}

clean_smoke() {
  [[ -d "$STORE" ]] || return 0
  local entry maker kept
  kept="$(linked_by_others)"
  for entry in "$STORE"/*/; do
    entry="${entry%/}"
    [[ -d "$entry" ]] || continue
    maker="$(jq -r '.experiment // empty' "$entry/lab-store.json" 2>/dev/null || true)"
    is_smoke_run "$maker" || continue
    grep -qxF "$(readlink -f "$entry")" <<<"$kept" && continue
    if is_dry_run; then
      printf 'rm -rf %s %s\n' "$(display_path "$entry")" "$(display_path "$entry.lock")"
    else
      rm -rf "$entry" "$entry.lock"
    fi
  done
}

case "${1:-}" in
  clean-smoke) clean_smoke ;;
  *) die "usage: scripts/store.sh clean-smoke" "make clean runs it" ;;
esac
