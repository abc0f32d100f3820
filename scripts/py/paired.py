"""Differences between two models on the same questions, with their uncertainty, from
EvalScope's per-question scores (results/<exp>/<served>/<bench>/reviews/<served>/*.jsonl).

A question is one review row, keyed by its file (the subset), its index and its reference
answer, so that two runs pair on the questions both answered and only those. A row counts
when EvalScope scored it (status success); an excluded or failed row is left out.

- Multiple choice (right or wrong, each question 0 or 1): McNemar's exact test on the discordant
  pairs (a two-sided binomial test with p = 1/2), a Wilson interval on each accuracy and
  Newcombe's interval for the paired difference (1998, method 10: the Wilson limits
  combined through the correlation phi, continuity-corrected).
- Other scores (BLEU, ROUGE, a judge's score): a paired percentile bootstrap of the mean
  difference, seeded (BOOTSTRAP_SEED, BOOTSTRAP_RESAMPLES), significant when the 95 %
  interval excludes 0.

Each result says how many questions it rests on (n). Plain exact arithmetic and numpy."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import runparse as rp

Z95 = 1.959963984540054  # the normal quantile of 0.975
ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 20261205
# EvalScope's per-question names of general_qa's metrics, as lab-eval.json labels them.
ROUGE_PARTS = {"r": "recall", "p": "precision", "f": "f1"}
# Per-question scores of a benchmark scored by its own metric instead of EvalScope's (lab/counselling.py).
SCORES_FILE = "lab-scores.jsonl"


# ---------------------------------------------------------------- the tests

def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson's score interval for k successes in n trials."""
    if n <= 0:
        return None
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # 0 and 1 exactly at the ends (the arithmetic leaves 1e-17 there)
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b and c are the two kinds of discordant pairs."""
    n = b + c
    tail, term = 0, 1  # sum of C(n, i) for i <= min(b, c), in exact integers, each term from the last
    for i in range(min(b, c) + 1):
        tail += term
        term = term * (n - i) // (i + 1)
    return min(1.0, 2 * tail / 2 ** n)  # int / int: correctly rounded, however large


def newcombe_paired(a: int, b: int, c: int, d: int, z: float = Z95) -> tuple[float, float]:
    """Newcombe's interval for p1 - p2 of paired proportions: a both right, b only the
    first right, c only the second, d neither."""
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson(a + b, n, z)
    l2, u2 = wilson(a + c, n, z)
    product = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    corrected = max(cross - n / 2, 0) if cross > 0 else cross
    phi = corrected / math.sqrt(product) if product else 0.0
    lower = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    upper = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return p1 - p2 - lower, p1 - p2 + upper


def paired_bootstrap(differences: list[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                     level: float = 1 - ALPHA) -> tuple[float, float]:
    """The percentile interval of the mean of the paired differences, resampling questions."""
    import numpy as np

    values = np.asarray(differences, dtype=float)
    n = len(values)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)  # about 16 MB of indices at a time
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        means[start:start + size] = values[rng.integers(0, n, size=(size, n))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(low), float(high)


def compare(first: dict, second: dict, binary: bool = False, seed: int = BOOTSTRAP_SEED) -> dict:
    """first - second on the questions both scored ({key: score} each). binary: the scores are
    right/wrong (multiple choice): McNemar and Newcombe when they are all 0 or 1, as they
    should be; otherwise, and for every other measure, the paired bootstrap."""
    keys = sorted(set(first) & set(second), key=repr)
    result = {"n": len(keys), "n_first": len(first), "n_second": len(second), "method": None,
              "first": None, "second": None, "difference": None, "ci": None, "p": None, "significant": None,
              "first_ci": None, "second_ci": None, "first_only": None, "second_only": None}
    if not keys:
        return result
    x, y = [first[k] for k in keys], [second[k] for k in keys]
    n = len(keys)
    result.update(first=sum(x) / n, second=sum(y) / n, difference=(sum(x) - sum(y)) / n)
    if binary and all(v in (0, 1) for v in x + y):
        a = sum(1 for i, j in zip(x, y) if i and j)
        b = sum(1 for i, j in zip(x, y) if i and not j)
        c = sum(1 for i, j in zip(x, y) if j and not i)
        p = mcnemar_exact(b, c)
        result.update(method="mcnemar", first_only=b, second_only=c, p=p, significant=p < ALPHA,
                      ci=list(newcombe_paired(a, b, c, n - a - b - c)),
                      first_ci=list(wilson(a + b, n)), second_ci=list(wilson(a + c, n)))
    else:
        low, high = paired_bootstrap([i - j for i, j in zip(x, y)], seed=seed)
        result.update(method="bootstrap", ci=[low, high], significant=not low <= 0 <= high)
    return result


# ---------------------------------------------------------------- EvalScope's per-question scores

def metric_label(name: str) -> str:
    """EvalScope's per-question metric name as lab-eval.json labels it: Rouge-L-F -> rouge-l-f1."""
    parts = str(name).lower().split("-")
    if parts[0] == "rouge" and len(parts) == 3 and parts[2] in ROUGE_PARTS:
        parts[2] = ROUGE_PARTS[parts[2]]
    return "-".join(parts)


