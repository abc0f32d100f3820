#!/usr/bin/env bats
# The Makefile as a whole: make all's dry run (every hyperparameter of the lab's report,
# ms-swift 4.6 flags only), the wiring of its targets, and paths with spaces end to end.

load test_helper

setup() {
  common_setup
  CFG="configs/$DEFAULT_EXP"
}
teardown() { common_teardown; }

SECRET=sk-test-SECRET-123

# ---------------------------------------------------------------- make all, dry run

@test "make all GPU=6 DRY_RUN=1: every hyperparameter of the report, ms-swift 4.6 flags only" {
  write_env "SWANLAB_TOKEN=$SECRET"
  run make all GPU=6 DRY_RUN=1
  assert_success
  local setting
  for setting in "lora_rank: 16" "lora_alpha: 64" "target_modules: all-linear" "learning_rate: 1.0e-4" \
    "per_device_train_batch_size: 4" "gradient_accumulation_steps: 8" "max_length: 3072" \
    "warmup_ratio: 0.1" "router_aux_loss_coef: 1.0e-3" "eval_steps: 100" "save_steps: 100" \
    "save_total_limit: 3" "logging_steps: 20" "torch_dtype: bfloat16" "num_train_epochs: 1" \
    "tuner_type: lora" "split_dataset_ratio: 0.02" "seed: 42" \
    "lmdeploy_session_len: 8192" "lmdeploy_cache_max_entry_count: 0.5" \
    "merge_lora: true" "safe_serialization: true" "max_shard_size: 2GB"; do
    assert_line --regexp "^#   ${setting//./\\.}( |\$)"
  done
  # Each step's command, on the GPU given on the command line.
  assert_line "CUDA_VISIBLE_DEVICES=6 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope SWANLAB_LOG_DIR=$OUT/results/$DEFAULT_EXP/swanlog SWANLAB_API_KEY=\"\$SWANLAB_TOKEN\" swift sft $CFG/sft.yaml \\"
  assert_line "CUDA_VISIBLE_DEVICES=6 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope swift export $CFG/export.yaml \\"
  assert_line "    --adapters $RUN_DIR/last-checkpoint \\"
  assert_line --partial "c.pop(\"quantization_config\", None)"
  assert_line "CUDA_VISIBLE_DEVICES=6 HF_HOME=$OUT/cache/huggingface MODELSCOPE_CACHE=$OUT/cache/modelscope setsid .venv-lmdeploy/bin/swift deploy $CFG/deploy.yaml \\"
  assert_line --partial "curl --noproxy '*' http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' -d "
  # No flag that ms-swift 4.6 / lmdeploy 0.11 removed, outside the comments.
  local commands
  commands="$(grep -v '^#' <<<"$output")"
  assert_equal "$(grep -cE -- '--train_type|--ckpt_dir|--model_dir|--tp( |$)|--session-len|--cache-max-entry-count' <<<"$commands")" 0
  refute_output --partial SECRET
  # A dry run runs nothing.
  assert_equal "$(stub_calls swift)" 0
  assert_equal "$(stub_calls curl)" 0
  assert_file_not_exist "$REPO/.state"
}

@test "the configs use no option that ms-swift 4.6 removed" {
  run grep -nE '^(train_type|ckpt_dir|model_dir|tp|session_len|cache_max_entry_count):' "$REPO"/configs/*/*.yaml
  assert_failure
  run grep -nE '^lmdeploy_cache_max_entry_count: 0(\.0*)?$' "$REPO"/configs/*/deploy.yaml
  assert_failure
}

# ---------------------------------------------------------------- Makefile wiring

@test "make eval-ceval DRY_RUN=1 reaches the eval script (the stamp rule is not skipped as phony)" {
  write_env GPU=cpu
  # A stand-in eval script: this test is about the Makefile, not the evaluation.
  printf '#!/usr/bin/env bash\necho "eval.sh called with: $*"\n' >scripts/eval.sh
  chmod +x scripts/eval.sh
  run make eval-ceval DRY_RUN=1
  assert_success
  assert_line "eval.sh called with: --group ceval"
  assert_line --partial "swift deploy $CFG/deploy.yaml \\"
  assert_line "curl --noproxy '*' http://127.0.0.1:8000/v1/models"
}

