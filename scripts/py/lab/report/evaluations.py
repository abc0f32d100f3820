"""The evaluation facts of a report: each benchmark of the experiment's eval.yaml, completed
from its suite entry, on each served model (the fine-tuned one, the base, the base in extra
answer modes), the paired tests base vs fine-tuned and the summary's headline rows. Used by
the report (lab.report.facts) and by make compare and make table, which line experiments up."""
from __future__ import annotations

from pathlib import Path

import eval_suite
import paired
import runparse as rp
from lab.files import load_yaml

SIDES = (("tuned", ""), ("base", "-base"))  # the fine-tuned model is served as <exp>, the base as <exp>-base
BASE_TARGET = "make eval-base"
STORE_NAME, STORE_RECORD = ".store", "lab-store.json"  # the store of shared evaluations (scripts/lib/store.sh)
# The measures tested base vs fine-tuned on the per-question scores, per report section, and
# those of the summary's headline table (perf: output tok/s at the highest concurrency).
CHOICE_SECTIONS = ("knowledge", "psych", "general", "safety")  # each question right or wrong (GSM8K, SafetyBench too)
DIALOG_METRICS = ("bleu-1", "bleu-4", "rouge-1-f1", "rouge-l-f1", "rouge-l-recall")
PAIRED_MEASURES = {"knowledge": ("score",), "psych": ("score",), "general": ("score",), "safety": ("score",),
                   "judge": ("score",), "dialog": DIALOG_METRICS}
HEADLINE_MEASURES = {"knowledge": ("score",), "psych": ("score",), "judge": ("score",),
                     "dialog": ("rouge-l-f1", "bleu-4"), "perf": ("perf",), "arena": ()}  # the arena: its own line
ARENA_TARGET = "make arena"  # the arena compares both models: one result, made by its own step


def section_of(key: str, section: dict) -> str:
    """Which part of the report a benchmark belongs to: its suite entry's `section`
    (configs/benchmarks.yaml); for a benchmark outside the suite (an older eval.yaml):
    perf (serving speed), judge (an LLM judge's scores), dialog (BLEU/ROUGE of replies),
    psych (group psych, or a psychology subset such as cmmlu-psych), knowledge (the rest)."""
    if section.get("section"):
        return section["section"]
    if section.get("kind") == "perf":
        return "perf"
    if section.get("judge"):
        return "judge"
    if section.get("dataset") == "general_qa":
        return "dialog"
    if section.get("group") == "psych" or "psych" in key:
        return "psych"
    return "knowledge"


def read_benchmarks(eval_config: Path | None) -> list[dict]:
    """The benchmarks of the experiment's eval.yaml, in its order, each completed from its
    entry of the suite (configs/benchmarks.yaml): key, label, dataset, group, section, metric,
    licence, url, category_rows, aggregate."""
    if not eval_config or not eval_config.is_file():
        return []
    config = eval_suite.resolve(eval_config)  # each benchmark's settings, its defaults and group included
    benchmarks = []
    for key in config.get("benchmarks") or []:
        section = config[key]
        group = section["group"]
        benchmarks.append({"key": key, "label": section.get("label") or key, "dataset": section.get("dataset"),
                           "group": group, "section": section_of(key, section),
                           "heldout": section.get("source") == "heldout",
                           "target": ARENA_TARGET if section.get("kind") == "arena" else f"make eval-{group}",
                           "metric_name": section.get("metric"), "licence": section.get("licence"),
                           "url": section.get("url"), "category_rows": section.get("category_rows") or {}})
    return benchmarks


def arena_sides(result: dict, sides: list[str], current: dict) -> dict:
    """The arena's result on every side: the fine-tuned model's folder holds it (the fine-tuned
    model against the base); the other sides have none of their own (state "arena"). A result
    judged from replies that are no longer the evaluations' (CURRENT: each pair's inputs digests
    now, {pair: {tuned, base}}) is shown as made from another model's replies."""
    pairs = (result.get("extra") or {}).get("pairs") or []
    if result["state"] == "done" and any(p.get("replies_digests") != current.get(p.get("name")) for p in pairs):
        result = {**result, "state": "other_model", "score": None, "metrics": {}, "extra": None}
    return {side: result if index == 0 else {**result, "state": "arena", "score": None, "command": None, "judge": None}
            for index, side in enumerate(sides)}


def benchmark_labels(eval_config: Path | None) -> dict:
    """Every suite benchmark's report label by name (the templates' `labels`), and each
    category row's (`<benchmark>:<category>`, e.g. SafetyBench's Mental Health)."""
    suite = eval_suite.load_suite(eval_suite.suite_path(eval_config))
    labels = eval_suite.labels(suite)
    for name, entry in suite.items():
        for category, label in (entry.get("category_rows") or {}).items():
            labels[f"{name}:{category}"] = label
    return labels


def category_row(entry: dict, category: str, sides: list[str]) -> dict:
    """A category of a benchmark's report as a row of its own: each side's result with the
    category's score and count (not run, or no such category: the benchmark's state)."""
    # Its paired test would need each question's category: none rather than the whole benchmark's.
    row = {**entry, "key": f"{entry['key']}:{category}", "category_rows": {}, "subjects": [], "stats": {}}
    for side in sides:
        result = entry[side]
        found = next((c for c in result.get("categories") or [] if c.get("name") == category), None)
        if result["state"] == "done":
            result = {**result, "score": found["score"] if found else None, "num": found["num"] if found else None,
                      "subjects": [], "replies": None,
                      "state": "done" if found else "rejected",
                      "reason": None if found else f"no category {category} in its result"}
        row[side] = result
    scores = (row["tuned"]["score"], row["base"]["score"])
    row["difference"] = scores[0] - scores[1] if None not in scores else None
    return row