def sample_scores(row: dict) -> dict | None:
    """{"score": the main score, label: value...} of one scored review row, else None."""
    score = ((row.get("sample_score") or {}).get("score")) or {}
    if score.get("status") not in (None, "success"):
        return None
    # Rounded to 12 decimals: EvalScope's smoothed BLEU of a reply without a matching 4-gram is
    # 1e-309, not a score to test a difference on.
    values = {metric_label(k): round(float(v), 12) for k, v in (score.get("value") or {}).items()
              if isinstance(v, (int, float)) and not isinstance(v, bool)}
    main = score.get("main_score_name")
    if main is not None and metric_label(main) in values:
        values["score"] = values[metric_label(main)]
    elif len(values) == 1:
        values["score"] = next(iter(values.values()))
    return values or None


@functools.lru_cache(maxsize=64)
def read_samples(work_dir: str, served: str, dataset: str = "") -> dict:
    """{(subset, index, reference): {measure: value}} of an evaluation's scored questions.
    The subset is the review file's name without the dataset's prefix (reviews/<served>/
    <dataset>_<subset>.jsonl), as lab-eval.json names it. A benchmark scored by its own metric
    (EmoLLM's) has them in SCORES_FILE instead, keyed the same way."""
    samples = {}
    rescored = Path(work_dir) / SCORES_FILE
    if rescored.is_file():
        # Replies re-scored by the benchmark's own metric (EmoLLM's, scripts/py/lab/counselling.py).
        rows, _ = rp.read_jsonl(rescored)
        for row in rows:
            if isinstance(row.get("index"), int) and isinstance(row.get("values"), dict):
                samples[(row.get("subset"), row["index"], json.dumps(row.get("target"), ensure_ascii=False))] = row["values"]
        return samples
    prefix = f"{dataset}_" if dataset else ""
    for path in sorted((Path(work_dir) / "reviews" / served).glob("*.jsonl")):
        subset = path.stem[len(prefix):] if prefix and path.stem.startswith(prefix) else path.stem
        rows, _ = rp.read_jsonl(path)  # a cut-off last line is skipped, as the report's other readers do
        for row in rows:
            values = sample_scores(row)
            if values is None or not isinstance(row.get("index"), int):
                continue
            samples[(subset, row["index"], json.dumps(row.get("target"), ensure_ascii=False))] = values
    return samples


def measure(samples: dict, name: str, subset: str | None = None) -> dict:
    """{key: value} of one measure ("score", or a label such as rouge-l-f1), of one subset or all."""
    return {key: values[name] for key, values in samples.items()
            if name in values and (subset is None or key[0] == subset)}
