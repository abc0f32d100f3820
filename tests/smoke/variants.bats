#!/usr/bin/env bats
# The smoke experiment's variants, for real (run by tests/run.sh after the other real
# suites, so the smoke run and the tiny model exist): one make sweep EXPS="smoke smoke-r4
# smoke-experts" WITH_BASE=1 GPUS="cpu cpu" (smoke is done: a no-op) runs the whole pipelines of
# smoke-r4 and smoke-experts side by side, each on ports of its own, and serves no base model:
# they link smoke's evaluations of it (the store of shared evaluations). Then smoke-experts'
# adapter holds LoRA on the fused expert parameters, trained, and make compare EXPS="smoke
# smoke-r4" writes the comparison with its charts. The servers listen on free ports (a
# location, not an input: nothing redone).

# shellcheck disable=SC2154 # $stderr: set by run --separate-stderr
load ../test_helper

setup() { smoke_setup; }

# adapter_tensors RUN_DIR: name, shape and whether it is all zeros, of each tensor of the
# last checkpoint's adapter.
adapter_tensors() {
  "$LAB_PYTHON" - "$1/$(readlink "$1/last-checkpoint")/adapter_model.safetensors" <<'EOF'
import sys
from safetensors.torch import load_file
for name, tensor in sorted(load_file(sys.argv[1]).items()):
    print(name, list(tensor.shape), "zero" if not tensor.abs().sum().item() else "nonzero")
EOF
}

# train_window EXP: the start and end (epoch seconds) of EXP's last training (steps.jsonl).
train_window() {
  jq -rs '[.[] | select(.step == "train" and (.event == "start" or .event == "end"))] | .[-2:]
    | map(.time | fromdateiso8601) | @tsv' ".state/$1/steps.jsonl"
}

# served_count EXP NAME: how many times the make of EXP started a server of NAME (its step record).
served_count() {
  jq -r 'select(.step == "deploy" and .event == "command") | .detail' ".state/$1/steps.jsonl" 2>/dev/null |
    grep -c -- "--served_model_name $2 " || true
}

# free_ports N: the first of N free ports in a row.
free_ports() {
  local first i
  while :; do
    first="$(free_port)"
    for ((i = 1; i < $1; i++)); do (: >"/dev/tcp/127.0.0.1/$((first + i))") 2>/dev/null && continue 2; done
    printf '%s' "$first"
    return 0
  done
}

