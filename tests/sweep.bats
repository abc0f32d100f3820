#!/usr/bin/env bats
# make sweep (scripts/sweep.sh): experiments in turn, or several at once (GPUS, JOBS), with the
# repo's own make, against the stubs (swift, evalscope, curl, python's SwanLab logger). Small
# variants of the default experiment (one benchmark each, made with make new-exp) keep it quick.

# shellcheck disable=SC2154 # $stderr: set by run --separate-stderr
load test_helper

setup() {
  common_setup
  # A venv that matches the lock, so `make env` has nothing to do.
  venv_up_to_date
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

# summary_line EXP RESULT REPORT: the summary table's row of EXP (its log: .state/EXP/sweep.log
# once it started, else —).
summary_line() {
  local log=—
  [[ "$2" == "not reached" ]] || log=".state/$1/sweep.log"
  printf '^  %s +%s +%s +%s$' "$1" "$2" "$3" "$log"
}

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
  assert_file_not_exist .state/sweep-a/server/pid
  assert_file_not_exist .state/sweep-b/server/pid
  grep -q '\[stop\] stopped the server of sweep-a' <<<"$stderr"
  # One at a time, each make's output is shown as it runs, and kept in its log.
  grep -q '\[deploy\] serving sweep-b at ' <<<"$stderr"
  assert_file_contains .state/sweep-b/sweep.log '\[deploy\] serving sweep-b at '
  # The env file's ports and GPU: nothing of a sweep's own.
  assert_equal "$(stub_arg swift 3 --port)" "$(stub_arg swift 6 --port)"

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
  assert_file_not_exist .state/sweep-a/server/pid
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

# free_ports N: the first of N consecutive free ports.
free_ports() {
  local port i
  while :; do
    port="$(free_port)"
    for ((i = 1; i < $1; i++)); do (: >"/dev/tcp/127.0.0.1/$((port + i))") 2>/dev/null && continue 2; done
    printf '%s\n' "$port"
    return 0
  done
}

# swift_call FLAG VALUE: the stub log block of the swift call whose FLAG is VALUE.
swift_call() {
  local n
  for ((n = 1; n <= $(stub_calls swift); n++)); do
    if [[ "$(stub_arg swift "$n" "$1")" == "$2" ]]; then stub_call swift "$n"; return 0; fi
  done
  echo "no swift call with $1 $2" >&2
  return 1
}

# most_at_once SPANS: the most trainings that ran at the same time ("sft EXP START END" lines).
most_at_once() {
  awk '{ print $3, 1; print $4, -1 }' "$1" | sort -k1,1n -k2,2n | awk '{ n += $2; if (n > most) most = n } END { print most }'
}

@test "GPUS=\"0,1 2,3\" WITH_BASE=1: up to two at once, each on its entry's GPUs, with its own ports, server, run lock and log; the base model served once" {
  make new-exp FROM="$DEFAULT_EXP" NAME=sweep-c SET="lora_rank=8 eval.benchmarks=[ceval]" >/dev/null 2>&1
  # The GPU profile's venvs as make env leaves them; lmdeploy's swift the stub.
  venv_up_to_date .venv gpu
  venv_up_to_date .venv-lmdeploy lmdeploy
  cp "$SRC_ROOT/tests/stubs/stub" .venv-lmdeploy/bin/swift
  local serve master exp i block port bases_served=0
  serve="$(free_ports 6)"
  master="$(free_ports 3)"
  STUB_SFT_SECONDS=5 STUB_SPANS="$TMP/spans" run --separate-stderr make sweep EXPS="sweep-a sweep-b sweep-c" GPUS="0,1 2,3" \
    WITH_BASE=1 SERVE_PORT="$serve" MASTER_PORT="$master"
  assert_success
  grep -q '\[sweep\] up to 2 experiments at once, on GPUS="0,1 2,3"' <<<"$stderr"
  i=0
  for exp in sweep-a sweep-b sweep-c; do
    assert_line --regexp "$(summary_line "$exp" 'done' "report/$exp.md")"
    # The i-th experiment: SERVE_PORT + 2i for its model, + 1 for its base model, MASTER_PORT + i.
    block="$(swift_call --swanlab_exp_name "$exp")"
    grep -qx "env: MASTER_PORT=$((master + i))" <<<"$block"
    grep -qx "env: NPROC_PER_NODE=2" <<<"$block"
    case "$exp" in
      sweep-a) grep -qx "env: CUDA_VISIBLE_DEVICES=0,1" <<<"$block" ;;
      sweep-b) grep -qx "env: CUDA_VISIBLE_DEVICES=2,3" <<<"$block" ;;
      *) grep -qxE "env: CUDA_VISIBLE_DEVICES=(0,1|2,3)" <<<"$block" ;; # the entry freed first
    esac
    assert_equal "$(swift_call --served_model_name "$exp" | sed -n '/^arg: --port$/{n;s/^arg: //p}')" "$((serve + 2 * i))"
    # Its base model on SERVE_PORT + 2i + 1, when it evaluated it: the three evaluate it on the same
    # inputs, so one does and the others link its results (the store of shared evaluations).
    port="$(swift_call --served_model_name "$exp-base" 2>/dev/null | sed -n '/^arg: --port$/{n;s/^arg: //p}')"
    if [[ -n "$port" ]]; then
      assert_equal "$port" "$((serve + 2 * i + 1))"
      bases_served=$((bases_served + 1))
    fi
    assert_file_exist "$OUT/results/$exp/$exp-base/ceval/lab-eval.json"
    assert_file_contains ".state/$exp/sweep.log" "\[deploy\] serving $exp at http://127.0.0.1:$((serve + 2 * i))/v1"
    assert_file_not_exist ".state/$exp/server/pid"
    i=$((i + 1))
  done
  assert_equal "$bases_served" 1
  # Each experiment's make held its own run lock.
  assert_equal "$(sed -n 's/^pid=//p' .state/sweep-{a,b,c}/run.lock | sort -u | wc -l)" 3
  # Two trainings overlapped, never three; sweep-c started when one of the first two had ended.
  assert_equal "$(wc -l <"$TMP/spans")" 3
  assert_equal "$(most_at_once "$TMP/spans")" 2
  awk '$2 != "sweep-c" && (first == "" || $4 < first) { first = $4 } $2 == "sweep-c" { c = $3 } END { exit !(c >= first) }' "$TMP/spans"
}

