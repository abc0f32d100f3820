"""make compare's renderer (scripts/py/compare.py) on fixture runs: alpha (trained, evaluated),
beta (trained, one evaluation rejected, some not run) and gamma (never trained, one benchmark
more). tests/fixtures/compare/: runs/<exp> (run dirs), evals/<exp> (results), configs/<exp>,
reports/ (alpha's report and manifest)."""

import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "compare"
sys.path.insert(0, str(REPO / "scripts" / "py"))

import compare  # noqa: E402


def run_compare(tmp_path, names=("alpha", "beta", "gamma"), template=REPO / "report" / "compare.zh.md", runs=FIXTURES / "runs"):
    out = tmp_path / "out"
    argv = []
    for name in names:
        argv += ["--exp", name, "--run-dir", str(runs / name), "--export-dir", str(tmp_path / "no-export" / name),
                 "--results-dir", str(FIXTURES / "evals" / name), "--steps", str(tmp_path / "no-steps.jsonl"),
                 "--config", str(FIXTURES / "configs" / name / "sft.yaml"),
                 "--eval-config", str(FIXTURES / "configs" / name / "eval.yaml"),
                 "--manifest", str(FIXTURES / "reports" / f"{name}.manifest.json"),
                 "--report-md", str(FIXTURES / "reports" / f"{name}.md")]
    argv += ["--template", str(template), "--out-dir", str(out), "--git-commit", "2222222now", "--git-dirty", "0"]
    try:
        status = compare.main(argv)
    except SystemExit as exit:  # a template that cannot be rendered (render_or_exit)
        status = exit.code
    return status, out


def table_rows(text, heading):
    """The table lines of a section (from its heading to the next one)."""
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ")]


def row(rows, first_cells):
    found = [r for r in rows if r.startswith(first_cells)]
    assert len(found) == 1, (first_cells, rows)
    return [c.strip() for c in found[0].strip("|").split("|")]


def test_the_comparison_names_every_experiment_and_links_its_charts(tmp_path):
    status, out = run_compare(tmp_path)
    assert status == 0
    md = out / "compare-alpha-beta-gamma.md"
    text = md.read_text()
    assert text.startswith("# 实验对比：`alpha`、`beta`、`gamma`")
    for png in ("compare-alpha-beta-gamma-loss.png", "compare-alpha-beta-gamma-scores.png"):
        assert f"]({png})" in text
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "[alpha.md](alpha.md)" in text  # alpha has a report; the others do not yet
    assert "未运行（make report EXP=beta）" in text
    assert not list(out.glob("*.tmp"))


def test_only_the_keys_that_differ_are_listed(tmp_path):
    _, out = run_compare(tmp_path)
    rows = table_rows((out / "compare-alpha-beta-gamma.md").read_text(), "## 2. 配置差异")
    keys = {r.split("|")[2].strip() for r in rows[1:] if r.startswith("| 训练（sft.yaml）")}
    # alpha and beta from their training records (lora_rank 99 in their sft.yaml does not count),
    # gamma from its config file (never trained).
    assert keys == {"`lora_rank`", "`lora_alpha`", "`learning_rate`", "`target_parameters`", "`seed`"}
    assert row(rows, "| 训练（sft.yaml） | `lora_rank` |")[2:] == ["`16`", "`4`", "`16`"]
    assert row(rows, "| 训练（sft.yaml） | `seed` |")[2:] == ["`42`", "(未设置)", "`42`"]
    assert row(rows, "| 训练（sft.yaml） | `target_parameters` |")[2:] == [
        "(未设置)", '`["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]`', "(未设置)"]
    # Equal in all three: not listed.
    assert "`model`" not in keys and "`target_modules`" not in keys
    # eval.yaml differs between gamma and the others (its own benchmarks).
    assert any(r.startswith("| 评测（eval.yaml） | `benchmarks` |") for r in rows)


def test_training_summary_per_experiment_and_not_run_never_zero(tmp_path):
    _, out = run_compare(tmp_path)
    rows = table_rows((out / "compare-alpha-beta-gamma.md").read_text(), "## 3. 训练结果")
    assert row(rows, "| 总步数 |")[1:] == ["4 / 4", "4 / 4", "未运行（make train EXP=gamma）"]
    assert row(rows, "| 最终训练 loss |")[1:] == ["7.8750", "7.3750", "未运行（make train EXP=gamma）"]
    assert row(rows, "| 最低训练 loss |")[1:3] == ["7.8500（第 3 步）", "7.3500（第 3 步）"]
    assert row(rows, "| 训练时间 |")[1:3] == ["1 分 8 秒", "30 秒"]
    assert row(rows, "| 吞吐（样本/秒） |")[1:3] == ["0.950", "2.100"]
    assert row(rows, "| 峰值显存 |")[1:] == ["12.50 GiB", "11.00 GiB", "未运行（make train EXP=gamma）"]
    # No eval_on_start row in the fixtures: the final held-out loss alone.
    assert row(rows, "| 验证 loss，基座 → 微调后 |")[1] == "7.9600（无训练前的评估）"


