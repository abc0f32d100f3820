#!/usr/bin/env bats
# scripts/eval.sh and scripts/eval-app.sh with stub evalscope/curl/python/nvidia-smi
# (tests/eval-stubs/stub). Each test runs a copy of the scripts and configs in a
# temp repo, so the project venv never shadows the stubs and results stay in it.
bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert
load test_helper

setup() {
  local src="$BATS_TEST_DIRNAME/.."
  REPO="$BATS_TEST_TMPDIR/repo"
  mkdir -p "$REPO" "$BATS_TEST_TMPDIR/bin" "$BATS_TEST_TMPDIR/log"
  cp -r "$src/scripts" "$src/configs" "$src/env" "$REPO/"
  local tool
  for tool in evalscope curl python nvidia-smi; do ln -s "$src/tests/eval-stubs/stub" "$BATS_TEST_TMPDIR/bin/$tool"; done
  export PATH="$BATS_TEST_TMPDIR/bin:$PATH" STUB_LOG="$BATS_TEST_TMPDIR/log"
  unset EXP GPU DRY_RUN SERVE_PORT SERVE_HOST SERVE_API_KEY SWANLAB_TOKEN SWANLAB_MODE OFFLINE RESULTS_ROOT
  export ENV_FILE="$BATS_TEST_TMPDIR/test.env"
  printf '%s\n' GPU=6 SWANLAB_PROJECT=multi-model-psychology SERVE_HOST=127.0.0.1 SERVE_PORT=8000 OFFLINE=0 >"$ENV_FILE"
  SMOKE_ENV="$BATS_TEST_TMPDIR/smoke.env"
  printf '%s\n' GPU=cpu SWANLAB_PROJECT=lab-smoke SWANLAB_MODE=local SERVE_PORT=8031 OFFLINE=1 >"$SMOKE_ENV"
  export STUB_SERVED=gpt-oss-20b-sft-v1
  if [[ -x "$src/.venv/bin/python" ]]; then export LAB_PYTHON="$src/.venv/bin/python"; fi
  # Trained and exported with the current inputs, and served by our server.
  cd "$REPO" && mark_done train export serving
  EXP=smoke ENV_FILE="$SMOKE_ENV" mark_done train export
}

# Our (stub) server serves the current build of the smoke model / the base model.
serve_smoke() { EXP=smoke ENV_FILE="$SMOKE_ENV" mark_done serving; }
serve_base() { mark_done serving-base; }

calls() { find "$STUB_LOG" -name "$1.[0-9]*" ! -name '*.env' | wc -l; }
argv() { cat "$STUB_LOG/$1"; }
# The recorded python call that ran the SwanLab logger.
swanlab_call() { grep -l 'log_eval_swanlab.py$' "$STUB_LOG"/python.[0-9] "$STUB_LOG"/python.[0-9][0-9] 2>/dev/null | head -n 1; }

