#!/usr/bin/env bats
# make table (scripts/table.sh): which experiments, whose paths (the env file's roots, as make
# report), and its errors. What it writes is tested in tests/test_table.py (fixture runs) and
# tests/smoke/variants.bats (the real smoke runs).

load test_helper

setup() {
  common_setup
  write_env GPU=cpu
}
teardown() { common_teardown; }

@test "make table needs experiments with a config, each once" {
  run make table EXPS=
  assert_failure
  assert_line "[table] error: make table needs one or more experiments (EXPS='')"
  assert_line --partial '[table] fix: name them: make table EXPS="gpt-oss-20b-sft-v1 gpt-oss-20b-sft-r32"'
  run make table EXPS="smoke nope"
  assert_failure
  assert_line "[table] error: EXPS: experiment 'nope' has no config (configs/nope/sft.yaml)"
  run make table EXPS="smoke smoke"
  assert_failure
  assert_line "[table] error: EXPS names 'smoke' twice"
  assert_file_not_exist report/table-smoke-nope.md
}

@test "DRY_RUN=1: one set of paths per experiment, under the env file's roots" {
  run --separate-stderr make table EXPS="smoke smoke-r4" DRY_RUN=1
  assert_success
  assert_line "python scripts/py/table.py \\"
  assert_line "    --exp smoke \\"
  assert_line "    --results-dir $OUT/results/smoke \\"
  assert_line "    --exp smoke-r4 \\"
  assert_line "    --eval-config configs/smoke-r4/eval.yaml \\"
  assert_line "    --out-dir report \\"
}

@test "experiments never evaluated: the three files, every cell empty with a footnote, never 0" {
  run make table EXPS="gpt-oss-20b-sft-v1 qwen3-30b-a3b-sft-v1"
  assert_success
  assert_output --partial "[table] done: report/table-gpt-oss-20b-sft-v1-qwen3-30b-a3b-sft-v1.{csv,tex,md}"
  local stem=report/table-gpt-oss-20b-sft-v1-qwen3-30b-a3b-sft-v1
  assert_file_exist "$stem.csv"
  assert_file_exist "$stem.tex"
  run cat "$stem.md"
  # two base models: each once, with its experiment
  # (every column of the suite's benchmarks the experiments evaluate, GSM8K first, as the lab's table)
  assert_line "| \`openai-mirror/gpt-oss-20b\` | 基座（未微调） |$(printf ' ¹ |%.0s' {1..19})"
  assert_line --partial "| \`Qwen/Qwen3-30B-A3B-Instruct-2507\` | \`qwen3-30b-a3b-sft-v1\` | ¹⁰ | ¹¹ |"
  assert_line "- ¹ 未运行（make eval-base EXP=gpt-oss-20b-sft-v1）"
  assert_line "- ² 未运行（make eval-general EXP=gpt-oss-20b-sft-v1）"
  refute_output --partial "| 0.00 |"
  run "$LAB_PYTHON" "$SRC_ROOT/tests/md_check.py" "$stem.md"
  assert_success
  # Nothing of the table lands in an experiment's step record.
  assert_file_not_exist .state/gpt-oss-20b-sft-v1/steps.jsonl
}
