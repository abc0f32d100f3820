# shellcheck shell=bash
# shellcheck disable=SC2034 # globals set here are read by the scripts that source this file
# Shared helpers for every step script: logging, errors, dry-run aware command runner.
# Source it; do not execute it.
#
# The libraries (scripts/lib/*.sh) source the ones they build on, each loaded once per shell:
# a script sources the libraries it uses, in any order, from any function (their tables are
# declared global). Sourcing one again would empty its tables: loaded_before guards it.
# ShellCheck does not follow a library's own sources (source=/dev/null): following every
# library again from each script cost it minutes a run. A script sources, for shellcheck's
# sake too, each library whose functions it calls; fingerprint.sh alone has shellcheck follow
# what it builds on, so a script that uses it sources it alone.
[[ " ${LAB_LIBS_LOADED:-} " != *" common "* ]] || return 0
LAB_LIBS_LOADED=common
# loaded_before NAME: true when library NAME is loaded in this shell already; marks it otherwise.
loaded_before() {
  [[ " $LAB_LIBS_LOADED " == *" $1 "* ]] && return 0
  LAB_LIBS_LOADED+=" $1"
  return 1
}

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export REPO_ROOT

log() { printf '[%s] %s\n' "${STEP_NAME:-lab}" "$*" >&2; }
warn() { printf '[%s] warning: %s\n' "${STEP_NAME:-lab}" "$*" >&2; }

# die MESSAGE [FIX]: print what failed and what to do, then exit non-zero.
die() {
  printf '[%s] error: %s\n' "${STEP_NAME:-lab}" "$1" >&2
  if [[ -n "${2:-}" ]]; then printf '[%s] fix: %s\n' "${STEP_NAME:-lab}" "$2" >&2; fi
  exit 1
}

is_dry_run() { [[ "${DRY_RUN:-0}" == 1 ]]; }

# Experiments are the folders of configs/ with an sft.yaml; a name is a plain folder name.
is_experiment_name() { [[ "$1" =~ ^[A-Za-z0-9_][A-Za-z0-9._-]*$ ]]; }
experiment_names() { # every experiment, sorted, on one line
  find "$REPO_ROOT/configs" -mindepth 2 -maxdepth 2 -name sft.yaml -printf '%h\n' | xargs -n1 basename | sort | paste -sd' ' -
}

# check_experiment NAME: stops unless NAME is an experiment (a plain name with configs/NAME/sft.yaml)
# or the pilot of one (is_pilot_name).
check_experiment() {
  is_experiment_name "$1" || die "EXP='$1' is not a valid experiment name" "use the name of a folder in configs/: letters, digits, '.', '_' or '-', not starting with '.'"
  [[ -f "$REPO_ROOT/configs/$1/sft.yaml" ]] || is_pilot_name "$1" || die "experiment '$1' has no config (configs/$1/sft.yaml)" \
    "pick one of: $(experiment_names)"
}

# is_pilot_name NAME: NAME is <exp>-pilot, the pilot of experiment <exp> (make pilot; lib/env.sh
# resolve_pilot), and not an experiment of its own.
is_pilot_name() { [[ "$1" == *-pilot && ! -f "$REPO_ROOT/configs/$1/sft.yaml" && -f "$REPO_ROOT/configs/${1%-pilot}/sft.yaml" ]]; }

# check_exps NAME...: the experiments of EXPS (make sweep, make compare), each a valid name
# with a config, each named once.
check_exps() {
  local exp named=" "
  for exp in "$@"; do
    is_experiment_name "$exp" || die "EXPS: '$exp' is not a valid experiment name" "use the names of folders in configs/"
    [[ -f "$REPO_ROOT/configs/$exp/sft.yaml" ]] || die "EXPS: experiment '$exp' has no config (configs/$exp/sft.yaml)" \
      "pick from: $(experiment_names)"
    [[ "$named" != *" $exp "* ]] || die "EXPS names '$exp' twice" "name each experiment once"
    named+="$exp "
  done
}

require_command() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH" "${2:-run 'make env' first}"
}

# A command is one array of words: its environment first, as NAME=VALUE words, then its argv.
# An environment value that starts with SECRET_MARK names a variable: the command gets that
# variable's value, shown as "$VARIABLE", so a printed runbook never holds a secret. A builder
# (lib/commands.sh, lib/eval_config.sh) fills the array its caller names (`build_train_cmd cmd`),
# and run_cmd, print_cmd, start_cmd_detached and the fingerprints take the words
# (`run_cmd "${cmd[@]}"`). A builder's nameref is called <builder>_out: a caller's array must not
# share its name.
SECRET_MARK=$'\x02'
ENV_WORD='^[A-Za-z_][A-Za-z0-9_]*='

