# shellcheck shell=bash
# shellcheck disable=SC2034 # the lists defined here are read by the scripts that source this file
# What an experiment's configs may and must hold, in one place: preflight checks the
# configs against it, and make new-exp / make variants (scripts/variants.sh) check a
# variant's overrides against it before writing anything.
# shellcheck source=/dev/null
source "${BASH_SOURCE[0]%/*}/common.sh"
loaded_before config_keys && return 0

# Machine settings: the scripts pass them as flags from the env file, so a config
# that also set them would be silently overridden. KEY:SETTING pairs per command.
declare -gA MACHINE_KEYS=(
  [sft]="output_dir:OUTPUT_ROOT swanlab_mode:SWANLAB_MODE swanlab_project:SWANLAB_PROJECT swanlab_exp_name:EXP use_cpu:GPU"
  [export]="adapters:CHECKPOINT output_dir:EXPORT_ROOT"
  [deploy]="model:EXPORT_ROOT served_model_name:EXP host:SERVE_HOST port:SERVE_PORT lmdeploy_tp:GPU"
)

# The keys of configs/<exp>/requirements.env, each a whole number.
REQUIREMENT_KEYS=(GPU_FREE_MIB_PER_GPU DISK_OUTPUT_GIB DISK_EXPORT_GIB DISK_CACHE_GIB)

# The ms-swift commands with a native config in each experiment (env/swift-<cmd>-args.txt
# lists the flags each accepts).
SWIFT_CONFIGS=(sft export deploy)
