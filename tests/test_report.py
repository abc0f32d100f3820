"""The report parser and renderer on small fixture runs, including broken ones."""

import json
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
sys.path.insert(0, str(REPO / "scripts" / "py"))

import report  # noqa: E402
import runparse as rp  # noqa: E402
from lab.report.facts import train_results  # noqa: E402


def run_report(tmp_path, run="ok", results=FIXTURES / "evalscope", steps=FIXTURES / "state" / "smoke" / "steps.jsonl",
               export=None, template=REPO / "report" / "template.zh.md", eval_config=REPO / "configs" / "smoke" / "eval.yaml"):
    out = tmp_path / "out"
    argv = ["--exp", "smoke", "--run-dir", str(FIXTURES / "runs" / run / "smoke"),
            "--export-dir", str(export or tmp_path / "no-export"), "--results-dir", str(results / "smoke"),
            "--steps", str(steps), "--config", str(REPO / "configs" / "smoke" / "sft.yaml"),
            "--eval-config", str(eval_config),
            "--lock-file", str(REPO / "env" / "requirements-cpu.lock"),
            "--template", str(template), "--out-dir", str(out),
            "--git-commit", "abc123", "--git-dirty", "1", "--cpu-cores", "2"]
    try:
        status = report.main(argv)
    except SystemExit as exit:  # a template that cannot be rendered (render_or_exit)
        status = exit.code
    return status, out


# ---------------------------------------------------------------- values

def test_numbers_written_as_strings():
    assert rp.to_number("5.694") == 5.694
    assert rp.to_number(3) == 3.0
    assert rp.to_number("n/a") is None
    assert rp.to_number(None) is None


@pytest.mark.parametrize("text,seconds", [("3s", 3), ("1m 6s", 66), ("2h 0m 1s", 7201), ("1d 1h", 90000), ("0s", 0)])
def test_durations(text, seconds):
    assert rp.parse_duration(text) == seconds


def test_step_fraction():
    assert rp.parse_step_fraction("9/10") == (9, 10)
    assert rp.parse_step_fraction(None) == (None, None)


# ---------------------------------------------------------------- runs

def test_finished_run():
    run = rp.read_run(FIXTURES / "runs" / "ok" / "smoke")
    assert run.finished
    assert (run.step, run.max_steps) == (4, 4)
    assert [r["loss"] for r in run.train] == [8.026, 7.9, 7.85, 7.875]
    assert [(e["step"], e["eval_loss"]) for e in run.evals] == [(2, 7.95), (4, 7.96)]
    assert run.summary["train_runtime"] == 67.5
    assert run.checkpoint == "checkpoint-4"
    assert run.result["memory"] == 12.5
    results = train_results(run)
    assert results["final_train_loss"] == 7.875
    assert (results["min_train_loss"], results["min_train_loss_step"]) == (7.85, 3)
    assert (results["best_eval_loss"], results["best_eval_loss_step"]) == (7.95, 2)
    assert (results["final_eval_loss"], results["final_eval_loss_step"]) == (7.96, 4)
    assert results["peak_memory_gib"] == 12.5
    assert results["train_samples_per_second"] == 0.95
    assert results["tokens_per_second"] is None  # num_input_tokens_seen is 0: not known


def test_run_in_progress_with_truncated_files():
    run = rp.read_run(FIXTURES / "runs" / "inprogress" / "smoke")
    assert not run.finished
    assert len(run.train) == 3 and run.step == 3 and run.max_steps == 4
    assert run.elapsed_s == 62 and run.remaining_s == 20
    # checkpoint-4's state was cut off mid-write: the reader falls back to checkpoint-2
    assert run.checkpoint == "checkpoint-2"
    assert rp.note("truncated_line", file="logging.jsonl", line=5) in run.notes
    assert rp.note("truncated", file="checkpoint-4/trainer_state.json") in run.notes
    assert rp.note("unfinished") in run.notes