# ---------------------------------------------------------------- paths with spaces

@test "paths with spaces: each path reaches swift as one argument, and the runbook quotes it" {
  local root="$TMP/data disk/lab runs"
  write_env_raw GPU=6 "OUTPUT_ROOT=$root/output" "EXPORT_ROOT=$root/export" "RESULTS_ROOT=$root/results" \
    "CACHE_ROOT=$root/cache" "SWANLAB_PROJECT=p"
  run scripts/train.sh
  assert_success
  run stub_call swift
  assert_line "arg: $root/output/$DEFAULT_EXP"
  assert_line "env: SWANLAB_LOG_DIR=$root/results/$DEFAULT_EXP/swanlog"
  run scripts/export.sh
  assert_success
  assert_file_exist "$root/export/$DEFAULT_EXP/config.json"
  run stub_call swift
  assert_line "arg: $root/output/$DEFAULT_EXP/checkpoint-4"
  run env DRY_RUN=1 scripts/train.sh
  assert_success
  assert_line "    --output_dir '$root/output/$DEFAULT_EXP' \\"
}

# ---------------------------------------------------------------- the pipeline, declared once

# make_prereqs TARGET: TARGET's prerequisites as make's database has them (dry run).
make_prereqs() {
  make -pn "$1" DRY_RUN=1 2>/dev/null | sed -n "s|^$1: ||p" | head -n 1
}

@test "the pipeline is declared once: scripts/pipeline.mk's order and needs are make's graph, the stamps make syncs and the runbook's order" {
  local state=".state/$DEFAULT_EXP"
  assert_equal "$(make_prereqs experiment-with-base)" \
    "$state/train.done $state/export.done serve $state/evals.done $state/eval-base.done $state/arena.done"
  assert_equal "$(make_prereqs "$state/export.done")" "$state/train.done $CFG/export.yaml"
  assert_equal "$(make_prereqs "$state/arena.done")" "$state/evals.done $state/eval-base.done $CFG/eval.yaml configs/benchmarks.yaml"
  run make runbook
  assert_success
  assert_line "STEPS=(environment preflight train export serve serve_base arena report)"

  # One edit there: the base model evaluated before the fine-tuned one, and only once the
  # export exists. Make's graph, the runbook and the stamps follow.
  sed -i -e 's/^PIPELINE := .*/PIPELINE := train export eval-base evals arena report/' \
    -e 's/^needs.eval-base := .*/needs.eval-base := export/' scripts/pipeline.mk
  assert_equal "$(make_prereqs experiment-with-base)" \
    "$state/train.done $state/export.done $state/eval-base.done serve $state/evals.done $state/arena.done"
  assert_equal "$(make_prereqs "$state/eval-base.done")" \
    "$state/export.done $CFG/eval.yaml configs/benchmarks.yaml | env"
  run make runbook
  assert_success
  assert_line "STEPS=(environment preflight train export serve_base serve arena report)"
  run --separate-stderr env DRY_RUN=1 scripts/sync-state.sh
  assert_success
  assert_equal "$(xargs -n 1 basename <<<"$output" | tr '\n' ' ')" \
    "train.done export.done eval-base.done eval-ceval.done eval-cmmlu.done eval-psych.done eval-general.done eval-safety.done eval-dialog.done eval-counsel.done eval-perf.done evals.done arena.done "

  # A step the scripts do not know is refused with what to do, not skipped.
  sed -i 's/^PIPELINE := .*/PIPELINE := train export calibrate evals eval-base report/' scripts/pipeline.mk
  run make runbook
  assert_failure
  assert_output --partial "no printer for step 'calibrate' of scripts/pipeline.mk"
}
