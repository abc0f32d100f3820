#!/usr/bin/env bats
# make pilot (README, "A pilot before the long run"): the experiment at a small scale under
# the name <exp>-pilot, against the stubs (swift, evalscope, curl, nvidia-smi, python's
# SwanLab logger). The commands carry the small-scale flags; the pilot's outputs, stamps and
# fingerprints are its own, so a finished pilot never makes the full run skip a step, and
# the other way round. The real smoke pilot runs in tests/smoke/pilot.bats (make test).

# shellcheck disable=SC2154 # $stderr: set by run --separate-stderr
load test_helper

setup() {
  common_setup
  CFG="configs/$DEFAULT_EXP"
  PILOT="$DEFAULT_EXP-pilot"
}

teardown() {
  pkill -KILL -f "$REPO/.venv-lmdeploy/bin/swift" 2>/dev/null || true
  common_teardown
}

# small_experiment [BENCHMARKS]: a small variant of the default experiment (by default three
# benchmarks: local-less C-Eval, the held-out replies, perf) and a venv that matches the lock,
# for real makes on the stubs.
small_experiment() {
  venv_up_to_date
  write_env GPU=cpu "SERVE_PORT=$(free_port)" SKIP_REMOTE_CHECKS=swanlab,hub
  make new-exp FROM="$DEFAULT_EXP" NAME=small SET="eval.benchmarks=[${1:-ceval,dialog,perf}]" >/dev/null 2>&1
  export STUB_CURL_WAIT_SERVED=5
}

# ---------------------------------------------------------------- the commands

@test "make pilot GPU=0,1 DRY_RUN=1: every step of the experiment, at a small scale, under <exp>-pilot" {
  write_env
  run --separate-stderr make pilot GPU=0,1 DRY_RUN=1
  assert_success
  # Training: a few dozen steps, each logged, on both GPUs, into the pilot's own folders.
  assert_line "CUDA_VISIBLE_DEVICES=0,1 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope SWANLAB_LOG_DIR=$OUT/results/$PILOT/swanlog NPROC_PER_NODE=2 MASTER_PORT=29500 swift sft $CFG/sft.yaml \\"
  assert_line "    --output_dir $OUT/output/$PILOT \\"
  assert_line "    --swanlab_exp_name $PILOT \\"
  assert_line "    --max_steps 30 \\"
  assert_line "    --logging_steps 1"
  assert_line "    --adapters $OUT/output/$PILOT/last-checkpoint \\"
  assert_line "    --output_dir $OUT/export/$PILOT.partial \\"
  assert_line "    --served_model_name $PILOT \\"
  assert_line "    --lmdeploy_tp 2 > .state/$PILOT/server/deploy.log 2>&1 &"
  # Every benchmark: 5 questions per subject at the configured concurrency (8 per GPU).
  assert_equal "$(grep -c -- '--replies harmony eval' <<<"$output")" 13
  assert_equal "$(grep -c '^    --limit 5 \\$' <<<"$output")" 12
  assert_equal "$(grep -c '^    --eval-batch-size 16 \\$' <<<"$output")" 13
  refute_line --partial "--limit 100"
  # 20 held-out conversations (the full run asks 100) for the replies and perf's prompts (the
  # judged ones are skipped: no judge); perf at its highest level only.
  assert_equal "$(grep -c '^    --rows 20 \\$' <<<"$output")" 2
  assert_line "    --parallel 8 \\"
  assert_line "    --number 16 \\"
  refute_line --partial "--parallel 1 4 8"
  assert_line "    --work-dir $OUT/results/$PILOT/$PILOT/ceval \\"
  # Last, the projection instead of the lab report; no base model.
  assert_line "EXP=$PILOT ENV_FILE=$ENV_FILE GPU=0,1 scripts/pilot-report.sh"
  refute_line --partial "scripts/py/report.py"
  refute_line --partial "$DEFAULT_EXP-pilot-base"
  # Nothing of the full run's.
  refute_line --regexp "(output|export|results)/$DEFAULT_EXP( |/|\\.)"
  # A dry run runs nothing.
  assert_equal "$(stub_calls swift)" 0
  assert_file_not_exist "$REPO/.state"
}

@test "the pilot's scale comes from eval.yaml's pilot section; EXP=<exp>-pilot is the same pilot as PILOT=1" {
  write_env GPU=6
  printf 'pilot:\n  max_steps: 12\n  limit: 2\n  rows: 4\n  perf_number: 3\n' >>"$CFG/eval.yaml"
  run --separate-stderr make all EXP="$PILOT" DRY_RUN=1
  assert_success
  assert_line "    --max_steps 12 \\"
  assert_equal "$(grep -c '^    --limit 2 \\$' <<<"$output")" 12
  assert_equal "$(grep -c '^    --rows 4 \\$' <<<"$output")" 2
  # At least one request per slot: 8 (the highest concurrency), not 3.
  assert_line "    --parallel 8 \\"
  assert_line "    --number 8 \\"
  local by_name="$output"
  run --separate-stderr make all PILOT=1 DRY_RUN=1
  assert_success
  assert_equal "$output" "$by_name"
}

