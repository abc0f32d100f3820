"""Writes the thesis's results table, experiments x models x benchmarks, as
report/table-<a>-<b>-....csv, .tex (booktabs, the best value of each column in bold) and .md.
Called by scripts/table.sh (make table EXPS="a b c"), which gathers each experiment's paths
the way scripts/report.sh does.

Rows: per base model (in the order the experiments name them), the base model once, then each
experiment's fine-tuned model. A base model's value of a benchmark is that of the first of
its experiments whose base evaluation has it. Columns: the lab's table's order, GSM8K,
C-Eval, CMMLU (always: the lab's table has them), then those of the experiments' eval.yaml:
the psychology suite, the counselling measures (ROUGE-L F1, BLEU-4, the judges' scores);
serving speed is left out. Values come from checked results only (lab-eval.json, through
lab.report's Report): a cell that did not run, was rejected or gave no value is
empty, with a footnote saying why, never 0. A fine-tuned value whose difference to its base
model is significant in the report's paired test (scripts/py/paired.py) is marked.

The words are in the Jinja2 templates report/table.zh.md and report/table.zh.tex (with
the report's filters, lab/report/render.py, and macros.zh.md); the CSV holds numbers and identifiers only.
Exit status: 0 with the three files; 2 when a run's file is not JSON or a template is broken.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402
import paired  # noqa: E402
import runparse as rp  # noqa: E402
from lab import human_facts  # noqa: E402
from lab.files import write_atomic  # noqa: E402
from lab.report.evaluations import BASE_TARGET, CHOICE_SECTIONS, measure_cell, question_scores  # noqa: E402
from lab.report.render import REPORT_TEMPLATES, render_or_exit  # noqa: E402

# (benchmark, section, measure) in the lab's table's order; a benchmark of eval.yaml not listed
# here goes after the last listed one of its section.
LAB_COLUMNS = [("gsm8k", "knowledge", "score"), ("ceval", "knowledge", "score"), ("cmmlu", "knowledge", "score"),
               ("cmmlu-psych", "psych", "score"), ("mmlu-psych", "psych", "score"), ("mmlu-pro-psych", "psych", "score"),
               ("mmlu-redux-psych", "psych", "score"), ("supergpqa-psych", "psych", "score"),
               ("dialog", "dialog", "rouge-l-f1"), ("dialog", "dialog", "bleu-4"),
               ("dialog-judge", "judge", "score"), ("crisis-judge", "judge", "score")]
ALWAYS = ("gsm8k", "ceval", "cmmlu")  # the lab's table has them, run or not
# Else the primary score; perf: not a column, nor the arena (two models compared, not one's score:
# its win / tie / loss are in each report and make compare).
MEASURES = {"dialog": ("rouge-l-f1", "bleu-4"), "perf": (), "arena": ()}
TEMPLATES = ("table.zh.md", "table.zh.tex")
SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")  # a footnote's number in the Markdown table


def column_rank(col: dict) -> float:
    for index, (key, _, measure) in enumerate(LAB_COLUMNS):
        if (key, measure) == (col["key"], col["measure"]):
            return index
    same = [index for index, (_, section, _) in enumerate(LAB_COLUMNS) if section == col["section"]]
    return (max(same) if same else len(LAB_COLUMNS)) + 0.5


def columns(experiments: list) -> list[dict]:
    """The table's columns: the lab's fixed ones and every benchmark measure the experiments configure."""
    found = {key: section for key, section, _ in LAB_COLUMNS if key in ALWAYS}
    for e in experiments:
        for bench in e.report.benchmarks:
            found.setdefault(bench["key"], bench["section"])
    cols = [{"key": key, "section": section, "measure": measure}
            for key, section in found.items() for measure in MEASURES.get(section, ("score",))]
    return sorted(cols, key=column_rank)


def empty(state: str, target: str | None = None, reason: str | None = None) -> dict:
    """A cell without a value, and why (one footnote per distinct why): the make target for what
    can be run or resumed, the reason of a rejection; a finished run without a value is no_value."""
    state = "no_value" if state == "done" else state
    why = {"state": state, "target": target if state in ("not_run", "interrupted", "other_model") else None,
           "reason": reason if state == "rejected" else None}
    return {"value": None, "why": why, "significant": None}


def checked_value(result: dict, measure: str) -> tuple[float | None, str]:
    """A result's value of a measure and its state; a placeholder judge's score (the served model
    judging itself, to exercise the path) is no value for a thesis."""
    if result["state"] == "done" and (result.get("judge") or {}).get("placeholder"):
        return None, "placeholder"
    return measure_cell(result, measure)["value"], result["state"]


def base_cell(exps: list, col: dict) -> dict:
    """The base model's value: the first of its experiments whose base evaluation has it."""
    first = None
    for e in exps:
        bench = e.benchmark(col["key"])
        if bench is None:
            continue
        value, _ = checked_value(bench["base"], col["measure"])
        if value is not None:
            return {"value": value, "why": None, "significant": None, "source": e.name,
                    "scores": question_scores(bench["base"], f"{e.name}-base", bench["dataset"])}
        first = first or (e, bench)
    if first is None:
        return empty("absent")
    e, bench = first
    return empty(checked_value(bench["base"], col["measure"])[1], f"{BASE_TARGET} EXP={e.name}",
                 bench["base"].get("reason"))


