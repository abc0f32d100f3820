"""Renders report/compare-<a>-<b>-....md (Chinese) and its two charts: experiments side by
side. Called by scripts/compare.sh (make compare EXPS="a b c"), which gathers each
experiment's paths the way scripts/report.sh does.

Every fact comes from lab.report's Report (lab/report/facts.py), one per experiment (the same parsing,
records and states as each experiment's own report); this file only lines them up:
  - the configuration keys whose values differ (the training config as its record says it
    ran, else the config file as it is now; export.yaml likewise; deploy.yaml and eval.yaml as
    they are), missing ones shown as not set;
  - per experiment the training summary (steps, final and lowest train loss, held-out loss
    before and after, wall time, throughput, peak memory);
  - every benchmark of the union of their eval.yaml, the fine-tuned model's score and its
    difference to the first experiment, with the report's paired test on the questions both
    answered (scripts/py/paired.py); a step that did not run is not run, never 0;
  - overlaid loss curves and grouped score bars (PNGs beside the .md);
  - each experiment's provenance: commit, config and dataset hashes.
The words are in the Jinja2 template (report/compare.zh.md), with the report's filters (lab/report/render.py).

Exit status: 0 with a comparison; 2 when a run's file is not JSON or the template is broken.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import paired  # noqa: E402
import runparse as rp  # noqa: E402
from lab.files import load_yaml, rel, write_atomic  # noqa: E402
from lab.report.charts import save_figure  # noqa: E402
from lab.report.evaluations import CHOICE_SECTIONS, benchmark_labels, measure_cell, question_scores  # noqa: E402
from lab.report.facts import Report, ReportInputs  # noqa: E402
from lab.report.render import render_or_exit  # noqa: E402

CONFIG_FILES = ("sft.yaml", "export.yaml", "deploy.yaml", "eval.yaml")
MAX_STEM = 100  # a longer list of names is shortened: compare-<first>-and-<n>-more-<hash>
SCORE_SECTIONS = ("knowledge", "psych", "general", "safety", "dialog", "judge", "arena", "perf")
# What a benchmark's row shows: the primary score; for replies ROUGE-L F1 and BLEU-4 (each a row).
DIALOG_METRICS = ("rouge-l-f1", "bleu-4")


def output_stem(names: list[str], prefix: str = "compare") -> str:
    stem = f"{prefix}-" + "-".join(names)
    if len(stem) <= MAX_STEM:
        return stem
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:8]
    return f"{prefix}-{names[0]}-and-{len(names) - 1}-more-{digest}"


def shown(value) -> str:
    """A config value as one table cell."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class Experiment:
    """One experiment of the comparison: its Report and what the comparison needs of it."""

    def __init__(self, spec: dict, common: argparse.Namespace):
        self.name = spec["exp"]
        self.spec = spec
        self.root = Path(common.repo_root).resolve()
        self.report = Report(ReportInputs(
            exp=self.name, run_dir=spec["run_dir"], export_dir=spec["export_dir"], results_dir=spec["results_dir"],
            steps=spec["steps"], config=spec["config"], eval_config=spec["eval_config"], repo_root=str(self.root),
            deploy_venv=common.deploy_venv))
        self.config_dir = Path(spec["config"]).parent

    # -- configuration

    def configs(self) -> dict:
        """{file: (content, source)}: the recorded content where a step recorded it."""
        out = {}
        recorded = {"sft.yaml": self.report.recorded_config("train"), "export.yaml": self.report.recorded_config("export")}
        for file in CONFIG_FILES:
            entry = recorded.get(file)
            if entry and isinstance(entry[1].get("content"), dict):
                out[file] = (entry[1]["content"], "recorded")
                continue
            path = self.config_dir / file
            try:
                content = load_yaml(path.read_text(encoding="utf-8")) if path.is_file() else None
            except yaml.YAMLError:
                content = None
            out[file] = (content if isinstance(content, dict) else None, "current")
        return out

    # -- facts

    def manifest(self) -> dict:
        path = Path(self.spec["manifest"])
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise rp.ParseError(path, 1, "not JSON")

    def provenance(self, commit_now: str, dirty_now: str) -> dict:
        git = self.manifest().get("git") or {}
        datasets = ((self.report.records.get("train") or {}).get("inputs") or {}).get("datasets")
        if datasets is None:
            datasets = [{"id": h["path"], "sha256": h["sha256"]} for h in self.report.dataset_hashes() if h]
        config = self.report.config_hash()
        return {"commit": git.get("commit") or commit_now,
                "commit_source": "manifest" if git.get("commit") else "now",
                "dirty": bool(git.get("dirty")) if git.get("commit") else dirty_now == "1",
                "config": config,
                "datasets": [{"id": d.get("id"), "sha256": d.get("sha256"), "revision": d.get("revision")}
                             for d in datasets]}

    def on_cpu(self) -> bool:
        command = ((self.report.records.get("train") or {}).get("inputs") or {}).get("command") or []
        return "--use_cpu" in command or bool(self.report.run.args.get("use_cpu"))

    def summary(self) -> dict:
        t = self.report.train
        report = Path(self.spec["report_md"])
        return {"name": self.name, "model": self.report.setting("model"), "trained": self.report.run.exists,
                "finished": t["finished"], "train": t, "cpu": self.on_cpu(),
                "report": report.name if report.is_file() else None}

    def benchmark(self, key: str) -> dict | None:
        return next((b for b in self.report.benchmarks if b["key"] == key), None)

    def question_scores(self, bench: dict | None) -> dict:
        """The fine-tuned model's per-question scores of a benchmark (none when it did not run)."""
        return question_scores(bench["tuned"], self.name, bench["dataset"]) if bench else {}


