# shellcheck shell=bash
# The variant generator (scripts/py/variant.py) with this repo's rules: the machine
# settings and requirement keys of lib/config_keys.sh, the benchmark keys of
# lib/eval_config.sh, the pilot keys of lib/common.sh. Source after common.sh, config_keys.sh
# and eval_config.sh.
# shellcheck source=/dev/null
source "${BASH_SOURCE[0]%/*}/common.sh"
loaded_before variants && return 0
# shellcheck source=/dev/null
source "$REPO_ROOT/scripts/lib/config_keys.sh"
# shellcheck source=/dev/null
source "$REPO_ROOT/scripts/lib/eval_config.sh"

# variant_py ARG...: runs the generator (make new-exp, new-grid, variants; preflight's check).
variant_py() {
  local machine=() command
  for command in "${SWIFT_CONFIGS[@]}"; do machine+=(--machine-keys "$command=${MACHINE_KEYS[$command]}"); done
  "$(config_python)" "$REPO_ROOT/scripts/py/variant.py" --repo-root "$REPO_ROOT" "${machine[@]}" \
    --requirement-keys "${REQUIREMENT_KEYS[*]}" --bench-keys "${BENCH_KEYS[*]}" \
    --pilot-keys "${PILOT_KEYS[*]}" "$@"
}

# is_variant EXP: configs/EXP/ is generated from a variant.yaml.
is_variant() { [[ -f "$REPO_ROOT/configs/$1/variant.yaml" ]]; }
