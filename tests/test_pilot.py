"""scripts/py/pilot.py: the full run projected from a pilot's measurements (make pilot).

Fixtures (tests/fixtures/pilot/README.md): a real smoke pilot's files, and a GPU pilot
written for the tests. The arithmetic is checked by hand here, and the rendered report is
checked to move with the measurements (nothing in it is a constant)."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts" / "py"))
sys.path.insert(0, str(REPO / "tests"))
import md_check  # noqa: E402
import pilot  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "pilot"
TEMPLATE = REPO / "report" / "pilot.zh.md"


# ---------------------------------------------------------------- the arithmetic

def test_dataset_statistics_of_ms_swift():
    assert pilot.parse_dataset_stats("385.672131±47.663342, min=296.000000, max=505.000000, size=61") == (385.672131, 61)
    assert pilot.parse_dataset_stats(None) == (None, None)
    assert pilot.parse_dataset_stats("no statistics") == (None, None)


@pytest.mark.parametrize("rows, batch, accumulation, world, steps", [
    (61, 4, 2, 1, 8),      # the smoke run: 16 batches, 8 steps an epoch (32 in 4 epochs, as it ran)
    (61, 4, 2, 2, 4),      # two ranks: 31 rows each, 8 batches
    (4900, 4, 8, 1, 154),  # gpt-oss-20b-sft-v1: 1225 batches, the last step takes one
    (4900, 4, 8, 4, 39),   # four GPUs: 1225 rows a rank, 307 batches
    (3, 4, 8, 1, 1),       # fewer rows than a step: still one step
])
def test_steps_per_epoch(rows, batch, accumulation, world, steps):
    assert pilot.steps_per_epoch(rows, batch, accumulation, world) == steps


def test_planned_steps_and_evaluations():
    assert pilot.planned_steps(8, 4, None) == 32
    assert pilot.planned_steps(154, 1.5, None) == 231
    assert pilot.planned_steps(154, 1, 500) == 500  # max_steps in sft.yaml wins
    # eval_on_start, every 4 steps: before step 1 and at 4, 8, ..., 32.
    assert pilot.planned_evals(32, "steps", 4, True, 4) == 9
    # every 100 of 154: at 100 and at the last step (ms-swift), and before the first.
    assert pilot.planned_evals(154, "steps", 100, True, 1) == 3
    assert pilot.planned_evals(200, "steps", 100, False, 1) == 2
    assert pilot.planned_evals(154, "epoch", None, False, 2) == 2
    assert pilot.planned_evals(154, "no", 100, True, 1) == 1


def test_step_time_leaves_out_the_first_step_and_the_evaluations_between():
    train = pilot.read_training(FIXTURES / "smoke")
    first, last = 1.987293, 1.035466 * 8  # train_speed(s/it) x step of the first and the last rows
    assert train["step"]["first"] == 1 and train["step"]["last"] == 8
    assert train["step"]["evals_between"] == 1  # the one at step 4 (step 0's is before, step 8's after)
    assert train["step"]["seconds"] == pytest.approx((last - first - 0.2093) / 7)
    assert train["train_size"] == 61 and train["val_size"] == 7
    assert train["mean_tokens"] == pytest.approx(385.672131)
    assert train["eval_seconds"] == pytest.approx((0.3725 + 0.2093 + 0.1474) / 3)
    assert train["memory_gib"] is None  # ms-swift reports none on CPU


def test_projected_training_of_the_smoke_run():
    train = pilot.read_training(FIXTURES / "smoke")
    durations = pilot.step_durations(FIXTURES / "smoke" / "steps.jsonl")
    assert durations["train"] == 27 and durations["eval"] == 62
    sft = {"num_train_epochs": 4, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2}
    out = pilot.project_training(train, sft, 1, durations)
    assert (out["per_epoch"], out["steps"], out["evals"]) == (8, 32, 9)
    assert out["startup"] == pytest.approx(27 - 10.1508)
    expected = out["startup"] + 32 * train["step"]["seconds"] + 9 * train["eval_seconds"]
    assert out["seconds"] == pytest.approx(expected)
    # The real smoke training (32 steps) took 48 s on the same machine, from a clean run.
    assert 35 < out["seconds"] < 60
    assert out["tokens_per_second"] == pytest.approx(385.672131 * 8 / train["step"]["seconds"])


def test_projected_training_on_two_gpus():
    train = pilot.read_training(FIXTURES / "gpu")
    durations = pilot.step_durations(FIXTURES / "gpu" / "steps.jsonl")
    sft = {"num_train_epochs": 1}  # the batch and accumulation come from the run's args.json
    out = pilot.project_training(train, sft, 2, durations)
    assert train["step"]["seconds"] == pytest.approx(12.0)
    assert out["batches"] == 613 and out["per_epoch"] == 77 and out["steps"] == 77
    assert out["evals"] == 2  # before the first step and at the last
    assert out["startup"] == pytest.approx(770 - 470)
    assert out["seconds"] == pytest.approx(300 + 77 * 12 + 2 * 40)
    assert out["tokens_per_second"] == pytest.approx(1180.5 * 64 / 12)
    assert train["memory_gib"] == 62.5


def test_steps_per_epoch_from_the_epoch_progress_without_dataset_statistics(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "smoke", run)
    lines = (run / "logging.jsonl").read_text().splitlines()
    (run / "logging.jsonl").write_text("\n".join(line for line in lines if "train_dataset" not in line) + "\n")
    train = pilot.read_training(run)
    out = pilot.project_training(train, {"num_train_epochs": 4}, 1, {})
    assert (out["per_epoch_source"], out["per_epoch"], out["steps"]) == ("epoch", 8, 32)
    assert out["startup"] is None and out["tokens_per_second"] is None


def test_max_tokens_recommended_from_the_cut_off_share():
    replies = pilot.replies_facts({"asked": 200, "cut_off": 10, "final": 190, "no_answer": 3, "max_tokens": 1024,
                                   "tokens": {"mean": 400, "p95": 1024, "max": 1024}})
    assert replies["cut_off_share"] == 0.05
    assert pilot.recommended_max_tokens(1024, replies) == 2048
    # 2 % exactly is within the limit; unknown replies recommend nothing.
    at_limit = pilot.replies_facts({"asked": 100, "cut_off": 2, "max_tokens": 1024, "tokens": {"p95": 900}})
    assert pilot.recommended_max_tokens(1024, at_limit) is None
    assert pilot.recommended_max_tokens(1024, None) is None
    assert pilot.replies_facts(None) is None and pilot.replies_facts({"asked": 0}) is None


def bench(name="ceval", kind="eval", questions=12, bound=None, subjects=3, concurrency=8, pilot_questions=6,
          parallel=(), number=()):
    return {"name": name, "kind": kind, "max_tokens": 16, "concurrency": concurrency, "skipped": None,
            "full": {"questions": questions, "bound": bound, "subjects": subjects, "parallel": list(parallel),
                     "number": list(number)},
            "pilot": {"questions": pilot_questions}}


def test_evaluation_time_from_questions_per_minute():
    out = pilot.project_eval(bench(), {"num": 6, "eval_seconds": 12.0})
    assert out["per_minute"] == 30 and out["projected"] == 24 and out["below_concurrency"]
    # A hub set: limit x subjects, an upper bound.
    out = pilot.project_eval(bench(questions=None, bound=5200, subjects=52, concurrency=16),
                             {"num": 260, "eval_seconds": 520.0})
    assert out["projected"] == 10400 and not out["below_concurrency"]
    # A judge without a verdict scores 0 questions: the questions asked count.
    out = pilot.project_eval(bench(pilot_questions=3), {"num": 0, "eval_seconds": 6.0, "score": None})
    assert out["pilot_questions"] == 3 and out["per_minute"] == 30
    assert pilot.project_eval(bench(), {"skipped": "no judge configured"})["projected"] == 0
    assert pilot.project_eval(bench(), None)["state"] == "not_run"


def test_perf_time_from_the_latency_of_its_one_level():
    record = {"kind": "perf", "eval_seconds": 5.0,
              "levels": [{"parallel": 2, "number": 4, "avg_latency_s": 0.2, "output_tok_s": 160.0}]}
    out = pilot.project_eval(bench(name="perf", kind="perf", parallel=(1, 2), number=(4, 8)), record)
    assert out["startup"] == pytest.approx(5.0 - 4 * 0.2 / 2)
    assert out["projected"] == pytest.approx(out["startup"] + 4 * 0.2 / 1 + 8 * 0.2 / 2)


def test_a_benchmark_the_pilot_left_out_takes_the_pace_of_a_measured_one_of_its_kind():
    def item(name, judged, max_tokens, per_minute=None, state="done", questions=12):
        return {"name": name, "kind": "eval", "judged": judged, "max_tokens": max_tokens, "per_minute": per_minute,
                "state": state, "full_questions": questions, "full_bound": None, "projected": None, "basis": None}
    evals = [item("ceval", False, 16, 30.0), item("dialog-judge", True, 32, 20.0),
             item("cmmlu", False, 16, state="not_measured", questions=16),
             item("crisis-judge", True, 64, state="not_measured", questions=4),
             item("dialog", False, 32, state="not_measured", questions=7)]
    pilot.project_unmeasured(evals)
    left = {e["name"]: e for e in evals[2:]}
    assert (left["cmmlu"]["basis"], left["cmmlu"]["projected"]) == ("ceval", 32.0)
    assert (left["crisis-judge"]["basis"], left["crisis-judge"]["projected"]) == ("dialog-judge", 12.0)
    assert left["dialog"]["basis"] == "ceval"  # judged like it first, then the nearest max_tokens


def gpu_plan() -> dict:
    g = FIXTURES / "gpu"
    return {"exp": "gpt-oss-20b-sft-v1-pilot", "pilot_of": "gpt-oss-20b-sft-v1", "config": "configs/gpt-oss-20b-sft-v1",
            "gpu": "0,1", "nproc": 2, "nnodes": 1, "run_dir": str(g), "export_dir": str(g / "export"),
            "steps": str(g / "steps.jsonl"), "sft": str(REPO / "configs/gpt-oss-20b-sft-v1/sft.yaml"),
            "requirements": str(REPO / "configs/gpt-oss-20b-sft-v1/requirements.env"),
            "session": {"limit": 8192, "key": "lmdeploy_session_len"},
            "scale": {"max_steps": 30, "limit": 5, "rows": 20, "perf_number": 16},
            "prompt_tokens": {"ceval": 7300},
            "benchmarks": [
                {**bench(questions=None, bound=5200, subjects=52, concurrency=16, pilot_questions=260), "max_tokens": 1024,
                 "eval_batch_size": 8,
                 "result": str(g / "evals/ceval/lab-eval.json"), "rejected": str(g / "evals/ceval/lab-eval-rejected.json")},
                {**bench(name="perf", kind="perf", parallel=(1, 4, 8, 32), number=(16, 64, 128, 256), concurrency=16),
                 "max_tokens": 256, "result": str(g / "evals/perf/lab-eval.json"),
                 "rejected": str(g / "evals/perf/lab-eval-rejected.json")}]}


def test_recommendations_of_a_gpu_pilot():
    facts = pilot.Projection(gpu_plan()).facts()
    found = {r["kind"]: r for r in facts["recommendations"]}
    # 13 of 260 replies cut at 1024: twice that, and a session for the longest prompt plus it.
    assert found["max_tokens"]["value"] == 2048 and found["max_tokens"]["share"] == 0.05
    assert found["max_tokens"]["session_needed"] == 7300 + 2048  # prompt_budget.py's estimate
    assert found["max_tokens"]["session_value"] == 10240  # rounded up to 1024, above 8192
    # C-Eval: 30 questions a minute x 410 tokens = 205 tok/s at 16 in flight; perf: 900 at 32.
    assert found["eval_batch_size"]["tok_s"] == pytest.approx(205.0)
    assert found["eval_batch_size"]["value"] == 16  # 32 in flight over 2 GPUs
    # 62.5 GiB peak + 10 % = 68.75 GiB, rounded up to 69 GiB, above the 60 GiB asked.
    assert found["gpu_memory"]["value"] == 69 * 1024 and found["gpu_memory"]["current"] == 61440


def test_the_longest_prompt_the_server_counted_wins_over_the_estimate(tmp_path):
    plan = gpu_plan()
    record = json.loads(Path(plan["benchmarks"][0]["result"]).read_text())
    record["replies"]["longest_prompt"] = 9000
    (tmp_path / "ceval.json").write_text(json.dumps(record))
    plan["benchmarks"][0]["result"] = str(tmp_path / "ceval.json")
    found = {r["kind"]: r for r in pilot.Projection(plan).facts()["recommendations"]}
    assert found["max_tokens"]["session_needed"] == 9000 + 2048
    assert found["max_tokens"]["session_value"] == 11264


def test_gpu_hours_and_totals_step_by_step():
    facts = pilot.Projection(gpu_plan()).facts()
    steps = {s["step"]: s for s in facts["steps"]}
    assert steps["train"]["projected"] == pytest.approx(1304)
    assert steps["train"]["gpu_hours"] == pytest.approx(1304 * 2 / 3600)
    assert steps["export"]["projected"] == 600 and steps["deploy"]["projected"] == 180
    evals = steps["eval"]["projected"]
    perf = 32 * 2.0 / 32  # the pilot's one level: 2 s
    perf_full = (12.0 - perf) + 16 * 2.0 / 1 + 64 * 2.0 / 4 + 128 * 2.0 / 8 + 256 * 2.0 / 32
    overhead = 840 - 520 - 12  # the eval step's time less its benchmarks'
    assert evals == pytest.approx(10400 + perf_full + overhead)
    assert facts["total"] == pytest.approx(5 + 1304 + 600 + 180 + 5 + evals)
    assert facts["total_gpu_hours"] == pytest.approx((1304 * 2 + (600 + 180 + 5 + evals) * 2) / 3600)
    assert facts["base_total"] == pytest.approx(180 + 5 + evals)
    assert [e["name"] for e in facts["hub_bounds"]] == ["ceval"]


# ---------------------------------------------------------------- the report

def smoke_plan(tmp_path: Path, run: Path) -> dict:
    results = run / "evals"
    benches = [
        {**bench(), "result": str(results / "ceval/lab-eval.json"), "rejected": str(results / "ceval/x.json")},
        {**bench(name="dialog", questions=7, subjects=None, pilot_questions=3), "max_tokens": 32,
         "result": str(results / "dialog/lab-eval.json"), "rejected": str(results / "dialog/x.json")},
        {**bench(name="perf", kind="perf", parallel=(1, 2), number=(4, 8)), "result": str(results / "perf/lab-eval.json"),
         "rejected": str(results / "perf/x.json")},
    ]
    return {"exp": "smoke-pilot", "pilot_of": "smoke", "config": "configs/smoke", "gpu": "cpu", "nproc": 1, "nnodes": 1,
            "run_dir": str(run), "export_dir": str(tmp_path / "export"), "steps": str(run / "steps.jsonl"),
            "sft": str(REPO / "configs/smoke/sft.yaml"), "requirements": str(REPO / "configs/smoke/requirements.env"),
            "session": {"limit": 4096, "key": "max_length"}, "scale": {"max_steps": 8, "limit": 2, "rows": 3, "perf_number": 2},
            "prompt_tokens": {"ceval": 900, "dialog": 700}, "benchmarks": benches}


def render(tmp_path: Path, plan: dict) -> str:
    (tmp_path / "plan.json").write_text(json.dumps(plan, ensure_ascii=False))
    out = tmp_path / "report.md"
    assert pilot.main(["--plan", str(tmp_path / "plan.json"), "--template", str(TEMPLATE), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert md_check.problems(text) == []  # every table row as wide as its header, nothing left of the template
    return text


def test_the_report_holds_the_measured_and_projected_numbers(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "smoke", run)
    text = render(tmp_path, smoke_plan(tmp_path, run))
    train = pilot.read_training(run)
    assert f"{train['step']['seconds']:.3f}".rstrip("0") in text
    assert "32 步 × " in text and "9 次验证" in text
    assert "| ceval | 6 | 7 秒 | 51.4 | 8 | 83.3%（5/6，max_tokens 16） | 15.5 / 16 / 16 |" in text
    # ceval's cut-off share asks for 32 tokens; the session needs 900 + 32, within max_length 4096.
    assert "`configs/smoke/eval.yaml` 中 ceval 的 `max_tokens`：16 → 32" in text
    assert "900 token + 32 = 932 token，在当前 max_length = 4096 之内" in text
    # dialog has no replies statistics: said, not guessed.
    assert "截断比例和生成长度未知：dialog" in text
    assert "None" not in text and "nan" not in text


def test_the_report_moves_with_the_measurements(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "smoke", run)
    before = pilot.Projection(smoke_plan(tmp_path, run)).facts()
    # Twice as slow a training step (ms-swift's s/it doubled on every row).
    rows = [json.loads(line) for line in (run / "logging.jsonl").read_text().splitlines()]
    for row in rows:
        if "train_speed(s/it)" in row and "loss" in row:
            row["train_speed(s/it)"] *= 2
    (run / "logging.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    after = pilot.Projection(smoke_plan(tmp_path, run)).facts()
    assert after["training"]["step_seconds"] > 1.9 * before["training"]["step_seconds"]
    assert after["training"]["seconds"] - before["training"]["seconds"] == pytest.approx(
        32 * (after["training"]["step_seconds"] - before["training"]["step_seconds"]))
    # No replies cut off: no max_tokens recommendation.
    record = json.loads((run / "evals/ceval/lab-eval.json").read_text())
    record["replies"]["cut_off"] = 0
    (run / "evals/ceval/lab-eval.json").write_text(json.dumps(record))
    assert not pilot.Projection(smoke_plan(tmp_path, run)).facts()["recommendations"]


def test_a_gpu_report_renders_every_recommendation(tmp_path):
    text = render(tmp_path, gpu_plan())
    assert "ceval 的 `max_tokens`：1024 → 2048" in text
    assert "把 `configs/gpt-oss-20b-sft-v1/deploy.yaml` 的 `lmdeploy_session_len` 提高到 10240" in text
    assert "`eval_batch_size`：8 → 16" in text
    assert "`GPU_FREE_MIB_PER_GPU`：61440 → 70656" in text
    assert "≤ 5200（每科 100 × 52 科）" in text
    assert "| 训练（swift sft） | 12.8 分钟 |" in text
    assert "| 21.7 分钟 | 0.72 |" in text  # 1304 s on 2 GPUs