@test "make sweep EXPS=\"smoke smoke-r4 smoke-experts\" WITH_BASE=1 GPUS=\"cpu cpu\": side by side on ports of their own, the base model served once in all (its evaluations shared)" {
  local serve master started r4_start r4_end experts_start experts_end bench fingerprint
  # Each experiment i: its model on SERVE_PORT + 2i, its base model on + 1.
  serve="$(free_ports 6)"
  master="$(free_port)"
  started=$SECONDS
  run --separate-stderr make sweep EXPS="smoke smoke-r4 smoke-experts" WITH_BASE=1 GPUS="cpu cpu" \
    SERVE_PORT="$serve" MASTER_PORT="$master"
  echo "# make sweep EXPS=\"smoke smoke-r4 smoke-experts\" WITH_BASE=1 GPUS=\"cpu cpu\": $((SECONDS - started)) s" >&3
  assert_success
  assert_line --regexp '^  smoke-r4 +done +report/smoke-r4\.md +\.state/smoke-r4/sweep\.log$'
  assert_line --regexp '^  smoke-experts +done +report/smoke-experts\.md +\.state/smoke-experts/sweep\.log$'
  grep -q '\[sweep\] up to 2 experiments at once, on GPUS="cpu cpu"' <<<"$stderr"
  # Each on its own port, its server stopped at the end.
  assert_file_contains .state/smoke-r4/sweep.log "\[deploy\] serving smoke-r4 at http://127.0.0.1:$((serve + 2))/v1"
  assert_file_contains .state/smoke-experts/sweep.log "\[deploy\] serving smoke-experts at http://127.0.0.1:$((serve + 4))/v1"
  assert_file_not_exist .state/smoke-r4/server/pid
  assert_file_not_exist .state/smoke-experts/server/pid
  # Side by side: the two trainings overlapped.
  read -r r4_start r4_end < <(train_window smoke-r4)
  read -r experts_start experts_end < <(train_window smoke-experts)
  echo "# trainings: smoke-r4 $r4_start-$r4_end, smoke-experts $experts_start-$experts_end" >&3
  ((r4_start < experts_end && experts_start < r4_end))
  run jq -r .lora_rank output/smoke-r4/args.json
  assert_output 4
  # The base model was served once, by make smoke: the sweep serves none. smoke-r4 (another LoRA
  # rank, the same evaluation inputs) links smoke's evaluations of it, held-out replies included.
  assert_equal "$(served_count smoke smoke-base)" 1
  assert_equal "$(served_count smoke-r4 smoke-r4-base)" 0
  assert_equal "$(served_count smoke-r4 smoke-r4)" 1
  for bench in ceval cmmlu dialog; do
    assert_equal "$(readlink -f "results/smoke-r4/smoke-r4-base/$bench")" "$(readlink -f "results/smoke/smoke-base/$bench")"
  done
  # Both reports show the base model's results and where they came from.
  fingerprint="$(basename "$(readlink -f results/smoke/smoke-base/ceval)")"
  run grep -F "| C-Eval | \`smoke\`（本实验） | \`smoke-base\` | \`${fingerprint:0:12}\` |" report/smoke.md
  assert_success
  run cat report/smoke-r4.md
  assert_line "| C-Eval | \`smoke\` | \`smoke-base\` | \`${fingerprint:0:12}\` |"
  assert_line --regexp '^\| C-Eval \| 准确率 \| 12 \| [0-9.]+% \| [0-9.]+% \|'
  assert_file_exist report/smoke-experts.md
}

@test "smoke-experts: LoRA on the fused experts (target_parameters), trained" {
  run jq -c '[.target_parameters, .lora_dropout]' output/smoke-experts/args.json
  assert_output '[["mlp.experts.gate_up_proj","mlp.experts.down_proj"],0]'
  run adapter_tensors output/smoke-experts
  assert_success
  # Per layer, peft wraps gate_up_proj (experts.base_layer: 64 -> 2 x 128 over 4 experts at rank 16)
  # and down_proj (experts: 128 -> 64); the B matrices start at zero, so nonzero means trained.
  local layer
  for layer in 0 1; do
    assert_line "base_model.model.model.layers.$layer.mlp.experts.base_layer.lora_A.weight [64, 64] nonzero"
    assert_line "base_model.model.model.layers.$layer.mlp.experts.base_layer.lora_B.weight [256, 64] nonzero"
    assert_line "base_model.model.model.layers.$layer.mlp.experts.lora_A.weight [64, 128] nonzero"
    assert_line "base_model.model.model.layers.$layer.mlp.experts.lora_B.weight [64, 64] nonzero"
  done
  assert_equal "$(grep -c experts <<<"$output")" 8
  # The attention's LoRA is still there; the smoke run's adapter has no expert tensor.
  assert_line "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight [16, 64] nonzero"
  run adapter_tensors output/smoke
  refute_output --partial experts
}

