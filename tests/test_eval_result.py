"""scripts/py/eval_result.py: an EvalScope report becomes a result only when it checks out."""

import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "evalscope" / "smoke" / "smoke" / "ceval" / "reports" / "smoke" / "ceval.json"
sys.path.insert(0, str(REPO / "scripts" / "py"))

import eval_result  # noqa: E402
import log_eval_swanlab  # noqa: E402

SUBJECTS = ["basic_medicine", "education_science", "high_school_biology"]


@pytest.fixture
def work(tmp_path):
    report = tmp_path / "reports" / "smoke" / "ceval.json"
    report.parent.mkdir(parents=True)
    shutil.copy(FIXTURE, report)
    return tmp_path, report


def check(work, *extra):
    tmp, report = work
    argv = ["--report", str(report), "--benchmark", "ceval", "--model", "smoke",
            "--config", "configs/smoke/eval.yaml", "--out", str(tmp / "lab-eval.json"), *extra]
    return eval_result.main(argv)


def fixture_num():
    return json.loads(FIXTURE.read_text())["metrics"][0]["num"]


def test_an_accepted_report_becomes_the_result(work):
    tmp, _ = work
    subjects = [a for s in SUBJECTS for a in ("--subject", s)]
    assert check(work, "--expected-num", str(fixture_num()), *subjects, "--inputs-digest", "d1", "--seconds", "7") == 0
    result = json.loads((tmp / "lab-eval.json").read_text())
    assert result["inputs_digest"] == "d1" and result["benchmark"] == "ceval" and result["model"] == "smoke"
    assert result["num"] == fixture_num() and 0 <= result["score"] <= 1 and result["eval_seconds"] == 7
    assert sorted(s["name"] for s in result["subsets"]) == SUBJECTS
    assert not (tmp / "lab-eval-rejected.json").exists()


@pytest.mark.parametrize("change,extra,reason", [
    (None, ["--expected-num", "999"], "expected 999"),
    (None, ["--subject", "philosophy"], "subject 'philosophy' has no results"),
    (lambda r: r["metrics"][0].update(score=1.5), [], "no score in [0, 1]"),
    (lambda r: r.update(metrics=[]), [], "not an EvalScope report"),
])
def test_a_bad_report_is_rejected_with_its_reason_and_no_result(work, capsys, change, extra, reason):
    tmp, report = work
    if change:
        data = json.loads(report.read_text())
        change(data)
        report.write_text(json.dumps(data))
    assert check(work, *extra) == 1
    assert not (tmp / "lab-eval.json").exists()
    assert reason in json.loads((tmp / "lab-eval-rejected.json").read_text())["reason"]
    err = capsys.readouterr().err
    assert reason in err and "[eval] fix: " in err


def test_no_report_is_rejected_and_a_later_accepted_one_clears_the_rejection(work, capsys):
    tmp, report = work
    report.rename(tmp / "saved.json")
    assert check(work) == 1
    assert "evalscope wrote no report" in capsys.readouterr().err
    (tmp / "saved.json").rename(report)
    assert check(work) == 0
    assert (tmp / "lab-eval.json").exists() and not (tmp / "lab-eval-rejected.json").exists()


def test_swanlab_metrics_come_from_the_checked_result(work):
    tmp, _ = work
    assert check(work) == 0
    result = json.loads((tmp / "lab-eval.json").read_text())
    metrics = log_eval_swanlab.result_metrics(result)
    assert metrics["ceval/accuracy"] == result["score"] and metrics["ceval/num"] == result["num"]
    assert {f"ceval/subject/{s}/accuracy" for s in SUBJECTS} <= set(metrics)
    assert log_eval_swanlab.run_config([result])["benchmarks"]["ceval"]["subjects"] == SUBJECTS
