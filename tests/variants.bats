#!/usr/bin/env bats
# Variants (scripts/variants.sh, scripts/py/variant.py): make new-exp, make new-grid,
# make variants; the committed variants are what their variant.yaml makes (no drift).

load test_helper

setup() {
  common_setup
  CFG="configs/$DEFAULT_EXP"
}
teardown() { common_teardown; }

# yaml_equals FILE PYTHON_DICT_EXPRESSION: FILE parses to exactly that (b: the base's content).
yaml_equals() {
  "$LAB_PYTHON" -c 'import sys, yaml
b = yaml.safe_load(open(sys.argv[2]))
got, want = yaml.safe_load(open(sys.argv[1])), eval(sys.argv[3])
assert got == want, {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}' "$1" "$2" "$3"
}

variants() { find configs -mindepth 2 -maxdepth 2 -name variant.yaml -printf '%h\n' | xargs -n1 basename | sort; }

# ---------------------------------------------------------------- the committed variants

@test "the committed variants are exactly what their variant.yaml and base make (no drift)" {
  run variants
  assert_output "$(printf '%s\n' gpt-oss-20b-sft-experts gpt-oss-20b-sft-len2048 gpt-oss-20b-sft-r32 smoke-experts smoke-r4)"
  run scripts/variants.sh check
  assert_success
  assert_output ""
  local exp file
  for exp in $(variants); do
    for file in configs/"$exp"/*; do
      [[ "$file" == */variant.yaml ]] && continue
      run head -n 1 "$file"
      assert_output --partial "# generated from configs/"
      assert_output --partial "and configs/$exp/variant.yaml by make variants; edit variant.yaml"
    done
    # The system prompt is the base's one file: none is copied.
    assert_file_not_exist "configs/$exp/system.txt"
  done
}

@test "a hand edit of a generated file fails the check, naming variant.yaml and make variants; make variants restores it" {
  sed -i 's/^lora_rank: 32 .*/lora_rank: 64/' configs/gpt-oss-20b-sft-r32/sft.yaml
  run scripts/variants.sh check
  assert_failure
  assert_line "[variants] error: configs/gpt-oss-20b-sft-r32/sft.yaml differs from what configs/gpt-oss-20b-sft-r32/variant.yaml and configs/gpt-oss-20b-sft-v1/ make (edited by hand, or its base changed)"
  assert_line "[variants] fix: edit configs/<variant>/variant.yaml, never the generated files, then run make variants (and commit both)"
  # preflight refuses to run it
  write_env GPU=6
  run env DRY_RUN=1 EXP=gpt-oss-20b-sft-r32 scripts/preflight.sh
  assert_failure
  assert_output --partial "[preflight] error: configs/gpt-oss-20b-sft-r32/sft.yaml differs from what configs/gpt-oss-20b-sft-r32/variant.yaml"
  assert_output --partial "[preflight] fix: edit configs/gpt-oss-20b-sft-r32/variant.yaml (never the generated files), then run make variants"
  run make variants
  assert_success
  run scripts/variants.sh check
  assert_success
  assert_equal "$(cat configs/gpt-oss-20b-sft-r32/sft.yaml)" "$(cat "$SRC_ROOT/configs/gpt-oss-20b-sft-r32/sft.yaml")"
}

@test "a changed base makes its variants stale; make variants carries the change into each, their own keys kept" {
  sed -i 's/^learning_rate: 1.0e-2$/learning_rate: 5.0e-3/' configs/smoke/sft.yaml
  run scripts/variants.sh check
  assert_failure
  assert_output --partial "configs/smoke-r4/sft.yaml differs"
  assert_output --partial "configs/smoke-experts/sft.yaml differs"
  refute_output --partial "gpt-oss-20b-sft-r32"
  make variants
  yaml_equals configs/smoke-r4/sft.yaml configs/smoke/sft.yaml '{**b, "lora_rank": 4, "lora_alpha": 16}'
  run grep -x 'learning_rate: 5.0e-3' configs/smoke-r4/sft.yaml
  assert_success
}

