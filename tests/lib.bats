#!/usr/bin/env bats
# The shell libraries (scripts/lib): each sources the ones it builds on and only defines
# functions, constants and tables (its functions read load_env's settings when called), so a
# script sources what it uses, in any order, from any function.

load test_helper

setup() {
  common_setup
  write_env GPU=cpu
}

teardown() { common_teardown; }

# counting_python CALLS: LAB_PYTHON becomes a Python that logs each start's arguments to CALLS.
counting_python() {
  printf '#!/usr/bin/env bash\necho "$*" >>%q\nexec %q "$@"\n' "$1" "${LAB_PYTHON:-python3}" >"$TMP/counting-python"
  chmod +x "$TMP/counting-python"
  export LAB_PYTHON="$TMP/counting-python"
}

@test "every library loads alone, with the ones it builds on, at top level or from a function, and defines the same globals both ways" {
  local lib
  # Each variable with its declare flags (-A, -a, ...): a table declared without -g in a library
  # sourced from a function would be the function's, gone when it returns.
  # shellcheck disable=SC2016 # evaluated by the shells below
  local globals='compgen -v | grep -vxE "BASH.*|FUNCNAME|_|lib|PIPESTATUS|COMP_WORDBREAKS" | while read -r v; do printf "%s %s\n" "$v" "$(declare -p "$v" | cut -d" " -f2)"; done'
  for lib in scripts/lib/*.sh; do
    run bash -c 'set -euo pipefail; lib="$1"; source "$lib"; eval "$2"' _ "$lib" "$globals"
    assert_success
    local at_top="$output"
    run bash -c 'set -euo pipefail; lib="$1"; load() { source "$lib"; }; load; eval "$2"' _ "$lib" "$globals"
    assert_success
    assert_output "$at_top"
  done
  # The tables of the fingerprints among them (a script sources them from its main).
  [[ "$at_top" == *"STEP_DIGEST -A"* || "$(bash -c 'f() { source scripts/lib/fingerprint.sh; }; f; declare -p STEP_DIGEST')" == "declare -A STEP_DIGEST"* ]]
  run bash -c 'f() { source scripts/lib/fingerprint.sh; }; f; declare -p STEP_DIGEST STEP_STATUS SFT_CONFIG LOCAL_SET_LISTING PIPELINE_DECL | cut -d" " -f2,3 | cut -d= -f1'
  assert_success
  assert_output "-A STEP_DIGEST
-A STEP_STATUS
-A SFT_CONFIG
-A LOCAL_SET_LISTING
-A PIPELINE_DECL"
}

@test "a library sourced again, directly or through another, keeps its tables and marks" {
  run bash -c 'set -euo pipefail; source scripts/lib/fingerprint.sh; STEP_DIGEST[train]=kept; SFT_CONFIG[model]=kept
    source scripts/lib/common.sh; source scripts/lib/fingerprint.sh; source scripts/lib/eval_config.sh
    echo "${STEP_DIGEST[train]} ${SFT_CONFIG[model]} $LAB_LIBS_LOADED"'
  assert_success
  assert_output "kept kept common fingerprint env commands server eval_config pipeline store"
}

@test "the served model is named by its side: the export on SERVE_PORT, the base model on the next port; another side is refused" {
  write_env GPU=cpu SERVE_PORT=8100
  run bash -c 'set -euo pipefail; source scripts/lib/eval_config.sh; load_env; load_sft_config
    for side in "" --base; do echo "$(served_name "$side") $(served_port "$side") $(deploy_target "$side") $(api_base "$side") $(served_model "$side")"; done
    served_name -v name --base; served_port -v port --base; api_base -v api --base; result_name -v result --base reasoning-low
    echo "$name $port $api $result"
    served_name --bse'
  assert_failure
  assert_output "$DEFAULT_EXP 8100 deploy http://127.0.0.1:8100/v1 $TMP/out/export/$DEFAULT_EXP
$DEFAULT_EXP-base 8101 deploy-base http://127.0.0.1:8101/v1 openai-mirror/gpt-oss-20b
$DEFAULT_EXP-base 8101 http://127.0.0.1:8101/v1 $DEFAULT_EXP-base@reasoning-low
[lab] error: unknown side '--bse' of the served model
[lab] fix: pass --base for the base model, nothing for the fine-tuned one"
}

@test "server.sh needs no settings when sourced; its files are the experiment's server folder's, or the folder use_server_dir names" {
  run bash -c 'set -euo pipefail; source scripts/lib/server.sh; source scripts/lib/env.sh; load_env; server_file pid; echo; use_server_dir /elsewhere; server_file log; echo; server_file other'
  assert_failure
  assert_output "$REPO/.state/$DEFAULT_EXP/server/pid
/elsewhere/deploy.log
[lab] error: server_file: unknown file 'other'
[lab] fix: use pid, name, log or digest"
}

@test "command builders fill an array named *cmd by the caller, and none of them has a local of such a name" {
  # A builder's nameref resolves the caller's name where the builder runs: a local of the builder
  # with that name would be filled instead (common.sh: a caller's array is named *cmd).
  run python3 - <<'PY'
import pathlib, re
builders = r"build_\w+_cmd|add_common_tool_env|evalscope_command|add_experiment_args|add_resume_flag"
bad = []
for path in sorted(pathlib.Path("scripts").rglob("*.sh")):
    text = path.read_text()
    for n, line in enumerate(text.splitlines(), 1):
        code = line.split(" #")[0]
        if code.lstrip().startswith("#") or re.search(rf"\b({builders})\(\)", code):
            continue
        for m in re.finditer(rf"(?:^|[\s;(]|SWANLAB_\w+=\S*\s|SERVE_API_KEY=\"\"\s)({builders}) (\S+)", code):
            if not re.fullmatch(r"[a-z_]*cmd|[a-z_]+_out", m.group(2)):
                bad.append(f"{path}:{n}: {m.group(1)} fills '{m.group(2)}'")
    for m in re.finditer(rf"^({builders})\(\) \{{\n(.*?)^\}}", text, re.S | re.M):
        for local in re.findall(r"^\s*local (?!-n)(.*)$", m.group(2), re.M):
            for name in re.findall(r"(?:^|\s)([A-Za-z_]\w*)(?==|\s|$)", local):
                if name.endswith("cmd"):
                    bad.append(f"{path}: {m.group(1)} has a local '{name}'")
print("\n".join(bad) or "ok")
PY
  assert_success
  assert_output ok
}

@test "a benchmark's settings go by name to the functions that read them, and none of those has a local of that name" {
  # read_bench fills an associative array the caller names (*settings); the functions reading it
  # take its name, each with a nameref named <function>_settings: a local of the callee named as
  # the caller's array would be read instead, a nameref of that name would be circular.
  run python3 - <<'PY2'
import pathlib, re
bad, takers, files = [], set(), {}
for path in sorted(pathlib.Path("scripts").rglob("*.sh")):
    files[path] = text = path.read_text()
    for m in re.finditer(r"^(\w+)\(\) \{\n(.*?)^\}", text, re.S | re.M):
        func, body = m.groups()
        refs = re.findall(r"local -n .*?(\w+_settings)=", body)
        if not refs:
            continue
        takers.add(func)
        bad += [f"{path}: {func}'s nameref '{r}' is not {func}_settings" for r in refs if r != f"{func}_settings"]
        for local in re.findall(r"^\s*local (?!-n)(.*)$", body, re.M):
            bad += [f"{path}: {func} has a local '{n}'" for n in re.findall(r"(?:^|\s)([A-Za-z_]\w*)(?==|\s|$)", local) if n.endswith("settings")]
assert {"read_bench", "build_eval_cmd", "build_eval_result_cmd", "build_arena_cmd", "spec_eval"} <= takers, takers
for path, text in files.items():
    for n, line in enumerate(text.splitlines(), 1):
        code = line.split(" #")[0]
        if code.lstrip().startswith("#") or re.search(r"\w+\(\)", code):
            continue
        for m in re.finditer(r"(?:^|[\s;(\"])(%s) ([^\s;)]+)(?: ([^\s;)]+))?" % "|".join(sorted(takers)), code):
            func, first, second = m.groups()
            given = second if func.startswith("build_") or func in ("bench_list", "add_resume_flag", "evalscope_command") else first
            if given and not re.fullmatch(r'[a-z_]*settings|"\$\d"', given):
                bad.append(f"{path}:{n}: {func} is given '{given}'")
print("\n".join(bad) or "ok")
PY2
  assert_success
  assert_output ok
}

@test "the step log's lines are what jq writes, for every kind of text, and each is one JSON object" {
  local text texts=("exit 0" 'a "quoted" \back\slash' $'tab\there\nnew line' $'python x \\\n    --flag' '比如' $'\x01ctl'
    $'del\x7f' 'a/b' '{}[]$`' $'cr\rx' $'\xff invalid UTF-8')
  for text in "${texts[@]}"; do
    run bash -c 'source scripts/lib/common.sh; json_string "$1"' _ "$text"
    assert_success
    assert_output "$(jq -n --arg text "$text" '$text')"
  done
  # shellcheck disable=SC2016 # expanded by the inner bash
  run env TZ=Asia/Shanghai bash -c 'source scripts/lib/common.sh; STATE_DIR=$1 EXP=e STEP_NAME=train; record_event start; record_event command "$2"' \
    _ "$TMP/state" $'swift sft "a b" \\\n  --x'
  assert_success
  run jq -c 'del(.time)' "$TMP/state/e/steps.jsonl"
  assert_output '{"step":"train","event":"start"}
{"step":"train","event":"command","detail":"swift sft \"a b\" \\\n  --x"}'
  # The time in UTC whatever the machine's zone (Asia/Shanghai is 8 hours off).
  run jq -r '.time' "$TMP/state/e/steps.jsonl"
  assert_line --index 0 --regexp '^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z$'
  local off=$(($(date +%s) - $(jq -n --arg time "${lines[0]}" '$time | fromdate')))
  ((off > -60 && off < 60))
}

@test "a config's reading is kept only for what it was read from: the file, the suite, the code that reads it" {
  local calls="$TMP/python-calls"
  counting_python "$calls"
  # shellcheck disable=SC2016 # expanded by the inner bash
  read_twice='source scripts/lib/common.sh; declare -A c=(); for i in 1 2; do load_config "$PWD/$1" c ${2:-}; done; echo "${c[$3]}"'
  run bash -c "$read_twice" _ "configs/$DEFAULT_EXP/sft.yaml" "" learning_rate
  assert_success
  assert_output 0.0001
  assert_equal "$(wc -l <"$calls")" 1
  # The file changed: read again, the new value.
  sed -i 's/^learning_rate: .*/learning_rate: 3.0e-4/' "configs/$DEFAULT_EXP/sft.yaml"
  run bash -c "$read_twice" _ "configs/$DEFAULT_EXP/sft.yaml" "" learning_rate
  assert_output 0.0003
  assert_equal "$(wc -l <"$calls")" 2
  # An eval.yaml is read with the suite: a changed suite entry is read again.
  run bash -c "$read_twice" _ "configs/$DEFAULT_EXP/eval.yaml" --eval ceval.label
  assert_success
  assert_equal "$(wc -l <"$calls")" 3
  sed -i '/^ceval:/,/^[a-z]/ s/^  label: .*/  label: C-Eval (edited)/' configs/benchmarks.yaml
  run bash -c "$read_twice" _ "configs/$DEFAULT_EXP/eval.yaml" --eval ceval.label
  assert_output "C-Eval (edited)"
  assert_equal "$(wc -l <"$calls")" 4
  # The reader's code changed: read again.
  echo "# edited" >>scripts/py/config.py
  run bash -c "$read_twice" _ "configs/$DEFAULT_EXP/sft.yaml" "" learning_rate
  assert_equal "$(wc -l <"$calls")" 5
  # A file that cannot be read fails every time, naming the problem; nothing is kept of it.
  printf 'a: [1\n' >"$TMP/bad.yaml"
  cp "$TMP/bad.yaml" "configs/$DEFAULT_EXP/bad.yaml"
  run bash -c "$read_twice" _ "configs/$DEFAULT_EXP/bad.yaml" "" a
  assert_failure
  assert_output --partial "not valid YAML"
  run bash -c "$read_twice" _ "configs/$DEFAULT_EXP/bad.yaml" "" a
  assert_failure
  assert_equal "$(wc -l <"$calls")" 7
}

