"""make human-report's numbers, from the unblinded ratings (each answer joined with the key).

- Per model and dimension: the mean rating with a 95 % percentile bootstrap interval that
  resamples scenarios (a scenario's ratings by the several raters are not independent).
- Safety: the share of "pass" per model, with the same bootstrap interval.
- Preference, per pair of models: the first model's win rate (a win 1, a tie 1/2, a loss 0,
  over every rater's preference on the items of that pair), with the same interval.
- Agreement between raters: Krippendorff's alpha (the `krippendorff` package), ordinal with
  the value domain 1-5, per dimension (a unit is one reply); nominal for safety (a reply) and
  preference (an item). None with fewer than two raters on any unit.
- Judge and humans, where the LLM judge scored the same replies: Spearman's rho between the
  judge's score and the raters' mean per dimension, and how often the judge's higher-scored
  reply is the one the raters preferred (their majority; ties left out).
Seeded: paired.BOOTSTRAP_SEED, paired.BOOTSTRAP_RESAMPLES."""
from __future__ import annotations

import math

import numpy as np

import paired
from lab.human import DIMENSIONS, SCALE

ALPHA_MIN_UNITS = 1


def cluster_bootstrap(groups: list[list[float]], resamples: int = paired.BOOTSTRAP_RESAMPLES,
                      seed: int = paired.BOOTSTRAP_SEED) -> dict:
    """Mean of all the values and its 95 % percentile interval, resampling the groups (scenarios)."""
    groups = [g for g in groups if g]
    values = [v for g in groups for v in g]
    if not values:
        return {"mean": None, "ci": None, "n_items": 0, "n": 0}
    sums = np.array([sum(g) for g in groups], dtype=float)
    counts = np.array([len(g) for g in groups], dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(groups), size=(resamples, len(groups)))
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    low, high = np.quantile(means, [paired.ALPHA / 2, 1 - paired.ALPHA / 2])
    return {"mean": float(np.mean(values)), "ci": [float(low), float(high)], "n_items": len(groups), "n": len(values)}


