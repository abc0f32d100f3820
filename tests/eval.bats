#!/usr/bin/env bats
# scripts/eval.sh and scripts/eval-app.sh with the stubs (evalscope, curl, python,
# nvidia-smi): the exact EvalScope commands, the checks of their reports, resuming,
# results bound to their inputs, SwanLab logging, and every failure's message.

load test_helper

setup() {
  common_setup
  RESULTS="$REPO/results/$DEFAULT_EXP"
  # Results under the repo copy (the default roots), so messages show them relative to it.
  write_env_raw GPU=6 SWANLAB_PROJECT=multi-model-psychology SERVE_HOST=127.0.0.1 SERVE_PORT=8000 OFFLINE=0
  SMOKE_ENV="$TMP/smoke.env"
  printf '%s\n' GPU=cpu SWANLAB_PROJECT=lab-smoke SWANLAB_MODE=local SERVE_PORT=8031 OFFLINE=1 >"$SMOKE_ENV"
  stub_serves "$DEFAULT_EXP"
  heldout_split "$REPO/output/$DEFAULT_EXP"
  heldout_split "$REPO/output/smoke"
  # Trained and exported with the current inputs, and served by our server.
  mark_done train export serving
  EXP=smoke ENV_FILE="$SMOKE_ENV" mark_done train export
}

teardown() { common_teardown; }

# Our (stub) server serves the current build of the smoke model / the base model.
serve_smoke() { stub_serves smoke; EXP=smoke ENV_FILE="$SMOKE_ENV" mark_done serving; }
serve_base() { stub_serves "$DEFAULT_EXP-base"; mark_done serving-base; }

eval_smoke() { EXP=smoke ENV_FILE="$SMOKE_ENV" run scripts/eval.sh "$@"; }

# The stub calls of the SwanLab logger (python scripts/py/log_eval_swanlab.py ...), by number.
swanlab_calls() {
  local n
  for ((n = 1; n <= $(stub_calls python); n++)); do
    if [[ "$(stub_args python "$n" | head -n 1)" == */log_eval_swanlab.py ]]; then printf '%s\n' "$n"; fi
  done
}