@test "each shipped variant is its base plus its overrides, with the base's comments" {
  yaml_equals configs/gpt-oss-20b-sft-r32/sft.yaml "$CFG/sft.yaml" '{**b, "lora_rank": 32, "lora_alpha": 128}'
  yaml_equals configs/gpt-oss-20b-sft-len2048/sft.yaml "$CFG/sft.yaml" '{**b, "max_length": 2048}'
  yaml_equals configs/gpt-oss-20b-sft-experts/sft.yaml "$CFG/sft.yaml" \
    '{**b, "target_parameters": ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"], "lora_dropout": 0}'
  yaml_equals configs/smoke-experts/sft.yaml configs/smoke/sft.yaml \
    '{**b, "target_parameters": ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"], "lora_dropout": 0, "num_train_epochs": 1}'
  yaml_equals configs/smoke-r4/eval.yaml configs/smoke/eval.yaml '{**b, "benchmarks": ["ceval", "cmmlu", "dialog"]}'
  local exp
  for exp in gpt-oss-20b-sft-r32 gpt-oss-20b-sft-len2048 gpt-oss-20b-sft-experts; do
    for file in export.yaml deploy.yaml eval.yaml; do yaml_equals "configs/$exp/$file" "$CFG/$file" b; done
    # The base's lines and comments, the system prompt of the base.
    run grep -c 'on gpt-oss this reaches q/k/v/o_proj; experts are fused parameters' "configs/$exp/sft.yaml"
    assert_output 1
    run grep -x "system: configs/$DEFAULT_EXP/system.txt .*" "configs/$exp/sft.yaml"
    assert_success
  done
  run grep -x 'lora_rank: 32  # variant.yaml; base: 16' configs/gpt-oss-20b-sft-r32/sft.yaml
  assert_success
  run grep -x 'max_length: 2048  # variant.yaml; base: 3072' configs/gpt-oss-20b-sft-len2048/sft.yaml
  assert_success
  # A smoke variant builds the tiny model as smoke does: it includes the base's experiment.mk.
  run cat configs/smoke-r4/experiment.mk
  assert_line "include configs/smoke/experiment.mk"
  run make -s -p -n help EXP=smoke-r4
  assert_line "TRAIN_PREREQS := build/tiny-gpt-oss/config.json"
}

@test "each shipped variant states its GPU memory need, with the reasoning beside it" {
  local exp
  for exp in gpt-oss-20b-sft-r32 gpt-oss-20b-sft-len2048 gpt-oss-20b-sft-experts; do
    run grep -c '^# GPU memory: ' "configs/$exp/requirements.env"
    assert_output 1
  done
  run grep -x 'GPU_FREE_MIB_PER_GPU=61440' configs/gpt-oss-20b-sft-r32/requirements.env
  assert_success
  run grep -x 'GPU_FREE_MIB_PER_GPU=51200  # variant.yaml; base: 61440' configs/gpt-oss-20b-sft-len2048/requirements.env
  assert_success
  run grep -x 'GPU_FREE_MIB_PER_GPU=73728  # variant.yaml; base: 61440' configs/gpt-oss-20b-sft-experts/requirements.env
  assert_success
}

# ---------------------------------------------------------------- make new-exp

@test "make new-exp: variant.yaml says what differs; the configs beside it are plain, base + overrides" {
  run make new-exp FROM="$DEFAULT_EXP" NAME=my-r32 SET="lora_rank=32 lora_alpha=128 learning_rate=2e-4 requirements.GPU_FREE_MIB_PER_GPU=65536" \
    WHY="a bigger adapter"
  assert_success
  assert_output --partial "[variants] created configs/my-r32/ (lora_rank 16 -> 32, lora_alpha 64 -> 128, learning_rate 1.0e-4 -> 2.0e-4, GPU_FREE_MIB_PER_GPU 61440 -> 65536)"
  run grep -v '^#' configs/my-r32/variant.yaml
  assert_output "$(printf '%s\n' \
    "from: $DEFAULT_EXP  # the other files of configs/my-r32/ are generated from configs/$DEFAULT_EXP/ and this file" \
    "sft:" "  lora_rank: 32" "  lora_alpha: 128" "  learning_rate: 2.0e-4" \
    "requirements:" "  GPU_FREE_MIB_PER_GPU: 65536")"
  run head -n 1 configs/my-r32/variant.yaml
  assert_output --partial "# my-r32: a variant of $DEFAULT_EXP: lora_rank 16 -> 32, lora_alpha 64 -> 128,"
  run grep -x '# Why: a bigger adapter' configs/my-r32/variant.yaml
  assert_success
  # 2e-4 is a number (YAML 1.1 would read it as a string): written so that it reads back as one.
  yaml_equals configs/my-r32/sft.yaml "$CFG/sft.yaml" '{**b, "lora_rank": 32, "lora_alpha": 128, "learning_rate": 0.0002}'
  run ls configs/my-r32
  assert_output "$(printf '%s\n' deploy.yaml eval.yaml export.yaml requirements.env sft.yaml variant.yaml)"
  run grep -x 'GPU_FREE_MIB_PER_GPU=65536  # variant.yaml; base: 61440' configs/my-r32/requirements.env
  assert_success
  # It runs as any experiment: its own name and output folder, the base's system prompt.
  write_env GPU=6
  run make all GPU=6 DRY_RUN=1 EXP=my-r32
  assert_success
  assert_line --partial "swift sft configs/my-r32/sft.yaml \\"
  assert_line "    --swanlab_exp_name my-r32"
  assert_line "#   lora_rank: 32  # variant.yaml; base: 16"
  assert_line "#   system: configs/$DEFAULT_EXP/system.txt   # the harmony system block, written once for training and serving"
  run scripts/variants.sh check
  assert_success
}