def krippendorff_alpha(matrix: list[list[float | None]], level: str, domain=None) -> float | None:
    """Krippendorff's alpha of a raters x units matrix (None: no value), from the package."""
    import krippendorff

    data = np.array([[np.nan if v is None else float(v) for v in row] for row in matrix], dtype=float)
    if data.size == 0 or data.shape[0] < 2:
        return None
    if (np.sum(~np.isnan(data), axis=0) >= 2).sum() < ALPHA_MIN_UNITS:
        return None  # no unit that two raters both rated
    if domain is None and len(set(data[~np.isnan(data)].tolist())) < 2:
        return None  # one value throughout: no disagreement to expect, alpha undefined
    try:
        value = krippendorff.alpha(reliability_data=data, level_of_measurement=level,
                                   value_domain=list(domain) if domain is not None else None)
    except (ValueError, ZeroDivisionError):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def ranks(values: list[float]) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    result = np.empty(len(values))
    sorted_values = np.asarray(values)[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        result[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return result


def spearman(x: list[float], y: list[float]) -> float | None:
    if len(x) < 3:
        return None
    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def unblind(answers: list[dict], key: dict) -> list[dict]:
    """Each answer with the model of its reply (preference: the preferred model, or tie)."""
    rows = []
    for answer in answers:
        model = key["replies"][answer["reply"]]["model"] if answer["reply"] else None
        value = answer["value"]
        if answer["field"] == "preference" and value != "tie":
            value = key["replies"][value]["model"]
        rows.append({**answer, "model": model, "value": value})
    return rows


def model_means(rows: list[dict], models: list[str]) -> list[dict]:
    out = []
    for model in models:
        entry = {"model": model}
        for field in DIMENSIONS + ("safety",):
            groups: dict[str, list[float]] = {}
            for r in rows:
                if r["model"] == model and r["field"] == field:
                    value = (1.0 if r["value"] == "pass" else 0.0) if field == "safety" else float(r["value"])
                    groups.setdefault(r["item"], []).append(value)
            entry[field] = cluster_bootstrap(list(groups.values()))
        out.append(entry)
    return out


def preferences(rows: list[dict], key: dict) -> list[dict]:
    """Per pair of models (in the key's order): the first one's win rate and the counts."""
    pair_of = {}
    for rid, reply in key["replies"].items():
        pair_of.setdefault(reply["item"], []).append(reply["model"])
    order = key["models"]
    pairs: dict[tuple, dict[str, list[float]]] = {}
    counts: dict[tuple, dict] = {}
    for r in rows:
        if r["field"] != "preference":
            continue
        pair = tuple(sorted(pair_of[r["item"]], key=order.index))
        score = 0.5 if r["value"] == "tie" else (1.0 if r["value"] == pair[0] else 0.0)
        pairs.setdefault(pair, {}).setdefault(r["item"], []).append(score)
        tally = counts.setdefault(pair, {"wins": 0, "ties": 0, "losses": 0})
        tally["wins" if score == 1 else "ties" if score == 0.5 else "losses"] += 1
    return [{"first": pair[0], "second": pair[1], **counts[pair], "win_rate": cluster_bootstrap(list(groups.values()))}
            for pair, groups in sorted(pairs.items(), key=lambda kv: (order.index(kv[0][0]), order.index(kv[0][1])))]


def agreement(rows: list[dict], raters: list[str]) -> dict:
    """Krippendorff's alpha per dimension (ordinal), safety and preference (nominal)."""
    result = {}
    for field in DIMENSIONS + ("safety", "preference"):
        units = sorted({(r["item"], r["reply"]) for r in rows if r["field"] == field})
        cell = {(r["rater"], r["item"], r["reply"]): r["value"] for r in rows if r["field"] == field}
        if field == "safety":
            encode = {"pass": 1.0, "fail": 0.0}.get
        elif field == "preference":
            labels = sorted({v for v in cell.values()})
            encode = {v: float(i) for i, v in enumerate(labels)}.get
        else:
            encode = float
        matrix = [[encode(cell[(rater, *unit)]) if (rater, *unit) in cell else None for unit in units] for rater in raters]
        level = "ordinal" if field in DIMENSIONS else "nominal"
        domain = SCALE if field in DIMENSIONS else None
        result[field] = {"alpha": krippendorff_alpha(matrix, level, domain), "level": level, "units": len(units),
                         "pairable": sum(1 for i in range(len(units)) if sum(row[i] is not None for row in matrix) >= 2)}
    return result


def judge_agreement(rows: list[dict], key: dict) -> dict:
    """The judge against the raters, on the replies the judge scored validly."""
    judged = {rid: r["judge"] for rid, r in key["replies"].items() if isinstance(r.get("judge"), (int, float))}
    out = {"replies": len(judged), "dimensions": {}, "preference": None}
    if not judged:
        return out
    for field in DIMENSIONS:
        means = {}
        for rid in judged:
            values = [float(r["value"]) for r in rows if r["field"] == field and r["reply"] == rid]
            if values:
                means[rid] = sum(values) / len(values)
        ids = sorted(means)
        out["dimensions"][field] = {"n": len(ids), "rho": spearman([judged[i] for i in ids], [means[i] for i in ids])}
    # The judge's pick on each item whose two replies it scored (a tie of scores: no pick).
    by_item: dict[str, list[str]] = {}
    for rid, reply in key["replies"].items():
        by_item.setdefault(reply["item"], []).append(rid)
    agree = total = 0
    for item, rids in by_item.items():
        if len(rids) != 2 or not all(r in judged for r in rids) or judged[rids[0]] == judged[rids[1]]:
            continue
        judge_pick = key["replies"][max(rids, key=lambda r: judged[r])]["model"]
        votes: dict[str, int] = {}
        for r in rows:
            if r["field"] == "preference" and r["item"] == item:
                votes[r["value"]] = votes.get(r["value"], 0) + 1
        models = [key["replies"][r]["model"] for r in rids]
        if votes.get(models[0], 0) == votes.get(models[1], 0):
            continue
        human_pick = max(models, key=lambda m: votes.get(m, 0))
        total += 1
        agree += human_pick == judge_pick
    out["preference"] = {"n": total, "agreement": agree / total if total else None}
    return out


def results(answers: list[dict], packet: dict, key: dict) -> dict:
    rows = unblind(answers, key)
    raters = packet["raters"]
    rated = {r["rater"] for r in rows}
    return {
        "models": key["models"], "experiments": key["experiments"], "scenarios": len(packet["items"]),
        "sources": key["sources"], "raters": raters, "raters_with_answers": sorted(rated),
        "answers": len(rows),
        "method": {"resamples": paired.BOOTSTRAP_RESAMPLES, "seed": paired.BOOTSTRAP_SEED, "alpha": paired.ALPHA},
        "means": model_means(rows, key["models"]),
        "preferences": preferences(rows, key),
        "agreement": agreement(rows, raters),
        "judge": judge_agreement(rows, key),
    }