@test "side by side, a failure interrupts the others and starts none; KEEP_GOING=1 runs them all; JOBS=2 alone on GPU=cpu" {
  make new-exp FROM="$DEFAULT_EXP" NAME=sweep-c SET="lora_rank=8 eval.benchmarks=[ceval]" >/dev/null 2>&1
  # sweep-b's training fails while sweep-a's runs (120 s: cut short); sweep-bad would be next.
  STUB_SFT_SECONDS=120 STUB_SFT_FAIL_EXP=sweep-b run --separate-stderr make sweep EXPS="sweep-a sweep-b sweep-bad" GPUS="cpu cpu" \
    SERVE_PORT="$(free_ports 6)"
  assert_failure
  assert_line --regexp "$(summary_line sweep-a 'interrupted' —)"
  assert_line --regexp "$(summary_line sweep-b 'failed at train' —)"
  assert_line --regexp "$(summary_line sweep-bad 'not reached' —)"
  assert_file_exist "$TMP/sft-started"
  assert_file_not_exist "$OUT/output/sweep-a/checkpoint-4"
  # Its output went to its log; the sweep shows the log's tail.
  grep -q -- '--- last lines of .state/sweep-b/sweep.log ---' <<<"$stderr"
  grep -q "stub swift sft: simulated failure of sweep-b" <<<"$stderr"
  assert_file_contains .state/sweep-b/sweep.log "simulated failure of sweep-b"
  grep -q '\[sweep\] sweep-a: interrupting it (sweep-b failed; KEEP_GOING=1 would let it run)' <<<"$stderr"
  run pgrep -f "make -C $REPO all EXP=sweep-a"
  assert_failure

  : >"$STUB_LOG"
  run --separate-stderr make sweep EXPS="sweep-bad sweep-c" JOBS=2 KEEP_GOING=1 SERVE_PORT="$(free_ports 4)"
  assert_failure
  assert_line --regexp "$(summary_line sweep-bad 'failed at train' —)"
  assert_line --regexp "$(summary_line sweep-c 'done' report/sweep-c.md)"
  grep -q 'going on (KEEP_GOING=1)' <<<"$stderr"
  assert_equal "$(stub_arg swift 1 --swanlab_exp_name)" sweep-c
  grep -qx "env: CUDA_VISIBLE_DEVICES unset" <<<"$(stub_call swift 1)"
}

@test "GPUS and JOBS: DRY_RUN=1 prints each make with its GPUs and ports; bad entries are refused before anything runs" {
  run --separate-stderr make sweep EXPS="sweep-a sweep-b sweep-bad" GPUS="0 1,2" SERVE_PORT=9000 MASTER_PORT=29000 DRY_RUN=1
  assert_success
  assert_output "$(printf '%s\n' '# up to 2 at once, each on a free entry of GPUS (in this order when they take equally long); output in .state/<exp>/sweep.log' \
    'make all EXP=sweep-a GPU=0 SERVE_PORT=9000 MASTER_PORT=29000' 'make stop EXP=sweep-a' \
    'make all EXP=sweep-b GPU=1,2 SERVE_PORT=9002 MASTER_PORT=29001' 'make stop EXP=sweep-b' \
    'make all EXP=sweep-bad GPU=0 SERVE_PORT=9004 MASTER_PORT=29002' 'make stop EXP=sweep-bad')"
  run make sweep EXPS="sweep-a sweep-b" GPUS="0 x"
  assert_failure
  assert_line "[sweep] error: GPUS entry 'x' is not cpu, a GPU index or a comma list of them"
  run make sweep EXPS="sweep-a sweep-b" GPUS="0,1 1"
  assert_failure
  assert_line "[sweep] error: GPUS gives GPU 1 to two experiments at once ('0,1' and '1')"
  run make sweep EXPS="sweep-a sweep-b" JOBS=2 GPU=0
  assert_failure
  assert_line "[sweep] error: JOBS=2 would run 2 experiments on the same GPUs (GPU=0)"
  assert_line '[sweep] fix: give each its own with GPUS, e.g. make sweep GPUS="0 1" (JOBS alone is for GPU=cpu)'
  run make sweep EXPS="sweep-a sweep-b" JOBS=3 GPUS="0 1"
  assert_failure
  assert_line "[sweep] error: JOBS=3, but GPUS has 2 entries (one per experiment running at once)"
  run make sweep EXPS="sweep-a sweep-b" JOBS=0
  assert_failure
  assert_line "[sweep] error: JOBS='0' is not a number of experiments to run at once"
  run make sweep EXPS="sweep-a sweep-b" GPUS="0 9"
  assert_failure
  assert_line --partial "[sweep] error: GPU 9 does not exist here (nvidia-smi -L lists: 0,1,2,3,4,5,6,7)"
  assert_equal "$(stub_calls swift)" 0
}