def config_differences(experiments: list[Experiment]) -> tuple[list[dict], dict]:
    """The keys whose values differ between the experiments, per config file; where each came from."""
    rows, sources = [], {}
    per_exp = [e.configs() for e in experiments]
    for e, configs in zip(experiments, per_exp):
        sources[e.name] = configs["sft.yaml"][1]
    for file in CONFIG_FILES:
        contents = [configs[file][0] or {} for configs in per_exp]
        keys = []
        for content in contents:
            keys += [k for k in content if k not in keys]
        for key in keys:
            values = [content.get(key) for content in contents]
            present = [key in content for content in contents]
            if all(present) and all(v == values[0] for v in values):
                continue
            rows.append({"file": file, "key": key,
                         "values": [shown(v) if p else None for v, p in zip(values, present)]})
    return rows, sources


cell = measure_cell  # one experiment's value of one measure: {state, value}


def score_rows(experiments: list[Experiment]) -> list[dict]:
    """Every benchmark of the union of the experiments' eval.yaml, in first-seen order: one row
    per measure, each experiment's fine-tuned score and its difference to the first's."""
    benches = []
    for e in experiments:
        for b in e.report.benchmarks:
            if b["key"] not in [x["key"] for x in benches]:
                benches.append(b)
    rows = []
    for bench in benches:
        section = bench["section"]
        measures = {"dialog": DIALOG_METRICS, "perf": ("perf",)}.get(section, ("score",))
        found = [e.benchmark(bench["key"]) for e in experiments]
        scores = [e.question_scores(f) for e, f in zip(experiments, found)]
        for measure in measures:
            cells = [cell(f["tuned"] if f else None, measure) for f in found]
            first = cells[0]["value"]
            for c, per_question in zip(cells, scores):
                c["diff"] = c["value"] - first if c["value"] is not None and first is not None else None
                # the report's test, against the first experiment's fine-tuned model
                c["stats"] = paired.compare(paired.measure(per_question, measure), paired.measure(scores[0], measure),
                                            section in CHOICE_SECTIONS and measure == "score") \
                    if c["diff"] is not None and measure != "perf" else None
            rows.append({"key": bench["key"], "section": section, "measure": measure, "cells": cells,
                         "target": bench["target"]})
    return rows


def loss_axis(experiments: list[Experiment]) -> str:
    rows = [r for e in experiments for r in e.report.run.train + e.report.run.evals]
    return "epoch" if rows and all(r.get("epoch") is not None for r in rows) else "step"


# ---------------------------------------------------------------- charts

COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
          "tab:olive", "tab:cyan"]


