# shellcheck shell=bash
# Training on several nodes (NNODES > 1): each node runs the same `make train` with
# its NODE_RANK. Rank 0's torchrun opens the rendezvous at MASTER_ADDR:MASTER_PORT
# only after rank 0 has recorded the run's inputs, so a node that sees the port
# answer can compare its own inputs with rank 0's record. Every node records its
# digest of the training inputs in the run dir, which all nodes must see (shared
# storage): $RUN_DIR/lab-node-<rank>.json.
# Sourced at any point after common.sh; its functions read load_env's settings when called.
# shellcheck source=/dev/null
source "${BASH_SOURCE[0]%/*}/common.sh"
loaded_before nodes && return 0
# shellcheck source=/dev/null
source "$REPO_ROOT/scripts/lib/env.sh"

is_multi_node() { ((NNODES > 1)); }

node_record() { printf '%s/lab-node-%s.json' "$RUN_DIR" "$1"; }

# shellcheck disable=SC2016 # the inner bash expands them
master_answers() { timeout 3 bash -c ': >"/dev/tcp/$0/$1"' "$MASTER_ADDR" "$MASTER_PORT" 2>/dev/null; }

# wait_for_master: until rank 0's torchrun answers at MASTER_ADDR:MASTER_PORT, at most
# MASTER_WAIT_TIMEOUT seconds (default 900: the nodes of a job start together, but a
# colleague may start rank 0 by hand a few minutes later).
wait_for_master() {
  local limit="${MASTER_WAIT_TIMEOUT:-900}" deadline
  master_answers && return 0
  deadline=$((SECONDS + limit))
  log "node rank $NODE_RANK: waiting up to ${limit}s for rank 0's torchrun at $MASTER_ADDR:$MASTER_PORT"
  until master_answers; do
    ((SECONDS < deadline)) || return 1
    sleep 2
  done
}

# write_node_record RANK RESUME [MATCHES]: this node's digest of the training inputs
# (STEP_DIGEST[train]); rank 0 adds the checkpoint it resumes from (RESUME, or
# empty), the others whether their digest matches rank 0's (MATCHES: true|false).
write_node_record() {
  mkdir -p "$RUN_DIR"
  jq -n --argjson rank "$1" --arg resume "$2" --arg matches "${3:-}" --arg host "$(hostname)" \
    --arg digest "${STEP_DIGEST[train]}" --arg time "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    '{rank: $rank, host: $host, inputs_digest: $digest, recorded_at: $time}
      + (if $resume == "" then {} else {resume_from_checkpoint: $resume} end)
      + (if $matches == "" then {} else {matches_rank_0: ($matches == "true")} end)' |
    write_atomically "$(node_record "$1")"
}

# read_first_node_record: rank 0's record, which it wrote before its torchrun opened
# the port (a few seconds' grace for shared storage), into the associative array RECORD: its
# digest (of rank 0's inputs) and resume (the checkpoint rank 0 resumes from, or empty).
# read_first_node_record RECORD
# shellcheck disable=SC2034 # RECORD is the caller's (a nameref)
read_first_node_record() {
  local -n read_first_node_record_out="$1"
  local record waited=0
  record="$(node_record 0)"
  until [[ -f "$record" ]]; do
    ((waited < ${NODE_RECORD_WAIT:-30})) || die "rank 0 answers at $MASTER_ADDR:$MASTER_PORT, but its record $(repo_relative "$record") is not here" \
      "every node must see the same run dir: point OUTPUT_ROOT at storage all nodes share (the same path on each)"
    sleep 1
    waited=$((waited + 1))
  done
  read_first_node_record_out["digest"]="$(jq -r '.inputs_digest' "$record")"
  read_first_node_record_out["resume"]="$(jq -r '.resume_from_checkpoint // ""' "$record")"
}

# report_mismatched_nodes: after a failed multi-node training, names the nodes that
# stopped because their inputs differ from rank 0's.
report_mismatched_nodes() {
  local record
  for record in "$RUN_DIR"/lab-node-*.json; do
    [[ -f "$record" ]] || continue
    jq -e '.matches_rank_0 == false' "$record" >/dev/null 2>&1 || continue
    warn "node rank $(jq -r .rank "$record") ($(jq -r .host "$record")) stopped: its training inputs differ from this node's (its log says which)"
  done
}
