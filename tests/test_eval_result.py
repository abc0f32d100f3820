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


def test_the_primary_metric_of_a_multi_metric_report_and_every_metric_by_label(work):
    tmp, report = work
    metric = lambda name, dims, score: {"name": None, "identity": {"name": name, "dimensions": dims}, "score": score,
                                        "num": 7, "categories": [{"name": ["default"], "subsets": [{"name": "dialog", "score": score, "num": 7}]}]}
    report.write_text(json.dumps({
        "dataset_name": "general_qa",
        "primary_metric_identity": {"name": "rouge", "aggregation": "mean", "dimensions": {"statistic": "recall", "variant": "l"}},
        "metrics": [metric("bleu", {"ngram": 1}, 0.1), metric("rouge", {"ngram": 1, "statistic": "f1"}, 0.2),
                    {**metric("rouge", {"statistic": "recall", "variant": "l"}, 0.3),
                     "identity": {"name": "rouge", "aggregation": "mean", "dimensions": {"statistic": "recall", "variant": "l"}}}]}))
    assert check(work, "--expected-num", "7", "--subject", "dialog") == 0
    result = json.loads((tmp / "lab-eval.json").read_text())
    assert (result["metric"], result["score"], result["num"]) == ("rouge-l-recall", 0.3, 7)
    assert result["metrics"] == {"bleu-1": 0.1, "rouge-1-f1": 0.2, "rouge-l-recall": 0.3}


def test_a_judge_without_a_valid_verdict_leaves_no_score_not_a_failure(work):
    tmp, report = work
    report.write_text(json.dumps({"dataset_name": "general_qa", "metrics": [], "judge_summary": None}))
    assert check(work, "--judged", "--judge-model", "served", "--judge-placeholder") == 0
    result = json.loads((tmp / "lab-eval.json").read_text())
    assert result["score"] is None and result["judge"] == {"model": "served", "placeholder": True}
    # Without --judged, a report without metrics is rejected.
    assert check(work) == 1


def perf_run(tmp, tokens=16, answered=None):
    for parallel, number in ((1, 4), (2, 8)):
        level = tmp / "perf" / f"parallel_{parallel}_number_{number}"
        level.mkdir(parents=True)
        (level / "benchmark_summary.json").write_text(json.dumps({
            "Success Requests": number if answered is None else answered, "Failed Requests": 0,
            "Output Throughput (tok/s)": 100.0 * parallel, "Req Throughput (req/s)": 5.0, "Avg TTFT (ms)": 20.0,
            "Avg Latency (s)": 0.2, "Avg Output Tokens": tokens}))
        (level / "benchmark_percentile.json").write_text(json.dumps([
            {"Percentiles": "50%", "Latency (s)": 0.2, "TTFT (ms)": 20.0}, {"Percentiles": "99%", "Latency (s)": 0.4, "TTFT (ms)": 41.0}]))
    return ["--perf", "--report", str(tmp / "perf"), "--benchmark", "perf", "--model", "smoke", "--config", "c",
            "--out", str(tmp / "lab-eval.json"), "--parallel", "1", "2", "--number", "4", "8"]


def test_a_perf_run_becomes_one_entry_per_concurrency_level(tmp_path):
    assert eval_result.main(perf_run(tmp_path)) == 0
    result = json.loads((tmp_path / "lab-eval.json").read_text())
    assert [(level["parallel"], level["output_tok_s"], level["ttft_ms_p99"]) for level in result["levels"]] == [(1, 100.0, 41.0), (2, 200.0, 41.0)]
    metrics = log_eval_swanlab.result_metrics(result)
    assert metrics["perf/concurrency_2/output_tok_s"] == 200.0 and "perf/num" not in metrics


@pytest.mark.parametrize("tokens,answered", [(0, None), (16, 3)])
def test_a_perf_run_with_unanswered_or_empty_replies_is_rejected(tmp_path, tokens, answered):
    assert eval_result.main(perf_run(tmp_path, tokens, answered)) == 1
    assert not (tmp_path / "lab-eval.json").exists()
    assert "requests answered with tokens" in json.loads((tmp_path / "lab-eval-rejected.json").read_text())["reason"]


def prediction(final, stop="stop", output_tokens=10, input_tokens=50, form="raw"):
    harmony = {"form": form, "final": final, "analysis": "想一想"}
    return {"model_output": {"choices": [{"message": {"content": [], "metadata": {"harmony": harmony}},
                                          "stop_reason": stop}],
                             "usage": {"output_tokens": output_tokens, "input_tokens": input_tokens}}}