def tuned_cell(e, col: dict, base: dict) -> dict:
    bench = e.benchmark(col["key"])
    if bench is None:
        return empty("absent")
    value, state = checked_value(bench["tuned"], col["measure"])
    if value is None:
        return empty(state, f"{bench['target']} EXP={e.name}", bench["tuned"].get("reason"))
    significant = None
    if base.get("scores"):
        binary = col["section"] in CHOICE_SECTIONS and col["measure"] == "score"
        test = paired.compare(paired.measure(e.question_scores(bench), col["measure"]),
                              paired.measure(base["scores"], col["measure"]), binary)
        significant = test["significant"] if test["n"] else None
    return {"value": value, "why": None, "significant": significant}


def table_rows(experiments: list, cols: list[dict]) -> list[dict]:
    groups: dict[str, list] = {}
    for e in experiments:
        groups.setdefault(str(e.report.setting("model") or "?"), []).append(e)
    rows = []
    for model, exps in groups.items():
        base = [base_cell(exps, col) for col in cols]
        sources = list(dict.fromkeys(c["source"] for c in base if c.get("source")))
        rows.append({"kind": "base", "model": model, "name": None, "sources": sources, "cells": base,
                     "first_of_group": True})
        for e in exps:
            rows.append({"kind": "tuned", "model": model, "name": e.name, "sources": [], "first_of_group": False,
                         "cells": [tuned_cell(e, col, b) for col, b in zip(cols, base)]})
    return rows


def mark_best_and_notes(rows: list[dict], cols: list[dict]) -> list[dict]:
    """Bold: the highest value of each column whose values differ. Each empty cell gets the
    number of its footnote (one per distinct reason, numbered in reading order)."""
    for index in range(len(cols)):
        values = [r["cells"][index]["value"] for r in rows if r["cells"][index]["value"] is not None]
        best = max(values) if len(set(values)) > 1 else None
        for r in rows:
            cell = r["cells"][index]
            cell["best"] = best is not None and cell["value"] is not None and abs(cell["value"] - best) < 1e-12
    notes: list[dict] = []
    for r in rows:
        for cell in r["cells"]:
            if cell["why"] is not None:
                if cell["why"] not in notes:
                    notes.append(cell["why"])
                cell["note"] = notes.index(cell["why"]) + 1
            else:
                cell["note"] = None
    return notes


def column_id(col: dict) -> str:
    return col["key"] if col["measure"] == "score" else f"{col['key']}:{col['measure']}"


def to_csv(rows: list[dict], cols: list[dict]) -> str:
    """Numbers (x 100, as in the table; the human ratings' 1-5 means as they are) and identifiers:
    experiment, model, base_model, one column per benchmark measure, then why each empty cell is
    empty and which differences are significant."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["experiment", "model", "base_model"] + [column_id(c) for c in cols] + ["empty", "significant_vs_base"])
    for r in rows:
        cells = r["cells"]
        writer.writerow(
            [r["name"] or "", "base" if r["kind"] == "base" else "fine-tuned", r["model"]]
            + [f"{c['value'] * (1 if c.get('scale') == 'likert' else 100):.4f}" if c["value"] is not None else ""
               for c in cells]
            + [";".join(f"{column_id(col)}={c['why']['state']}" for col, c in zip(cols, cells) if c["why"]),
               ";".join(column_id(col) for col, c in zip(cols, cells) if c["significant"])])
    return buffer.getvalue()


def tex_escape(text) -> str:
    replace = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(replace.get(ch, ch) for ch in str(text))


def render(template: Path, facts: dict) -> str:
    filters = {"tex": tex_escape, "superscript": lambda number: str(number).translate(SUPERSCRIPT)}
    return render_or_exit(template, facts, "table", "correct the template, then rerun make table", filters)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo-root", default=str(Path(__file__).resolve().parents[2]))
    for name in ("exp", "run-dir", "export-dir", "results-dir", "steps", "config", "eval-config", "manifest", "report-md"):
        parser.add_argument(f"--{name}", action="append", default=[], help="once per experiment, in order")
    parser.add_argument("--template-dir", default=str(REPORT_TEMPLATES), help="where table.zh.md and .tex are")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--deploy-venv", default="")
    parser.add_argument("--env-file", default="")
    args = parser.parse_args(argv)
    specs = compare.read_specs(args)
    names = [s["exp"] for s in specs]
    stem = compare.output_stem(names, prefix="table")
    try:
        experiments = [compare.Experiment(spec, args) for spec in specs]
        cols = columns(experiments)
        rows = table_rows(experiments, cols)
        human_facts.table_columns(experiments, cols, rows)  # the blind human evaluation's columns, if rated
        notes = mark_best_and_notes(rows, cols)
    except rp.ParseError as error:
        print(f"table: error: {error}", file=sys.stderr)
        print("table: fix: repair or move that file away, then rerun make table", file=sys.stderr)
        return 2
    facts = {"names": names, "stem": stem, "env_file": args.env_file, "columns": cols, "rows": rows, "notes": notes,
             "alpha": paired.ALPHA}
    texts = {name.rsplit(".", 1)[1]: render(Path(args.template_dir) / name, facts) for name in TEMPLATES}
    out = Path(args.out_dir)
    write_atomic(out / f"{stem}.csv", to_csv(rows, cols))
    for suffix, text in texts.items():
        write_atomic(out / f"{stem}.{suffix}", text)
    print(out / f"{stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
