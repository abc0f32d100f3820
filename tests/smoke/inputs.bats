#!/usr/bin/env bats
# On the real smoke run (tests/run.sh runs it after make smoke): outputs bound to
# their inputs with the real tools, in a copy of the checkout with the run's outputs
# (tests/test_helper.bash smoke_copy): it retrains the smoke model with half the
# epochs and edits the report's template, and the checkout stays as it is.

load ../test_helper

setup_file() {
  cd "$BATS_TEST_DIRNAME/../.." || return 1
  smoke_copy "$BATS_FILE_TMPDIR/repo"
  cp configs/smoke/sft.yaml "$BATS_FILE_TMPDIR/sft.yaml"
  cp report/template.zh.md "$BATS_FILE_TMPDIR/template.zh.md"
}

teardown_file() {
  cd "$BATS_FILE_TMPDIR/repo" || return 1
  make stop EXP=smoke ENV_FILE=env/smoke.env >/dev/null 2>&1 || true
}

setup() { # each make here is a top-level make with a lock of its own
  smoke_setup
  cd "$BATS_FILE_TMPDIR/repo" || return 1
}

teardown() {
  if [[ -n "${MAKE_PID:-}" ]]; then kill -KILL -- "-$MAKE_PID" 2>/dev/null || true; fi
}

@test "an interrupted evaluation resumes from its cache; predictions without a record are set aside; a second make refuses" {
  local base=results/smoke/smoke-base subject
  # cmmlu was interrupted: no completion marker or report yet, one subject's answers missing.
  subject="$(jq -r '.subsets[0].name' "$base/cmmlu/lab-eval.json")"
  rm -r "$base/cmmlu/lab-eval.json" "$base/cmmlu/reports"
  rm "$base/cmmlu/predictions/smoke-base/"*"$subject"*.jsonl
  rm -f "$base/cmmlu/reviews/smoke-base/"*"$subject"*.jsonl
  # ceval holds predictions of unknown origin (no record of their inputs).
  rm "$base/ceval/lab-inputs.json" "$base/ceval/lab-eval.json"

  setsid make eval-base >"$BATS_TEST_TMPDIR/eval-base.log" 2>&1 &
  MAKE_PID=$!
  local holder="" waited=0
  until [[ -n "$holder" ]] && grep -q make "/proc/$holder/cmdline" 2>/dev/null; do
    holder="$(sed -n 's/^pid=//p' .state/smoke/run.lock 2>/dev/null || true)"
    ((waited++ < 100)) || break
    sleep 0.1
  done
  run make report
  assert_failure
  assert_line --regexp "^\[state\] error: another make works on smoke: pid $holder, 'make eval-base', since "

  wait "$MAKE_PID" || { cat "$BATS_TEST_TMPDIR/eval-base.log"; false; }
  MAKE_PID=
  run cat "$BATS_TEST_TMPDIR/eval-base.log"
  assert_line "[eval] cmmlu: resuming from the cached predictions in $base/cmmlu"
  assert_line "[eval] ceval on smoke-base: $base/ceval has no record of what it was made from"
  assert_line --regexp "^\[eval\] moved it to $base/ceval\.replaced-[0-9T]+Z \(kept\); evaluating from scratch$"
  assert_line "[eval] cmmlu-psych on smoke-base already finished: accuracy 0 on 12 questions"
  assert_equal "$(jq .num "$base/cmmlu/lab-eval.json")" 16
  assert_equal "$(jq .num "$base/ceval/lab-eval.json")" 12
  run ls -d "$base"/ceval.replaced-*/predictions
  assert_success
  run scripts/status.sh
  assert_line --regexp "^server: +not running"
}

@test "a sentence changed in the template changes report/smoke.md; nothing else reruns" {
  sed -i 's/^### 9\.4 显存与效率$/### 9.4 显存与效率（模板已修改）/' report/template.zh.md
  run make report
  assert_success
  refute_output --partial "+ swift"
  refute_output --partial "+ evalscope"
  run grep -cx '### 9.4 显存与效率（模板已修改）' report/smoke.md
  assert_output 1
  cp "$BATS_FILE_TMPDIR/template.zh.md" report/template.zh.md
  run make report
  assert_success
  run grep -cx '### 9.4 显存与效率' report/smoke.md
  assert_output 1
}

# wait_until SECONDS COMMAND...: polls COMMAND each second until it succeeds; fails after SECONDS.
wait_until() {
  local limit="$1" waited=0
  shift
  until "$@"; do
    ((waited++ < limit)) || return 1
    sleep 1
  done
}