def test_truncated_trainer_state_rows_are_salvaged():
    run = rp.read_run(FIXTURES / "runs" / "state-only" / "smoke")
    # cut inside the step-3 row: the complete rows before it are kept
    assert [r["step"] for r in run.train] == [1, 2]
    assert [r["step"] for r in run.evals] == [2]
    assert rp.note("missing", file="logging.jsonl") in run.notes


def test_empty_files():
    run = rp.read_run(FIXTURES / "runs" / "empty" / "smoke")
    assert run.train == [] and run.evals == [] and not run.finished
    assert rp.note("empty", file="logging.jsonl") in run.notes
    assert any(n["kind"] == "empty" and n["file"].endswith("trainer_state.json") for n in run.notes)


def test_missing_keys():
    run = rp.read_run(FIXTURES / "runs" / "missing-keys" / "smoke")
    assert [r["loss"] for r in run.train] == [7.5]
    assert run.step == 3 and run.max_steps == 10
    results = train_results(run)
    assert results["best_eval_loss"] is None and results["train_runtime_s"] is None


def test_missing_run_dir(tmp_path):
    run = rp.read_run(tmp_path / "nothing")
    assert not run.exists and run.train == []


def test_not_json_line_names_file_and_line():
    with pytest.raises(rp.ParseError) as error:
        rp.read_run(FIXTURES / "runs" / "not-json" / "smoke")
    assert error.value.line == 2
    assert "logging.jsonl:2" in str(error.value)


def test_not_json_trainer_state_names_file_and_line():
    with pytest.raises(rp.ParseError) as error:
        rp.read_run(FIXTURES / "runs" / "not-json-state" / "smoke")
    assert error.value.path.endswith("trainer_state.json") and error.value.line == 3


def test_large_log_parses(tmp_path):
    """100,000 logged rows (a long run with logging_steps 1). Speed targets live in
    scripts/bench/report_parse.py; this checks the size works and is counted right."""
    run_dir = tmp_path / "big"
    run_dir.mkdir()
    total = 100_000
    with (run_dir / "logging.jsonl").open("w") as handle:
        for step in range(1, total + 1):
            handle.write(json.dumps({"loss": f"{8 - step / total:.6f}", "grad_norm": "0.5", "learning_rate": "1e-4",
                                     "epoch": f"{step / total:.5f}", "global_step/max_steps": f"{step}/{total}",
                                     "elapsed_time": f"{step}s", "remaining_time": f"{total - step}s"}) + "\n")
            if step % 1000 == 0:
                handle.write(json.dumps({"eval_loss": f"{8 - step / total:.4f}", "epoch": "1",
                                         "global_step/max_steps": f"{step}/{total}"}) + "\n")
    started = time.perf_counter()
    run = rp.read_run(run_dir)
    elapsed = time.perf_counter() - started
    assert len(run.train) == total and len(run.evals) == 100
    assert run.step == total
    results = train_results(run)
    assert results["min_train_loss_step"] == total
    print(f"parsed {total} rows in {elapsed:.2f}s")


# ---------------------------------------------------------------- EvalScope, steps

def test_evaluation_results_come_only_from_checked_results():
    results = FIXTURES / "evalscope" / "smoke"
    ceval = rp.read_eval_result(results / "smoke" / "ceval")
    assert ceval["state"] == "done" and ceval["num"] == 24 and ceval["metric"] == "accuracy"
    assert ceval["score"] == pytest.approx((0.5 + 0.375 + 0.25) / 3)
    assert {s["name"] for s in ceval["subjects"]} == {"basic_medicine", "education_science", "high_school_biology"}
    assert ceval["command"].startswith("evalscope eval --model smoke ")
    assert rp.read_eval_result(results / "smoke-base" / "ceval")["score"] == 0.25
    rejected = rp.read_eval_result(results / "smoke-base" / "cmmlu")
    assert (rejected["state"], rejected["reason"], rejected["score"]) == ("rejected", "scored 10 questions, expected 16", None)
    assert rp.read_eval_result(results / "smoke" / "cmmlu")["state"] == "interrupted"
    assert rp.read_eval_result(results / "smoke-base" / "cmmlu-psych")["state"] == "not_run"


