#!/usr/bin/env bats
# Every shipped experiment and variant (each configs/<exp>/sft.yaml): preflight's flag
# check passes, and make all's dry run on one GPU prints swift sft, export and deploy
# commands that use only flags ms-swift 4.6 accepts (env/swift-<cmd>-args.txt).

load test_helper

setup() {
  common_setup
  write_env GPU=6
}
teardown() { common_teardown; }

experiments() { find configs -mindepth 2 -maxdepth 2 -name sft.yaml -printf '%h\n' | xargs -n1 basename | sort; }

# swift_flags COMMAND: the --flags of the `swift COMMAND` lines in $output (a command
# continues on the lines ending with a backslash).
swift_flags() {
  awk -v cmd="$1" '
    /^#/ { next }
    $0 ~ ("(^| |/)swift " cmd " ") { on = 1 }
    on { for (i = 1; i <= NF; i++) if ($i ~ /^--/) print substr($i, 3); if ($0 !~ /\\$/) on = 0 }
  ' <<<"$output" | sed 's/[>&].*//' | sort -u
}

@test "every shipped experiment: preflight's flag check passes and make all dry-runs ms-swift 4.6 commands" {
  local exp command flag count=0
  run experiments
  assert_output "$(printf '%s\n' gpt-oss-20b-sft-experts gpt-oss-20b-sft-len2048 gpt-oss-20b-sft-r32 gpt-oss-20b-sft-v1 \
    qwen3-30b-a3b-sft-v1 smoke smoke-experts smoke-r4)"
  for exp in $(experiments); do
    run env DRY_RUN=1 EXP="$exp" scripts/preflight.sh
    assert_success
    assert_line "[preflight] all checks passed for $exp (GPU=6, env file $ENV_FILE)"
    run make all GPU=6 DRY_RUN=1 EXP="$exp"
    assert_success
    for command in sft export deploy; do
      assert_line --partial "swift $command configs/$exp/$command.yaml \\"
      while IFS= read -r flag; do
        grep -qxF -- "$flag" "env/swift-$command-args.txt" || fail "$exp: swift $command --$flag is not an ms-swift 4.6 flag"
        count=$((count + 1))
      done < <(swift_flags "$command")
    done
    assert_line "    --swanlab_exp_name $exp"
    assert_line "    --served_model_name $exp \\"
  done
  ((count > 8 * 8)) # the flags were really found: --output_dir, --adapters, --port, ...
  assert_equal "$(stub_calls swift)" 0
}

@test "the experts variant trains LoRA on the fused experts: target_parameters with lora_dropout 0, on gpt-oss and the smoke model" {
  local exp
  for exp in smoke-experts gpt-oss-20b-sft-experts; do
    run make all GPU=6 DRY_RUN=1 EXP="$exp"
    assert_success
    assert_line "#   target_parameters: [mlp.experts.gate_up_proj, mlp.experts.down_proj]  # variant.yaml; not in the base"
    assert_line "#   lora_dropout: 0  # variant.yaml; not in the base"
  done
  assert_line "#   target_modules: all-linear       # on gpt-oss this reaches q/k/v/o_proj; experts are fused parameters"
  run grep -x 'target_parameters' env/swift-sft-args.txt
  assert_success
}

@test "qwen3-30b-a3b-sft-v1: its own model, template and system prompt; the data, evaluation and report of gpt-oss-20b-sft-v1" {
  local q=configs/qwen3-30b-a3b-sft-v1 g="configs/$DEFAULT_EXP"
  "$LAB_PYTHON" - "$q" "$g" <<'EOF'
import sys, yaml
q, g = sys.argv[1], sys.argv[2]
load = lambda path: yaml.safe_load(open(path, encoding="utf-8"))
qs, gs = load(f"{q}/sft.yaml"), load(f"{g}/sft.yaml")
assert (qs["model"], qs["model_type"], qs["template"]) == ("Qwen/Qwen3-30B-A3B-Instruct-2507", "qwen3_moe", "qwen3_nothinking")
assert qs["system"] == f"{q}/system.txt" and load(f"{q}/deploy.yaml")["system"] == qs["system"]
# No gpt-oss plugin (its harmony system block is gpt-oss's), the SwanLab one kept.
assert qs["external_plugins"] == ["scripts/py/swift_swanlab_numeric.py"], qs["external_plugins"]
assert "external_plugins" not in load(f"{q}/deploy.yaml")
# The same data and training hyperparameters: the runs differ in the model.
same = {k: v for k, v in gs.items() if k not in ("model", "system", "external_plugins")}
assert {k: qs.get(k) for k in same} == same, {k: (qs.get(k), v) for k, v in same.items() if qs.get(k) != v}
# The same evaluation, benchmark for benchmark; Qwen3 has no gpt-oss channels, so its replies
# are scored as they are (answer_mode plain), gpt-oss's final channel only.
qe, ge = load(f"{q}/eval.yaml"), load(f"{g}/eval.yaml")
assert (qe["defaults"].pop("answer_mode"), ge["defaults"].pop("answer_mode")) == ("plain", "final")
assert qe == ge
deploy = load(f"{q}/deploy.yaml")
assert deploy["infer_backend"] == "lmdeploy" and deploy["template"] == "qwen3_nothinking"
EOF
  # The prompt is Chinese and has no trailing newline (ms-swift reads the file as it is).
  run grep -c '心理咨询' "$q/system.txt"
  assert_output 1
  [[ "$(tail -c 1 "$q/system.txt" | od -An -c | tr -d ' ')" != '\n' ]]
  assert_file_not_exist report/template.qwen3-30b-a3b-sft-v1.zh.md # the same report template
  run make all GPU=0,1 DRY_RUN=1 EXP=qwen3-30b-a3b-sft-v1
  assert_success
  assert_line --partial ".venv-lmdeploy/bin/swift deploy configs/qwen3-30b-a3b-sft-v1/deploy.yaml \\"
  assert_line "    --lmdeploy_tp 2 > .state/qwen3-30b-a3b-sft-v1/server/deploy.log 2>&1 &"
}

@test "every experiment states the GPU memory it needs" {
  local exp value
  for exp in $(experiments); do
    value="$(sed -n 's/^GPU_FREE_MIB_PER_GPU=\([0-9]*\).*/\1/p' "configs/$exp/requirements.env")"
    [[ -n "$value" ]] || fail "configs/$exp/requirements.env sets no GPU_FREE_MIB_PER_GPU"
    if [[ "$exp" != smoke* ]]; then ((value > 0)) || fail "$exp needs no GPU memory?"; fi
  done
}
