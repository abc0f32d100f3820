#!/usr/bin/env bats
# make sweep (scripts/sweep.sh): experiments in turn with the repo's own make, against the
# stubs (swift, evalscope, curl, python's SwanLab logger). Two small variants of the
# default experiment (one benchmark each, made with make new-exp) keep it quick.

# shellcheck disable=SC2154 # $stderr: set by run --separate-stderr
load test_helper

setup() {
  common_setup
  # A venv that matches the lock, so `make env` has nothing to do.
  mkdir -p .venv/bin
  sha256sum env/requirements-cpu.lock | cut -d' ' -f1 >.venv/.lab-lock.sha256
  write_env GPU=cpu "SERVE_PORT=$(free_port)" SKIP_REMOTE_CHECKS=swanlab,hub
  make new-exp FROM="$DEFAULT_EXP" NAME=sweep-a SET="eval.benchmarks=[ceval]" >/dev/null 2>&1
  make new-exp FROM="$DEFAULT_EXP" NAME=sweep-b SET="learning_rate=2e-4 eval.benchmarks=[ceval]" >/dev/null 2>&1
  # An experiment preflight refuses (ms-swift 4.6 removed train_type): it fails at train.
  mkdir -p configs/sweep-bad
  cp configs/sweep-a/*.yaml configs/sweep-a/requirements.env configs/sweep-bad/
  printf 'train_type: lora\n' >>configs/sweep-bad/sft.yaml
  export STUB_CURL_WAIT_SERVED=5
}

teardown() { common_teardown; }

# summary_line EXP RESULT REPORT: the summary table's row of EXP.
summary_line() { printf '^  %s +%s +%s$' "$1" "$2" "$3"; }

@test "two experiments: each whole pipeline in turn, one server at a time, a summary; run again, no tool runs" {
  run --separate-stderr make sweep EXPS="sweep-a sweep-b"
  assert_success
  assert_line --regexp "$(summary_line sweep-a 'done' report/sweep-a.md)"
  assert_line --regexp "$(summary_line sweep-b 'done' report/sweep-b.md)"
  assert_line "sweep of 2 experiment(s): 0 failed"
  assert_file_exist report/sweep-a.md
  assert_file_exist report/sweep-b.md
  # Each experiment trained, exported, served and evaluated once, in order, as itself.
  assert_equal "$(stub_calls swift)" 6
  assert_equal "$(stub_arg swift 1 --swanlab_exp_name)" sweep-a
  assert_equal "$(stub_arg swift 3 --served_model_name)" sweep-a
  assert_equal "$(stub_arg swift 4 --swanlab_exp_name)" sweep-b
  assert_equal "$(stub_calls evalscope)" 2
  # One server at a time: none is left, and sweep-b's was started after sweep-a's stopped.
  assert_file_not_exist .state/server/pid
  grep -q '\[stop\] stopped server' <<<"$stderr"

  : >"$STUB_LOG"
  run --separate-stderr make sweep EXPS="sweep-a sweep-b"
  assert_success
  assert_line --regexp "$(summary_line sweep-b 'done' report/sweep-b.md)"
  assert_equal "$(stub_calls swift)" 0
  assert_equal "$(stub_calls evalscope)" 0
}

@test "a failing experiment stops the sweep: the next is not reached; the exit status says it" {
  run --separate-stderr make sweep EXPS="sweep-a sweep-bad sweep-b"
  assert_failure
  assert_line --regexp "$(summary_line sweep-a 'done' report/sweep-a.md)"
  assert_line --regexp "$(summary_line sweep-bad 'failed at train' —)"
  assert_line --regexp "$(summary_line sweep-b 'not reached' —)"
  assert_line "sweep of 3 experiment(s): 1 failed"
  assert_equal "$(stub_arg swift 1 --swanlab_exp_name)" sweep-a
  [[ "$(stub_calls swift)" == 3 ]] # sweep-a's sft, export, deploy; nothing of sweep-b
  grep -q "configs/sweep-bad/sft.yaml: 'train_type' is not a flag of swift sft" <<<"$stderr"
  grep -q '\[sweep\] fix: fix what the output above says, then run the same make sweep again' <<<"$stderr"
  assert_file_not_exist .state/server/pid
}

@test "KEEP_GOING=1 goes on after a failure, and still exits non-zero" {
  run --separate-stderr make sweep EXPS="sweep-bad sweep-a" KEEP_GOING=1
  assert_failure
  assert_line --regexp "$(summary_line sweep-bad 'failed at train' —)"
  assert_line --regexp "$(summary_line sweep-a 'done' report/sweep-a.md)"
  grep -q 'going on (KEEP_GOING=1)' <<<"$stderr"
}

@test "a failure after training is named by its make target (make all evaluates in one step, make evals)" {
  export STUB_EVAL_FAIL=1
  run --separate-stderr make sweep EXPS="sweep-a"
  assert_failure
  assert_line --regexp "$(summary_line sweep-a 'failed at evals' —)"
}

@test "a config make cannot read fails the experiment before any step, and says so" {
  printf 'lora_rank: [\n' >>configs/sweep-a/sft.yaml
  run --separate-stderr make sweep EXPS="sweep-a"
  assert_failure
  assert_line --regexp "$(summary_line sweep-a 'failed before any step' —)"
  assert_equal "$(stub_calls swift)" 0
}

@test "WITH_BASE=1 runs experiment-with-base; DRY_RUN=1 prints the makes and runs nothing" {
  run make sweep EXPS="sweep-a sweep-b" WITH_BASE=1 DRY_RUN=1
  assert_success
  assert_output "$(printf 'make experiment-with-base EXP=sweep-a\nmake stop EXP=sweep-a\nmake experiment-with-base EXP=sweep-b\nmake stop EXP=sweep-b')"
  assert_equal "$(stub_calls swift)" 0
  assert_file_not_exist .state/sweep-a
}

@test "EXPS must name experiments with a config, each once" {
  run make sweep EXPS=
  assert_failure
  assert_output --partial "[sweep] error: EXPS is empty: no experiment to run"
  run make sweep EXPS="sweep-a nope"
  assert_failure
  assert_output --partial "[sweep] error: EXPS: experiment 'nope' has no config (configs/nope/sft.yaml)"
  assert_output --partial "[sweep] fix: pick from: "
  run make sweep EXPS="sweep-a sweep-a"
  assert_failure
  assert_output --partial "[sweep] error: EXPS names 'sweep-a' twice"
  run make sweep EXPS="../x"
  assert_failure
  assert_output --partial "is not a valid experiment name"
  assert_equal "$(stub_calls swift)" 0
}