def test_an_evalscope_report_without_a_checked_result_is_no_score(tmp_path):
    work = tmp_path / "ceval"
    (work / "reports" / "smoke").mkdir(parents=True)
    (work / "reports" / "smoke" / "ceval.json").write_text(
        (FIXTURES / "evalscope" / "smoke" / "smoke" / "ceval" / "reports" / "smoke" / "ceval.json").read_text())
    assert rp.read_eval_result(work)["state"] == "not_run"
    (work / "lab-inputs.json").write_text("{}")
    assert rp.read_eval_result(work)["state"] == "interrupted" and rp.read_eval_result(work)["score"] is None


def test_progress_for_make_status():
    facts = rp.read_progress(FIXTURES / "runs" / "inprogress" / "smoke")
    assert (facts["step"], facts["max_steps"], facts["finished"]) == (3, 4, False)
    assert (facts["loss"], facts["loss_step"]) == (7.85, "3/4")
    assert (facts["eval_loss"], facts["eval_step"]) == (7.95, "2/4")
    assert facts["remaining"] == "20s"
    done = rp.read_progress(FIXTURES / "runs" / "ok" / "smoke")
    assert done["finished"] and done["train_runtime"] == 67.5 and done["memory_gib"] == 12.5


def test_steps():
    steps = rp.read_steps(FIXTURES / "state" / "smoke" / "steps.jsonl")
    assert [(r["step"], r["exit"]) for r in steps["runs"]] == [("train", 0), ("export", 1), ("health", 0)]
    assert steps["commands"][0]["step"] == "train"
    assert steps["events"][0]["event"] == "result"


# ---------------------------------------------------------------- rendering