@test "a pilot section with an unknown key or a value that is not a number is an error naming it" {
  write_env GPU=6
  cp "$CFG/eval.yaml" eval.yaml.orig
  printf 'pilot:\n  steps: 12\n' >>"$CFG/eval.yaml"
  run --separate-stderr env EXP="$PILOT" DRY_RUN=1 scripts/train.sh
  assert_failure
  assert_equal "$stderr" "[train] error: configs/$DEFAULT_EXP/eval.yaml, section pilot: unknown key 'steps'
[train] fix: use: max_steps limit rows perf_number benchmarks"
  cp eval.yaml.orig "$CFG/eval.yaml"
  printf 'pilot:\n  limit: few\n' >>"$CFG/eval.yaml"
  run --separate-stderr env EXP="$PILOT" DRY_RUN=1 scripts/eval.sh all
  assert_failure
  assert_equal "$(head -n 1 <<<"$stderr")" "[eval] error: configs/$DEFAULT_EXP/eval.yaml, section pilot: limit 'few' is not a positive number"
}

@test "pilot.benchmarks: the pilot evaluates those the experiment has, in eval.yaml's order; none of them is an error" {
  write_env GPU=6
  cp "$CFG/eval.yaml" eval.yaml.orig
  printf 'pilot:\n  benchmarks: [perf, ceval, no-such-benchmark]\n' >>"$CFG/eval.yaml"
  run --separate-stderr make all EXP="$PILOT" DRY_RUN=1
  assert_success
  assert_equal "$(grep -c -- '--replies harmony eval' <<<"$output")" 1
  assert_equal "$(grep -c ' evalscope perf \\$' <<<"$output")" 1
  assert_equal "$(grep -E '^# (ceval|perf):' <<<"$output" | cut -d: -f1 | paste -sd' ' -)" "# ceval # perf"
  cp eval.yaml.orig "$CFG/eval.yaml"
  printf 'pilot:\n  benchmarks: [no-such-benchmark]\n' >>"$CFG/eval.yaml"
  run --separate-stderr env EXP="$PILOT" DRY_RUN=1 scripts/eval.sh all
  assert_failure
  assert_equal "$(head -n 1 <<<"$stderr")" "[eval] error: configs/$DEFAULT_EXP/eval.yaml, section pilot: benchmarks names none of the experiment's (ceval cmmlu cmmlu-psych mmlu-psych mmlu-pro-psych mmlu-redux-psych supergpqa-psych cpsyexam-single cpsyexam-multi gsm8k safety-zh dialog dialog-judge crisis-judge psydt-turns cpsycoune perf)"
}

@test "make runbook PILOT=1: the pilot as one script: small-scale flags, its step times recorded, its report, no base model" {
  write_env
  run --separate-stderr make runbook PILOT=1 GPU=0,1
  assert_success
  assert_line "STEPS=(environment preflight train export serve report)"
  assert_line "    --max_steps 30 \\"
  assert_line "    --parallel 8 \\"
  assert_line "lab_event deploy start"
  assert_line "lab_event eval end 'exit 0'"
  # Each benchmark's seconds, as make records them: the multiple-choice ones, the replies (held-out, PsyDTCorpus), perf.
  # shellcheck disable=SC2016 # the printed script's own expression
  assert_equal "$(grep -c '^    --seconds "\$((SECONDS - eval_started))"' <<<"$output")" 14
  assert_line "EXP=$PILOT ENV_FILE=$ENV_FILE GPU=0,1 scripts/pilot-report.sh"
  assert_line 'echo "runbook: done: report/'"$PILOT"'.md" >&2'
  refute_line --partial "serve_base"
  bash -n <<<"$output"
  # The full run's runbook records nothing of the kind.
  run --separate-stderr make runbook GPU=0,1
  refute_line --partial "lab_event"
  refute_line --partial "--max_steps"
}

@test "make sbatch PILOT=1: the pilot's job, without the base model's evaluations" {
  write_env
  run --separate-stderr make sbatch PILOT=1 GPU=0,1
  assert_success
  assert_line "export EXP=$PILOT ENV_FILE=$ENV_FILE GPU=0,1 NNODES=1 MASTER_PORT=29500"
  assert_equal "${lines[-1]}" "make all"
  refute_line --partial "eval-base"
}

