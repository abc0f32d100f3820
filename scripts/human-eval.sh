#!/usr/bin/env bash
# The blind human evaluation of counselling replies (docs/human-eval.md):
#   scripts/human-eval.sh pack     make human-pack [EXPS="a b"] [N=120] [SEED=] [RATERS="r1 r2 r3"]
#   scripts/human-eval.sh serve    make human-eval: the rating page on HUMAN_EVAL_HOST:HUMAN_EVAL_PORT
#   scripts/human-eval.sh export   make human-export: each rater's form (CSV and JSON)
#   scripts/human-eval.sh import   make human-import FILES="r1.csv r2.json": filled forms back in
#   scripts/human-eval.sh report   make human-report: unblinded results, into each experiment's report
# The packet of EXPS (default: EXP) lives in $RESULTS_ROOT/human/<a>-<b>-.../; its key (who wrote
# which reply) is a file of its own that the page never reads. DRY_RUN=1 prints the command.
set -euo pipefail
export STEP_NAME=human-eval
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/env.sh
source "$REPO_ROOT/scripts/lib/env.sh"
# shellcheck source=lib/server.sh
source "$REPO_ROOT/scripts/lib/server.sh"
# shellcheck source=lib/commands.sh
source "$REPO_ROOT/scripts/lib/commands.sh"

HUMAN_PY="$REPO_ROOT/scripts/py/human_eval.py"
DEFAULT_N=120
DEFAULT_RATERS="rater1 rater2 rater3"

# The experiments of the packet (EXPS, else EXP) and its folder.
resolve_packet() {
  SKIP_GPU_CHECK=1 load_env
  read -ra PACKET_EXPS <<<"${EXPS:-$EXP}"
  check_exps "${PACKET_EXPS[@]}"
  PACKET_DIR="$RESULTS_ROOT/human/$(IFS=-; printf '%s' "${PACKET_EXPS[*]}")"
  HUMAN_EVAL_HOST="${HUMAN_EVAL_HOST:-127.0.0.1}"
  HUMAN_EVAL_PORT="${HUMAN_EVAL_PORT:-8300}"
  if [[ ! "$HUMAN_EVAL_PORT" =~ ^[0-9]{1,5}$ ]] || ((10#$HUMAN_EVAL_PORT < 1 || 10#$HUMAN_EVAL_PORT > 65535)); then
    die "HUMAN_EVAL_PORT='$HUMAN_EVAL_PORT' is not a port number" "set HUMAN_EVAL_PORT to a number from 1 to 65535, e.g. 8300"
  fi
  require_command python
}

# exp_args FLAG: --exp NAME RESULTS_DIR [EVAL_YAML] for each experiment, with its own roots.
exp_args() {
  local exp with_config="$1"
  EXP_ARGS=()
  for exp in "${PACKET_EXPS[@]}"; do
    EXP="$exp" SKIP_GPU_CHECK=1 load_env
    EXP_ARGS+=(--exp "$EXP" "$RESULTS_DIR")
    if [[ "$with_config" == 1 ]]; then EXP_ARGS+=("$EXP_DIR/eval.yaml"); fi
  done
}

# run_human WORD...: the command, shown (DRY_RUN=1: only shown). Not run_cmd: that records the
# command in one experiment's steps.jsonl, and a packet may span several.
run_human() {
  if is_dry_run; then print_cmd "$@"; return 0; fi
  print_cmd "$@" | sed 's/^/+ /' >&2
  "$@"
}

base_url() {
  local host="$HUMAN_EVAL_HOST"
  if [[ "$host" == *:* ]]; then host="[$host]"; fi
  printf 'http://%s:%s' "$host" "$HUMAN_EVAL_PORT"
}

pack() {
  local n="${N:-$DEFAULT_N}" seed="${SEED:-}"
  [[ "$n" =~ ^[0-9]+$ ]] || die "N='$n' is not a number of scenarios" "pass N=120 (or any whole number from 1)"
  [[ -z "$seed" || "$seed" =~ ^[0-9]+$ ]] || die "SEED='$seed' is not a whole number" "pass SEED=20261205, or leave it out"
  exp_args 1
  run_human python "$HUMAN_PY" pack --out "$PACKET_DIR" --n "$n" ${seed:+--seed "$seed"} --raters "${RATERS:-$DEFAULT_RATERS}" \
    --base-url "$(base_url)" "${EXP_ARGS[@]}"
  is_dry_run && return 0
  log "packet in $(display_path "$PACKET_DIR") (packet.json; the key, key.json, stays there and is never served)"
  log "the raters' personal links: $(display_path "$PACKET_DIR/links.txt") (mode 600; hand each rater only theirs)"
}

serve() {
  local cmd=(python "$REPO_ROOT/scripts/py/human_server.py" --packet "$PACKET_DIR" --host "$HUMAN_EVAL_HOST" --port "$HUMAN_EVAL_PORT")
  if is_dry_run; then print_cmd "${cmd[@]}"; return 0; fi
  [[ -f "$PACKET_DIR/packet.json" ]] || die "no packet in $(display_path "$PACKET_DIR")" "draw it first: make human-pack${EXPS:+ EXPS=\"$EXPS\"}"
  if ! is_loopback_host "$HUMAN_EVAL_HOST"; then
    # Off this machine every request needs a rater's token (the links carry one); plain HTTP,
    # so only on a network the lab trusts.
    warn "HUMAN_EVAL_HOST=$HUMAN_EVAL_HOST: reachable from other hosts; each rater's link carries their token (plain HTTP: use a trusted network)"
  fi
  log "rating page on $(base_url)/ (each rater opens their link from $(display_path "$PACKET_DIR/links.txt")); Ctrl-C stops it"
  print_cmd "${cmd[@]}" | sed 's/^/+ /' >&2
  exec "${cmd[@]}"
}

export_forms() {
  run_human python "$HUMAN_PY" export --packet "$PACKET_DIR" --out "$PACKET_DIR/forms"
}

import_forms() {
  local files
  read -ra files <<<"${FILES:-}"
  ((${#files[@]} > 0)) || die "make human-import needs the filled forms (FILES='')" 'pass FILES="rater1.csv rater2.json"'
  run_human python "$HUMAN_PY" import --packet "$PACKET_DIR" "${files[@]}"
}

report() {
  exp_args 0
  run_human python "$HUMAN_PY" report --packet "$PACKET_DIR" "${EXP_ARGS[@]}"
}

main() {
  local command="${1:-}"
  resolve_packet
  case "$command" in
    pack) pack ;;
    serve) serve ;;
    export) export_forms ;;
    import) import_forms ;;
    report) report ;;
    *) die "usage: scripts/human-eval.sh pack|serve|export|import|report" "run it through make human-pack, human-eval, human-report" ;;
  esac
}

main "$@"