def test_report_from_finished_run(tmp_path):
    status, out = run_report(tmp_path)
    assert status == 0
    text = (out / "smoke.md").read_text()
    for marker in ("[待补充]", "[待评测]", "[待对比]", "[待分析]", "${"):
        assert marker not in text
    assert "| 总步数 | 4 / 4 |" in text
    assert "| 最低训练 loss | 7.8500（第 3 步） |" in text
    assert "| 最佳验证 loss | 7.9500（第 2 步） |" in text
    assert "| 峰值显存 | 12.50 GiB" in text
    # 9.3: Wilson intervals of 6/24 and 9/24, Newcombe's of the difference, McNemar on 4 vs 1
    # discordant questions (tests/test_paired.py works them out by hand).
    assert ("| C-Eval | 24 | 25.00% [12.00%, 44.90%] | 37.50% [21.16%, 57.29%] | +12.50 [-6.79, +30.68] "
            "| 不显著（p=0.375） |") in text
    assert ("| CMMLU | — | 已拒绝（scored 10 questions, expected 16） | 未完成（被中断；make eval-cmmlu 会从缓存的预测继续） "
            "| — | — |") in text
    assert "| CMMLU 心理学子集 | — | 未运行（make eval-base） | 50.00% | — | — |" in text
    appendix = (out / "smoke.appendix.md").read_text()
    assert "evalscope eval --model smoke --datasets ceval" in appendix
    assert "evalscope eval --model smoke-base --datasets ceval" in appendix
    assert "evalscope eval" not in text  # the commands are in the appendix, linked
    assert "professional_psychology" in text
    assert "smoke ok at http://127.0.0.1:8011/v1" in text
    assert "导出：未运行（make export）" in text
    assert (out / "smoke-loss.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "smoke-accuracy.png").read_bytes()[:4] == b"\x89PNG"
    manifest = json.loads((out / "smoke.manifest.json").read_text())
    assert manifest["git"] == {"commit": "abc123", "dirty": True}
    assert len(manifest["files"]["config"]["sha256"]) == 64
    assert manifest["files"]["lock"]["path"] == "env/requirements-cpu.lock"
    assert manifest["seed"] == 42
    assert manifest["hardware"]["device"] == "CPU"
    assert manifest["versions"]["python"]
    assert manifest["results"]["train"]["best_eval_loss_step"] == 2
    assert not list(out.glob("*.tmp"))


def test_the_manifest_records_the_configured_evaluations_not_those_set_aside(tmp_path):
    import shutil
    results = tmp_path / "evalscope"
    shutil.copytree(FIXTURES / "evalscope", results)
    runs = results / "smoke" / "smoke"
    (runs / "ceval" / "lab-inputs.json").write_text('{"digest": "now"}')
    (runs / "ceval.replaced-20261201T000000Z").mkdir()
    (runs / "ceval.replaced-20261201T000000Z" / "lab-inputs.json").write_text('{"digest": "before"}')
    (runs / "not-in-eval-yaml").mkdir()
    (runs / "not-in-eval-yaml" / "lab-inputs.json").write_text('{"digest": "other"}')
    status, out = run_report(tmp_path, results=results)
    assert status == 0
    fingerprints = json.loads((out / "smoke.manifest.json").read_text())["fingerprints"]
    assert fingerprints["eval-smoke-ceval"] == {"digest": "now"}
    assert not [key for key in fingerprints if "replaced" in key or "not-in-eval-yaml" in key]


def test_report_never_holds_a_secret_value(tmp_path):
    steps = tmp_path / "steps.jsonl"
    steps.write_text(json.dumps({"time": "t", "step": "train", "event": "command",
                                 "detail": "SWANLAB_TOKEN=sk-live-123 swift sft --swanlab_token sk-live-123 --api_key k9"}) + "\n")
    status, out = run_report(tmp_path, steps=steps)
    assert status == 0
    for name in ("smoke.md", "smoke.manifest.json"):
        text = (out / name).read_text()
        assert "sk-live-123" not in text and "k9" not in text


@pytest.mark.parametrize("run", ["inprogress", "empty", "missing-keys", "state-only"])
def test_report_from_incomplete_runs(tmp_path, run):
    status, out = run_report(tmp_path, run=run, results=tmp_path / "no-results", steps=tmp_path / "no-steps.jsonl")
    assert status == 0
    text = (out / "smoke.md").read_text()
    assert "[待补充]" not in text and "未运行（make eval-ceval）" in text
    assert "10.1 本次运行缺少的内容" in text


def test_report_on_a_file_that_is_not_json(tmp_path, capsys):
    status, out = run_report(tmp_path, run="not-json")
    assert status == 2
    assert "logging.jsonl:2" in capsys.readouterr().err
    assert not (out / "smoke.md").exists()


def test_the_words_come_from_the_template(tmp_path):
    template = tmp_path / "template.zh.md"
    text = (REPO / "report" / "template.zh.md").read_text(encoding="utf-8")
    assert "## 9. 实验结果" in text
    template.write_text(text.replace("## 9. 实验结果", "## 9. 结果（模板改过）"), encoding="utf-8")
    status, out = run_report(tmp_path, template=template)
    assert status == 0
    assert "## 9. 结果（模板改过）" in (out / "smoke.md").read_text()


def test_an_unknown_fact_in_the_template_is_an_error(tmp_path, capsys):
    template = tmp_path / "template.zh.md"
    template.write_text("# {{ exp }}\n{{ no_such_fact }}\n", encoding="utf-8")
    status, out = run_report(tmp_path, template=template)
    assert status == 2
    assert "no_such_fact" in capsys.readouterr().err
    assert not (out / "smoke.md").exists()


def test_an_unfilled_marker_is_an_error(tmp_path, capsys):
    template = tmp_path / "template.zh.md"
    template.write_text("# {{ exp }} [待补充]\n", encoding="utf-8")
    status, _ = run_report(tmp_path, template=template)
    assert status == 2
    assert "[待补充]" in capsys.readouterr().err


# ---------------------------------------------------------------- the summary, the tests, the appendix, HTML

sys.path.insert(0, str(REPO / "tests"))
import md_check  # noqa: E402


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The report of the finished fixture run, rendered once for the tests that only read it."""
    status, out = run_report(tmp_path_factory.mktemp("finished"))
    assert status == 0
    return out


def summary_of(text):
    """The report's lines before its first numbered section."""
    return text.split("\n## 1. ", 1)[0].splitlines()


def test_the_summary_comes_first_and_answers_with_every_benchmark(finished):
    out = finished
    text = (out / "smoke.md").read_text()
    summary = summary_of(text)
    assert summary[:3] == ["# smoke 实验报告", "", "## 摘要"]
    assert len(summary) <= 40, "the summary no longer fits a screen"
    assert summary[4].startswith("**运行**：模型 `build/tiny-gpt-oss`，数据 `configs/smoke/data/mh-sharegpt-sample.jsonl`，代码 `abc123`，CPU")
    table = [line for line in summary if line.startswith("| ")]
    assert table[0] == "| 基准 | 指标 | 题数 | 基座 | 微调后 | 差值 [95% CI] | 显著性 |"
    # every benchmark of eval.yaml, the replies with two measures
    assert [row.split(" | ")[0][2:] for row in table[1:]] == [
        "C-Eval", "CMMLU", "CMMLU 心理学子集", "MMLU 心理学", "MMLU-Pro 心理学", "CPsyExam 单项选择（MCQA）",
        "CPsyExam 多项选择（MRQA）", "GSM8K", "SafetyBench（中文，总体）", "SafetyBench（中文）心理健康",
        "留出对话的咨询回复", "留出对话的咨询回复",
        "留出对话的咨询回复（LLM 评审）", "危机情境消息（LLM 评审）",
        "PsyDTCorpus 测试集逐轮回复（EmoLLM 指标）", "PsyDTCorpus 测试集逐轮回复（EmoLLM 指标）",
        "CPsyCounE 逐轮评审（四个维度）", "服务性能"]
    assert "| C-Eval | 准确率 | 24 | 25.00% | 37.50% | +12.50 [-6.79, +30.68] | 不显著（p=0.375） |" in table
    # ROUGE-L F1 0.05 higher on each of the 3 replies: the interval is [0.05, 0.05]
    assert "| 留出对话的咨询回复 | ROUGE-L F1 | 3 | 0.2000 | 0.2500 | +0.0500 [+0.0500, +0.0500] | 显著（区间不含 0） |" in table
    # BLEU-4 differences 0.1, -0.1, 0.1: every resample of three -0.1 (1/27) or three 0.1 (8/27) bounds it
    assert "| 留出对话的咨询回复 | BLEU-4 | 3 | 0.0333 | 0.0667 | +0.0333 [-0.1000, +0.1000] | 不显著（区间含 0） |" in table
    flags = [line for line in summary if line.startswith("- ")]
    assert "- 结果未通过检查（已拒绝，见第 8 节）：CMMLU（基座）" in flags
    assert any(f.startswith("- 未运行：CMMLU 心理学子集（基座）、MMLU 心理学（两个模型）") for f in flags)
    assert "**验证集 loss**：微调后 7.9600（无训练前的基座评估）" in text


def test_every_difference_carries_its_interval_and_test(finished):
    out = finished
    text = (out / "smoke.md").read_text()
    # per subject: basic_medicine 4 vs 2 right of 8, 2 discordant questions one way: p = 2/2^2
    assert "| `basic_medicine` | 8 | 50.00% | 25.00% | +25.00 [-12.57, +53.92] | 不显著（p=0.500） |" in text
    assert "| `high_school_biology` | 8 | 25.00% | 25.00% | +0.00 [-38.47, +38.47] | 不显著（p=1.000） |" in text
    # the replies' table: a difference row under the two models'
    assert ("| 留出对话的咨询回复 | 差值（微调后 − 基座）[95% CI] | 3 | +0.0000 [+0.0000, +0.0000] | +0.0333 [-0.1000, +0.1000] "
            "| +0.0000 [+0.0000, +0.0000] | +0.0500 [+0.0500, +0.0500]（显著） | +0.0000 [+0.0000, +0.0000] |") in text
    assert "种子 20261205" in text and "McNemar 精确检验" in text
    paired_stats = json.loads((out / "smoke.manifest.json").read_text())["results"]["eval"]["ceval"]["paired"]["score"]
    assert (paired_stats["n"], paired_stats["first_only"], paired_stats["second_only"]) == (24, 4, 1)
    assert paired_stats["p"] == pytest.approx(0.375)


def test_answer_mode_and_cut_off_answers_are_in_the_summary_when_recorded(tmp_path):
    import shutil
    results = tmp_path / "evalscope"
    shutil.copytree(FIXTURES / "evalscope", results)
    for served in ("smoke", "smoke-base"):
        path = results / "smoke" / served / "ceval" / "lab-eval.json"
        record = json.loads(path.read_text())
        cut_off = 3 if served == "smoke" else 0  # 12.5 % of the fine-tuned model's replies: over the 2 % limit
        record.update(answer_mode="final", replies={
            "asked": 24, "final": 20, "cut_off": cut_off, "no_answer": 1, "cut_off_share": cut_off / 24,
            "cut_off_limit": 0.02, "max_tokens": 16, "tokens": {"mean": 10, "p95": 16, "max": 16},
            "analysis_tokens": None, "final_tokens": None, "longest_prompt": 900,
            "fix": {"max_tokens": 32, "session_len": 932} if cut_off else None})
        path.write_text(json.dumps(record))
    _, out = run_report(tmp_path, results=results)
    summary = summary_of((out / "smoke.md").read_text())
    assert summary[4].endswith("CPU，作答方式 `final`。")
    assert "- 回答在 max_tokens 处被截断：C-Eval（微调后 3/24 ⚠）；⚠ 超过该基准允许的比例，修正见 10.1" in summary
    assert "- 没有给出最终答案的回答：C-Eval（微调后 1/24，基座 1/24）" in summary


def test_without_recorded_replies_no_cut_off_is_shown_and_the_answer_mode_is_eval_yamls(finished):
    summary = "\n".join(summary_of((finished / "smoke.md").read_text()))
    assert "截断" not in summary and "没有给出最终答案" not in summary
    assert "CPU，作答方式 `final`。" in summary  # configs/smoke/eval.yaml's answer_mode


def test_the_appendix_holds_every_command_and_the_report_links_each_step(finished):
    out = finished
    text, appendix = (out / "smoke.md").read_text(), (out / "smoke.appendix.md").read_text()
    steps = rp.read_steps(FIXTURES / "state" / "smoke" / "steps.jsonl")
    for command in steps["commands"]:
        assert command["command"].strip() in appendix
    section = text.split("## 11. ", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ") and line.split(" | ")[0][2:].isdigit()]
    assert len(rows) == len(steps["runs"]) + sum(1 for c in steps["commands"]
                                                 if not any(r["step"] == c["step"] for r in steps["runs"]))
    assert "](smoke.appendix.md#1-train) |" in rows[0]


@pytest.mark.parametrize("run", ["ok", "inprogress", "empty"])
def test_the_report_and_appendix_render_as_markdown(tmp_path, run):
    status, out = run_report(tmp_path, run=run)
    assert status == 0
    for name in ("smoke.md", "smoke.appendix.md"):
        assert md_check.problems((out / name).read_text(), out) == [], name


def test_the_check_finds_a_row_run_into_the_next_and_template_syntax():
    broken = "| a | b |\n|---|---|\n| 1 | 2 || 3 | 4 |\ntext {{ fact }}\n\n| lone | row |\n"
    assert md_check.problems(broken) == [
        "line 3: 5 cells, the header has 2",  # the dialogue table's old slip: two rows on one line
        "line 4: 1 cells, the header has 2",  # a paragraph right under a table is its last row
        "line 4: {{ left in the text",
        "line 6: a table row outside any table (it does not render)"]


def test_the_html_report_is_one_self_contained_page(finished):
    out = finished
    page = (out / "smoke.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert page.count('src="data:image/png;base64,') == 2  # the loss and accuracy charts
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing loaded from elsewhere
    assert "<h2>摘要</h2>" in page and page.index("<h2>摘要</h2>") < page.index("<table>")

def table_rows_with_other_widths(text: str) -> list[str]:
    """Rows of a Markdown table whose cell count differs from their table's header."""
    bad, width = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            width = None
            continue
        cells = line.replace("\\|", "").count("|")
        if width is None:
            width = cells
        elif cells != width:
            bad.append(line)
    return bad


def test_the_base_model_in_an_extra_answer_mode_is_its_own_column_and_cut_offs_are_flagged(tmp_path):
    import shutil
    results = tmp_path / "evalscope"
    shutil.copytree(FIXTURES / "evalscope", results)
    eval_config = tmp_path / "eval.yaml"
    eval_config.write_text((REPO / "configs/smoke/eval.yaml").read_text() + "base_extra_modes: [reasoning-medium]\n")
    replies = {"asked": 24, "final": 20, "cut_off": 3, "no_answer": 4, "cut_off_share": 0.125, "cut_off_limit": 0.02,
               "max_tokens": 1024, "tokens": {"mean": 700.5, "p95": 1024, "max": 1024},
               "analysis_tokens": {"mean": 690.0, "p95": 1020, "max": 1024}, "final_tokens": {"mean": 10.5, "p95": 20, "max": 30},
               "longest_prompt": 3000, "fix": {"max_tokens": 2048, "session_len": 5048}}
    extra = results / "smoke" / "smoke-base@reasoning-medium" / "ceval"
    extra.mkdir(parents=True)
    (extra / "lab-eval.json").write_text(json.dumps({
        "benchmark": "ceval", "model": "smoke-base", "metric": "accuracy", "score": 0.5, "num": 24, "subsets": [],
        "answer_mode": "reasoning-medium", "replies": replies}))
    status, out = run_report(tmp_path, results=results, eval_config=eval_config)
    assert status == 0
    text = (out / "smoke.md").read_text()
    assert ("| 基准 | 配对题数 | 基座（smoke-base）[95% CI] | 微调后（smoke）[95% CI] | 差值（百分点）[95% CI] | 显著性 "
            "| 基座，作答方式 reasoning-medium（smoke-base@reasoning-medium） |") in text
    assert ("| C-Eval | 24 | 25.00% [12.00%, 44.90%] | 37.50% [21.16%, 57.29%] | +12.50 [-6.79, +30.68] "
            "| 不显著（p=0.375） | 50.00% |") in text
    assert "| CMMLU 心理学子集 | — | 未运行（make eval-base） | 50.00% | — | — | 未运行（make eval-base） |" in text
    assert "基座另以 `reasoning-medium` 作答，见 9.3 节" in summary_of(text)[4]
    assert md_check.problems(text) == []
    assert "| C-Eval | 基座（reasoning-medium） | 24 | 20 | 3 ⚠ | 4 | 700.5 / 1024 | 690.0 / 1020 | 10.5 / 20 |" in text
    assert ("C-Eval（基座（reasoning-medium））：3 / 24 条回复被 max_tokens（1024）截断（12.50%，超过 2.00%）；"
            "修正：在 configs/smoke/eval.yaml 中把 max_tokens 提高到 2048，这需要至少 5,048 token 的会话长度") in text
    assert table_rows_with_other_widths(text) == []
    manifest = json.loads((out / "smoke.manifest.json").read_text())
    assert manifest["results"]["eval"]["ceval"]["base@reasoning-medium"]["score"] == 0.5


def test_an_emollm_scored_test_set_has_its_table_and_its_overlap_flagged(tmp_path):
    """psydt-turns (scorer: emollm, contamination_limit): both models' EmoLLM metrics x100 in
    EmoLLM's column order, the overlap with the training set beside them, flagged above its limit."""
    results = tmp_path / "evalscope"
    shutil.copytree(FIXTURES / "evalscope", results)
    overlap = {"test_replies": 7, "train_replies": 72, "ngram_chars": 20, "ngram_matches": 2, "ngram_share": 0.2857,
               "exact_duplicates": 1, "exact_share": 0.1429, "limit": 0.05, "flagged": True, "train": [], "missing": []}
    for served, rouge_l in (("smoke", 0.25), ("smoke-base", 0.2)):
        folder = results / "smoke" / served / "psydt-turns"
        folder.mkdir(parents=True)
        metrics = {"rouge-1-f1": 0.3, "rouge-2-f1": 0.1, "rouge-l-f1": rouge_l, "bleu-1": 0.35, "bleu-2": 0.2,
                   "bleu-3": 0.12, "bleu-4": 0.08}
        (folder / "lab-eval.json").write_text(json.dumps({
            "benchmark": "psydt-turns", "dataset": "general_qa", "model": served, "metric": "rouge-l-f1",
            "score": rouge_l, "num": 7, "metrics": metrics, "subsets": [{"name": "psydt", "score": rouge_l, "num": 7}],
            "contamination": overlap}))
    status, out = run_report(tmp_path, results=results)
    assert status == 0
    text = (out / "smoke.md").read_text()
    assert "| PsyDTCorpus 测试集逐轮回复（EmoLLM 指标） | 微调后（`smoke`） | 7 | 30.00 | 10.00 | 25.00 | 35.00 | 20.00 | 12.00 | 8.00 |" in text
    assert "| PsyDTCorpus 测试集逐轮回复（EmoLLM 指标） | 基座（`smoke-base`） | 7 | 30.00 | 10.00 | 20.00 |" in text
    flags = [line for line in summary_of(text) if line.startswith("- ")]
    assert ("- PsyDTCorpus 测试集逐轮回复（EmoLLM 指标）：可能的数据污染——2 / 7 条测试回复（28.57%）与训练集的某条回复有至少 20 字"
            "的连续重合（去掉空白与标点），其中 1 条与训练回复完全相同，超过阈值 5.00%（contamination_limit），其分数可能偏高") in flags
    assert "阈值 5.00%：⚠ 超过，分数可能因数据污染偏高" in text
    assert "PsyDTCorpus 测试集逐轮回复（EmoLLM 指标） | 微调后" not in text.split("**外部测试集上的逐轮回复**")[0].split("**咨询回复质量**")[1]


def test_cpsycoune_shows_its_four_dimensions_per_model_and_its_judge(tmp_path):
    results = tmp_path / "evalscope"
    shutil.copytree(FIXTURES / "evalscope", results)
    for served, professionalism in (("smoke", 2.2), ("smoke-base", 1.5)):
        folder = results / "smoke" / served / "cpsycoune"
        folder.mkdir(parents=True)
        (folder / "lab-eval.json").write_text(json.dumps({
            "benchmark": "cpsycoune", "dataset": "general_qa", "model": served, "metric": "cpsycoune-normalised",
            "score": 0.6, "num": 6, "extra": {"dialogues": 3},
            "metrics": {"comprehensiveness": 1.32, "professionalism": professionalism, "authenticity": 2.1, "safety": 1.0},
            "judge": {"model": "served", "placeholder": True}, "subsets": []}))
    status, out = run_report(tmp_path, results=results)
    assert status == 0
    text = (out / "smoke.md").read_text()
    assert ("| CPsyCounE 逐轮评审（四个维度） | 微调后（`smoke`） | 6 | 3 | 1.32 | 2.20 | 2.10 | 1.00 | `served`（占位，分数没有意义） |"
            in text)
    assert "| CPsyCounE 逐轮评审（四个维度） | 基座（`smoke-base`） | 6 | 3 | 1.32 | 1.50 |" in text
