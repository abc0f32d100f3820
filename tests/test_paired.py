"""The paired tests of scripts/py/paired.py on answers whose p-values and intervals are worked
out by hand here (the arithmetic in the comments), and against scipy where it has the same test."""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts" / "py"))

import paired  # noqa: E402

Z = 1.959963984540054


# ---------------------------------------------------------------- McNemar's exact test

@pytest.mark.parametrize("b,c,p", [
    (4, 1, 0.375),          # 5 discordant, the rarer kind once: 2 * (C(5,0) + C(5,1)) / 2^5 = 12/32
    (10, 0, 2 / 1024),      # 10 discordant, all one way: 2 * C(10,0) / 2^10
    (1, 6, 0.125),          # 2 * (1 + 7) / 2^7 = 16/128
    (3, 3, 1.0),            # 2 * (1 + 6 + 15 + 20) / 2^6 = 84/64, capped at 1
    (0, 0, 1.0),            # no discordant pair: no evidence either way
])
def test_mcnemar_exact_by_hand(b, c, p):
    assert paired.mcnemar_exact(b, c) == pytest.approx(p, abs=1e-12)


def test_mcnemar_exact_is_scipys_two_sided_binomial_test():
    from scipy.stats import binomtest
    for b, c in ((4, 1), (17, 8), (30, 41), (2, 0)):
        assert paired.mcnemar_exact(b, c) == pytest.approx(binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-9)


# ---------------------------------------------------------------- Wilson and Newcombe

def test_wilson_by_hand():
    # 9 of 24: p = 0.375, z^2 = 3.841459, 1 + z^2/n = 1.160061
    # centre = (0.375 + 3.841459/48) / 1.160061 = 0.392247
    # half = z * sqrt(0.375 * 0.625 / 24 + 3.841459 / 2304) / 1.160061 = 0.180653
    low, high = paired.wilson(9, 24)
    assert (low, high) == (pytest.approx(0.211594, abs=1e-6), pytest.approx(0.572900, abs=1e-6))
    from scipy.stats import binomtest
    ci = binomtest(9, 24).proportion_ci(method="wilson")
    assert (low, high) == (pytest.approx(ci.low, abs=1e-12), pytest.approx(ci.high, abs=1e-12))
    # None right of 12: [0, z^2 / (n + z^2)] = [0, 3.841459 / 15.841459]
    assert paired.wilson(0, 12) == (0.0, pytest.approx(0.242494, abs=1e-6))
    assert paired.wilson(0, 0) is None


def test_newcombe_paired_interval_by_hand():
    # a=5 both right, b=4 only the first, c=1 only the second, d=14 neither (n=24):
    # p1 = 9/24 = 0.375, Wilson [0.211594, 0.572900]; p2 = 6/24 = 0.25, Wilson [0.119994, 0.448994]
    # ad - bc = 70 - 4 = 66 > n/2, so phi = (66 - 12) / sqrt(9 * 15 * 6 * 18) = 54 / 120.7477 = 0.447214
    # lower = 0.125 - sqrt(0.163406^2 - 2 phi 0.163406 0.198994 + 0.198994^2) = 0.125 - sqrt(0.037216)
    #       = 0.125 - 0.192915
    # upper = 0.125 + sqrt(0.197900^2 - 2 phi 0.197900 0.130006 + 0.130006^2) = 0.125 + sqrt(0.033054)
    #       = 0.125 + 0.181808
    low, high = paired.newcombe_paired(5, 4, 1, 14)
    assert low == pytest.approx(-0.067915, abs=2e-6)
    assert high == pytest.approx(0.306808, abs=2e-6)
    # No discordant pair and nothing right: the interval is symmetric, Wilson's upper limit wide.
    assert paired.newcombe_paired(0, 0, 0, 12) == (pytest.approx(-0.242494, abs=1e-6), pytest.approx(0.242494, abs=1e-6))


