#!/usr/bin/env bats
# make runbook: the printed script, and the GPU runbook run against the stubs
# (swift, evalscope, curl, nvidia-smi, python's SwanLab logger). The smoke runbook
# runs for real in tests/check_repro.sh (make test).

load test_helper

setup() {
  common_setup
  CFG="configs/$DEFAULT_EXP"
  # The runbook runs in a checkout.
  git init -q . && git add -A && git -c user.name=t -c user.email=t@t commit -qm t
}

teardown() {
  pkill -KILL -f "$REPO/.venv-lmdeploy/bin/swift" 2>/dev/null || true
  common_teardown
}

@test "make runbook GPU=0,1,2,3 on a machine without nvidia-smi: the GPU profile, both venvs, every step once, in order" {
  unstub_tool nvidia-smi
  write_env "SWANLAB_TOKEN=sk-RUNBOOK-SECRET"
  run --separate-stderr make runbook GPU=0,1,2,3
  assert_success
  refute_output --partial sk-RUNBOOK-SECRET
  assert_line "# Export first: SWANLAB_TOKEN (your SwanLab key; it reaches tools only through their environment)"
  assert_line --partial "--requirement env/requirements-gpu.lock"
  assert_line --partial "--requirement env/requirements-lmdeploy.lock"
  refute_line --partial "requirements-cpu.lock"
  assert_line "STEPS=(environment preflight train export serve serve_base arena report)"
  assert_line --partial "NPROC_PER_NODE=4 MASTER_PORT=29500 SWANLAB_API_KEY=\"\$SWANLAB_TOKEN\" swift sft $CFG/sft.yaml"
  assert_line "    --lmdeploy_tp 4 > .state/$DEFAULT_EXP/server/deploy.log 2>&1 &"
  assert_line "    --adapters \"\$CHECKPOINT\" \\"
  assert_line "    --git-commit \"\$(git rev-parse HEAD)\" \\"
  # No placeholder such as <git rev-parse HEAD> outside the comments.
  run grep -v '^ *#' <<<"$output"
  refute_output --regexp "<[a-z][^>]*>"
  run --separate-stderr make runbook GPU=0,1,2,3
  # Each step's command exactly once.
  assert_equal "$(grep -c ' swift sft ' <<<"$output")" 1
  assert_equal "$(grep -c ' swift export ' <<<"$output")" 1
  assert_equal "$(grep -c 'scripts/py/report.py' <<<"$output")" 1
  # Per model: the multiple-choice benchmarks, the held-out dialogs and PsyDTCorpus's turns; perf; the judged ones
  # are skipped without a judge, saying so.
  # Through the launcher that scores only gpt-oss's final channel.
  assert_equal "$(grep -c -- '--replies harmony eval' <<<"$output")" 26
  assert_equal "$(grep -c ' evalscope perf \\$' <<<"$output")" 2
  assert_equal "$(grep -c 'scripts/py/heldout_set.py' <<<"$output")" 4
  assert_equal "$(grep -c '^# [a-z-]*-judge: scored by an LLM judge; none is configured' <<<"$output")" 4
  assert_equal "$(grep -c '^stop_server$' <<<"$output")" 2
  bash -n <<<"$output"
}

@test "the GPU runbook, run from its train step against the stubs: every tool gets its command, no server is left" {
  local port
  port="$(free_port)"
  write_env "SERVE_PORT=$port"
  mkdir -p .venv-lmdeploy/bin
  ln -s "$SRC_ROOT/tests/stubs/stub" .venv-lmdeploy/bin/swift
  make runbook GPU=0,1,2,3 >runbook.sh
  STUB_CURL_WAIT_SERVED=5 run bash runbook.sh train
  assert_success
  assert_line "runbook: serving $DEFAULT_EXP after 0s"
  assert_line "runbook: $DEFAULT_EXP-base answered"
  assert_line "runbook: done: report/$DEFAULT_EXP.md"
  run stub_call swift 1
  assert_line "argv: sft $CFG/sft.yaml --output_dir $RUN_DIR --swanlab_mode local --swanlab_project multi-model-psychology --swanlab_exp_name $DEFAULT_EXP"
  assert_line "env: CUDA_VISIBLE_DEVICES=0,1,2,3"
  assert_line "env: NPROC_PER_NODE=4"
  run stub_call swift 2
  assert_line "argv: export $CFG/export.yaml --adapters $RUN_DIR/checkpoint-4 --output_dir $EXPORT_DIR.partial --exist_ok true"
  run stub_call swift 3
  assert_line "path: .venv-lmdeploy/bin/swift"
  assert_line "argv: deploy $CFG/deploy.yaml --model $EXPORT_DIR --served_model_name $DEFAULT_EXP --host 127.0.0.1 --port $port --lmdeploy_tp 4"
  run stub_call swift 4
  assert_line "argv: deploy $CFG/deploy.yaml --model openai-mirror/gpt-oss-20b --served_model_name $DEFAULT_EXP-base --host 127.0.0.1 --port $((port + 1)) --lmdeploy_tp 4"
  assert_equal "$(stub_calls evalscope)" 28
  assert_file_exist "report/$DEFAULT_EXP.md"
  assert_file_not_exist "$EXPORT_DIR.partial"
  run jq -c . "$EXPORT_DIR/config.json"
  assert_output '{"architectures":["GptOssForCausalLM"],"torch_dtype":"bfloat16"}'
  # No server left: the stub servers were stopped.
  run pgrep -f "$REPO/.venv-lmdeploy/bin/swift deploy"
  assert_failure
}