@test "default experiment: the exact evalscope command for ceval (limit 100, GPU 6, openai_api)" {
  run scripts/eval.sh ceval
  assert_success
  run stub_args evalscope 1
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
{\"max_tokens\":1024,\"temperature\":0,\"extra_body\":{\"chat_template_kwargs\":{\"response_prefix\":\"<|channel|>final<|message|>\"}}}
--work-dir
$RESULTS/gpt-oss-20b-sft-v1/ceval
--no-timestamp"
  # Through the launcher that scores only the final channel (scripts/py/evalscope_lab.py).
  run stub_args python 1
  assert_line --index 0 "$REPO/scripts/py/evalscope_lab.py"
  assert_line --index 1 -- --replies
  assert_line --index 2 harmony
  run stub_call evalscope 1
  assert_line "env: CUDA_VISIBLE_DEVICES=6"
  assert_line "env: HF_HUB_OFFLINE unset"
  run jq -r '"\(.score) \(.num)"' "$RESULTS/gpt-oss-20b-sft-v1/ceval/lab-eval.json"
  assert_output "0.5 24"
  run stub_args python "$(swanlab_calls)"
  assert_output "$REPO/scripts/py/log_eval_swanlab.py
$RESULTS/gpt-oss-20b-sft-v1/ceval/lab-eval.pending.json
--project
multi-model-psychology
--name
gpt-oss-20b-sft-v1-eval
--group
gpt-oss-20b-sft-v1
--mode
local
--log-dir
$RESULTS/swanlog
--run-id
$(jq -r .run_id "$RESULTS/gpt-oss-20b-sft-v1/lab-swanlab-run.json")"
}

@test "the benchmarks of one make eval-* go to SwanLab in one process, into the model's one run" {
  run scripts/eval.sh cmmlu
  assert_success
  assert_equal "$(swanlab_calls | wc -l)" 1
  run stub_args python "$(swanlab_calls)"
  assert_equal "$(grep -c 'lab-eval.pending.json$' <<<"$output")" 2
  local first
  first="$(stub_arg python "$(swanlab_calls)" --run-id)"
  run scripts/eval.sh ceval
  assert_success
  assert_equal "$(swanlab_calls | wc -l)" 2
  assert_equal "$(stub_arg python "$(swanlab_calls | tail -n 1)" --run-id)" "$first"
  # A new build served: a new SwanLab run.
  sed -i 's/^max_new_tokens: 1024 /max_new_tokens: 512 /' "configs/$DEFAULT_EXP/deploy.yaml"
  mark_done serving
  run scripts/eval.sh ceval
  assert_success
  refute [ "$(jq -r .run_id "$RESULTS/gpt-oss-20b-sft-v1/lab-swanlab-run.json")" == "$first" ]
}

@test "a SwanLab failure leaves the benchmark unfinished; the rerun rescores from the cache and logs it" {
  STUB_SWANLAB_FAIL=1 run scripts/eval.sh ceval
  assert_failure
  assert_output --partial "logging the metrics of gpt-oss-20b-sft-v1 to SwanLab failed"
  local dir="$RESULTS/gpt-oss-20b-sft-v1/ceval"
  assert_file_not_exist "$dir/lab-eval.json"
  run scripts/eval.sh ceval
  assert_success
  assert_output --partial "resuming from the cached predictions"
  assert_file_exist "$dir/lab-eval.json"
  assert_file_not_exist "$dir/lab-eval.pending.json"
}

@test "default experiment: make eval-cmmlu's 'cmmlu' also runs the psychology subset into its own dir" {
  run scripts/eval.sh cmmlu
  assert_success
  assert_equal "$(stub_calls evalscope)" 2
  run stub_arg evalscope 2 --dataset-args
  assert_output '{"cmmlu":{"subset_list":["professional_psychology","college_education","education","sociology"],"few_shot_num":0}}'
  run stub_arg evalscope 2 --work-dir
  assert_output "$RESULTS/gpt-oss-20b-sft-v1/cmmlu-psych"
}

@test "--base evaluates every benchmark on the base model's served name" {
  serve_base
  run scripts/eval.sh --base all
  assert_success
  # 11 multiple-choice benchmarks, the held-out dialogs, PsyDTCorpus's turns, perf; the judged ones wait for a judge.
  assert_equal "$(stub_calls evalscope)" 14
  assert_equal "$(stub_arg evalscope 1 --model)" gpt-oss-20b-sft-v1-base
  assert_equal "$(stub_arg evalscope 14 --model)" gpt-oss-20b-sft-v1-base
  assert_file_exist "$RESULTS/gpt-oss-20b-sft-v1-base/cmmlu-psych/lab-eval.json"
  assert_line "[eval] dialog-judge on gpt-oss-20b-sft-v1-base: no judge configured (JUDGE_MODEL in ${ENV_FILE#"$REPO"/}); skipped"
  assert_equal "$(jq -r .skipped "$RESULTS/gpt-oss-20b-sft-v1-base/crisis-judge/lab-eval.json")" "no judge configured"
}

@test "smoke experiment: local datasets, their subjects, offline, limit 4" {
  serve_smoke
  STUB_NUM=12 eval_smoke ceval
  assert_success
  run stub_args evalscope 1
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
{\"max_tokens\":16,\"temperature\":0,\"extra_body\":{\"chat_template_kwargs\":{\"response_prefix\":\"<|channel|>final<|message|>\"}}}
--work-dir
$REPO/results/smoke/smoke/ceval
--no-timestamp"
  run stub_call evalscope 1
  assert_line "env: HF_DATASETS_OFFLINE=1"
  assert_line "env: CUDA_VISIBLE_DEVICES unset"
}

@test "EVALSCOPE_HTML=0 (env/smoke.env): our launcher, told in its environment; a location, so changing it evaluates nothing again" {
  printf '%s\n' EVALSCOPE_HTML=0 >>"$SMOKE_ENV"
  serve_smoke
  STUB_NUM=12 eval_smoke ceval
  assert_success
  assert_line --regexp '^\+ .* EVALSCOPE_HTML=0 python scripts/py/evalscope_lab\.py \\$'
  run stub_call evalscope 1
  assert_line "env: EVALSCOPE_HTML=0"
  # Written again (1, the default): the finished evaluation stands.
  sed -i '/^EVALSCOPE_HTML=/d' "$SMOKE_ENV"
  STUB_NUM=12 eval_smoke ceval
  assert_success
  assert_equal "$(stub_calls evalscope)" 1
  # The GPU default writes it: nothing in the environment.
  stub_serves "$DEFAULT_EXP"
  run scripts/eval.sh ceval
  assert_success
  run stub_call evalscope 2
  assert_line "env: EVALSCOPE_HTML unset"
  # Anything else is refused with the fix.
  printf '%s\n' EVALSCOPE_HTML=no >>"$SMOKE_ENV"
  eval_smoke ceval
  assert_failure
  assert_line "[eval] error: EVALSCOPE_HTML='no' is not 0 or 1"
}

# set_answer_mode EXP MODE: eval.yaml's answer_mode, as a user edits it.
set_answer_mode() { sed -i "s/^  answer_mode: .*/  answer_mode: $2/" "configs/$1/eval.yaml"; }

@test "answer_mode reasoning-low: every request asks for that effort, perf too, and only final channels are scored" {
  set_answer_mode "$DEFAULT_EXP" reasoning-low
  run scripts/eval.sh ceval perf
  assert_success
  assert_equal "$(stub_arg evalscope 1 --generation-config)" \
    '{"max_tokens":1024,"temperature":0,"extra_body":{"chat_template_kwargs":{"reasoning_effort":"low"}}}'
  assert_equal "$(stub_arg evalscope 2 --extra-args)" '{"chat_template_kwargs":{"reasoning_effort":"low"}}'
  run jq -r .answer_mode "$RESULTS/gpt-oss-20b-sft-v1/ceval/lab-eval.json"
  assert_output reasoning-low
}

@test "answer_mode plain (a model without channels): evalscope itself, the reply as it is" {
  set_answer_mode "$DEFAULT_EXP" plain
  run scripts/eval.sh ceval
  assert_success
  assert_equal "$(stub_arg evalscope 1 --generation-config)" '{"max_tokens":1024,"temperature":0}'
  run grep -c evalscope_lab.py "$STUB_LOG"
  assert_output 0
}

@test "a changed answer_mode evaluates again: the old results are kept aside, the new requests carry the new mode" {
  run scripts/eval.sh ceval
  assert_success
  set_answer_mode "$DEFAULT_EXP" reasoning-high
  run scripts/eval.sh ceval
  assert_success
  assert_line --partial "were made from other inputs:"
  assert_line --regexp 'reasoning_effort.*high'
  assert_equal "$(stub_calls evalscope)" 2
  assert_equal "$(stub_arg evalscope 2 --generation-config)" \
    '{"max_tokens":1024,"temperature":0,"extra_body":{"chat_template_kwargs":{"reasoning_effort":"high"}}}'
}

@test "answer_mode missing or unknown: a clear stop naming the modes" {
  sed -i '/^  answer_mode: /d' "configs/$DEFAULT_EXP/eval.yaml"
  run scripts/eval.sh ceval
  assert_failure
  assert_output --partial "configs/$DEFAULT_EXP/eval.yaml, section ceval: no answer_mode"
  assert_output --partial "fix: add 'answer_mode: final'"
  sed -i 's/^  temperature: 0$/  temperature: 0\n  answer_mode: thinking/' "configs/$DEFAULT_EXP/eval.yaml"
  run scripts/eval.sh ceval
  assert_failure
  assert_output --partial "answer_mode 'thinking' is not known"
  assert_output --partial "final reasoning-low reasoning-medium reasoning-high plain"
  assert_equal "$(stub_calls evalscope)" 0
}

@test "base_extra_modes: the base model in another answer mode too, in its own results folder and SwanLab run" {
  printf 'base_extra_modes: [reasoning-medium]\n' >>"configs/$DEFAULT_EXP/eval.yaml"
  serve_base
  run scripts/eval.sh --base ceval
  assert_success
  assert_line "[eval] $DEFAULT_EXP-base in answer mode reasoning-medium as well (base_extra_modes), into results/$DEFAULT_EXP/$DEFAULT_EXP-base@reasoning-medium"
  assert_equal "$(stub_calls evalscope)" 2
  # The same served model, asked to reason first, scored into its own folder.
  assert_equal "$(stub_arg evalscope 2 --model)" "$DEFAULT_EXP-base"
  assert_equal "$(stub_arg evalscope 2 --work-dir)" "$RESULTS/$DEFAULT_EXP-base@reasoning-medium/ceval"
  assert_equal "$(stub_arg evalscope 2 --generation-config)" \
    '{"max_tokens":1024,"temperature":0,"extra_body":{"chat_template_kwargs":{"reasoning_effort":"medium"}}}'
  assert_equal "$(stub_arg evalscope 1 --work-dir)" "$RESULTS/$DEFAULT_EXP-base/ceval"
  run jq -r .answer_mode "$RESULTS/$DEFAULT_EXP-base@reasoning-medium/ceval/lab-eval.json" "$RESULTS/$DEFAULT_EXP-base/ceval/lab-eval.json"
  assert_output $'reasoning-medium\nfinal'
  # One SwanLab run per evaluated side.
  local calls
  mapfile -t calls < <(swanlab_calls)
  assert_equal "${#calls[@]}" 2
  assert_equal "$(stub_arg python "${calls[1]}" --name)" "$DEFAULT_EXP-base@reasoning-medium-eval"
  # The fine-tuned model is evaluated in eval.yaml's answer_mode only; nothing finished is redone.
  stub_serves "$DEFAULT_EXP"
  mark_done serving
  run scripts/eval.sh ceval
  assert_success
  serve_base
  run scripts/eval.sh --base ceval
  assert_success
  assert_line "[eval] ceval on $DEFAULT_EXP-base@reasoning-medium already finished: accuracy 0.5 on 24 questions"
  assert_equal "$(stub_calls evalscope)" 3
}

@test "base_extra_modes: a mode that is not a gpt-oss answer mode is refused" {
  serve_base
  printf 'base_extra_modes: [plain]\n' >>"configs/$DEFAULT_EXP/eval.yaml"
  run scripts/eval.sh --base ceval
  assert_failure
  assert_output --partial "configs/$DEFAULT_EXP/eval.yaml: base_extra_modes has 'plain'"
  assert_equal "$(stub_calls evalscope)" 0
}

@test "a finished evaluation is not run again" {
  run scripts/eval.sh ceval
  assert_success
  run scripts/eval.sh ceval
  assert_success
  assert_output --partial "already finished"
  assert_equal "$(stub_calls evalscope)" 1
}

@test "an interrupted evaluation resumes with --use-cache and is then marked finished" {
  STUB_NO_REPORT=1 run scripts/eval.sh ceval
  assert_failure
  assert_output --partial "evalscope wrote no report"
  local dir="$RESULTS/gpt-oss-20b-sft-v1/ceval"
  assert_file_not_exist "$dir/lab-eval.json"
  run scripts/eval.sh ceval
  assert_success
  assert_output --partial resuming
  run stub_arg evalscope 2 --use-cache
  assert_output "$dir"
  assert_file_exist "$dir/lab-eval.json"
}

@test "a failed evaluation exits non-zero and leaves nothing marked finished" {
  STUB_EVAL_FAIL=1 run scripts/eval.sh ceval
  assert_failure
  assert_output --partial "evalscope failed on ceval"
  assert_file_not_exist "$RESULTS/gpt-oss-20b-sft-v1/ceval/lab-eval.json"
}

@test "a report with the wrong question count is rejected, recorded as such, and a good rerun clears it" {
  serve_smoke
  STUB_NUM=11 eval_smoke ceval
  assert_failure
  assert_output --partial "scored 11 questions, expected 12"
  assert_file_not_exist "$REPO/results/smoke/smoke/ceval/lab-eval.json"
  run jq -r .reason "$REPO/results/smoke/smoke/ceval/lab-eval-rejected.json"
  assert_output "scored 11 questions, expected 12"
  STUB_NUM=12 eval_smoke ceval
  assert_success
  assert_file_exist "$REPO/results/smoke/smoke/ceval/lab-eval.json"
  assert_file_not_exist "$REPO/results/smoke/smoke/ceval/lab-eval-rejected.json"
}

@test "settings changed after a finished run: old results kept aside, a fresh evaluation, no cache reused" {
  run scripts/eval.sh ceval
  assert_success
  sed -i 's/limit: 100 /limit: 50 /' "configs/$DEFAULT_EXP/eval.yaml"
  run scripts/eval.sh ceval
  assert_success
  local dir="$RESULTS/gpt-oss-20b-sft-v1/ceval" shown=results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/ceval
  assert_line "[eval] ceval on gpt-oss-20b-sft-v1: the results in $shown were made from other inputs:"
  assert_line "  command.--limit: 100 -> 50"
  assert_line --regexp "^\[eval\] moved it to $shown\.replaced-[0-9T]+Z \(kept\); evaluating from scratch$"
  assert_equal "$(stub_calls evalscope)" 2
  run stub_args evalscope 2
  refute_line -- --use-cache
  assert_equal "$(stub_arg evalscope 2 --limit)" 50
  assert_file_exist "$dir".replaced-*/lab-eval.json
}

@test "predictions without a record (another model or tool version) are set aside, never resumed" {
  local dir="$RESULTS/gpt-oss-20b-sft-v1/ceval"
  mkdir -p "$dir/predictions/gpt-oss-20b-sft-v1"
  echo '{"from": "an earlier run"}' >"$dir/predictions/gpt-oss-20b-sft-v1/ceval_x.jsonl"
  run scripts/eval.sh ceval
  assert_success
  assert_line "[eval] ceval on gpt-oss-20b-sft-v1: results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/ceval has no record of what it was made from"
  run stub_args evalscope 1
  refute_line -- --use-cache
  assert_file_exist "$dir/lab-eval.json"
  assert_file_exist "$dir".replaced-*/predictions/gpt-oss-20b-sft-v1/ceval_x.jsonl
}

@test "a new export reruns the fine-tuned model's evaluations, not the base model's" {
  run scripts/eval.sh ceval
  assert_success
  serve_base
  run scripts/eval.sh --base ceval
  assert_success
  sed -i 's/^lora_rank: 16/lora_rank: 32/' "configs/$DEFAULT_EXP/sft.yaml"
  mark_done train export serving
  stub_serves "$DEFAULT_EXP"
  run scripts/eval.sh ceval
  assert_success
  assert_line --partial "[eval] moved it to "
  serve_base
  run scripts/eval.sh --base ceval
  assert_success
  assert_line "[eval] ceval on gpt-oss-20b-sft-v1-base already finished: accuracy 0.5 on 24 questions"
  assert_equal "$(stub_calls evalscope)" 3
}

@test "the server serves an older build of the model: stop before asking anything" {
  sed -i 's/^max_new_tokens: 1024 /max_new_tokens: 512 /' "configs/$DEFAULT_EXP/deploy.yaml"
  run scripts/eval.sh ceval
  assert_failure
  assert_line "[eval] error: the server at http://127.0.0.1:8000/v1 serves another build of gpt-oss-20b-sft-v1 than the current export and serving config"
  assert_line "[eval] fix: restart it: make stop deploy EXP=gpt-oss-20b-sft-v1"
  assert_equal "$(stub_calls evalscope)" 0
}

@test "the fine-tuned model's export is not from the current training: stop" {
  sed -i 's/^lora_rank: 16/lora_rank: 32/' "configs/$DEFAULT_EXP/sft.yaml"
  run scripts/eval.sh ceval
  assert_failure
  assert_line "[eval] error: export/gpt-oss-20b-sft-v1 is not the merge of the current training"
  assert_equal "$(stub_calls evalscope)" 0
}

@test "unknown benchmark: fails naming the configured ones" {
  run scripts/eval.sh mmlu
  assert_failure
  assert_output --partial "unknown benchmark 'mmlu' (configs/gpt-oss-20b-sft-v1/eval.yaml has: ceval cmmlu cmmlu-psych mmlu-psych"
  assert_equal "$(stub_calls evalscope)" 0
}

@test "extra_params that is not a mapping: fails naming the section and the form, before asking the server" {
  sed -i '/^ceval:$/a\  extra_params: [multiple_correct]' "configs/$DEFAULT_EXP/eval.yaml"
  run scripts/eval.sh ceval
  assert_failure
  assert_output --partial "configs/$DEFAULT_EXP/eval.yaml, section ceval: extra_params is not a mapping"
  assert_output --partial "fix: e.g. extra_params: {multiple_correct: true}"
  assert_equal "$(stub_calls evalscope)" 0
}

@test "unknown subject: fails before asking the server (hub and local data)" {
  sed -i 's/subsets: \[professional_psychology, college_education,/subsets: [psychologie, college_education,/' "configs/$DEFAULT_EXP/eval.yaml"
  run scripts/eval.sh cmmlu-psych
  assert_failure
  assert_output --partial "unknown subject 'psychologie'"
  sed -i 's/subsets: \[professional_psychology,/subsets: [education,/' configs/smoke/eval.yaml
  serve_smoke
  eval_smoke cmmlu-psych
  assert_failure
  assert_output --partial "unknown subject 'education'"
  assert_equal "$(stub_calls evalscope)" 0
}

@test "missing local dataset: fails at once with the path and the fix" {
  serve_smoke
  rm -r configs/smoke/data/cmmlu
  eval_smoke cmmlu
  assert_failure
  assert_output --partial "local dataset configs/smoke/data/cmmlu not found"
  assert_output --partial "fix: restore it (git checkout -- configs/smoke/data/cmmlu)"
  assert_equal "$(stub_calls evalscope)" 0
}

@test "server down: fails at once saying how to start it" {
  STUB_CURL_EXIT=7 run scripts/eval.sh ceval
  assert_failure
  assert_output --partial "no server answers at http://127.0.0.1:8000/v1"
  assert_output --partial "make deploy"
  assert_equal "$(stub_calls evalscope)" 0
}

@test "wrong model served: fails naming what the server serves" {
  serve_base
  stub_serves other-model
  run scripts/eval.sh --base ceval
  assert_failure
  assert_output --partial "serves [other-model], not gpt-oss-20b-sft-v1-base"
  assert_equal "$(stub_calls evalscope)" 0
}

@test "DRY_RUN=1 prints the commands, the checks and the SwanLab logging, and runs nothing" {
  DRY_RUN=1 run --separate-stderr scripts/eval.sh all
  assert_success
  # 7 multiple-choice benchmarks, CPsyExam's two, GSM8K and SafetyBench, the held-out dialogs and
  # PsyDTCorpus's turns; perf; three judged ones skipped (no judge). Through the launcher that
  # scores only gpt-oss's final channel.
  assert_equal "$(grep -c '^CUDA_VISIBLE_DEVICES=6 .*python scripts/py/evalscope_lab.py \\$' <<<"$output")" 13
  assert_equal "$(grep -c -- '^    --replies harmony eval .$' <<<"$output")" 13
  assert_equal "$(grep -c '^CUDA_VISIBLE_DEVICES=6 .*evalscope perf' <<<"$output")" 1
  assert_equal "$(grep -c -- '--limit 100 ' <<<"$output")" 7
  assert_equal "$(grep -c '^# (skipped: no judge configured, JUDGE_MODEL)$' <<<"$output")" 3
  assert_equal "$(grep -c 'python scripts/py/heldout_set.py' <<<"$output")" 2
  assert_equal "$(grep -c 'python scripts/py/contamination.py' <<<"$output")" 1
  assert_equal "$(grep -c 'python scripts/py/eval_result.py' <<<"$output")" 14
  assert_equal "$(grep -c 'python scripts/py/log_eval_swanlab.py' <<<"$output")" 1
  assert_line --partial "--api-url http://127.0.0.1:8000/v1"
  assert_line --partial "--work-dir results/gpt-oss-20b-sft-v1/gpt-oss-20b-sft-v1/cmmlu-psych"
  assert_equal "$(stub_calls evalscope)$(stub_calls curl)" 00
}

@test "API and SwanLab keys travel in the environment, never in argv or the printed command" {
  printf '%s\n' SERVE_API_KEY=serve-secret-123 SWANLAB_TOKEN=swan-secret-456 >>"$ENV_FILE"
  run scripts/eval.sh ceval
  assert_success
  refute_output --partial secret
  run grep -c secret "$STUB_LOG"
  assert_output 0
  run stub_arg evalscope 1 --api-key
  assert_output ""
  run stub_call evalscope 1
  assert_line "env: EVALSCOPE_API_KEY sha256=$(printf '%s' serve-secret-123 | sha256sum | cut -d' ' -f1)"
  run stub_call python "$(swanlab_calls)"
  assert_line "env: SWANLAB_API_KEY sha256=$(printf '%s' swan-secret-456 | sha256sum | cut -d' ' -f1)"
  assert_equal "$(stub_arg python "$(swanlab_calls)" --mode)" cloud
  # The values, not the word: the spec cache names the secret variables (secret_env).
  run grep -rlE 'serve-secret-123|swan-secret-456' "$REPO/results" "$REPO/.state"
  assert_output ""
}

@test "eval-app: evalscope app on 127.0.0.1 over one link per evaluation" {
  DRY_RUN=1 run --separate-stderr scripts/eval-app.sh
  assert_success
  assert_line "evalscope app \\"
  assert_line "    --host 127.0.0.1 \\"
  assert_line "    --outputs results/.evalscope-app"
  run scripts/eval-app.sh
  assert_failure
  assert_output --partial "no evaluation results"
  mkdir -p "$REPO/results/smoke/smoke-base/cmmlu-psych/reports/smoke-base"
  EVAL_APP_PORT=59123 run scripts/eval-app.sh
  assert_success
  assert_equal "$(readlink "$REPO/results/.evalscope-app/smoke-base-cmmlu-psych")" "$REPO/results/smoke/smoke-base/cmmlu-psych"
  run stub_args evalscope 1
  assert_output "app
--host
127.0.0.1
--port
59123
--outputs
$REPO/results/.evalscope-app"
}

@test "a configured judge: --judge names the model, its API and the rubric; its key only in the launcher's environment" {
  printf '%s\n' JUDGE_MODEL=judge-7b JUDGE_API_URL=http://127.0.0.1:9901/v1 >>"$ENV_FILE"
  JUDGE_API_KEY=judge-secret-789 run scripts/eval.sh crisis-judge
  assert_success
  refute_output --partial judge-secret-789
  run grep -c judge-secret-789 "$STUB_LOG"
  assert_output 0
  # No evalscope on PATH was run: the launcher runs it in-process with the key (the stub
  # launcher logs that run as one evalscope call, with the arguments the launcher was given).
  assert_equal "$(stub_calls evalscope)" 1
  local call
  call="$(stub_calls python)"
  while [[ "$(stub_args python "$call" | head -n 1)" != */evalscope_lab.py ]]; do call=$((call - 1)); done
  run stub_call python "$call"
  assert_line "env: JUDGE_API_KEY sha256=$(printf '%s' judge-secret-789 | sha256sum | cut -d' ' -f1)"
  run stub_arg python "$call" --judge
  assert_output --partial '"model_id":"judge-7b","api_url":"http://127.0.0.1:9901/v1"'
  assert_output --partial '危机干预督导'
  run stub_arg python "$call" --dataset-args
  assert_output --partial '"metric_list":["acc"],"primary_metric":"acc"'
}

@test "JUDGE_MODEL=served: the served model judges its own replies, recorded as a placeholder" {
  printf '%s\n' JUDGE_MODEL=served >>"$ENV_FILE"
  run scripts/eval.sh dialog-judge
  assert_success
  run stub_arg evalscope 1 --judge
  assert_output --partial '"model_id":"gpt-oss-20b-sft-v1","api_url":"http://127.0.0.1:8000/v1"'
  run jq -c .judge "$RESULTS/gpt-oss-20b-sft-v1/dialog-judge/lab-eval.json"
  assert_output --partial '"model":"served","placeholder":true'
}

@test "the held-out conversations: built from the run's split, asked of the model, and perf with them as prompts" {
  run scripts/eval.sh dialog perf
  assert_success
  assert_line --partial "[eval] 3 held-out conversations from "
  run stub_arg evalscope 1 --dataset-args
  assert_output "{\"general_qa\":{\"subset_list\":[\"dialog\"],\"local_path\":\"$RESULTS/heldout/dialog\"}}"
  run stub_args evalscope 1
  refute_line -- --limit
  assert_equal "$(jq .num "$RESULTS/gpt-oss-20b-sft-v1/dialog/lab-eval.json")" 3
  run stub_arg evalscope 2 --dataset-path
  assert_output "$RESULTS/heldout/perf/prompts.txt"
  assert_equal "$(jq -c '[.levels[].parallel]' "$RESULTS/gpt-oss-20b-sft-v1/perf/lab-eval.json")" "[1,4,8]"
}

@test "the held-out evaluations before any training: a clear stop" {
  rm "$REPO/output/$DEFAULT_EXP/val_dataset.jsonl"
  run scripts/eval.sh dialog
  assert_failure
  assert_line "[eval] error: dialog: the training's held-out split output/gpt-oss-20b-sft-v1/val_dataset.jsonl is not there"
  assert_line --partial "[eval] fix: run 'make train EXP=gpt-oss-20b-sft-v1' first"
}

@test "a prompt longer than the server's session: stopped before the first question, naming both numbers" {
  serve_smoke
  "$LAB_PYTHON" -c 'import sys
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
tok = Tokenizer(models.BPE()); tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.train_from_iterator(["abc"], trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
tok.save(sys.argv[1])' "$REPO/export/smoke/tokenizer.json"
  printf 'max_length: 300\n' >>configs/smoke/deploy.yaml
  EXP=smoke ENV_FILE="$SMOKE_ENV" mark_done serving
  eval_smoke ceval
  assert_failure
  assert_line --regexp "^\[eval\] error: ceval: its longest prompt is about [0-9]+ tokens and the model may generate 16 more: [0-9]+ > the server's session length 300$"
  assert_line --partial "[eval] fix: raise the session length in deploy.yaml"
  assert_equal "$(stub_calls evalscope)" 0
}

@test "a benchmark is one entry: added to the suite and picked in eval.yaml, it runs, has its make group and is reported" {
  cat >>configs/benchmarks.yaml <<'YAML'

arc-psy:
  label: ARC 测试基准
  dataset: arc
  group: reasoning
  section: general
  metric: accuracy
  licence: CC BY-SA 4.0
  url: https://huggingface.co/datasets/allenai/ai2_arc
YAML
  sed -i 's/^benchmarks: \[ceval, /benchmarks: [arc-psy, ceval, /' "configs/$DEFAULT_EXP/eval.yaml"
  run make -s eval-reasoning DRY_RUN=1
  assert_success
  assert_output --partial "# arc-psy: arc on gpt-oss-20b-sft-v1, limit 100 per subject"
  run scripts/eval.sh --group reasoning
  assert_success
  run stub_arg evalscope 1 --dataset-args
  assert_output '{"arc":{}}'
  assert_equal "$(jq -r .score "$RESULTS/gpt-oss-20b-sft-v1/arc-psy/lab-eval.json")" 0.5
  run scripts/report.sh
  assert_success
  run grep -F '| ARC 测试基准 | — | 未运行（make eval-base） | 50.00% | — | — |' "report/$DEFAULT_EXP.md"
  assert_success
  # shellcheck disable=SC2016 # backquotes of the Markdown table, not a command
  run grep -F '| ARC 测试基准 | `arc` | accuracy | CC BY-SA 4.0 | https://huggingface.co/datasets/allenai/ai2_arc |' "report/$DEFAULT_EXP.md"
  assert_success
}

@test "an external test set (psydt-turns): its overlap with the training set first, then every turn, scored as EmoLLM does" {
  serve_smoke
  STUB_REVIEWS=1 eval_smoke psydt-turns
  assert_success
  assert_line --regexp "^\[eval\] overlap with the training set: 0 of 7 test replies share 20 characters with one of [0-9]+ training replies, 0 exact duplicates$"
  run stub_arg evalscope 1 --dataset-args
  assert_output "{\"general_qa\":{\"subset_list\":[\"psydt\"],\"local_path\":\"$REPO/configs/smoke/data/psydt\"}}"
  local result="$REPO/results/smoke/smoke/psydt-turns/lab-eval.json"
  assert_equal "$(jq -r '[.metric, .num, .scorer.name, .contamination.test_replies, .contamination.flagged] | @tsv' "$result")" \
    "$(printf 'rouge-l-f1\t7\temollm\t7\tfalse')"
  assert_equal "$(jq -r '.metrics | keys | join(",")' "$result")" "bleu-1,bleu-2,bleu-3,bleu-4,rouge-1-f1,rouge-2-f1,rouge-l-f1"
  assert_equal "$(grep -c . "$REPO/results/smoke/smoke/psydt-turns/lab-scores.jsonl")" 7
}

@test "an external test set that overlaps the training set above contamination_limit is flagged in its result" {
  # A training reply that is one of the test set's, as a copied test set would be (trained on it).
  jq -c '{conversations: [{from: "human", value: "?"}, {from: "gpt", value: .answer}]}' \
    "$REPO/configs/smoke/data/psydt/psydt.jsonl" | head -n 2 >>"$REPO/configs/smoke/data/mh-sharegpt-sample.jsonl"
  EXP=smoke ENV_FILE="$SMOKE_ENV" mark_done train export
  serve_smoke
  STUB_REVIEWS=1 eval_smoke psydt-turns
  assert_success
  assert_output --partial "[eval] overlap with the training set: 2 of 7 test replies share 20 characters"
  assert_equal "$(jq -r '[.contamination.exact_duplicates, .contamination.ngram_share, .contamination.flagged] | @tsv' \
    "$REPO/results/smoke/smoke/psydt-turns/lab-eval.json")" "$(printf '2\t0.2857\ttrue')"
}

@test "DRY_RUN=1 on the real run: PsyDTCorpus fetched, its overlap measured, EmoLLM's scoring, all printed" {
  rm -r "$REPO/data/psydt" # not fetched yet (common_setup plants it, as after a first run)
  DRY_RUN=1 run scripts/eval.sh psydt-turns
  assert_success
  assert_line "python scripts/py/fetch_psydt.py \\"
  assert_line "    --out data/psydt"
  assert_line "python scripts/py/contamination.py \\"
  assert_line "    --config configs/$DEFAULT_EXP/sft.yaml \\"
  assert_line "    --limit 0.05 \\"
  assert_line "    --scorer emollm \\"
  assert_line "    --contamination results/$DEFAULT_EXP/$DEFAULT_EXP/psydt-turns/lab-contamination.json \\"
  assert_line "    --limit 100000 \\"
  [[ ! -e "$REPO/data/psydt" ]]
}

@test "CPsyCounE: every client turn judged on CPsyCoun's four dimensions, averaged per dialogue, the placeholder judge marked" {
  serve_smoke
  JUDGE_MODEL=served eval_smoke cpsycoune
  assert_success
  run stub_arg evalscope 1 --judge
  assert_output --partial '"prompt_template":"你是一名公正的评审'
  local result="$REPO/results/smoke/smoke/cpsycoune/lab-eval.json"
  assert_equal "$(jq -r '[.metric, .num, .extra.dialogues, .judge.placeholder, .scorer.name] | @tsv' "$result")" \
    "$(printf 'cpsycoune-normalised\t6\t3\ttrue\tcpsycoune')"
  assert_equal "$(jq -c .metrics "$result")" '{"comprehensiveness":1,"professionalism":2,"authenticity":2,"safety":1}'
  # (1/2 + 2/3 + 2/3 + 1) / 4
  assert_equal "$(jq -r '.score * 10000 | round' "$result")" 7083
}

@test "CPsyCounE without a valid verdict (a judge that answers no JSON): no score, recorded as such" {
  serve_smoke
  STUB_JUDGE_REPLY="比如比如" JUDGE_MODEL=served eval_smoke cpsycoune
  assert_success
  assert_output --partial "[eval] cpsycoune on smoke: no judged score"
  assert_equal "$(jq -r '[.score, .judge.dimensions_scored, .judge.asked] | @tsv' "$REPO/results/smoke/smoke/cpsycoune/lab-eval.json")" \
    "$(printf '\t0\t6')"
}
