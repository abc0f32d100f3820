#!/usr/bin/env bats
# The base model's evaluations shared between experiments (scripts/lib/store.sh), against the
# stubs: a variant that changes only a training setting links the base model's evaluation
# another experiment made (no server, no EvalScope for the base); a changed evaluation input
# or an unfinished entry is never reused; a make that wants an entry another make is
# evaluating waits for it, then links it. Two small variants of the default experiment (one
# benchmark each, made with make new-exp) keep it quick.

# shellcheck disable=SC2154 # $stderr: set by run --separate-stderr
load test_helper

setup() {
  common_setup
  # A venv that matches the lock, so `make env` has nothing to do.
  venv_up_to_date
  write_env GPU=cpu "SERVE_PORT=$(free_port)" SKIP_REMOTE_CHECKS=swanlab,hub
  make new-exp FROM="$DEFAULT_EXP" NAME=share-a SET="eval.benchmarks=[ceval]" >/dev/null 2>&1
  make new-exp FROM="$DEFAULT_EXP" NAME=share-b SET="learning_rate=2e-4 eval.benchmarks=[ceval]" >/dev/null 2>&1
  export STUB_CURL_WAIT_SERVED=5
}

teardown() { common_teardown; }

# deploys NAME: how many times swift deploy served NAME.
deploys() { grep -c -- "^argv: deploy .* --served_model_name $1 " "$STUB_LOG" || true; }
# evaluations NAME: how many EvalScope evaluations asked NAME.
evaluations() { grep -c -- "^argv: eval --eval-type .* --model $1 " "$STUB_LOG" || true; }
# entry EXP: the store entry EXP's base C-Eval results link to.
entry() { readlink -f "$OUT/results/$1/$1-base/ceval"; }

@test "a variant that changes only a training setting: the base model served and evaluated once; both reports, make status and make runbook show the results and where they came from" {
  run --separate-stderr make sweep EXPS="share-a share-b" WITH_BASE=1
  assert_success
  assert_line "sweep of 2 experiment(s): 0 failed"
  assert_equal "$(deploys share-a-base)" 1
  assert_equal "$(deploys share-b-base)" 0
  assert_equal "$(evaluations share-a-base)" 1
  assert_equal "$(evaluations share-b-base)" 0
  assert_equal "$(evaluations share-b)" 1 # the fine-tuned model of share-b is its own
  # share-b's results link to the entry share-a made, named by the evaluation fingerprint.
  local digest
  digest="$(jq -r .inputs_digest "$OUT/results/share-a/share-a-base/ceval/lab-eval.json")"
  assert_equal "$(entry share-a)" "$OUT/results/.store/$digest"
  assert_equal "$(entry share-b)" "$OUT/results/.store/$digest"
  assert_equal "$(readlink "$OUT/results/share-b/share-b-base/ceval")" "../../.store/$digest"
  assert_equal "$(jq -r .experiment "$OUT/results/.store/$digest/lab-store.json")" share-a
  grep -qF "[state] eval-share-b-base-ceval: evaluated already by share-a (evaluation fingerprint ${digest:0:12}): linked, not evaluated again" <<<"$stderr"
  # Both reports show the base model's score and where it came from.
  run grep -F "| \`share-a\`（本实验） | \`share-a-base\` | \`${digest:0:12}\` |" report/share-a.md
  assert_success
  run grep -F "| \`share-a\` | \`share-a-base\` | \`${digest:0:12}\` |" report/share-b.md
  assert_success
  run grep -F "1 项评测由其他实验首次完成（\`share-a\`）" report/share-b.md
  assert_success
  run grep -F "本实验没有部署基座模型" report/share-b.md
  assert_success
  run grep -E "^\| C-Eval \| 准确率 \|" report/share-b.md
  assert_output --regexp '^\| C-Eval \| 准确率 \| [^|]+ \| [0-9.]+% \| [0-9.]+% \|'
  # make status names the source; a second sweep runs no tool.
  run env EXP=share-b scripts/status.sh
  assert_line --regexp "^  eval-share-b-base-ceval +done, up to date \(shared: evaluated by share-a, evaluation fingerprint ${digest:0:12}\)$"
  # make runbook prints the link, and no server for the base model.
  run --separate-stderr make runbook EXP=share-b
  assert_success
  assert_line "# ceval on share-b-base: evaluated already by share-a (evaluation fingerprint ${digest:0:12}): linked, not evaluated again"
  assert_line --partial "ln -sfn ../../.store/$digest "
  refute_line --partial "--served_model_name share-b-base"
  : >"$STUB_LOG"
  run --separate-stderr make sweep EXPS="share-a share-b" WITH_BASE=1
  assert_success
  assert_equal "$(stub_calls swift)" 0
  assert_equal "$(stub_calls evalscope)" 0
}