@test "smoke-r4 (run by the sweep above), then make compare and make table EXPS=\"smoke smoke-r4\": both named, lora_rank differs, the charts linked, the tests, the thesis table" {
  # smoke-r4's whole pipeline ran in the sweep above.
  run make compare EXPS="smoke smoke-r4"
  assert_success
  local md=report/compare-smoke-smoke-r4.md
  assert_file_exist "$md"
  run cat "$md"
  assert_line "# 实验对比：\`smoke\`、\`smoke-r4\`"
  assert_line "| \`smoke\` | \`build/tiny-gpt-oss\` | 已完成 | [smoke.md](smoke.md) |"
  assert_line "| \`smoke-r4\` | \`build/tiny-gpt-oss\` | 已完成 | [smoke-r4.md](smoke-r4.md) |"
  assert_line "| 训练（sft.yaml） | \`lora_rank\` | \`16\` | \`4\` |"
  assert_line "| 训练（sft.yaml） | \`lora_alpha\` | \`64\` | \`16\` |"
  # Only keys that differ: every row of the table has two different values, and keys the
  # two share are not there.
  local rows
  rows="$(sed -n '/^## 2\. 配置差异/,/^## 3\./p' "$md" | grep '^| [^配-]' || true)"
  [[ -n "$rows" ]]
  while IFS='|' read -r _ _ key a b _; do
    [[ "$a" != "$b" ]] || fail "the key $key is listed but equal in both: $a"
  done <<<"$rows"
  refute_line --partial "\`max_length\`"
  refute_line --partial "\`target_modules\`"
  refute_line --partial "\`model\`"
  # Training results of both, from their own runs.
  assert_line --regexp '^\| 总步数 \| 32 / 32 \| 32 / 32 \|$'
  assert_line --regexp '^\| 验证 loss，基座 → 微调后 \| 8\.[0-9]{4} → [0-9.]+（下降 [0-9.]+） \| 8\.[0-9]{4} → [0-9.]+（下降 [0-9.]+） \|$'
  # Both charts linked, written, PNGs.
  local png
  assert_line "![loss 曲线对比](compare-smoke-smoke-r4-loss.png)"
  assert_line "![评测得分对比](compare-smoke-smoke-r4-scores.png)"
  for png in compare-smoke-smoke-r4-loss.png compare-smoke-smoke-r4-scores.png; do
    run od -An -tx1 -N8 "report/$png"
    assert_output " 89 50 4e 47 0d 0a 1a 0a"
  done
  # Each difference to smoke carries the paired test, on the C-Eval questions both answered.
  run cat "$md"
  assert_line --regexp '^\| C-Eval \| 准确率 \| [0-9.]+% \| [0-9.]+% \| [+-][0-9.]+ \[-?[0-9.]+, \+?[0-9.]+\]，(不显著|显著)（p[=<][0-9.]+），12 题 \|$'

  # The thesis's table of both: the base model once (smoke's base evaluations), each fine-tuned model.
  run make table EXPS="smoke smoke-r4"
  assert_success
  local stem=report/table-smoke-smoke-r4
  assert_file_exist "$stem.csv"
  assert_file_exist "$stem.tex"
  run cat "$stem.md"
  # shellcheck disable=SC2016 # backquotes of the Markdown table
  # GSM8K and C-Eval are numbers for the base model (smoke evaluates both)
  assert_line --regexp '^\| `build/tiny-gpt-oss` \| 基座（未微调） \| (\*\*)?[0-9.]+(\*\*)? \| (\*\*)?[0-9.]+(\*\*)? \|'
  # shellcheck disable=SC2016 # backquotes of the Markdown table
  assert_line --regexp '^\| `build/tiny-gpt-oss` \| `smoke-r4` \| ([¹²³⁴⁵⁶⁷⁸⁹]+) \| (\*\*)?[0-9.]+(\*\*)?†? \| (\*\*)?[0-9.]+(\*\*)?†? \| [¹²³⁴⁵⁶⁷⁸⁹]+ \|'
  # smoke-r4 evaluates neither GSM8K nor the psychology subset: a footnote says why
  assert_line --regexp '^- [¹²³⁴⁵⁶⁷⁸⁹]+ 未运行：不在 eval.yaml 中$'
  run cut -d, -f1,2,5 "$stem.csv" # experiment, model, C-Eval
  assert_line --index 0 "experiment,model,ceval"
  assert_line --index 1 --regexp '^,base,[0-9]+\.[0-9]{4}$'
  assert_line --index 2 --regexp '^smoke,fine-tuned,[0-9]+\.[0-9]{4}$'
  assert_line --index 3 --regexp '^smoke-r4,fine-tuned,[0-9]+\.[0-9]{4}$'
  run grep -c -e '\\toprule' -e '\\midrule' -e '\\bottomrule' "$stem.tex"
  assert_output 3
  # Both documents render (tables whole, links resolve).
  run "$LAB_PYTHON" tests/md_check.py report/compare-smoke-smoke-r4.md "$stem.md"
  assert_success
}