@test "the runbook moves an earlier run's outputs aside instead of mixing them" {
  write_env "SERVE_PORT=$(free_port)"
  mkdir -p .venv-lmdeploy/bin "$RUN_DIR"
  ln -s "$SRC_ROOT/tests/stubs/stub" .venv-lmdeploy/bin/swift
  echo old >"$RUN_DIR/marker"
  evaluate_only "$DEFAULT_EXP" ceval
  make runbook GPU=6 >runbook.sh
  STUB_CURL_WAIT_SERVED=5 run bash runbook.sh train
  assert_success
  run ls -d "$RUN_DIR".replaced-*/marker
  assert_success
  assert_file_not_exist "$RUN_DIR/marker"
}

@test "a step name starts the runbook there; an unknown one is refused" {
  write_env
  make runbook GPU=6 >runbook.sh
  run bash runbook.sh nonsense
  assert_failure
  assert_output "runbook: no step 'nonsense' (steps: environment preflight train export serve serve_base arena report)"
}

@test "the GPU runbook asks both models in eval.yaml's answer mode, and the base model in each of base_extra_modes too" {
  sed -i 's/^# base_extra_modes: \[reasoning-medium\]$/base_extra_modes: [reasoning-medium]/' "$CFG/eval.yaml"
  run --separate-stderr make runbook GPU=6
  assert_success
  # The final channel prefilled for both models, the base model reasoning first as well.
  assert_equal "$(grep -c 'chat_template_kwargs":{"response_prefix":"<|channel|>final<|message|>"}' <<<"$output")" 28
  assert_equal "$(grep -c '"reasoning_effort":"medium"' <<<"$output")" 14
  assert_line "# $DEFAULT_EXP-base in answer mode reasoning-medium as well (eval.yaml: base_extra_modes)"
  assert_line --partial "--work-dir results/$DEFAULT_EXP/$DEFAULT_EXP-base@reasoning-medium/ceval"
  assert_line --partial "--name $DEFAULT_EXP-base@reasoning-medium-eval"
  # What each reply did is counted from the evaluation's own folder.
  assert_line --partial "--replies-dir results/$DEFAULT_EXP/$DEFAULT_EXP-base@reasoning-medium/ceval"
  bash -n <<<"$output"
}

@test "the runbook holds nothing of the machine that printed it: pip's find-links folders are found when it runs" {
  mkdir -p "$TMP/wheels-here" "$TMP/wheels-there"
  PIP_FIND_LINKS="$TMP/wheels-here" run --separate-stderr make runbook GPU=6
  assert_success
  refute_output --partial "$TMP/wheels-here"
  # shellcheck disable=SC2016 # the runbook's own expansion, as printed
  assert_line --partial '--requirement env/requirements-gpu.lock "${FIND_LINKS[@]}"'
  # The resolver, run as the runbook runs it on another machine, finds that machine's folder.
  local resolver
  resolver="$(grep -A2 '^FIND_LINKS=(); ' <<<"$output")"
  run env PIP_FIND_LINKS="$TMP/wheels-there $TMP/missing" bash -euo pipefail -c "$resolver"$'\nprintf "%s\\n" "${FIND_LINKS[@]}"'
  assert_success
  assert_output "--find-links
$TMP/wheels-there"
}

@test "printed before make env, with a Python that has PyYAML and no pyarrow: every set is read, SafetyBench's parquet included" {
  # The machine's Python before make env: no pyarrow (and no venv in the copy).
  mkdir -p "$TMP/no-pyarrow/pyarrow"
  echo 'raise ModuleNotFoundError("No module named '"'pyarrow'"'")' >"$TMP/no-pyarrow/pyarrow/__init__.py"
  run --separate-stderr env PYTHONPATH="$TMP/no-pyarrow" make runbook EXP=smoke ENV_FILE=env/smoke.env
  assert_success
  assert_line "# safety-zh: safety_bench on smoke, limit 6 per subject"
  assert_line --partial "--expected-num 6"
}

@test "a local set with a broken file: the runbook names that set and the fix, not another benchmark" {
  echo '{not json' >>configs/smoke/data/mmlu_pro/data/test.jsonl
  run --separate-stderr make runbook EXP=smoke ENV_FILE=env/smoke.env
  assert_failure
  assert_equal "$output" ""
  # shellcheck disable=SC2154 # $stderr: set by run --separate-stderr
  [[ "$stderr" == *"cannot read configs/smoke/data/mmlu_pro: JSONDecodeError: "* ]]
  [[ "$stderr" == *"fix: repair the set's files (git checkout -- configs/smoke/data/mmlu_pro restores a shipped one)"* ]]
  [[ "$stderr" != *"no subjects found"* ]]
}