@test "a changed evaluation input (the question limit) is not shared: the base model is served and evaluated again, into its own entry" {
  run make eval-base EXP=share-a # trains (the stub) and evaluates the base model: its store entry
  assert_success
  sed -i 's/^eval:$/eval:\n  ceval: {limit: 50}/' configs/share-b/variant.yaml
  make variants >/dev/null 2>&1
  : >"$STUB_LOG"
  run make eval-base EXP=share-b
  assert_success
  assert_equal "$(deploys share-b-base)" 1
  assert_equal "$(evaluations share-b-base)" 1
  assert_equal "$(stub_arg evalscope 1 --limit)" 50
  [[ "$(entry share-b)" != "$(entry share-a)" ]]
  assert_equal "$(jq -r .experiment "$(entry share-b)/lab-store.json")" share-b
  # the serving config too: the same content under another name is the same input, other content is not
  run env EXP=share-b scripts/status.sh
  assert_line --regexp "^  eval-share-b-base-ceval +done, up to date \(shared with experiments of the same evaluation inputs: fingerprint [0-9a-f]{12}\)$"
}

@test "an unfinished entry is never reused: another experiment sets it aside and evaluates the base model itself" {
  run make eval-base EXP=share-a # trains (the stub) and evaluates the base model: its store entry
  assert_success
  local entry_a
  entry_a="$(entry share-a)"
  # Interrupted before its completion marker: the record and predictions are there, the marker is not.
  rm "$entry_a/lab-eval.json"
  : >"$STUB_LOG"
  run --separate-stderr make eval-base EXP=share-b
  assert_success
  assert_equal "$(deploys share-b-base)" 1
  assert_equal "$(evaluations share-b-base)" 1
  grep -qE "^\[eval\] ceval on share-b-base: its store entry .*/\.store/[0-9a-f]{64} holds an unfinished evaluation by share-a: never reused$" <<<"$stderr"
  run ls -d "$OUT/results/share-b/share-b-base/ceval.replaced-"*
  assert_success
  assert_equal "$(entry share-b)" "$entry_a"
  assert_equal "$(jq -r .model "$entry_a/lab-eval.json")" share-b-base
  assert_equal "$(jq -r .experiment "$entry_a/lab-store.json")" share-b
}

@test "a make that wants an entry another make is evaluating waits for its lock, then links it" {
  run make eval-base EXP=share-a # trains (the stub) and evaluates the base model: its store entry
  assert_success
  local entry_a log="$BATS_TEST_TMPDIR/eval-base.log"
  entry_a="$(entry share-a)"
  mv "$entry_a/lab-eval.json" "$BATS_TEST_TMPDIR/marker"
  # Another make evaluates the entry: it holds the lock until the completion marker is there.
  (
    exec 9>>"$entry_a.lock"
    flock 9
    for _ in $(seq 600); do grep -q 'waiting for share-a' "$log" 2>/dev/null && break; sleep 0.1; done
    mv "$BATS_TEST_TMPDIR/marker" "$entry_a/lab-eval.json"
  ) &
  : >"$STUB_LOG"
  make eval-base EXP=share-b >"$log" 2>&1
  wait
  run cat "$log"
  assert_line --regexp "^\[eval\] waiting for share-a, which evaluates store entry [0-9a-f]{12} now "
  assert_line --partial "[eval] ceval on share-b-base: evaluated already by share-a"
  assert_equal "$(deploys share-b-base)" 0
  assert_equal "$(stub_calls evalscope)" 0
  assert_equal "$(entry share-b)" "$entry_a"
}

@test "make clean removes the store entries a smoke run made that no other experiment links, and no other" {
  local entry
  for entry in smoke-only smoke-linked other; do
    mkdir -p "results/.store/$entry"
    : >"results/.store/$entry.lock"
  done
  printf '{"experiment": "smoke"}\n' >results/.store/smoke-only/lab-store.json
  printf '{"experiment": "smoke-r4"}\n' >results/.store/smoke-linked/lab-store.json
  printf '{"experiment": "gpt-oss-20b-sft-v1"}\n' >results/.store/other/lab-store.json
  mkdir -p results/gpt-oss-20b-sft-r32/gpt-oss-20b-sft-r32-base results/smoke/smoke-base
  ln -s ../../.store/smoke-linked results/gpt-oss-20b-sft-r32/gpt-oss-20b-sft-r32-base/ceval
  ln -s ../../.store/smoke-only results/smoke/smoke-base/ceval
  run make clean DRY_RUN=1
  assert_success
  assert_line "rm -rf results/.store/smoke-only results/.store/smoke-only.lock"
  assert_dir_exist results/.store/smoke-only
  run make clean
  assert_success
  assert_dir_not_exist results/.store/smoke-only
  assert_file_not_exist results/.store/smoke-only.lock
  assert_dir_exist results/.store/smoke-linked
  assert_dir_exist results/.store/other
  assert_file_exist results/.store/other.lock
}
