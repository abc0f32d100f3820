"""The report's facts of the counselling benchmarks of issue 21 (scripts/py/report.py calls
`facts` and `contamination_flags`; the words are in report/template.zh.md):
  - each benchmark scored as EmoLLM scores its replies (suite key scorer: emollm): both models'
    BLEU-1..4 and ROUGE-1/2/L F x100, in the column order of EmoLLM's published table;
  - each benchmark judged on CPsyCoun's four dimensions (scorer: cpsycoune): both models' means
    per dimension over the dialogues, in their own ranges;
  - each external test set's overlap with the training set (lab-eval.json `contamination`,
    scripts/py/contamination.py), one line per benchmark, flagged above its limit.
"""
from __future__ import annotations

from pathlib import Path

import eval_suite

EMOLLM_COLUMNS = ("rouge-1-f1", "rouge-2-f1", "rouge-l-f1", "bleu-1", "bleu-2", "bleu-3", "bleu-4")


def scorers(eval_config: Path | None) -> dict:
    """{benchmark: scorer} of the experiment's benchmarks that have one."""
    if not eval_config or not Path(eval_config).is_file():
        return {}
    config = eval_suite.resolve(Path(eval_config))
    return {key: (config.get(key) or {}).get("scorer") for key in config.get("benchmarks") or []
            if (config.get(key) or {}).get("scorer")}


def scored_rows(benchmarks: list[dict], eval_config: Path | None, sides: list[dict], scorer: str,
                columns: tuple[str, ...], scale: float) -> list[dict]:
    """Per benchmark rescored by SCORER, per model (sides: {side, served}): its state and the
    metrics of COLUMNS times SCALE."""
    keys = {key for key, name in scorers(eval_config).items() if name == scorer}
    rows = []
    for bench in benchmarks:
        if bench["key"] not in keys:
            continue
        models = []
        for side in sides:
            result = bench[side["side"]]
            values = {m: result["metrics"][m] * scale for m in columns
                      if isinstance((result.get("metrics") or {}).get(m), (int, float))}
            models.append({**side, "result": result, "values": values})
        rows.append({"key": bench["key"], "models": models})
    return rows


def emollm_rows(benchmarks: list[dict], eval_config: Path | None, sides: list[dict]) -> list[dict]:
    """EmoLLM-scored benchmarks: BLEU/ROUGE x100 (EmoLLM's unit)."""
    return scored_rows(benchmarks, eval_config, sides, "emollm", EMOLLM_COLUMNS, 100)


CPSYCOUNE_COLUMNS = ("comprehensiveness", "professionalism", "authenticity", "safety")


def cpsycoune_rows(benchmarks: list[dict], eval_config: Path | None, sides: list[dict]) -> list[dict]:
    """Benchmarks judged on CPsyCoun's four dimensions, in their own ranges (as CPsyCoun and
    EmoLLM report them)."""
    return scored_rows(benchmarks, eval_config, sides, "cpsycoune", CPSYCOUNE_COLUMNS, 1)


def contamination_of(bench: dict, side_names: list[str]) -> dict | None:
    """The overlap record of a benchmark's test set (the same set for every model: the first found)."""
    return next((bench[side]["contamination"] for side in side_names if bench[side].get("contamination")), None)


def contamination_rows(benchmarks: list[dict], side_names: list[str]) -> list[dict]:
    rows = []
    for bench in benchmarks:
        record = contamination_of(bench, side_names)
        if record:
            rows.append({"key": bench["key"], **record})
    return rows


def contamination_flags(benchmarks: list[dict], side_names: list[str]) -> list[dict]:
    """The summary's flags: a benchmark whose test set overlaps the training set above its limit."""
    return [{"kind": "contamination", "benchmark": row["key"], "detail": row}
            for row in contamination_rows(benchmarks, side_names) if row.get("flagged")]


def facts(benchmarks: list[dict], eval_config: Path | None, sides: list[dict]) -> dict:
    names = [side["side"] for side in sides]
    emollm = emollm_rows(benchmarks, eval_config, sides)
    return {"emollm": emollm, "emollm_keys": [row["key"] for row in emollm], "emollm_columns": list(EMOLLM_COLUMNS),
            "cpsycoune": cpsycoune_rows(benchmarks, eval_config, sides), "cpsycoune_columns": list(CPSYCOUNE_COLUMNS),
            "contamination": contamination_rows(benchmarks, names)}