@test "make help lists pilot; make clean removes the smoke pilot's outputs and report, and no other" {
  run make help
  assert_line --regexp "^  pilot +A small-scale run of the experiment"
  mkdir -p output/smoke-pilot export/smoke-pilot results/smoke-pilot .state/smoke-pilot output/small-pilot report
  touch report/smoke-pilot.md report/smoke-r4-pilot.md report/small-pilot.md
  run make clean
  assert_success
  assert_dir_not_exist output/smoke-pilot
  assert_dir_not_exist export/smoke-pilot
  assert_dir_not_exist results/smoke-pilot
  assert_file_not_exist report/smoke-pilot.md
  assert_file_not_exist report/smoke-r4-pilot.md
  assert_dir_exist output/small-pilot
  assert_file_exist report/small-pilot.md
}

# ---------------------------------------------------------------- apart from the full run

@test "a finished pilot makes the full run skip no step; the full run then makes the pilot skip none" {
  small_experiment ceval
  run --separate-stderr make pilot EXP=small
  assert_success
  assert_file_exist report/small-pilot.md
  assert_file_not_exist .state/small-pilot/server/pid # make pilot stops its server
  # The pilot: its own folders and served name, at its scale.
  assert_equal "$(stub_arg swift 1 --output_dir)" "$OUT/output/small-pilot"
  assert_equal "$(stub_arg swift 1 --max_steps)" 30
  assert_equal "$(stub_arg swift 3 --served_model_name)" small-pilot
  assert_equal "$(stub_arg evalscope 1 --limit)" 5
  assert_equal "$(stub_calls evalscope)" 1
  # What the pilot wrote is not a result of the full run.
  assert_dir_not_exist "$OUT/output/small"
  assert_dir_not_exist .state/small

  : >"$STUB_LOG"
  run --separate-stderr make all EXP=small
  assert_success
  # Every step ran: training (no --max_steps), export, deploy, every evaluation.
  assert_equal "$(stub_calls swift)" 3
  assert_equal "$(stub_arg swift 1 --output_dir)" "$OUT/output/small"
  run stub_args swift 1
  refute_line --partial "--max_steps"
  assert_equal "$(stub_arg evalscope 1 --limit)" 100
  assert_equal "$(stub_calls evalscope)" 1
  make stop EXP=small >/dev/null 2>&1

  # The full run did not make the finished pilot stale, nor the pilot the full run.
  : >"$STUB_LOG"
  run --separate-stderr make pilot EXP=small
  assert_success
  assert_equal "$(stub_calls swift)" 0
  assert_equal "$(stub_calls evalscope)" 0
  run --separate-stderr make all EXP=small
  assert_success
  assert_equal "$(stub_calls swift)" 0
  assert_equal "$(stub_calls evalscope)" 0
  make stop EXP=small >/dev/null 2>&1

  # A full run first, then a pilot: the pilot still runs every step, as itself.
  rm -rf "$OUT/output/small-pilot" "$OUT/export/small-pilot" "$OUT/results/small-pilot" .state/small-pilot report/small-pilot.md
  : >"$STUB_LOG"
  run --separate-stderr make pilot EXP=small
  assert_success
  assert_equal "$(stub_calls swift)" 3
  assert_equal "$(stub_calls evalscope)" 1
  assert_equal "$(stub_arg swift 1 --max_steps)" 30
}

@test "the pilot's report: measured where the stubs measured, unknown where they did not, never made up" {
  small_experiment
  run --separate-stderr make pilot EXP=small
  assert_success
  run cat report/small-pilot.md
  assert_line "# small 正式运行预估（试点 small-pilot）"
  # C-Eval from the hub: at most 100 per subject of the 11 the (stub) EvalScope lists.
  assert_line --regexp "^\\| ceval \\| ≤ 1200（每科 100 × 12 科） \\|"
  # The held-out replies: 3 rows in the stub's split, all of them in the full run.
  assert_line --regexp "^\\| dialog \\| 3 \\|"
  assert_line --regexp "^\\| perf \\| 并发 1 × 16，并发 4 × 64，并发 8 × 128 \\|"
  # The stub's training logs no speed: its time and the total are unknown, not guessed.
  assert_line --partial "- 每个优化步：未测"
  assert_line --regexp "^\\| \\*\\*\`make all\` 合计\\*\\* \\|.*\\| \\*\\*未测\\*\\* \\|"
  # How the replies ended: eval_result.py's count (replies) in the pilot's lab-eval.json.
  local replies
  replies="$(jq -r '.replies | "\(.cut_off)/\(.asked)，max_tokens \(.max_tokens)"' "$OUT/results/small-pilot/small-pilot/ceval/lab-eval.json")"
  assert_line --regexp "^\\| ceval \\| .*（$replies） \\|"
  refute_output --partial "None"
}

@test "scripts/pilot-report.sh on a full run's name is refused, naming make pilot" {
  write_env GPU=cpu
  run --separate-stderr scripts/pilot-report.sh
  assert_failure
  assert_equal "$stderr" "[pilot] error: EXP=$DEFAULT_EXP is a full run; the projection is the report of a pilot
[pilot] fix: run make pilot EXP=$DEFAULT_EXP (or make report EXP=$DEFAULT_EXP-pilot after it)"
}
