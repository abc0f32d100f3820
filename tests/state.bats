#!/usr/bin/env bats
# What make decides from the fingerprints (scripts/sync-state.sh): which stamps
# still hold, and one make at a time per experiment.

load test_helper

setup() {
  common_setup
  CFG="configs/$DEFAULT_EXP"
  # A venv that matches the lock, so `make env` has nothing to do.
  venv_up_to_date
  write_env GPU=cpu "SERVE_PORT=$(free_port)" SKIP_REMOTE_CHECKS=swanlab,hub
}

teardown() {
  if [[ -n "${MAKE_PID:-}" ]]; then kill -KILL -- "-$MAKE_PID" 2>/dev/null || true; fi
  common_teardown
}

stamps() { find ".state/$DEFAULT_EXP" -maxdepth 1 -name '*.done' -printf '%f\n' 2>/dev/null | sort | paste -sd' ' -; }

# The steps of the base model's evaluations: every benchmark of eval.yaml on <exp>-base.
base_evals() {
  # Not the arena (kind: arena): it compares both models, its own step.
  "$LAB_PYTHON" -c 'import sys, yaml; suite = yaml.safe_load(open(sys.argv[3]))
print(" ".join(f"eval-{sys.argv[2]}-base-{b}" for b in yaml.safe_load(open(sys.argv[1]))["benchmarks"]
               if suite.get(b, {}).get("kind") != "arena"))' "$CFG/eval.yaml" "$DEFAULT_EXP" configs/benchmarks.yaml
}

@test "finished work: make train export runs no tool and keeps the stamps" {
  mark_done train export
  run make train export
  assert_success
  assert_equal "$(stub_calls swift)" 0
  assert_equal "$(stamps)" "export.done train.done"
}

@test "a changed training key: the training and export stamps go, the base evaluations stay" {
  # shellcheck disable=SC2046 # one step a word
  mark_done train export $(base_evals)
  run scripts/sync-state.sh all
  assert_success
  assert_equal "$(stamps)" "eval-base.done export.done train.done"
  sed -i 's/^lora_rank: 16/lora_rank: 32/' "$CFG/sft.yaml"
  run scripts/sync-state.sh all
  assert_success
  assert_line "[state] train: its inputs changed since it ran (train); make redoes it"
  assert_line "[state] export: its inputs changed since it ran (export); make redoes it"
  assert_equal "$(stamps)" "eval-base.done"
}

@test "a goal syncs the stamps of its steps and of those they need (scripts/pipeline.mk), no others" {
  # shellcheck disable=SC2046 # one step a word
  mark_done train export $(base_evals)
  run scripts/sync-state.sh train
  assert_success
  assert_equal "$(stamps)" "train.done"
  run scripts/sync-state.sh export
  assert_equal "$(stamps)" "export.done train.done"
  # The base model's evaluations need the training (its held-out split), not the export.
  sed -i 's/^lora_rank: 16/lora_rank: 32/' "$CFG/sft.yaml"
  run scripts/sync-state.sh eval-base
  assert_success
  assert_line "[state] train: its inputs changed since it ran (train); make redoes it"
  refute_line --partial "[state] export:"
  assert_equal "$(stamps)" "eval-base.done export.done"
}

@test "a changed evaluation setting: only the evaluations' stamps go" {
  # shellcheck disable=SC2046 # one step a word
  mark_done train export eval-"$DEFAULT_EXP"-ceval $(base_evals)
  run scripts/sync-state.sh all
  assert_equal "$(stamps)" "eval-base.done eval-ceval.done export.done train.done"
  sed -i 's/^  limit: 100 /  limit: 10 /' "$CFG/eval.yaml"
  run scripts/sync-state.sh all
  assert_success
  assert_equal "$(stamps)" "export.done train.done"
}

@test "outputs gone: the stamp goes too" {
  mark_done train export
  run scripts/sync-state.sh all
  assert_equal "$(stamps)" "export.done train.done"
  rm -r "$EXPORT_DIR"
  run scripts/sync-state.sh all
  assert_line "[state] export: its outputs are gone (export); make redoes it"
  assert_equal "$(stamps)" "train.done"
}

@test "a typo in EXP, or a name with / or ..: every target says so before make looks for rules" {
  local target exp dry
  for target in train all eval-base report env status runbook "all DRY_RUN=1" "train DRY_RUN=1"; do
    read -r target dry <<<"$target"
    run make "$target" ${dry:+"$dry"} EXP=gpt-oss-20b-sft-v2
    assert_failure
    assert_line --regexp "^\[[a-z]+\] error: experiment 'gpt-oss-20b-sft-v2' has no config \(configs/gpt-oss-20b-sft-v2/sft.yaml\)$"
    refute_output --partial "No rule to make target"
    for exp in ../configs/smoke smoke/../smoke ..; do
      run make "$target" ${dry:+"$dry"} EXP="$exp"
      assert_failure
      assert_line --regexp "^\[[a-z]+\] error: EXP='${exp//./\\.}' is not a valid experiment name$"
      refute_output --partial "No rule to make target"
    done
  done
  assert_equal "$(stub_calls swift)" 0
}

@test "a second make on the same experiment refuses at once, naming the running one" {
  STUB_SFT_SECONDS=30 setsid make train >"$TMP/first.log" 2>&1 &
  MAKE_PID=$!
  wait_for_file "$STUB_STATE/sft-started" 300 || { cat "$TMP/first.log" >&2; false; }
  local started
  started="$(date +%s)"
  run make train
  assert_failure
  local holder
  holder="$(sed -n 's/^pid=//p' ".state/$DEFAULT_EXP/run.lock")"
  assert_line --regexp "^\\[state\\] error: another make works on $DEFAULT_EXP: pid $holder, 'make train', since 20[0-9-]+T[0-9:]+Z$"
  grep -q make "/proc/$holder/cmdline"
  assert_line --partial "[state] fix: wait for it to finish"
  (($(date +%s) - started < 10))
  assert_equal "$(stub_calls swift)" 1
  # Killed, it leaves its lock behind; the next make takes it over.
  kill -KILL -- "-$(ps -o pgid= -p "$holder" | tr -d ' ')"
  wait "$MAKE_PID" || true
  MAKE_PID=
  run make train
  assert_success
  assert_equal "$(stub_calls swift)" 2
}