def extra_base_sides(eval_config: Path | None) -> list[dict]:
    """The base model in each answer mode of eval.yaml's base_extra_modes, a side of its own:
    {side: base@MODE, suffix: -base@MODE, mode} (its results in results/<exp>/<exp>-base@MODE)."""
    if not eval_config or not eval_config.is_file():
        return []
    modes = (load_yaml(eval_config.read_text(encoding="utf-8")) or {}).get("base_extra_modes") or []
    return [{"side": f"base@{mode}", "suffix": f"-base@{mode}", "mode": mode} for mode in modes]


def compare_subjects(tuned: dict, base: dict) -> list[dict]:
    names = []
    for result in (tuned, base):
        for subject in result.get("subjects") or []:
            if subject["name"] not in names:
                names.append(subject["name"])
    by_side = {side: {s["name"]: s for s in result.get("subjects") or []}
               for side, result in (("tuned", tuned), ("base", base))}
    rows = []
    for name in names:
        t, b = by_side["tuned"].get(name), by_side["base"].get(name)
        rows.append({"name": name, "num": (t or b or {}).get("num"),
                     "tuned": t["score"] if t else None, "base": b["score"] if b else None,
                     "difference": t["score"] - b["score"] if t and b and None not in (t["score"], b["score"]) else None})
    return rows


def measure_cell(result: dict | None, measure: str) -> dict:
    """One model's value of one measure of a benchmark: {state, value}; value None unless it
    ran and gave one. measure: "score" (the primary score), "perf" (output tok/s at the
    highest concurrency, with that concurrency) or a metric label (rouge-l-f1, bleu-4, ...)."""
    if result is None:
        return {"state": "absent", "value": None}
    if result["state"] != "done":
        return {"state": result["state"], "value": None}
    if measure == "perf":
        levels = [level for level in result.get("levels") or [] if level.get("output_tok_s") is not None]
        top = max(levels, key=lambda level: level["parallel"]) if levels else None
        return {"state": "done" if top else "no_value", "value": top["output_tok_s"] if top else None,
                "parallel": top["parallel"] if top else None}
    value = rp.to_number(result.get("score") if measure == "score" else (result.get("metrics") or {}).get(measure))
    return {"state": "done" if value is not None else "no_value", "value": value}


def recorded_contamination(result: dict):
    """The overlap with the training set a checked result records beside its score (an external
    test set's: scripts/py/contamination.py), else None."""
    if result["state"] != "done" or not result.get("path"):
        return None
    record, _ = rp.read_json_object(Path(result["path"]))
    return (record or {}).get("contamination")


def question_scores(result: dict, served: str, dataset: str | None) -> dict:
    """The per-question scores of a finished evaluation (its reviews), else none."""
    if result["state"] != "done" or not result.get("path"):
        return {}
    return paired.read_samples(str(Path(result["path"]).parent), served, dataset or "")


def paired_stats(entry: dict, tuned: dict, base: dict) -> dict:
    """Fine-tuned minus base on the questions both answered, per measure of the benchmark's
    section, and per subject (each subject row gets its "stats"). None where a side has no result."""
    done = entry["tuned"]["state"] == "done" and entry["base"]["state"] == "done"
    binary = entry["section"] in CHOICE_SECTIONS
    for subject in entry["subjects"]:
        subject["stats"] = paired.compare(paired.measure(tuned, "score", subject["name"]),
                                          paired.measure(base, "score", subject["name"]), binary) if done else None
    return {m: paired.compare(paired.measure(tuned, m), paired.measure(base, m), binary and m == "score") if done else None
            for m in PAIRED_MEASURES.get(entry["section"], ())}


def headline_rows(benchmarks: list[dict]) -> list[dict]:
    """The summary's table: each benchmark's headline measures, both models' values and the test."""
    rows = []
    for bench in benchmarks:
        for measure in HEADLINE_MEASURES.get(bench["section"], ("score",)):
            base, tuned = measure_cell(bench["base"], measure), measure_cell(bench["tuned"], measure)
            difference = tuned["value"] - base["value"] if None not in (tuned["value"], base["value"]) else None
            rows.append({"key": bench["key"], "section": bench["section"], "measure": measure, "target": bench["target"],
                         "base": {**bench["base"], "cell": base}, "tuned": {**bench["tuned"], "cell": tuned},
                         "difference": difference, "stats": bench["stats"].get(measure)})
    return rows


def replies_counts(bench: dict, sides, kind: str) -> list[dict]:
    """Per model, how many of a benchmark's replies were cut off at max_tokens (kind cut_off,
    over_limit when more than the benchmark allows: the result names a fix) or gave no answer."""
    counts = []
    for side, _ in sides:
        replies = bench[side].get("replies") or {}
        if rp.to_number(replies.get(kind)):
            counts.append({"side": side, "count": replies[kind], "asked": replies.get("asked"),
                           "over_limit": kind == "cut_off" and bool(replies.get("fix"))})
    return counts

