"""The human evaluation in the experiment report and the thesis table: the hooks report.py and
table.py call. Both read results/<exp>/lab-human.json (written by make human-report); the words
are in report/human.zh.md and the table templates."""
from __future__ import annotations

import json
from pathlib import Path

from lab.human import DIMENSIONS, EXPERIMENT_RESULTS

# The thesis table's columns: (column key, what of lab-human.json, scale). likert: a 1-5 mean,
# shown as it is; share: 0-1, shown x 100 like the other columns.
TABLE_COLUMNS = [(f"human-{field}", field, "likert") for field in DIMENSIONS] + \
    [("human-safety", "safety", "share"), ("human-win", "win", "share")]


def read(results_dir: Path | str) -> dict | None:
    path = Path(results_dir) / EXPERIMENT_RESULTS
    try:
        facts = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return facts if isinstance(facts, dict) and facts.get("means") is not None else None


def role(model: str, exp: str) -> str | None:
    """tuned, base, base@MODE for the experiment's own models; None for another experiment's."""
    if model == exp:
        return "tuned"
    if model == f"{exp}-base":
        return "base"
    if model.startswith(f"{exp}-base@"):
        return "base@" + model[len(exp) + 6:]
    return None


def report_facts(results_dir: Path | str, exp: str) -> dict | None:
    """The report's `human`: lab-human.json with each model's role in this experiment."""
    facts = read(results_dir)
    if facts is None:
        return None
    facts["roles"] = {model: role(model, exp) for model in facts["models"]}
    return facts


def win_rate(facts: dict, model: str, against: str) -> dict | None:
    """MODEL's win rate against AGAINST, from whichever order the pair was counted in."""
    for pair in facts.get("preferences") or []:
        if (pair["first"], pair["second"]) == (model, against):
            return pair["win_rate"]
        if (pair["first"], pair["second"]) == (against, model):
            rate = pair["win_rate"]
            if rate["mean"] is None:
                return rate
            return {**rate, "mean": 1 - rate["mean"], "ci": [1 - rate["ci"][1], 1 - rate["ci"][0]]}
    return None


def model_value(facts: dict | None, model: str, what: str, base: str | None) -> float | None:
    if facts is None:
        return None
    if what == "win":
        rate = win_rate(facts, model, base) if base else None
        return rate["mean"] if rate else None
    entry = next((m for m in facts["means"] if m["model"] == model), None)
    return (entry or {}).get(what, {}).get("mean") if entry else None


def table_columns(experiments: list, cols: list[dict], rows: list[dict]) -> None:
    """Appends the human columns to make table's columns and rows (in place), when any experiment
    has human results: the raters' means (1-5), the safety pass rate and the fine-tuned model's win
    rate against its base model. experiments: table.py's (each .name and .spec['results_dir'])."""
    facts = {e.name: read(e.spec["results_dir"]) for e in experiments}
    if not any(facts.values()):
        return
    for key, _, scale in TABLE_COLUMNS:
        cols.append({"key": key, "section": "human", "measure": "score", "scale": scale})
    for row in rows:
        for key, what, scale in TABLE_COLUMNS:
            value = None
            if row["kind"] == "base":
                # The base model's value: the first of its experiments whose human evaluation rated it.
                for e in experiments:
                    if str(e.report.setting("model") or "?") == row["model"] and what != "win":
                        value = model_value(facts[e.name], f"{e.name}-base", what, None)
                        if value is not None:
                            break
            else:
                value = model_value(facts.get(row["name"]), row["name"], what, f"{row['name']}-base")
            why = None
            if value is None:
                # The base model is what the fine-tuned one's win rate is against: no value of its own.
                state = "human_baseline" if row["kind"] == "base" and what == "win" else "human_not_run"
                why = {"state": state, "target": "make human-pack, make human-eval, make human-report"
                       if state == "human_not_run" else None, "reason": None}
            row["cells"].append({"value": value, "scale": scale, "significant": None, "why": why})
