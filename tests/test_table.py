"""make table's writer (scripts/py/table.py) on the comparison's fixture runs (tests/fixtures/compare):
alpha (C-Eval 9/24, CMMLU, replies; its base model's C-Eval 1/24 on the same questions), beta
(C-Eval 12/24, CMMLU rejected), gamma (never trained, MMLU psychology configured), and delta, a
copy of gamma's config on another base model."""

import csv
import shutil
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "compare"
sys.path.insert(0, str(REPO / "scripts" / "py"))
sys.path.insert(0, str(REPO / "tests"))

import md_check  # noqa: E402
import table  # noqa: E402


def run_table(tmp_path, names=("alpha", "beta", "gamma")):
    configs = tmp_path / "configs"
    shutil.copytree(FIXTURES / "configs", configs)
    (configs / "delta").mkdir()
    sft = yaml.safe_load((configs / "gamma" / "sft.yaml").read_text())
    (configs / "delta" / "sft.yaml").write_text(yaml.safe_dump({**sft, "model": "Qwen/Qwen3-30B-A3B-Instruct-2507"}))
    shutil.copy(configs / "gamma" / "eval.yaml", configs / "delta" / "eval.yaml")
    out = tmp_path / "out"
    argv = []
    for name in names:
        argv += ["--exp", name, "--run-dir", str(FIXTURES / "runs" / name), "--export-dir", str(tmp_path / "none" / name),
                 "--results-dir", str(FIXTURES / "evals" / name), "--steps", str(tmp_path / "no-steps.jsonl"),
                 "--config", str(configs / name / "sft.yaml"), "--eval-config", str(configs / name / "eval.yaml"),
                 "--manifest", str(tmp_path / f"{name}.manifest.json"), "--report-md", str(tmp_path / f"{name}.md")]
    status = table.main(argv + ["--out-dir", str(out)])
    stem = "table-" + "-".join(names)
    return status, {suffix: out / f"{stem}.{suffix}" for suffix in ("csv", "tex", "md")}


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_three_formats_one_row_per_experiment_and_base_model_columns_in_the_labs_order(tmp_path):
    status, files = run_table(tmp_path, ("alpha", "beta", "gamma", "delta"))
    assert status == 0 and all(f.is_file() for f in files.values())
    rows = [line for line in files["md"].read_text().splitlines() if line.startswith("| ")]
    assert cells(rows[0]) == ["基座模型", "实验", "GSM8K", "C-Eval", "CMMLU", "MMLU 心理学",
                              "留出对话的咨询回复 ROUGE-L F1", "留出对话的咨询回复 BLEU-4"]
    # base once per base model, then its experiments
    assert [cells(r)[:2] for r in rows[1:]] == [
        ["`build/tiny-gpt-oss`", "基座（未微调）"], ["`build/tiny-gpt-oss`", "`alpha`"], ["`build/tiny-gpt-oss`", "`beta`"],
        ["`build/tiny-gpt-oss`", "`gamma`"],
        ["`Qwen/Qwen3-30B-A3B-Instruct-2507`", "基座（未微调）"], ["`Qwen/Qwen3-30B-A3B-Instruct-2507`", "`delta`"]]


def test_values_best_in_bold_significance_and_never_zero_for_what_did_not_run(tmp_path):
    _, files = run_table(tmp_path)
    text = files["md"].read_text()
    rows = {cells(r)[1]: cells(r)[2:] for r in text.splitlines() if r.startswith("| `")}
    # C-Eval: base 1/24; alpha 9/24 and beta 12/24 on the same questions, 8 and 11 right where
    # the base model is wrong and none the other way: McNemar p = 2/2^8 and 2/2^11, both marked.
    assert rows["基座（未微调）"][1] == "4.17"
    assert rows["`alpha`"][1] == "37.50†" and rows["`beta`"][1] == "**50.00**†"
    # beta's CMMLU was rejected, GSM8K is in no eval.yaml: empty, with a footnote each
    assert rows["`beta`"][2] == "⁴" and rows["`alpha`"][0] == "¹"
    assert "- ¹ 未运行：不在 eval.yaml 中" in text
    assert "- ⁴ 结果未通过检查，已拒绝（only 12 of 16 questions scored）" in text
    assert "- ² 未运行（make eval-base EXP=alpha）" in text
    assert not any(c in ("0.00", "0.00†") for r in rows.values() for c in r)
    assert "基座模型 `build/tiny-gpt-oss` 的结果取自 `alpha-base`。" in text
    assert md_check.problems(text) == []


def test_csv_holds_numbers_and_says_why_a_cell_is_empty(tmp_path):
    _, files = run_table(tmp_path)
    with files["csv"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["experiment"], r["model"]) for r in rows] == [("", "base"), ("alpha", "fine-tuned"),
                                                             ("beta", "fine-tuned"), ("gamma", "fine-tuned")]
    beta = rows[2]
    assert (beta["ceval"], beta["cmmlu"], beta["gsm8k"]) == ("50.0000", "", "")
    assert "cmmlu=rejected" in beta["empty"].split(";") and "gsm8k=absent" in beta["empty"].split(";")
    assert beta["significant_vs_base"] == "ceval"
    assert rows[1]["dialog:rouge-l-f1"] == "15.0000"


def test_latex_is_booktabs_with_the_best_in_bold(tmp_path):
    _, files = run_table(tmp_path)
    tex = files["tex"].read_text()
    for command in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{llrrrrrr}"):
        assert command in tex
    assert r"\texttt{beta} & \textsuperscript{1} & \textbf{50.00}$^{\dagger}$ & \textsuperscript{4}" in tex
    assert "{{" not in tex and "{%" not in tex
    assert r"95\% 区间" in tex  # LaTeX's special characters escaped


def test_tex_escape():
    assert table.tex_escape("a_b & 50% #1 {x}") == r"a\_b \& 50\% \#1 \{x\}"


def test_a_placeholder_judges_score_is_no_value():
    judged = {"state": "done", "score": 0.8, "metrics": {}, "judge": {"model": "served", "placeholder": True}}
    assert table.checked_value(judged, "score") == (None, "placeholder")
    assert table.checked_value({**judged, "judge": {"model": "gpt-x"}}, "score") == (0.8, "done")
    assert table.empty("done")["why"] == {"state": "no_value", "target": None, "reason": None}