# One retraining serves two tests of the real tools: a changed input retrains, and a training
# killed with SIGKILL after a complete checkpoint resumes from it on the next make.
@test "a changed training hyperparameter: retrained, killed mid-run and resumed from its last complete checkpoint; args.json, the report and the manifest agree with it" {
  # shellcheck source=../../scripts/lib/common.sh
  source scripts/lib/common.sh
  # shellcheck source=../../scripts/lib/checkpoints.sh
  source scripts/lib/checkpoints.sh
  local base_marker=results/smoke/smoke-base/ceval/lab-eval.json before resumed_from step total run_id
  before="$(sha256sum "$base_marker")"
  # Half the epochs: the retrained run is 16 steps, not 32 (its checkpoints 4, 8, 12, 16).
  sed -i 's/^num_train_epochs: 4$/num_train_epochs: 2/' configs/smoke/sft.yaml
  setsid make train >"$BATS_TEST_TMPDIR/first.log" 2>&1 &
  MAKE_PID=$!
  # The old run moved aside first (its checkpoint-8 is complete too), then the new one's.
  wait_until 300 compgen -G 'output/smoke.replaced-*' >/dev/null || fail "the old run was not moved aside"
  wait_until 300 is_complete_checkpoint output/smoke/checkpoint-8 || fail "no complete checkpoint-8 of the new run"
  kill -KILL -- "-$MAKE_PID"
  wait "$MAKE_PID" || true
  MAKE_PID=
  run cat "$BATS_TEST_TMPDIR/first.log"
  assert_line "[state] train: its inputs changed since it ran (train); make redoes it"
  assert_line --regexp "^\[train\] output/smoke was made from other inputs; moved it to output/smoke\.replaced-[0-9T]+Z \(REPLACE_CHANGED=1\)$"
  run training_finished output/smoke
  assert_failure
  resumed_from="$(last_complete_checkpoint output/smoke)"
  [[ "$resumed_from" == output/smoke/checkpoint-8 || "$resumed_from" == output/smoke/checkpoint-12 ]]

  run make train export report
  assert_success
  assert_line --regexp "^\[train\] resuming from .*/$resumed_from \(same inputs\)$"
  run training_finished output/smoke
  assert_success
  # The resumed run's first logged step is the one after the checkpoint, not step 1.
  step="${resumed_from##*-}"
  total="$(jq -r 'select(."global_step/max_steps") | ."global_step/max_steps"' output/smoke/logging.jsonl | tail -n 1)"
  total="${total#*/}"
  run jq -r --arg next "$((step + 1))/$total" 'select(."global_step/max_steps" == $next) | .loss' output/smoke/logging.jsonl
  assert_success
  refute_output ""
  run jq -e --argjson step "$step" --argjson total "$total" \
    '.global_step == $total and (.log_history | map(select(.step == ($step + 1) and .loss)) | length) >= 1' \
    "output/smoke/checkpoint-$total/trainer_state.json"
  assert_success
  # The held-out split once, the rows the first run held out (ms-swift appends it at every
  # start; train.sh sets the earlier one aside and compares).
  assert_equal "$(sha256sum <output/smoke/val_dataset.jsonl)" "$(cat output/smoke.replaced-*/val_dataset.jsonl | sha256sum)"
  assert_file_not_exist output/smoke/val_dataset.earlier.jsonl
  # Both parts logged to the same SwanLab run id (a cloud run continues; locally one folder each).
  run_id="$(cat output/smoke/swanlab-run-id)"
  run find results/smoke/swanlog -maxdepth 1 -name "run-*-$run_id"
  assert_equal "${#lines[@]}" 2

  assert_equal "$(jq .num_train_epochs output/smoke/args.json)" 2
  run grep -F "| \`num_train_epochs\` | \`2.0\` |" report/smoke.md
  assert_success
  assert_equal "$(jq '.fingerprints.train.inputs.configs["configs/smoke/sft.yaml"].content.num_train_epochs' report/smoke.manifest.json)" 2
  assert_equal "$(jq -r .files.config.sha256 report/smoke.manifest.json)" "$(sha256sum configs/smoke/sft.yaml | cut -d' ' -f1)"
  assert_equal "$(jq -c .inputs_changed_since report/smoke.manifest.json)" "[]"
  # The fine-tuned model's scores belong to the old export: not shown (one note per
  # benchmark of eval.yaml); the base model's stay.
  run grep -c '（微调后）：已有结果评测的是另一个模型' report/smoke.md
  # (a benchmark's category row, benchmark:category, is a row of the manifest, not an evaluation)
  assert_output "$(jq -r '[.results.eval | keys[] | select(contains(":") | not)] | length' report/smoke.manifest.json)"
  refute_output 0
  assert_equal "$(sha256sum "$base_marker")" "$before"
  # Back to the old config: the report says what ran differs from the config now.
  cp "$BATS_FILE_TMPDIR/sft.yaml" configs/smoke/sft.yaml
  run make report
  assert_success
  run grep -F "\`train: configs/smoke/sft.yaml: num_train_epochs: 2 -> 4\`" report/smoke.md
  assert_success
}