def plot_losses(experiments: list[Experiment], axis: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    drawn = False
    for index, e in enumerate(experiments):
        color = COLORS[index % len(COLORS)]
        train = [(r[axis], r["loss"]) for r in e.report.run.train if r[axis] is not None and r["loss"] is not None]
        evals = [(r[axis], r["eval_loss"]) for r in e.report.run.evals
                 if r[axis] is not None and r["eval_loss"] is not None]
        if train:
            ax.plot(*zip(*train), color=color, linewidth=1.2, label=f"{e.name} train")
        if evals:
            ax.plot(*zip(*evals), color=color, linewidth=1.2, linestyle="--", marker="o", markersize=3,
                    label=f"{e.name} eval")
        drawn = drawn or bool(train or evals)
    if not drawn:
        ax.text(0.5, 0.5, "no loss logged yet (make train)", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=8)
    ax.set_xlabel(axis)
    ax.set_ylabel("loss")
    ax.set_title("train (solid) and eval (dashed) loss")
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def plot_scores(experiments: list[Experiment], rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["measure"] != "perf"]  # tok/s is not on the 0-100 scale
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(rows) + 2), 4.5), dpi=120)
    count = max(len(experiments), 1)
    width = 0.8 / count
    for index, e in enumerate(experiments):
        color = COLORS[index % len(COLORS)]
        for i, row in enumerate(rows):
            x = i - 0.4 + width * (index + 0.5)
            c = row["cells"][index]
            if c["value"] is not None:  # labelled, so that a measured 0 shows as 0.0
                ax.bar(x, c["value"] * 100, width, color=color)
                ax.text(x, c["value"] * 100 + 1, f"{c['value'] * 100:.1f}", ha="center", fontsize=7)
            else:  # never a bar of 0: a step that did not run is not a score
                ax.text(x, 2, c["state"].replace("_", " "), ha="center", rotation=90, fontsize=7, color=color)
        ax.bar(0, 0, 0, color=color, label=e.name)
    labels = [r["key"] if r["measure"] == "score" else f"{r['key']}\n{r['measure']}" for r in rows]
    ax.set_xticks(range(len(rows)), labels, fontsize=7, rotation=30, ha="right")
    ax.set_xlim(-0.6, max(len(rows), 1) - 0.4)
    ax.set_ylim(0, 105)
    ax.set_ylabel("score (%)")
    ax.set_title("fine-tuned models, per benchmark")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    save_figure(fig, path)


# ---------------------------------------------------------------- main

def read_specs(args) -> list[dict]:
    keys = ("exp", "run_dir", "export_dir", "results_dir", "steps", "config", "eval_config", "manifest", "report_md")
    lists = [getattr(args, key) for key in keys]
    if len({len(items) for items in lists}) != 1:
        raise SystemExit("compare: every experiment needs each of " + ", ".join("--" + k.replace("_", "-") for k in keys))
    return [dict(zip(keys, values)) for values in zip(*lists)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo-root", default=str(Path(__file__).resolve().parents[2]))
    for name in ("exp", "run-dir", "export-dir", "results-dir", "steps", "config", "eval-config", "manifest", "report-md"):
        parser.add_argument(f"--{name}", action="append", default=[], help="once per experiment, in order")
    parser.add_argument("--template", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--git-commit", default="unknown")
    parser.add_argument("--git-dirty", default="0")
    parser.add_argument("--deploy-venv", default="")
    parser.add_argument("--env-file", default="")
    args = parser.parse_args(argv)
    specs = read_specs(args)
    names = [s["exp"] for s in specs]
    out = Path(args.out_dir)
    stem = output_stem(names)
    try:
        experiments = [Experiment(spec, args) for spec in specs]
        differences, sources = config_differences(experiments)
        rows = score_rows(experiments)
        axis = loss_axis(experiments)
        facts = {
            "names": names,
            "stem": stem,
            "shortened": stem != "compare-" + "-".join(names),
            "generated_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "template": rel(args.template, Path(args.repo_root)),
            "env_file": args.env_file,
            "experiments": [e.summary() for e in experiments],
            "config_sources": sources,
            "differences": differences,
            "scores": rows,
            # Each benchmark's label, from its entry of the suite (configs/benchmarks.yaml).
            "benchmark_labels": {k: v for e in experiments for k, v in benchmark_labels(
                Path(e.spec["eval_config"]) if e.spec.get("eval_config") else None).items()},
            "loss_axis": axis,
            "loss_png": f"{stem}-loss.png",
            "scores_png": f"{stem}-scores.png",
            "provenance": [{"name": e.name, **e.provenance(args.git_commit, args.git_dirty)} for e in experiments],
            "paired_method": {"alpha": paired.ALPHA, "resamples": paired.BOOTSTRAP_RESAMPLES,
                              "seed": paired.BOOTSTRAP_SEED},
        }
    except rp.ParseError as error:
        print(f"compare: error: {error}", file=sys.stderr)
        print("compare: fix: repair or move that file away, then rerun make compare", file=sys.stderr)
        return 2
    text = render_or_exit(Path(args.template), facts, "compare", "correct the template, then rerun make compare")
    plot_losses(experiments, axis, out / facts["loss_png"])
    plot_scores(experiments, rows, out / facts["scores_png"])
    write_atomic(out / f"{stem}.md", text)
    print(out / f"{stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
