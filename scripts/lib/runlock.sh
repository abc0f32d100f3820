# shellcheck shell=bash
# One make at a time per experiment: the make that runs a step holds
# .state/<EXP>/run.lock (its pid, target and start time). Another make on the same
# experiment refuses at once; a lock whose make is gone (finished, or killed) is
# stale and taken over. Nothing releases it: a make cannot run code when it exits.
# LAB_RUN_OWNER is the pid of the top-level make (the Makefile sets it), so the
# sub-makes of `make all` or `make smoke` share their parent's lock.
# shellcheck source=/dev/null
source "${BASH_SOURCE[0]%/*}/common.sh"
loaded_before runlock && return 0

run_lock_file() { printf '%s/%s/run.lock' "$STATE_DIR" "$EXP"; }

# The value of KEY in a lock file (KEY=value lines).
lock_field() { if [[ -f "$1" ]]; then sed -n "s/^$2=//p" "$1" | head -n 1; fi; }

is_live_make() { [[ "$1" =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q make; }

# acquire_run_lock TARGET: takes the experiment's lock for LAB_RUN_OWNER, or dies
# naming the make that holds it.
acquire_run_lock() {
  local target="$1" owner="${LAB_RUN_OWNER:-$PPID}" file holder
  file="$(run_lock_file)"
  mkdir -p "$(dirname "$file")"
  exec {lock_fd}>>"$file.flock"
  flock -w 5 "$lock_fd" || die "could not lock $(repo_relative "$file.flock")" "retry in a moment"
  holder="$(lock_field "$file" pid)"
  if [[ -n "$holder" && "$holder" != "$owner" ]]; then
    if is_live_make "$holder"; then
      flock -u "$lock_fd"
      die "another make works on $EXP: pid $holder, 'make $(lock_field "$file" target)', since $(lock_field "$file" since)" \
        "wait for it to finish (make status EXP=$EXP shows its progress), or stop it (kill $holder) first"
    fi
  fi
  if [[ "$holder" != "$owner" ]]; then
    printf 'pid=%s\ntarget=%s\nsince=%s\n' "$owner" "$target" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" | write_atomically "$file"
  fi
  flock -u "$lock_fd"
}