def test_multiple_choice_compare_pairs_only_the_questions_both_answered():
    tuned = {("s", i, "A"): 1.0 for i in range(10)}
    base = {("s", i, "A"): 0.0 for i in range(10)}
    base[("s", 99, "A")] = 1.0  # answered by the base model only: left out
    result = paired.compare(tuned, base, binary=True)
    assert (result["n"], result["n_first"], result["n_second"]) == (10, 10, 11)
    assert (result["method"], result["first_only"], result["second_only"]) == ("mcnemar", 10, 0)
    assert result["p"] == pytest.approx(2 / 1024) and result["significant"] is True
    assert result["difference"] == 1.0
    assert result["first_ci"] == [pytest.approx(1 - 0.277533, abs=1e-6), 1.0]  # Wilson of 10/10
    assert result["second_ci"] == [0.0, pytest.approx(0.277533, abs=1e-6)]


def test_no_question_in_common_is_no_result():
    result = paired.compare({("s", 1, "A"): 1.0}, {("s", 2, "A"): 1.0}, binary=True)
    assert result["n"] == 0 and result["difference"] is None and result["significant"] is None


# ---------------------------------------------------------------- the paired bootstrap

@pytest.mark.parametrize("differences,interval,significant", [
    ([0.05, 0.05, 0.05], (0.05, 0.05), True),   # every resample's mean is 0.05
    ([0.0, 0.0, 0.0], (0.0, 0.0), False),       # no difference at all
    ([0.0, 1.0], (0.0, 1.0), False),            # means 0, 0.5, 1 with chances 1/4, 1/2, 1/4
    ([-0.1, 0.1, 0.1], (-0.1, 0.1), False),     # all -0.1 with chance 1/27 > 2.5 %, all 0.1 with 8/27
])
def test_bootstrap_intervals_by_hand(differences, interval, significant):
    first = {("s", i, ""): 0.5 + d for i, d in enumerate(differences)}
    second = {("s", i, ""): 0.5 for i in range(len(differences))}
    result = paired.compare(first, second)
    assert result["method"] == "bootstrap" and result["n"] == len(differences)
    assert result["ci"] == [pytest.approx(interval[0], abs=1e-9), pytest.approx(interval[1], abs=1e-9)]
    assert result["significant"] is significant and result["p"] is None


def test_bootstrap_is_seeded():
    first = {("s", i, ""): (i * 37 % 11) / 10 for i in range(40)}
    second = {("s", i, ""): (i * 17 % 7) / 10 for i in range(40)}
    assert paired.compare(first, second) == paired.compare(first, second)
    assert paired.compare(first, second)["ci"] != paired.compare(first, second, seed=1)["ci"]


def test_right_or_wrong_scores_of_a_non_choice_measure_use_the_bootstrap():
    first = {("s", i, ""): 1.0 for i in range(5)}
    second = {("s", i, ""): 0.0 for i in range(5)}
    assert paired.compare(first, second)["method"] == "bootstrap"


# ---------------------------------------------------------------- EvalScope's reviews

def write_review(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def review(index, target, value, main, status="success"):
    return {"index": index, "target": [target],
            "sample_score": {"score": {"value": value, "status": status, "main_score_name": main}}}


def test_reviews_are_read_by_subset_index_and_reference(tmp_path):
    work = tmp_path / "cmmlu"
    write_review(work / "reviews" / "m" / "cmmlu_professional_psychology.jsonl",
                 [review(0, "A", {"accuracy": 1.0}, "accuracy"), review(1, "B", {"accuracy": 0.0}, "accuracy"),
                  review(2, "C", {}, "accuracy", status="excluded")])
    write_review(work / "reviews" / "m" / "cmmlu_sociology.jsonl", [review(0, "D", {"accuracy": 1.0}, "accuracy")])
    samples = paired.read_samples(str(work), "m", "cmmlu")
    assert sorted(samples) == [("professional_psychology", 0, '["A"]'), ("professional_psychology", 1, '["B"]'),
                               ("sociology", 0, '["D"]')]
    assert paired.measure(samples, "score", "sociology") == {("sociology", 0, '["D"]'): 1.0}


def test_general_qa_metrics_get_lab_eval_labels_and_denormal_bleu_is_zero(tmp_path):
    work = tmp_path / "dialog"
    write_review(work / "reviews" / "m" / "general_qa_dialog.jsonl",
                 [review(0, "ref", {"Rouge-L-F": 0.25, "Rouge-L-R": 0.5, "bleu-4": 1.8e-309}, "Rouge-L-R")])
    (values,) = paired.read_samples(str(work), "m", "general_qa").values()
    assert values == {"rouge-l-f1": 0.25, "rouge-l-recall": 0.5, "bleu-4": 0.0, "score": 0.5}
