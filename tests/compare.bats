#!/usr/bin/env bats
# make compare (scripts/compare.sh): which experiments, whose paths (the env file's roots, as
# make report), and its errors. What it writes is tested in tests/test_compare.py (fixture
# runs) and tests/smoke/variants.bats (real smoke runs).

load test_helper

setup() {
  common_setup
  write_env GPU=cpu
}
teardown() { common_teardown; }

@test "make compare needs two or more experiments with a config, each once" {
  run make compare EXPS=
  assert_failure
  assert_line "[compare] error: make compare needs two or more experiments (EXPS='')"
  assert_line --partial '[compare] fix: name them: make compare EXPS="gpt-oss-20b-sft-v1 gpt-oss-20b-sft-r32"'
  run make compare EXPS=smoke
  assert_failure
  assert_line "[compare] error: make compare needs two or more experiments (EXPS='smoke')"
  run make compare EXPS="smoke nope"
  assert_failure
  assert_line "[compare] error: EXPS: experiment 'nope' has no config (configs/nope/sft.yaml)"
  assert_line --partial "[compare] fix: pick from: gpt-oss-20b-sft-experts gpt-oss-20b-sft-len2048"
  run make compare EXPS="smoke smoke"
  assert_failure
  assert_line "[compare] error: EXPS names 'smoke' twice"
  run make compare EXPS="smoke ../smoke"
  assert_failure
  assert_line "[compare] error: EXPS: '../smoke' is not a valid experiment name"
  assert_file_not_exist report/compare-smoke-nope.md
}

@test "DRY_RUN=1: one report.py-style set of paths per experiment, under the env file's roots" {
  run --separate-stderr make compare EXPS="smoke smoke-r4" DRY_RUN=1
  assert_success
  assert_line "python scripts/py/compare.py \\"
  assert_line "    --exp smoke \\"
  assert_line "    --run-dir $OUT/output/smoke \\"
  assert_line "    --results-dir $OUT/results/smoke \\"
  assert_line "    --exp smoke-r4 \\"
  assert_line "    --config configs/smoke-r4/sft.yaml \\"
  assert_line "    --manifest report/smoke-r4.manifest.json \\"
  assert_line "    --template report/compare.zh.md \\"
  assert_line "    --git-commit \"\$(git rev-parse HEAD)\""
}

@test "experiments never trained: a comparison that says not run, never zero, and names both" {
  run make compare EXPS="gpt-oss-20b-sft-v1 qwen3-30b-a3b-sft-v1"
  assert_success
  assert_output --partial "[compare] done: report/compare-gpt-oss-20b-sft-v1-qwen3-30b-a3b-sft-v1.md (and its -loss.png, -scores.png)"
  local md=report/compare-gpt-oss-20b-sft-v1-qwen3-30b-a3b-sft-v1.md
  run cat "$md"
  assert_line "# 实验对比：\`gpt-oss-20b-sft-v1\`、\`qwen3-30b-a3b-sft-v1\`"
  assert_line "| 最终训练 loss | 未运行（make train EXP=gpt-oss-20b-sft-v1） | 未运行（make train EXP=qwen3-30b-a3b-sft-v1） |"
  assert_line "| C-Eval | 准确率 | 未运行（make eval-ceval） | 未运行（make eval-ceval） | — |"
  # The model, its template and system prompt differ; the shared hyperparameters do not show.
  assert_line "| 训练（sft.yaml） | \`model\` | \`openai-mirror/gpt-oss-20b\` | \`Qwen/Qwen3-30B-A3B-Instruct-2507\` |"
  assert_line "| 训练（sft.yaml） | \`template\` | (未设置) | \`qwen3_nothinking\` |"
  refute_line --partial "\`lora_rank\`"
  # The evaluation differs only in how the replies are scored: gpt-oss's final channel, Qwen3's reply as it is.
  run grep -F "| 评测（eval.yaml）" "$md"
  assert_output --partial '"answer_mode": "final"'
  assert_output --partial '"answer_mode": "plain"'
  assert_equal "${#lines[@]}" 1
  run cat "$md"
  refute_output --partial "| 0.00% |"
  run od -An -tx1 -N8 report/compare-gpt-oss-20b-sft-v1-qwen3-30b-a3b-sft-v1-loss.png
  assert_output " 89 50 4e 47 0d 0a 1a 0a" # a PNG
  # Nothing of the comparison lands in an experiment's step record.
  assert_file_not_exist .state/qwen3-30b-a3b-sft-v1/steps.jsonl
}