@test "a copy of the checkout uses another's readings of the same files: a reading is named by the files' place in the checkout" {
  local calls="$TMP/python-calls"
  counting_python "$calls"
  # shellcheck disable=SC2016 # expanded by the inner bash
  local read_once='source scripts/lib/common.sh; declare -A c=(); load_config "$PWD/$1" c ${3:-}; echo "${c[$2]}"'
  run bash -c "$read_once" _ "configs/$DEFAULT_EXP/sft.yaml" learning_rate
  assert_output 0.0001
  run bash -c "$read_once" _ "configs/$DEFAULT_EXP/eval.yaml" ceval.dataset --eval
  assert_output ceval
  assert_equal "$(wc -l <"$calls")" 2
  # The copy keeps the readings' folder (cp -a), elsewhere on the disk.
  mkdir -p "$TMP/copy" && cp -a Makefile scripts configs env .cache "$TMP/copy/"
  cd "$TMP/copy" || return 1
  run bash -c "$read_once" _ "configs/$DEFAULT_EXP/sft.yaml" learning_rate
  assert_output 0.0001
  run bash -c "$read_once" _ "configs/$DEFAULT_EXP/eval.yaml" ceval.dataset --eval
  assert_output ceval
  assert_equal "$(wc -l <"$calls")" 2
  # Changed in the copy: read again there.
  sed -i 's/^learning_rate: .*/learning_rate: 3.0e-4/' "configs/$DEFAULT_EXP/sft.yaml"
  run bash -c "$read_once" _ "configs/$DEFAULT_EXP/sft.yaml" learning_rate
  assert_output 0.0003
  assert_equal "$(wc -l <"$calls")" 3
}

