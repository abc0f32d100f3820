# shellcheck shell=bash
# shellcheck disable=SC2034 # STEP_STATUS is lib/fingerprint.sh's, read by the sourcing scripts
# The store of shared evaluations: one folder per evaluation of the base model, named by its
# evaluation fingerprint (the step's digest, which leaves out what only names or locates an
# experiment: lib/fingerprint.sh shared_names), $RESULTS_ROOT/.store/<digest>/. Each
# experiment's results/<exp>/<exp>-base/<bench> is a link to it, so a variant that changes
# only training settings links the evaluation another experiment made instead of serving and
# evaluating the base model again. An entry is reused only when complete: its completion
# marker (lab-eval.json) holds the digest. It records who made it (lab-store.json); the make
# that evaluates it holds its lock (<digest>.lock, flock), and another make that wants the
# same entry waits, then links it.
# Sourced by lib/fingerprint.sh; its functions read load_env's settings and eval_config.sh's
# EVAL_DONE_FILE when called.
# shellcheck source=/dev/null
source "${BASH_SOURCE[0]%/*}/common.sh"
loaded_before store && return 0
# shellcheck source=/dev/null
source "$REPO_ROOT/scripts/lib/eval_config.sh"

STORE_RECORD_FILE=lab-store.json

store_root() { printf '%s/.store' "$RESULTS_ROOT"; }
store_entry() { printf '%s/%s' "$(store_root)" "$1"; }

# is_shared_step STEP: the step's outputs live in the store (fingerprint.py reports its entry).
is_shared_step() { [[ "${STEP_STORE[$1]:--}" != - ]]; }

# store_entry_complete DIGEST: the entry's completion marker holds DIGEST.
store_entry_complete() {
  [[ "$(jq -r '.inputs_digest // empty' "$(store_entry "$1")/$EVAL_DONE_FILE" 2>/dev/null)" == "$1" ]]
}

# store_producer DIGEST: the experiment that made (or is making) the entry, or nothing.
store_producer() { jq -r '.experiment // empty' "$(store_entry "$1")/$STORE_RECORD_FILE" 2>/dev/null || true; }

# linked_entry DIR: the digest of the store entry DIR links to, or nothing (not a link into the store).
linked_entry() {
  [[ -L "$1" ]] || return 0
  local target
  target="$(readlink -f "$1")"
  [[ "$(dirname "$target")" == "$(readlink -f "$(store_root)")" ]] && basename "$target"
  return 0
}

# link_to_entry DIR DIGEST: DIR becomes a link to the entry (relative: the results root may move).
link_to_entry() {
  mkdir -p "$(dirname "$1")"
  ln -sfn "$(realpath -m --relative-to="$(dirname "$1")" "$(store_entry "$2")")" "$1"
}

# link_stored STEP DIR LABEL: DIR links to the complete store entry of STEP's current inputs.
# An older link is replaced (its entry stays: others may link it); a folder of results of
# other inputs is kept aside, as eval.sh does.
link_stored() {
  local step="$1" dir="$2" label="$3" digest="${STEP_DIGEST[$1]}" moved
  if [[ -L "$dir" ]]; then
    rm -f "$dir"
  elif [[ -e "$dir" ]]; then
    move_aside "$dir" moved
    log "$label: $(display_path "$dir") held results of other inputs; moved it to $(display_path "$moved") (kept)"
  fi
  link_to_entry "$dir" "$digest"
  log "$label: evaluated already by $(store_producer "$digest" | grep . || echo 'an earlier run') (evaluation fingerprint ${digest:0:12}): linked, not evaluated again"
  STEP_STATUS["$step"]="done"
}

# claim_entry DIR DIGEST SERVED: DIR links to the entry, which this experiment evaluates now:
# its record names the experiment and served name (an interrupted evaluation is resumed only
# under them: its cached predictions are filed under the served name).
claim_entry() {
  local entry
  entry="$(store_entry "$2")"
  mkdir -p "$entry"
  link_to_entry "$1" "$2"
  jq -nc --arg exp "$EXP" --arg served "$3" --arg digest "$2" --arg since "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    '{experiment: $exp, served: $served, digest: $digest, since: $since}' | write_atomically "$entry/$STORE_RECORD_FILE"
}

# claimed_by_us DIGEST SERVED: the entry's record names this experiment and served name.
claimed_by_us() {
  local file
  file="$(store_entry "$1")/$STORE_RECORD_FILE"
  [[ -f "$file" ]] && [[ "$(jq -r '"\(.experiment)\t\(.served)"' "$file" 2>/dev/null)" == "$EXP"$'\t'"$2" ]]
}

# STORE_LOCK_FDS: the entry locks this process holds (released when it exits).
STORE_LOCK_FDS=()

# lock_entries DIGEST...: takes each entry's lock, in sorted order (two makes wanting some of
# the same entries never wait on each other in a circle); waits for a make evaluating one.
lock_entries() {
  local digest fd file
  mkdir -p "$(store_root)"
  while read -r digest; do
    [[ -n "$digest" ]] || continue
    file="$(store_entry "$digest").lock"
    exec {fd}>>"$file"
    if ! flock -n "$fd"; then
      log "waiting for $(store_producer "$digest" | grep . || echo 'another make'), which evaluates store entry ${digest:0:12} now ($(display_path "$file"))"
      flock "$fd"
    fi
    STORE_LOCK_FDS+=("$fd")
  done < <(printf '%s\n' "$@" | sort -u)
}

# without_store_locks CMD...: runs CMD without the entry locks' descriptors, so a process
# that outlives this one (the server deploy.sh starts) never holds an entry's lock.
without_store_locks() {
  (
    local fd
    for fd in "${STORE_LOCK_FDS[@]}"; do exec {fd}>&-; done
    exec "$@"
  )
}