@test "default experiment: the exact evalscope command for ceval (limit 100, GPU 6, openai_api)" {
  run "$REPO/scripts/eval.sh" ceval
  assert_success
  run argv evalscope.1
  assert_output "eval
--eval-type
openai_api
--api-url
http://127.0.0.1:8000/v1
--api-key
EMPTY
--model
gpt-oss-20b-sft-v1
--datasets
ceval
--dataset-args
{\"ceval\":{\"few_shot_num\":5}}
--limit
100
--generation-config
{\"max_tokens\":1024,\"temperature\":0}
--work-dir
$REPO/results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/ceval
--no-timestamp"
  run grep -x CUDA_VISIBLE_DEVICES=6 "$STUB_LOG/evalscope.1.env"
  assert_success
  run grep -c '^HF_HUB_OFFLINE=' "$STUB_LOG/evalscope.1.env"
  assert_output 0
  run jq -r '"\(.score) \(.num)"' "$REPO/results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/ceval/lab-eval.json"
  assert_output "0.5 24"
  run argv "$(basename "$(swanlab_call)")"
  assert_output "$REPO/scripts/py/log_eval_swanlab.py
$REPO/results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/ceval/lab-eval.pending.json
--project
multi-model-psychology
--name
gpt-oss-20b-sft-v1-eval
--group
gpt-oss-20b-sft-v1
--mode
offline
--log-dir
$REPO/results/gpt-oss-20b-sft-v1/swanlog
--run-id
$(jq -r .run_id "$REPO/results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/lab-swanlab-run.json")"
}

@test "the benchmarks of one make eval-* go to SwanLab in one process, into the model's one run" {
  run "$REPO/scripts/eval.sh" cmmlu
  assert_success
  assert_equal "$(grep -l 'log_eval_swanlab.py$' "$STUB_LOG"/python.* | wc -l)" 1
  run grep -c 'lab-eval.pending.json$' "$(swanlab_call)"
  assert_output 2
  local first
  first="$(grep -x -A1 -- --run-id "$(swanlab_call)" | tail -n 1)"
  run "$REPO/scripts/eval.sh" ceval
  assert_success
  local logger_calls
  mapfile -t logger_calls < <(grep -l 'log_eval_swanlab.py$' "$STUB_LOG"/python.*)
  run grep -h -x -A1 -- --run-id "${logger_calls[@]}"
  assert_equal "$(grep -cx -- "$first" <<<"$output")" 2
  # A new build served: a new SwanLab run.
  sed -i 's/^max_new_tokens: 1024 /max_new_tokens: 512 /' "$REPO/configs/gpt-oss-20b-sft-v1/deploy.yaml"
  mark_done serving
  run "$REPO/scripts/eval.sh" ceval
  assert_success
  refute [ "$(jq -r .run_id "$REPO/results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/lab-swanlab-run.json")" == "$first" ]
}

@test "a SwanLab failure leaves the benchmark unfinished; the rerun rescores from the cache and logs it" {
  STUB_SWANLAB_FAIL=1 run "$REPO/scripts/eval.sh" ceval
  assert_failure
  assert_output --partial "logging the metrics of gpt-oss-20b-sft-v1 to SwanLab failed"
  local dir="$REPO/results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/ceval"
  assert [ ! -e "$dir/lab-eval.json" ]
  run "$REPO/scripts/eval.sh" ceval
  assert_success
  assert_output --partial "resuming from the cached predictions"
  assert [ -f "$dir/lab-eval.json" ]
  assert [ ! -e "$dir/lab-eval.pending.json" ]
}

@test "default experiment: make eval-cmmlu's 'cmmlu' also runs the psychology subset into its own dir" {
  run "$REPO/scripts/eval.sh" cmmlu
  assert_success
  assert_equal "$(calls evalscope)" 2
  run grep -x -A1 -- --dataset-args "$STUB_LOG/evalscope.2"
  assert_output --partial '{"cmmlu":{"subset_list":["professional_psychology","college_education","education","sociology"],"few_shot_num":0}}'
  run grep -x -A1 -- --work-dir "$STUB_LOG/evalscope.2"
  assert_output --partial "$REPO/results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/cmmlu-psych"
}

@test "--base evaluates every benchmark on the base model's served name" {
  serve_base
  STUB_SERVED=gpt-oss-20b-sft-v1-base run "$REPO/scripts/eval.sh" --base all
  assert_success
  assert_equal "$(calls evalscope)" 3
  run grep -h -x -A1 -- --model "$STUB_LOG/evalscope.1" "$STUB_LOG/evalscope.3"
  assert_output --partial gpt-oss-20b-sft-v1-base
  assert [ -f "$REPO/results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1-base/cmmlu-psych/lab-eval.json" ]
}

@test "smoke experiment: local datasets, their subjects, offline, limit 4" {
  serve_smoke
  STUB_SERVED=smoke STUB_NUM=12 EXP=smoke ENV_FILE="$SMOKE_ENV" run "$REPO/scripts/eval.sh" ceval
  assert_success
  run argv evalscope.1
  assert_output "eval
--eval-type
openai_api
--api-url
http://127.0.0.1:8031/v1
--api-key
EMPTY
--model
smoke
--datasets
ceval
--dataset-args
{\"ceval\":{\"subset_list\":[\"basic_medicine\",\"education_science\",\"high_school_biology\"],\"few_shot_num\":5,\"local_path\":\"$REPO/configs/smoke/data/ceval\"}}
--limit
4
--generation-config
{\"max_tokens\":16,\"temperature\":0}
--work-dir
$REPO/results/smoke/smoke/ceval
--no-timestamp"
  run grep -x HF_DATASETS_OFFLINE=1 "$STUB_LOG/evalscope.1.env"
  assert_success
  run grep -c CUDA_VISIBLE_DEVICES "$STUB_LOG/evalscope.1.env"
  assert_output 0
}

@test "a finished evaluation is not run again" {
  run "$REPO/scripts/eval.sh" ceval
  assert_success
  run "$REPO/scripts/eval.sh" ceval
  assert_success
  assert_output --partial "already finished"
  assert_equal "$(calls evalscope)" 1
}

@test "an interrupted evaluation resumes with --use-cache and is then marked finished" {
  STUB_NO_REPORT=1 run "$REPO/scripts/eval.sh" ceval
  assert_failure
  assert_output --partial "evalscope wrote no report"
  local dir="$REPO/results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/ceval"
  assert [ ! -e "$dir/lab-eval.json" ]
  run "$REPO/scripts/eval.sh" ceval
  assert_success
  assert_output --partial resuming
  run grep -x -A1 -- --use-cache "$STUB_LOG/evalscope.2"
  assert_output "--use-cache
$dir"
  assert [ -f "$dir/lab-eval.json" ]
}

@test "a failed evaluation exits non-zero and leaves nothing marked finished" {
  STUB_EVAL_FAIL=1 run "$REPO/scripts/eval.sh" ceval
  assert_failure
  assert_output --partial "evalscope failed on ceval"
  assert [ ! -e "$REPO/results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/ceval/lab-eval.json" ]
}

@test "a report with the wrong question count or a missing subject is not accepted" {
  serve_smoke
  STUB_SERVED=smoke STUB_NUM=11 EXP=smoke ENV_FILE="$SMOKE_ENV" run "$REPO/scripts/eval.sh" ceval
  assert_failure
  assert_output --partial "scored 11 questions, expected 12"
  assert [ ! -e "$REPO/results/smoke/smoke/ceval/lab-eval.json" ]
  run jq -r .reason "$REPO/results/smoke/smoke/ceval/lab-eval-rejected.json"
  assert_output "scored 11 questions, expected 12"
  STUB_SERVED=smoke STUB_NUM=12 EXP=smoke ENV_FILE="$SMOKE_ENV" run "$REPO/scripts/eval.sh" ceval
  assert_success
  assert [ -f "$REPO/results/smoke/smoke/ceval/lab-eval.json" ]
  assert [ ! -e "$REPO/results/smoke/smoke/ceval/lab-eval-rejected.json" ]
}

@test "settings changed after a finished run: old results kept aside, a fresh evaluation, no cache reused" {
  run "$REPO/scripts/eval.sh" ceval
  assert_success
  sed -i 's/limit: 100 /limit: 50 /' "$REPO/configs/gpt-oss-20b-sft-v1/eval.yaml"
  run "$REPO/scripts/eval.sh" ceval
  assert_success
  local dir="$REPO/results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/ceval" shown=results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/ceval
  assert_line "[eval] ceval on gpt-oss-20b-sft-v1: the results in $shown were made from other inputs:"
  assert_line "  command.--limit: 100 -> 50"
  assert_line --regexp "^\[eval\] moved it to $shown\.replaced-[0-9T]+Z \(kept\); evaluating from scratch$"
  assert_equal "$(calls evalscope)" 2
  refute [ -n "$(grep -x -- --use-cache "$STUB_LOG/evalscope.2")" ]
  assert_equal "$(grep -x -A1 -- --limit "$STUB_LOG/evalscope.2" | tail -n 1)" 50
  assert [ -f "$dir".replaced-*/lab-eval.json ]
}

@test "predictions without a record (another model or tool version) are set aside, never resumed" {
  local dir="$REPO/results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/ceval"
  mkdir -p "$dir/predictions/gpt-oss-20b-sft-v1"
  echo '{"from": "an earlier run"}' >"$dir/predictions/gpt-oss-20b-sft-v1/ceval_x.jsonl"
  run "$REPO/scripts/eval.sh" ceval
  assert_success
  assert_line "[eval] ceval on gpt-oss-20b-sft-v1: results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/ceval has no record of what it was made from"
  refute [ -n "$(grep -x -- --use-cache "$STUB_LOG/evalscope.1")" ]
  assert [ -f "$dir/lab-eval.json" ]
  assert [ -f "$dir".replaced-*/predictions/gpt-oss-20b-sft-v1/ceval_x.jsonl ]
}

@test "a new export reruns the fine-tuned model's evaluations, not the base model's" {
  run "$REPO/scripts/eval.sh" ceval
  assert_success
  serve_base
  STUB_SERVED=gpt-oss-20b-sft-v1-base run "$REPO/scripts/eval.sh" --base ceval
  assert_success
  sed -i 's/^lora_rank: 16/lora_rank: 32/' "$REPO/configs/gpt-oss-20b-sft-v1/sft.yaml"
  mark_done train export serving
  run "$REPO/scripts/eval.sh" ceval
  assert_success
  assert_line --partial "[eval] moved it to "
  serve_base
  serve_base
  STUB_SERVED=gpt-oss-20b-sft-v1-base run "$REPO/scripts/eval.sh" --base ceval
  assert_success
  assert_line "[eval] ceval on gpt-oss-20b-sft-v1-base already finished: accuracy 0.5 on 24 questions"
  assert_equal "$(calls evalscope)" 3
}

@test "the server serves an older build of the model: stop before asking anything" {
  sed -i 's/^max_new_tokens: 1024 /max_new_tokens: 512 /' "$REPO/configs/gpt-oss-20b-sft-v1/deploy.yaml"
  run "$REPO/scripts/eval.sh" ceval
  assert_failure
  assert_line "[eval] error: the server at http://127.0.0.1:8000/v1 serves another build of gpt-oss-20b-sft-v1 than the current export and serving config"
  assert_line "[eval] fix: restart it: make stop deploy EXP=gpt-oss-20b-sft-v1"
  assert_equal "$(calls evalscope)" 0
}

@test "the fine-tuned model's export is not from the current training: stop" {
  sed -i 's/^lora_rank: 16/lora_rank: 32/' "$REPO/configs/gpt-oss-20b-sft-v1/sft.yaml"
  run "$REPO/scripts/eval.sh" ceval
  assert_failure
  assert_line "[eval] error: export/gpt-oss-20b-sft-v1 is not the merge of the current training"
  assert_equal "$(calls evalscope)" 0
}

@test "unknown benchmark: fails naming the configured ones" {
  run "$REPO/scripts/eval.sh" mmlu
  assert_failure
  assert_output --partial "unknown benchmark 'mmlu' (configs/gpt-oss-20b-sft-v1/eval.yaml has: ceval cmmlu cmmlu-psych)"
  assert_equal "$(calls evalscope)" 0
}

@test "unknown subject: fails before asking the server (hub and local data)" {
  sed -i 's/subsets: \[professional_psychology,/subsets: [psychology,/' "$REPO/configs/gpt-oss-20b-sft-v1/eval.yaml"
  run "$REPO/scripts/eval.sh" cmmlu-psych
  assert_failure
  assert_output --partial "unknown subject 'psychology'"
  sed -i 's/subsets: \[professional_psychology,/subsets: [education,/' "$REPO/configs/smoke/eval.yaml"
  serve_smoke
  STUB_SERVED=smoke EXP=smoke ENV_FILE="$SMOKE_ENV" run "$REPO/scripts/eval.sh" cmmlu-psych
  assert_failure
  assert_output --partial "unknown subject 'education'"
  assert_equal "$(calls evalscope)" 0
}

@test "missing local dataset: fails at once with the path and the fix" {
  serve_smoke
  rm -r "$REPO/configs/smoke/data/cmmlu"
  STUB_SERVED=smoke EXP=smoke ENV_FILE="$SMOKE_ENV" run "$REPO/scripts/eval.sh" cmmlu
  assert_failure
  assert_output --partial "local dataset configs/smoke/data/cmmlu not found"
  assert_output --partial "fix:"
  assert_equal "$(calls evalscope)" 0
}

@test "server down: fails at once saying how to start it" {
  STUB_SERVER=down run "$REPO/scripts/eval.sh" ceval
  assert_failure
  assert_output --partial "no server answers at http://127.0.0.1:8000/v1"
  assert_output --partial "make deploy"
  assert_equal "$(calls evalscope)" 0
}

@test "wrong model served: fails naming what the server serves" {
  serve_base
  STUB_SERVED=other-model run "$REPO/scripts/eval.sh" --base ceval
  assert_failure
  assert_output --partial "serves [other-model], not gpt-oss-20b-sft-v1-base"
  assert_equal "$(calls evalscope)" 0
}

@test "DRY_RUN=1 prints the commands and runs nothing" {
  DRY_RUN=1 run --separate-stderr "$REPO/scripts/eval.sh" all
  assert_success
  assert_equal "$(grep -c '^CUDA_VISIBLE_DEVICES=6 .*evalscope eval' <<<"$output")" 3
  assert_equal "$(grep -c -- '--limit 100' <<<"$output")" 3
  assert_line --partial "--api-url http://127.0.0.1:8000/v1"
  assert_line --partial "--work-dir results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/cmmlu-psych"
  assert_equal "$(calls evalscope)$(calls curl)" 00
}

@test "API and SwanLab keys travel in the environment, never in argv or the printed command" {
  printf '%s\n' SERVE_API_KEY=serve-secret-123 SWANLAB_TOKEN=swan-secret-456 >>"$ENV_FILE"
  chmod 600 "$ENV_FILE"
  run "$REPO/scripts/eval.sh" ceval
  assert_success
  refute_output --partial secret
  run grep -rl secret "$STUB_LOG" --exclude='*.env'
  assert_output ""
  run sed -n '/^--api-key$/{n;p}' "$STUB_LOG/evalscope.1"
  assert_success
  assert_output ""
  run grep -x EVALSCOPE_API_KEY=serve-secret-123 "$STUB_LOG/evalscope.1.env"
  assert_success
  local swan
  swan="$(swanlab_call)"
  assert [ -n "$swan" ]
  run grep -x SWANLAB_API_KEY=swan-secret-456 "$swan.env"
  assert_success
  run grep -x -A1 -- --mode "$swan"
  assert_output "--mode
cloud"
  run grep -rl secret "$REPO/results" "$REPO/.state"
  assert_output ""
}

@test "eval-app: evalscope app on 127.0.0.1 over one link per evaluation" {
  DRY_RUN=1 run --separate-stderr "$REPO/scripts/eval-app.sh"
  assert_success
  assert_line "evalscope app \\"
  assert_line "    --host 127.0.0.1 \\"
  assert_line "    --outputs results/.evalscope-app"
  run "$REPO/scripts/eval-app.sh"
  assert_failure
  assert_output --partial "no evaluation results"
  mkdir -p "$REPO/results/smoke/smoke-base/cmmlu-psych/reports/smoke-base"
  EVAL_APP_PORT=59123 run "$REPO/scripts/eval-app.sh"
  assert_success
  assert_equal "$(readlink "$REPO/results/.evalscope-app/smoke-base-cmmlu-psych")" "$REPO/results/smoke/smoke-base/cmmlu-psych"
  run argv evalscope.1
  assert_output "app
--host
127.0.0.1
--port
59123
--outputs
$REPO/results/.evalscope-app"
}