def write_rows(folder, rows):
    folder.mkdir(parents=True)
    (folder / "ceval_x.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def whitespace_tokenizer(folder):
    """A tokenizer.json whose tokens are whitespace-separated words (tokenizers' own format)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    folder.mkdir()
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder


def test_reply_facts_count_final_channels_cut_offs_and_tokens(tmp_path):
    work = tmp_path / "work"
    rows = [prediction("答案 ： A", output_tokens=10), prediction(None, "max_tokens", 64, 80),
            prediction("", output_tokens=20), prediction("答案 ： B", output_tokens=30)]
    write_rows(work / "predictions" / "m", rows)
    reviews = [{"sample_score": {"score": {"extracted_prediction": e}}} for e in ("A", "", "", "B")]
    write_rows(work / "reviews" / "m", reviews)
    facts = eval_result.reply_facts(work, 64, 0.02, eval_result.load_tokenizer(str(whitespace_tokenizer(tmp_path / "tok"))))
    assert (facts["asked"], facts["final"], facts["cut_off"], facts["no_answer"]) == (4, 2, 1, 2)
    assert facts["tokens"] == {"mean": 31.0, "p95": 64, "max": 64} and facts["longest_prompt"] == 80
    # Final channels of 3, 0, 0 and 3 words; the rest of each reply is its analysis.
    assert facts["final_tokens"] == {"mean": 1.5, "p95": 3, "max": 3}
    assert facts["analysis_tokens"] == {"mean": 29.5, "p95": 64, "max": 64}
    # 1 of 4 cut off is over 2 %: twice the max_tokens, and the session for the longest prompt.
    assert facts["cut_off_share"] == 0.25 and facts["fix"] == {"max_tokens": 128, "session_len": 208}
    assert eval_result.reply_facts(work, 64, 0.3, None)["fix"] is None
    logged = log_eval_swanlab.result_metrics({"benchmark": "ceval", "replies": facts})
    assert logged["ceval/replies/cut_off"] == 1 and logged["ceval/replies/final_tokens_p95"] == 3


def test_no_predictions_no_reply_facts(tmp_path):
    assert eval_result.reply_facts(tmp_path, 64, 0.02) is None


def safety_report(path: Path) -> Path:
    """A SafetyBench-shaped report (EvalScope 1.14: one metric per configuration, a category per
    SafetyBench category, each with the configuration as its subset)."""
    def category(name, score, num):
        return {"name": [name], "num": num, "score": score, "subsets": [{"name": "zh", "score": score, "num": num}]}
    report = {"dataset_name": "safety_bench", "metrics": [{
        "identity": {"name": "accuracy", "aggregation": "mean", "dimensions": {"subset": "zh"}}, "num": 6,
        "score": 0.8333, "categories": [category("Mental Health", 2 / 3, 3), category("Offensiveness", 1.0, 1),
                                        category("Physical Health", 1.0, 2), category("Illegal Activities", 0.0, 0)]}],
        "primary_metric_identity": {"name": "accuracy", "aggregation": "mean", "dimensions": {"subset": "zh"}}}
    path.write_text(json.dumps(report))
    return path


def test_categories_are_kept_with_their_own_counts(tmp_path):
    report = safety_report(tmp_path / "safety_bench.json")
    assert eval_result.main(["--report", str(report), "--benchmark", "safety-zh", "--model", "smoke", "--config", "c",
                             "--out", str(tmp_path / "lab-eval.json"), "--expected-num", "6", "--subject", "zh"]) == 0
    result = json.loads((tmp_path / "lab-eval.json").read_text())
    assert result["metric"] == "accuracy-zh" and result["score"] == 0.8333
    categories = {c["name"]: c for c in result["categories"]}
    assert categories["Mental Health"]["num"] == 3 and categories["Mental Health"]["score"] == pytest.approx(2 / 3)
    assert categories["Illegal Activities"]["score"] is None
    logged = log_eval_swanlab.result_metrics(result)
    assert logged["safety-zh/category/Mental Health/accuracy"] == pytest.approx(2 / 3)


def test_subject_mean_weighs_each_subject_the_same(work):
    tmp, report = work
    data = json.loads(report.read_text())
    subsets = eval_result.subsets_of(data["metrics"][0])
    assert check(work, "--aggregate", "subject-mean") == 0
    result = json.loads((tmp / "lab-eval.json").read_text())
    assert result["score"] == pytest.approx(sum(s["score"] for s in subsets) / len(subsets))
    assert result["metric"] == "accuracy-subject-mean"
    assert result["metrics"]["accuracy-question-mean"] == data["metrics"][0]["score"]