# cmd_argv_start WORD...: how many of the command's words are its environment.
cmd_argv_start() {
  local n=0
  while (($# > 0)) && [[ "$1" =~ $ENV_WORD ]]; do
    n=$((n + 1))
    shift
  done
  printf '%s' "$n"
}

repo_relative() { printf '%s' "${1#"$REPO_ROOT"/}"; }

# Paths inside the repo are shown relative to it: steps run from the repo root.
display_path() { shell_quote "${1//"$REPO_ROOT"\//}"; }

# Quotes a word for a shell only when it needs it, in the readable single-quote style.
shell_quote() {
  if [[ "$1" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}

# shell_expr TEXT: an argument printed as it is (a runbook's "$(...)" or "$VAR"),
# for values known only when the printed script runs. Never passed to a real run.
SHELL_EXPR_MARK=$'\x01'
shell_expr() { printf '%s%s' "$SHELL_EXPR_MARK" "$1"; }

# print_cmd WORD...: the command as a copy-pasteable shell line, one flag per line: its
# environment, its secrets as "$VARIABLE", its argv. (printf -v, not $(...): the fingerprints
# print every step's command.)
print_cmd() {
  local out="" secrets="" word value first=1 in_env=1
  for word in "$@"; do
    if ((in_env)) && [[ "$word" =~ $ENV_WORD ]]; then
      value="${word#*=}"
      if [[ "$value" == "$SECRET_MARK"* ]]; then
        secrets+="${word%%=*}=\"\$${value#"$SECRET_MARK"}\" "
        continue
      fi
      value="${value//"$REPO_ROOT"\//}"
      if [[ ! "$value" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then value="'${value//\'/\'\\\'\'}'"; fi
      out+="${word%%=*}=$value "
      continue
    fi
    if ((in_env)); then out+="$secrets" in_env=0; fi
    if [[ $first == 0 && "$word" == --* ]]; then out+=$' \\\n    '; elif [[ $first == 0 ]]; then out+=' '; fi
    word="${word//"$REPO_ROOT"\//}"
    if [[ "$word" == "$SHELL_EXPR_MARK"* ]]; then
      word="${word#"$SHELL_EXPR_MARK"}"
    elif [[ ! "$word" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
      word="'${word//\'/\'\\\'\'}'"
    fi
    out+="$word"
    first=0
  done
  printf '%s\n' "$out"
}

# env_word_value VAR WORD: into VAR, the value an environment word gives its variable: as written,
# or a secret's, read here from the variable it names.
env_word_value() {
  local env_word_value_v="${2#*=}" # (named apart: printf -v would fill a local called VAR)
  if [[ "$env_word_value_v" == "$SECRET_MARK"* ]]; then
    env_word_value_v="${env_word_value_v#"$SECRET_MARK"}"
    env_word_value_v="${!env_word_value_v}"
  fi
  printf -v "$1" '%s' "$env_word_value_v"
}

# exec_cmd WORD...: exports the command's environment, its secrets resolved here (never in an
# argv), and replaces the shell with its argv. Call it in a subshell.
exec_cmd() {
  local exec_cmd_value
  while [[ "$1" =~ $ENV_WORD ]]; do
    env_word_value exec_cmd_value "$1"
    export "${1%%=*}=$exec_cmd_value"
    shift
  done
  exec "$@"
}

# run_cmd WORD...: runs the command (or only prints it under DRY_RUN=1).
# Secrets are exported inside a subshell, so they never appear in argv (ps).
# A dry run prints the bare command on stdout, so `make all DRY_RUN=1 > runbook.sh`
# is a script; a real run traces it on stderr.
run_cmd() {
  if is_dry_run; then print_cmd "$@"; return 0; fi
  local shown
  shown="$(print_cmd "$@")"
  printf '%s\n' "$shown" | sed 's/^/+ /' >&2
  record_event command "$shown"
  (exec_cmd "$@")
}

# start_cmd_detached VAR LOG WORD...: starts the command in the background in a session of
# its own (pid = process group id, so the whole tree can be stopped), output to LOG; its pid
# into VAR.
start_cmd_detached() {
  local start_cmd_detached_var="$1" log="$2" shown n
  shift 2
  shown="$(print_cmd "$@")" n="$(cmd_argv_start "$@")"
  printf '%s\n' "$shown" | sed 's/^/+ /' >&2
  record_event command "$shown"
  local words=("$@")
  (exec_cmd "${words[@]:0:n}" setsid "${words[@]:n}" >"$log" 2>&1 </dev/null) &
  printf -v "$start_cmd_detached_var" '%s' "$!"
}

# Shows a config file's settings as comments, so a printed runbook carries them.
print_config_as_comments() {
  printf '# %s:\n' "$1"
  grep -vE '^[[:space:]]*(#|$)' "$1" | sed 's/^/#   /'
}

# write_atomically DEST: copies stdin to DEST through a temp file in the same directory.
write_atomically() {
  local dest="$1" tmp
  tmp="$(mktemp "${dest}.tmp.XXXXXX")"
  cat >"$tmp" && mv -f "$tmp" "$dest"
}

# Provenance for the report: each step's start, end (with exit status) and the
# token-free commands it ran, one JSON object a line in .state/<EXP>/steps.jsonl.
# The line is what `jq -c` writes; every step writes several, so the common case (printable
# ASCII) is written without starting jq and date (json_string).
record_event() {
  is_dry_run && return 0
  [[ -n "${STATE_DIR:-}" && -n "${EXP:-}" ]] && command -v jq >/dev/null 2>&1 || return 0
  [[ -d "$STATE_DIR/$EXP" ]] || mkdir -p "$STATE_DIR/$EXP"
  local time detail=""
  TZ=UTC printf -v time '%(%Y-%m-%dT%H:%M:%SZ)T' -1
  if [[ -n "${2:-}" ]]; then detail=",\"detail\":$(json_string "$2")"; fi
  printf '{"time":"%s","step":%s,"event":%s%s}\n' "$time" "$(json_string "$STEP_NAME")" "$(json_string "$1")" "$detail" \
    >>"$STATE_DIR/$EXP/steps.jsonl"
}

# is_plain_text TEXT: TEXT is printable ASCII, tabs and newlines (commands, exit statuses), which
# json_string escapes in bash; anything else (a model's reply, another control character, UTF-8)
# goes through jq.
is_plain_text() {
  local LC_ALL=C
  # shellcheck disable=SC2101 # a bracket expression holding a class, [:print:], is meant
  [[ "$1" != *[^[:print:]$'\t\n']* ]]
}

# json_string TEXT: TEXT as a JSON string, as jq writes it.
json_string() {
  if ! is_plain_text "$1"; then
    jq -n --arg text "$1" '$text'
    return
  fi
  local text="${1//\\/\\\\}"
  text="${text//\"/\\\"}"
  text="${text//$'\t'/\\t}"
  printf '"%s"' "${text//$'\n'/\\n}"
}

# json_array TEXT...: the texts as a JSON array of strings, as `jq -c` writes it: one jq for all
# when any is not printable ASCII (json_string).
json_array() {
  local item items=()
  for item in "$@"; do
    if ! is_plain_text "$item"; then
      jq -nc '$ARGS.positional' --args "$@"
      return
    fi
    items+=("$(json_string "$item")")
  done
  printf '[%s]' "$(IFS=,; printf '%s' "${items[*]}")"
}

# Records the step's start now and its end (with exit status) when the script exits.
begin_step() {
  record_event start
  trap 'record_event end "exit $?"' EXIT
}

# The Python with PyYAML that reads the configs: the project venv's, else LAB_PYTHON
# (tests run copies of the repo without a venv), else the system's.
config_python() {
  if [[ -x "${VENV_DIR:-}/bin/python" ]]; then printf '%s' "$VENV_DIR/bin/python"; else printf '%s' "${LAB_PYTHON:-python3}"; fi
}

# load_config FILE ARRAY [--eval]: reads a YAML config with PyYAML (scripts/py/config.py, the
# one YAML reader) into the associative array ARRAY: top-level keys as KEY, a
# section's keys as SECTION.KEY; a list's items separated by $CONFIG_LIST_SEP.
# --eval: an eval.yaml, each benchmark completed from its suite entry (configs/benchmarks.yaml).
CONFIG_LIST_SEP=$'\x1f'
load_config() {
  local -n config_array="$2"
  local lines key value
  config_array=()
  lines="$(config_lines "$1" "${@:3}")" ||
    die "cannot read $(repo_relative "$1") (see above)" "fix the file; 'make env' provides the Python with PyYAML that reads it"
  while IFS=$'\t' read -r key value; do
    [[ -n "$key" ]] || continue
    value="${value//\\n/$'\n'}"
    value="${value//\\t/$'\t'}"
    config_array["$key"]="${value//\\\\/\\}"
  done <<<"$lines"
}

# config_items VALUE: a loaded list's items (or one scalar), one a line.
config_items() {
  [[ -n "$1" ]] || return 0
  printf '%s\n' "${1//"$CONFIG_LIST_SEP"/$'\n'}"
}

# config_lines FILE [--eval]: what scripts/py/config.py prints for FILE. Every step reads its
# configs again (a stubbed make all read them 20 times): a reading is kept in
# .cache/config/, named by the digest of all it depends on (the file, for --eval both suites
# it may use, the code that reads it, the Python and its venv's lock), and used only when that
# digest matches. A failed reading is not kept; a symlinked config is always read. The digest
# names the files by their place in the checkout, not on the disk (config.py's output does not
# depend on it): a copy of the checkout can use the readings of another.
config_lines() {
  local python digest entry="" lines sources=("$1" "$REPO_ROOT/scripts/py/config.py" "$REPO_ROOT/scripts/py/lab/files.py")
  python="$(config_python)"
  if [[ "$1" == /* && ! -L "$1" && ! -L "${1%/*}" ]]; then
    if [[ "${2:-}" == --eval ]]; then
      sources+=("$REPO_ROOT/scripts/py/eval_suite.py" "${1%/*/*}/benchmarks.yaml" "$REPO_ROOT/configs/benchmarks.yaml")
    fi
    digest="$({
      printf '%s\n' "$python" "${@:2}" "$(repo_relative "$1")"
      cat "${python%/bin/*}/.lab-lock.sha256" 2>/dev/null || true
      if cd "$REPO_ROOT"; then sha256sum "${sources[@]#"$REPO_ROOT"/}" 2>&1 || true; fi
    } | sha256sum)"
    entry="$REPO_ROOT/.cache/config/${digest%% *}"
    if [[ -f "$entry" ]]; then cat "$entry"; return; fi
  fi
  lines="$("$python" "$REPO_ROOT/scripts/py/config.py" "${@:2}" "$1")" || return
  # Kept when it can be: a checkout mounted read-only is read every time.
  if [[ -n "$entry" ]] && mkdir -p "${entry%/*}" 2>/dev/null; then
    printf '%s\n' "$lines" | write_atomically "$entry" 2>/dev/null || true
  fi
  printf '%s\n' "$lines"
}

# load_sft_config: reads configs/$EXP/sft.yaml once per script. Call it in the
# script's own shell before sft_setting, which runs in $(...) subshells: a load
# there would not be kept, and each call would start Python again.
declare -gA SFT_CONFIG=()
load_sft_config() {
  [[ -z "${SFT_CONFIG_LOADED:-}" ]] || return 0
  load_config "$EXP_DIR/sft.yaml" SFT_CONFIG
  SFT_CONFIG_LOADED=1
}

# sft_setting KEY: a top-level key of configs/$EXP/sft.yaml.
sft_setting() {
  load_sft_config
  printf '%s' "${SFT_CONFIG[$1]:-}"
}

# The scale of a pilot (make pilot, lib/env.sh's resolve_pilot): the `pilot:` section of
# the experiment's eval.yaml over these defaults. max_steps: training steps (each logged);
# limit: questions per subject of every benchmark (at most its own limit); rows: held-out
# conversations (at most its own rows); perf_number: requests of a perf benchmark's one
# level, its highest concurrency (at least that many); benchmarks: the ones it measures
# (default: every one; lib/eval_config.sh checks them), the others are projected from those.
PILOT_KEYS=(max_steps limit rows perf_number benchmarks)
declare -gA PILOT_DEFAULTS=([max_steps]=30 [limit]=5 [rows]=20 [perf_number]=16 [benchmarks]="")
declare -gA PILOT_CONFIG=()
load_pilot_config() {
  [[ -z "${PILOT_CONFIG_LOADED:-}" ]] || return 0
  local -A eval_settings=()
  local key value where="configs/$CONFIG_EXP/eval.yaml, section pilot"
  if [[ -f "$EXP_DIR/eval.yaml" ]]; then load_config "$EXP_DIR/eval.yaml" eval_settings; fi
  [[ -z "${eval_settings[pilot]+x}" ]] || die "$where: 'pilot' is not a section" "write it as a mapping: pilot: {max_steps: 30, limit: 5}"
  for key in "${!eval_settings[@]}"; do
    [[ "$key" == pilot.* ]] || continue
    [[ " ${PILOT_KEYS[*]} " == *" ${key#pilot.} "* ]] || die "$where: unknown key '${key#pilot.}'" "use: ${PILOT_KEYS[*]}"
  done
  for key in "${PILOT_KEYS[@]}"; do
    value="${eval_settings[pilot.$key]:-${PILOT_DEFAULTS[$key]}}"
    if [[ "$key" != benchmarks && ! "$value" =~ ^[1-9][0-9]*$ ]]; then
      die "$where: $key '$value' is not a positive number" "e.g. $key: ${PILOT_DEFAULTS[$key]}"
    fi
    PILOT_CONFIG[$key]="$value"
  done
  PILOT_CONFIG_LOADED=1
}