def test_every_benchmark_with_its_difference_to_the_first(tmp_path):
    _, out = run_compare(tmp_path)
    rows = table_rows((out / "compare-alpha-beta-gamma.md").read_text(), "## 4. 评测结果")
    # columns: benchmark, measure, alpha, beta, diff, gamma, diff
    # alpha 9/24, beta 12/24 on the same questions, 5 right only for beta and 2 only for alpha:
    # McNemar p = 2 (C(7,0) + C(7,1) + C(7,2)) / 2^7 = 58/128; Newcombe's interval as in the report.
    assert row(rows, "| C-Eval | 准确率 |")[2:] == ["37.50%", "50.00%", "+12.50 [-9.49, +32.57]，不显著（p=0.453），24 题",
                                                 "未运行（make eval-ceval）", "—"]
    assert row(rows, "| CMMLU | 准确率 |")[2:] == ["25.00%", "已拒绝", "—", "不在其 eval.yaml 中", "—"]
    assert row(rows, "| 留出对话的咨询回复 | ROUGE-L F1 |")[2:4] == ["0.1500", "未运行（make eval-dialog）"]
    assert row(rows, "| 留出对话的咨询回复 | BLEU-4 |")[2] == "0.0500"
    assert row(rows, "| 服务性能 | 输出吞吐（token/秒，最高并发） |")[2:5] == ["80.0（并发 2）", "90.0（并发 2）", "+10.0"]
    # gamma's own benchmark is a row too: the union of the eval.yaml files.
    assert row(rows, "| MMLU 心理学 | 准确率 |")[2:] == ["不在其 eval.yaml 中", "不在其 eval.yaml 中", "—",
                                                    "未运行（make eval-psych）", "—"]
    text = (out / "compare-alpha-beta-gamma.md").read_text()
    assert "| 0.00% |" not in text and "| 0.0000 |" not in text


def test_provenance_commit_from_the_manifest_else_now(tmp_path):
    _, out = run_compare(tmp_path)
    rows = table_rows((out / "compare-alpha-beta-gamma.md").read_text(), "## 5. 来源")
    alpha, beta, gamma = (row(rows, f"| `{n}` |") for n in ("alpha", "beta", "gamma"))
    assert alpha[1] == "`1111111alpha`（取自其报告的 manifest）"
    assert beta[1] == "`2222222now`（对比时的提交，尚无 make report）"
    assert alpha[2] == "`alpha-sft-sha`（`configs/alpha/sft.yaml`）"
    assert "sha256 `data-sha-beta`" in beta[3]
    assert gamma[2].startswith("`") and "tests/fixtures/compare/configs/gamma/sft.yaml" in gamma[2]


def test_a_long_list_of_names_is_shortened_with_a_hash():
    names = [f"gpt-oss-20b-sft-v1-lr{i}e-4" for i in range(6)]
    stem = compare.output_stem(names)
    assert stem.startswith("compare-gpt-oss-20b-sft-v1-lr0e-4-and-5-more-") and len(stem) <= compare.MAX_STEM
    assert compare.output_stem(names) == stem  # stable
    assert compare.output_stem(["a", "b"]) == "compare-a-b"


def test_the_shortened_name_is_said_in_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(compare, "MAX_STEM", 20)
    status, out = run_compare(tmp_path)
    assert status == 0
    (md,) = out.glob("compare-alpha-and-2-more-*.md")
    assert "文件名缩短为" in md.read_text()


def test_a_file_that_is_not_json_names_itself(tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES / "runs", runs)
    (runs / "beta" / "logging.jsonl").write_text('{"loss": 1}\nnot json\n{"loss": 2}\n')
    status, _ = run_compare(tmp_path, runs=runs)
    assert status == 2
    err = capsys.readouterr().err
    assert "logging.jsonl:2" in err and "fix:" in err


def test_an_unknown_fact_in_the_template_is_an_error(tmp_path, capsys):
    template = tmp_path / "compare.zh.md"
    template.write_text("{{ names }} {{ no_such_fact }}\n")
    status, out = run_compare(tmp_path, template=template)
    assert status == 2
    assert "no_such_fact" in capsys.readouterr().err
    assert not (out / "compare-alpha-beta-gamma.md").exists()


@pytest.mark.parametrize("value,text", [(1e-4, "0.0001"), (True, "true"), ([1, "a"], '[1, "a"]'), ("x", "x")])
def test_config_values_as_cells(value, text):
    assert compare.shown(value) == text


def test_the_comparison_renders_as_markdown(tmp_path):
    sys.path.insert(0, str(REPO / "tests"))
    import md_check
    _, out = run_compare(tmp_path)
    for report in (FIXTURES / "reports").glob("*.md"):  # the experiments' reports, linked, sit beside it
        shutil.copy(report, out)
    assert md_check.problems((out / "compare-alpha-beta-gamma.md").read_text(), out) == []