@test "make new-exp CONFIG=deploy: the keys go to that config; a section prefix picks one per key" {
  run make new-exp FROM=smoke NAME=smoke-long SET="max_new_tokens=64 export.max_shard_size=1GB" CONFIG=deploy
  assert_success
  yaml_equals configs/smoke-long/deploy.yaml configs/smoke/deploy.yaml '{**b, "max_new_tokens": 64}'
  yaml_equals configs/smoke-long/export.yaml configs/smoke/export.yaml '{**b, "max_shard_size": "1GB"}'
  yaml_equals configs/smoke-long/sft.yaml configs/smoke/sft.yaml b
  run make new-exp FROM=smoke NAME=smoke-ev SET="benchmarks=[ceval]" CONFIG=eval
  assert_success
  yaml_equals configs/smoke-ev/eval.yaml configs/smoke/eval.yaml '{**b, "benchmarks": ["ceval"]}'
}

@test "make new-exp refuses, with a fix, an existing name, a path, an unknown base, a variant as base, an unknown key, a machine setting" {
  local before
  before="$(ls configs)"
  run make new-exp FROM=smoke NAME=smoke-r4 SET="lora_rank=8"
  assert_failure
  assert_line "[variants] error: configs/smoke-r4 already exists"
  assert_line "[variants] fix: pick another NAME, or edit configs/smoke-r4/variant.yaml and run make variants"
  run make new-exp FROM=smoke NAME=a/b SET="lora_rank=8"
  assert_failure
  assert_line "[variants] error: NAME='a/b' is not a valid experiment name"
  assert_line --partial "[variants] fix: use letters, digits"
  run make new-exp FROM=smoke NAME=.. SET="lora_rank=8"
  assert_failure
  assert_line "[variants] error: NAME='..' is not a valid experiment name"
  run make new-exp FROM=../configs/smoke NAME=x SET="lora_rank=8"
  assert_failure
  assert_line "[variants] error: FROM='../configs/smoke' is not a valid experiment name"
  run make new-exp FROM=nope NAME=x SET="lora_rank=8"
  assert_failure
  assert_line "[variants] error: FROM=nope: configs/nope/sft.yaml not found"
  assert_line --partial "[variants] fix: use an experiment with a config: $DEFAULT_EXP"
  run make new-exp FROM=smoke-r4 NAME=x SET="lora_rank=8"
  assert_failure
  assert_line "[variants] error: FROM=smoke-r4 is itself a variant (of smoke)"
  run make new-exp FROM=smoke NAME=x SET="lora_rnk=8"
  assert_failure
  assert_line "[variants] error: SET lora_rnk: 'lora_rnk' is not a flag of swift sft (ms-swift 4.6)"
  assert_line "[variants] fix: check the spelling; the accepted names are in env/swift-sft-args.txt"
  run make new-exp FROM=smoke NAME=x SET="output_dir=/tmp/elsewhere"
  assert_failure
  assert_line "[variants] error: SET output_dir: 'output_dir' is a machine setting: the scripts set it from OUTPUT_ROOT"
  run make new-exp FROM=smoke NAME=x SET="port=9000" CONFIG=deploy
  assert_failure
  assert_line "[variants] error: SET port: 'port' is a machine setting: the scripts set it from SERVE_PORT"
  run make new-exp FROM=smoke NAME=x SET="requirements.GPU_RAM=1"
  assert_failure
  assert_line --partial "[variants] error: SET GPU_RAM: 'GPU_RAM' is not a requirement"
  run make new-exp FROM=smoke NAME=x SET="lora_rank"
  assert_failure
  assert_line "[variants] error: SET item 'lora_rank' is not key=value"
  run make new-exp FROM=smoke NAME=x
  assert_failure
  assert_line "[variants] error: SET is empty: a variant states what differs from its base"
  run make new-exp FROM=smoke NAME=x SET="defaults=5" CONFIG=eval
  assert_failure
  assert_line --partial "eval.yaml's 'defaults' is a section of settings"
  assert_equal "$(ls configs)" "$before"
}

