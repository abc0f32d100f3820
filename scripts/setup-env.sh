#!/usr/bin/env bash
# make env: the project venv (.venv) from the lock of this machine's profile
# (cpu or gpu), plus the deploy-only lmdeploy venv on GPU machines, plus jq.
# A venv whose lock is unchanged is left alone.
set -euo pipefail
export STEP_NAME=env
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"

PYTHON="${PYTHON:-python3}"
# uv, pinned: it installs a full lock in seconds where pip takes minutes.
UV_VERSION=0.13.8
UV_DIR="$REPO_ROOT/.cache/uv-$UV_VERSION"
UV="$UV_DIR/bin/uv"

# Installs uv once, beside the repo (.cache/ is ignored), with the machine's pip.
ensure_uv() {
  [[ -x "$UV" && "${RUNBOOK:-0}" != 1 ]] && return 0
  run_cmd PIP_DISABLE_PIP_VERSION_CHECK=1 "$PYTHON" -m pip install --quiet --target "$UV_DIR" "uv==$UV_VERSION" 2> >(grep -v "^WARNING: Location 'file://.*' is ignored: it is neither a file nor a directory" >&2)
}

# pip's find-links folders (PIP_FIND_LINKS or pip's config), one a line: uv reads
# neither, and a local build (the CPU torch on such machines) may only be there.
pip_find_links() {
  local links link
  links="${PIP_FIND_LINKS:-$("$PYTHON" -m pip config get global.find-links 2>/dev/null || true)}"
  for link in $links; do
    if [[ -d "$link" ]]; then printf '%s\n' "$link"; fi
  done
}

# print_find_links_resolver: the runbook's line that finds pip's find-links folders
# when it runs (pip_find_links, as shell), once.
print_find_links_resolver() {
  [[ -z "${FIND_LINKS_PRINTED:-}" ]] || return 0
  FIND_LINKS_PRINTED=1
  # shellcheck disable=SC2016 # printed for the runbook, expanded when it runs
  printf '%s\n' '# pip'"'"'s find-links folders on this machine, if any (uv reads neither PIP_FIND_LINKS nor pip'"'"'s config)' \
    'FIND_LINKS=(); for link in ${PIP_FIND_LINKS:-$(python3 -m pip config get global.find-links 2>/dev/null)}; do' \
    '  if [[ -d "$link" ]]; then FIND_LINKS+=(--find-links "$link"); fi' \
    'done'
}

# write_bytecode_on_import DIR: DIR's Python writes each module's bytecode when it first
# imports it, even where PYTHONDONTWRITEBYTECODE is set (a container habit; without .pyc files
# every tool start compiles its imports again, twice as slow). Compiling the whole lock up
# front instead (uv --compile-bytecode) took 46 CPU-seconds on 2 cores (2026-12-05), most of
# them for modules no step imports; the smoke's imports compile in a few seconds, once.
write_bytecode_on_import() {
  local line='import sys; sys.dont_write_bytecode = False'
  local purelib='import sysconfig; print(sysconfig.get_path("purelib"))'
  if is_dry_run; then
    # shellcheck disable=SC2016 # the runbook's line: $(...) runs where the runbook runs
    printf 'echo %s >"$(%s/bin/python -c %s)/lab-bytecode.pth"\n' \
      "$(shell_quote "$line")" "$(display_path "$1")" "$(shell_quote "$purelib")"
  else
    echo "$line" >"$("$1/bin/python" -c "$purelib")/lab-bytecode.pth"
  fi
}

# install_venv DIR LOCK: (re)creates DIR from LOCK unless its stamp matches.
install_venv() {
  local dir="$1" lock="$2" stamp digest
  stamp="$(venv_stamp "$dir")"
  digest="$(lock_digest "$lock")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$digest" && "${RUNBOOK:-0}" != 1 ]]; then
    log "${dir#"$REPO_ROOT"/} is up to date with ${lock#"$REPO_ROOT"/}"
    return 0
  fi
  is_dry_run || "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    die "$PYTHON is not Python 3.11, which the locks were made for" "set PYTHON=/path/to/python3.11"
  # A venv cannot be moved after creation, so build in place and write the
  # stamp last: an interrupted install has no stamp and is rebuilt next time.
  run_cmd rm -rf "$dir"
  run_cmd "$PYTHON" -m venv "$dir"
  ensure_uv
  local install=("$UV" pip install --quiet --python "$dir/bin/python" --no-deps --requirement "$lock") link
  if [[ "${RUNBOOK:-0}" == 1 ]]; then
    # The folders of the machine that runs the runbook, not of the one that printed it.
    print_find_links_resolver
    # shellcheck disable=SC2016 # expanded when the runbook runs
    install+=("$(shell_expr '"${FIND_LINKS[@]}"')")
  else
    while IFS= read -r link; do install+=(--find-links "$link"); done < <(pip_find_links)
  fi
  run_cmd "${install[@]}"
  write_bytecode_on_import "$dir"
  if is_dry_run; then
    printf "sha256sum %s | cut -d' ' -f1 >%s\n" "$(display_path "$lock")" "$(display_path "$stamp")"
  else
    printf '%s\n' "$digest" >"$stamp"
  fi
}

ensure_jq() {
  if [[ "${RUNBOOK:-0}" == 1 ]]; then
    printf 'command -v jq >/dev/null || { echo "runbook: install jq (apt-get install -y jq)" >&2; exit 1; }\n'
    return 0
  fi
  command -v jq >/dev/null 2>&1 && return 0
  if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    run_cmd apt-get update -q
    run_cmd apt-get install -y -q jq
  else
    die "jq is not installed" "install it: sudo apt-get install -y jq (or conda install -c conda-forge jq)"
  fi
}

main() {
  SKIP_GPU_CHECK=1 load_env
  # The venv is built with the machine's Python: load_env put .venv/bin first on
  # PATH, where python3 would be the venv's own (gone once the rebuild removes it).
  PATH="${PATH//"$VENV_DIR/bin:"/}"
  hash -r
  begin_step
  # The runbook (RUNBOOK=1) prints the profile asked for, whatever machine prints it.
  if [[ "$GPU" != cpu && "${RUNBOOK:-0}" != 1 ]] && ! command -v nvidia-smi >/dev/null 2>&1; then
    warn "GPU=$GPU but nvidia-smi is not on PATH: building the CPU profile"
    DEVICE_PROFILE=cpu
  fi
  ensure_jq
  log "profile: $DEVICE_PROFILE (GPU=$GPU)"
  install_venv "$VENV_DIR" "$(profile_lock)"
  if [[ "$DEVICE_PROFILE" == gpu ]]; then
    install_venv "$DEPLOY_VENV_DIR" "$DEPLOY_LOCK"
  fi
}

main "$@"
