"""make arena's result (scripts/py/eval_result.py --arena) read from a real general_arena output.

tests/fixtures/arena/ was made by tests/stubs/make_arena_fixture.py: EvalScope 1.14.1 ran for
real, two models (a stub on 127.0.0.1) answered 8 prompts in harmony form through
scripts/py/evalscope_lab.py, and general_arena had a stub judge compare each pair in both
orders. Hand count of what the judge was made to say (make_arena_fixture.py's docstring):
P0, P1, P7 wins; P2 and P4 (a judge that prefers position A: one win and one loss) ties; P3, P6
losses; P5 no usable verdict.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "py"))

import eval_result  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "arena"


def run_arena(tmp_path: Path, *pairs: str) -> dict:
    tuned, base = tmp_path / "tuned.json", tmp_path / "base.json"
    tuned.write_text('{"inputs_digest": "tuned-digest"}', encoding="utf-8")
    base.write_text('{"inputs_digest": "base-digest"}', encoding="utf-8")
    argv = ["--arena", "--benchmark", "arena", "--model", "tuned", "--baseline", "base", "--config", "eval.yaml",
            "--out", str(tmp_path / "lab-eval.json"), "--judge-model", "judge", "--inputs-digest", "d"]
    for name in pairs:
        argv += ["--pair", name, str(FIXTURE / "arena"), str(tuned), str(base)]
    assert eval_result.main(argv) == 0
    return json.loads((tmp_path / "lab-eval.json").read_text(encoding="utf-8"))


def test_win_tie_loss_match_the_hand_count(tmp_path):
    result = run_arena(tmp_path, "dialog")
    pair = result["extra"]["pairs"][0]
    assert (pair["wins"], pair["ties"], pair["losses"], pair["unusable"]) == (3, 2, 2, 1)
    assert (pair["n"], pair["asked"]) == (7, 8)
    assert pair["order_disagreements"] == 1  # P4: the judge took position A in both orders
    assert pair["replies_digests"] == {"tuned": "tuned-digest", "base": "base-digest"}


def test_the_simple_win_rate_is_wins_and_half_the_ties_over_the_usable_prompts(tmp_path):
    result = run_arena(tmp_path, "dialog")
    simple = result["extra"]["pairs"][0]["simple"]
    assert simple["rate"] == pytest.approx((3 + 2 / 2) / 7)
    assert 0 <= simple["lower"] < simple["rate"] < simple["upper"] <= 1
    assert result["metric"] == "simple-win-rate" and result["score"] == pytest.approx(4 / 7)
    assert run_arena(tmp_path, "dialog")["extra"]["pairs"][0]["simple"] == simple  # seeded


def test_evalscope_win_rate_and_bounds_are_the_reports(tmp_path):
    report = json.loads((FIXTURE / "arena/reports/arena/general_arena.json").read_text(encoding="utf-8"))
    expected = {m["identity"]["name"]: m["score"] for m in report["metrics"]}
    result = run_arena(tmp_path, "dialog")
    assert result["extra"]["pairs"][0]["evalscope"] == {
        "rate": expected["win_rate"], "lower": expected["win_rate_lower"], "upper": expected["win_rate_upper"]}
    assert expected["win_rate_lower"] <= expected["win_rate"] <= expected["win_rate_upper"]
    assert result["metrics"]["dialog/win_rate"] == expected["win_rate"]
    assert result["extra"]["pairs"][0]["judge"]["failures"] == {"parse_error": 1}


def test_pairs_pool_into_the_totals(tmp_path):
    result = run_arena(tmp_path, "dialog", "psydt-turns")
    totals = result["extra"]["totals"]
    assert (totals["wins"], totals["ties"], totals["losses"], totals["unusable"], totals["n"]) == (6, 4, 4, 2, 14)
    assert result["num"] == 16 and result["judge"] == {"model": "judge", "placeholder": False, "scored": 14, "asked": 16}


def test_the_judge_saw_only_the_final_channels():
    prompts = [json.loads(line)["prompt"] for line in (FIXTURE / "judge-requests.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(prompts) == 15  # 8 prompts in both orders, but P5's second order is never asked once the first failed
    assert not any("推理" in prompt or "<|channel|>" in prompt for prompt in prompts)
    assert sum("q=3" in prompt for prompt in prompts) >= 8


def test_no_usable_verdict_is_no_score(tmp_path):
    folder = tmp_path / "arena"
    (folder / "reports/arena").mkdir(parents=True)
    (folder / "reviews/arena").mkdir(parents=True)
    (folder / "reports/arena/general_arena.json").write_text('{"metrics": [], "judge_summary": {"status": "excluded"}}')
    (folder / "reviews/arena/general_arena_x.jsonl").write_text('{"sample_score": {"score": {"value": {}}}}\n')
    for side in ("tuned", "base"):
        (tmp_path / f"{side}.json").write_text("{}")
    argv = ["--arena", "--benchmark", "arena", "--model", "smoke", "--baseline", "smoke-base", "--config", "c",
            "--out", str(tmp_path / "out.json"), "--judge-model", "served", "--judge-placeholder",
            "--pair", "dialog", str(folder), str(tmp_path / "tuned.json"), str(tmp_path / "base.json")]
    assert eval_result.main(argv) == 0
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["score"] is None and result["metric"] is None
    assert result["extra"]["totals"]["unusable"] == 1 and result["judge"]["placeholder"] is True


def test_an_unfinished_evaluation_is_rejected(tmp_path, capsys):
    argv = ["--arena", "--benchmark", "arena", "--model", "tuned", "--baseline", "base", "--config", "c",
            "--out", str(tmp_path / "out.json"), "--judge-model", "judge",
            "--pair", "dialog", str(FIXTURE / "arena"), str(tmp_path / "missing.json"), str(tmp_path / "missing.json")]
    assert eval_result.main(argv) == 1
    assert "make evals and make eval-base first" in capsys.readouterr().err
    assert (tmp_path / "lab-eval-rejected.json").is_file() and not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("games, expected", [
    ([{"model_a": "t", "model_b": "b", "judgment": "A>>B"}, {"model_a": "b", "model_b": "t", "judgment": "B>A"}], ("win", False)),
    ([{"model_a": "t", "model_b": "b", "judgment": "A>B"}, {"model_a": "b", "model_b": "t", "judgment": "A>B"}], ("tie", True)),
    ([{"model_a": "t", "model_b": "b", "judgment": "B>A"}, {"model_a": "b", "model_b": "t", "judgment": "A>>B"}], ("loss", False)),
    ([{"model_a": "t", "model_b": "b", "judgment": "A=B"}, {"model_a": "b", "model_b": "t", "judgment": "A=B"}], ("tie", False)),
])
def test_both_orders_reduce_as_general_arena_reduces_them(games, expected):
    assert eval_result.battle_outcome({"games": games}, "t") == expected
    assert eval_result.battle_outcome(None, "t") is None


def test_a_result_judged_from_replies_no_longer_current_is_of_another_model(tmp_path):
    """The report (lab/report/evaluations.py arena_sides): the arena is shown only while every
    pair's replies are the evaluations' now; a pair whose evaluation was redone, or is itself of
    another model (its current digests None: facts.py's stale pairs), makes it another model's."""
    from lab.report.evaluations import arena_sides

    result = {**run_arena(tmp_path, "dialog"), "state": "done"}
    digests = result["extra"]["pairs"][0]["replies_digests"]
    sides = ["tuned", "base"]
    assert arena_sides(result, sides, {"dialog": digests})["tuned"]["state"] == "done"
    for current in ({"dialog": {**digests, "tuned": "redone"}}, {"dialog": None}, {}):
        shown = arena_sides(result, sides, current)
        assert shown["tuned"]["state"] == "other_model"
        assert shown["tuned"]["score"] is None
    assert arena_sides(result, sides, {"dialog": digests})["base"]["state"] == "arena"