@test "a hand-written variant.yaml with an unknown key or section is refused by make variants" {
  mkdir configs/bad-v
  printf 'from: smoke\nsft:\n  lora_rnk: 8\n' >configs/bad-v/variant.yaml
  run make variants
  assert_failure
  assert_line "[variants] error: configs/bad-v/variant.yaml, sft: 'lora_rnk' is not a flag of swift sft (ms-swift 4.6)"
  printf 'from: smoke\ntrain:\n  lora_rank: 8\n' >configs/bad-v/variant.yaml
  run make variants
  assert_failure
  assert_line "[variants] error: configs/bad-v/variant.yaml: unknown section 'train'"
  printf 'sft:\n  lora_rank: 8\n' >configs/bad-v/variant.yaml
  run make variants
  assert_failure
  assert_line --partial "[variants] error: configs/bad-v/variant.yaml: needs 'from: <base experiment>'"
}

# ---------------------------------------------------------------- make new-grid

@test "make new-grid: the lab's ablation grid, one factor at a time, named after what each varies" {
  run make new-grid FROM="$DEFAULT_EXP" \
    GRID="lora_rank=4,8,16+lora_alpha=16,32,64 gradient_accumulation_steps=4,8,16 max_length=1024,2048,3072 learning_rate=5e-5,1e-4,2e-4,5e-4"
  assert_success
  # The base's own values (rank 16 / alpha 64, accumulation 8, length 3072, lr 1e-4) are the base itself.
  assert_line "[variants] lora_rank=16, lora_alpha=64: the base's own value(s); $DEFAULT_EXP is that run"
  assert_line "[variants] learning_rate=1e-4: the base's own value(s); $DEFAULT_EXP is that run"
  local b="$DEFAULT_EXP"
  # max_length 2048 is the shipped gpt-oss-20b-sft-len2048: kept, not made again as $b-len2048.
  assert_line "[variants] configs/gpt-oss-20b-sft-len2048/ exists with these settings: kept"
  assert_line "[variants] grid over $b: 8 created, 1 kept; run them: make sweep EXPS=\"$b-r4 $b-r8 $b-ga4 $b-ga16 $b-len1024 gpt-oss-20b-sft-len2048 $b-lr5e-5 $b-lr2e-4 $b-lr5e-4\""
  run variants
  assert_output "$(printf '%s\n' gpt-oss-20b-sft-experts gpt-oss-20b-sft-len2048 gpt-oss-20b-sft-r32 \
    "$b-ga16" "$b-ga4" "$b-len1024" "$b-lr2e-4" "$b-lr5e-4" "$b-lr5e-5" "$b-r4" "$b-r8" smoke-experts smoke-r4)"
  yaml_equals "configs/$b-r4/sft.yaml" "$CFG/sft.yaml" '{**b, "lora_rank": 4, "lora_alpha": 16}'
  yaml_equals "configs/$b-r8/sft.yaml" "$CFG/sft.yaml" '{**b, "lora_rank": 8, "lora_alpha": 32}'
  # effective batch 4 x 4 = 16 and 4 x 16 = 64 on one GPU
  yaml_equals "configs/$b-ga4/sft.yaml" "$CFG/sft.yaml" '{**b, "gradient_accumulation_steps": 4}'
  yaml_equals "configs/$b-lr5e-5/sft.yaml" "$CFG/sft.yaml" '{**b, "learning_rate": 5e-05}'
  yaml_equals "configs/$b-len1024/sft.yaml" "$CFG/sft.yaml" '{**b, "max_length": 1024}'
  run scripts/variants.sh check
  assert_success
  # Again: the same variants are there with the same settings, kept as they are.
  run make new-grid FROM="$DEFAULT_EXP" GRID="lora_rank=4,8+lora_alpha=16,32"
  assert_success
  assert_line "[variants] configs/$b-r4/ exists with these settings: kept"
  assert_line --partial "0 created, 2 kept"
}

@test "make new-grid refuses axes of unequal length, an empty grid and a clash with an existing folder" {
  run make new-grid FROM=smoke GRID="lora_rank=4,8+lora_alpha=16"
  assert_failure
  assert_line --partial "keys joined with + vary together and need as many values each"
  run make new-grid FROM=smoke GRID=
  assert_failure
  assert_line "[variants] error: GRID is empty"
  mkdir configs/smoke-r8 && printf 'from: smoke\nsft:\n  lora_rank: 8\n  lora_alpha: 8\n' >configs/smoke-r8/variant.yaml
  run make new-grid FROM=smoke GRID="lora_rank=2,8+lora_alpha=8,32"
  assert_failure
  assert_line "[variants] error: configs/smoke-r8 already exists"
  assert_file_not_exist configs/smoke-r2
}

@test "make help lists the new targets" {
  run make help
  assert_success
  local target
  for target in new-exp new-grid variants sweep compare; do assert_line --regexp "^  $target +[A-Z]"; done
}