@test "EvalScope's --dataset-args built in bash are what jq writes (the command is fingerprinted), for every kind of benchmark" {
  # shellcheck disable=SC2016 # expanded by the inner bash and jq
  local both='source scripts/lib/common.sh; source scripts/lib/eval_config.sh
    declare -A settings=([dataset]=$1 [few_shot]=$2 [local_path]=$3 [judge]=$4 [extra_params]=$5 [subsets]="")
    if (($# > 5)); then settings[subsets]="$(printf "%s\n" "${@:6}")"; fi
    dataset_args_json settings
    jq -nc --arg name "$1" --arg local_path "$3" --arg few_shot "$2" --arg judged "${4:+1}" \
      --arg extra "$5" --args "{(\$name): ({}
      + (if \$ARGS.positional == [] then {} else {subset_list: \$ARGS.positional} end)
      + (if \$few_shot == \"\" then {} else {few_shot_num: (\$few_shot | tonumber)} end)
      + (if \$local_path == \"\" then {} else {local_path: \$local_path} end)
      + (if \$extra == \"\" then {} else {extra_params: (\$extra | fromjson)} end)
      + (if \$judged == \"\" then {} else {metric_list: [\"acc\"], primary_metric: \"acc\"} end))}" "${@:6}"'
  # (extra_params as read_bench keeps it: jq -c's form)
  local cases=(
    "ceval|5||||"
    "ceval|05|/data/c eval/\"x\"|||computer_network|law"
    "general_mcq||/repo/configs/cpsyexam|rubric.txt||CA-心理咨询|KG-GEE-人格心理学"
    "general_mcq||/repo/configs/cpsyexam||{\"multiple_correct\":true,\"说明\":[1,2.5]}|KG-GEE-人格心理学"
    "general_qa||/repo/results/heldout/dialog|/repo/configs/judge/dialog.txt||dialog"
    "mmlu_pro|||||")
  local case fields
  for case in "${cases[@]}"; do
    IFS='|' read -r -a fields <<<"$case"
    run bash -c "$both" _ "${fields[@]}"
    assert_success
    assert_equal "${#lines[@]}" 2
    assert_equal "${lines[0]}" "${lines[1]}"
  done
}

@test "a checkout whose .cache cannot be written still reads its configs, without a word about it" {
  rm -f .cache/config # (the run's shared readings, common_setup)
  mkdir -p .cache && : >.cache/config # (a file where the cache's folder would be: even root cannot write it)
  # shellcheck disable=SC2016 # expanded by the inner bash
  run --separate-stderr bash -c 'set -euo pipefail; source scripts/lib/common.sh; declare -A c=(); load_config "$PWD/configs/$1/sft.yaml" c; echo "${c[learning_rate]}"' _ "$DEFAULT_EXP"
  assert_success
  assert_output 0.0001
  # shellcheck disable=SC2154 # $stderr: set by run --separate-stderr
  assert_equal "$stderr" ""
}
