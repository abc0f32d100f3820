"""Renders report/<EXP>.md, its appendix report/<EXP>.appendix.md (every command and the
step log), report/<EXP>.html (the report as one self-contained page), the two PNG charts
and report/<EXP>.manifest.json from the run's own files. Called by scripts/report.sh,
which passes the facts only the shell knows (git state, GPUs, core count) as arguments.

This file computes facts (numbers, tables as rows, paths, commands, states, the paired
tests of scripts/py/paired.py); every word of the report is in its Jinja2 templates
(report/template.zh.md, report/appendix.zh.md, their shared report/macros.zh.md), which
format them: editing a sentence there changes the report.

Exit status: 0 with a report (missing parts are marked 未运行), 2 when a file is
not JSON (the message names file and line) or the template is broken."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as metadata
import json
import os
import platform
import re
import sys
import tempfile
import traceback
from pathlib import Path

import jinja2
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_suite  # noqa: E402
import fingerprint as fp  # noqa: E402
import mdhtml  # noqa: E402
import paired  # noqa: E402
import runparse as rp  # noqa: E402

PACKAGES = ["torch", "transformers", "peft", "ms-swift", "evalscope", "swanlab"]
CONFIG_TABLE_KEYS = ["model", "tuner_type", "torch_dtype", "num_train_epochs", "per_device_train_batch_size",
                     "per_device_eval_batch_size", "gradient_accumulation_steps", "learning_rate", "lr_scheduler_type",
                     "warmup_ratio", "lora_rank", "lora_alpha", "lora_dropout", "target_modules", "router_aux_loss_coef",
                     "max_length", "split_dataset_ratio", "eval_steps", "save_steps", "save_total_limit",
                     "logging_steps", "seed", "data_seed"]
SIDES = (("tuned", ""), ("base", "-base"))  # the fine-tuned model is served as <exp>, the base as <exp>-base
BASE_TARGET = "make eval-base"
STORE_NAME, STORE_RECORD = ".store", "lab-store.json"  # the store of shared evaluations (scripts/lib/store.sh)
UNFILLED_MARKERS = ("[待补充]", "[待评测]", "[待对比]", "[待分析]")
# The measures tested base vs fine-tuned on the per-question scores, per report section, and
# those of the summary's headline table (perf: output tok/s at the highest concurrency).
CHOICE_SECTIONS = ("knowledge", "psych", "general", "safety")  # each question right or wrong (GSM8K, SafetyBench too)
DIALOG_METRICS = ("bleu-1", "bleu-4", "rouge-1-f1", "rouge-l-f1", "rouge-l-recall")
PAIRED_MEASURES = {"knowledge": ("score",), "psych": ("score",), "general": ("score",), "safety": ("score",),
                   "judge": ("score",), "dialog": DIALOG_METRICS}
HEADLINE_MEASURES = {"knowledge": ("score",), "psych": ("score",), "judge": ("score",),
                     "dialog": ("rouge-l-f1", "bleu-4"), "perf": ("perf",)}
SECRET_FLAGS = re.compile(r"(--(?:swanlab_token|api_key|hub_token|token)[ =])(?!\"?\$)(\S+)")
SECRET_ENV = re.compile(r"\b((?:SWANLAB_TOKEN|SWANLAB_API_KEY|SERVE_API_KEY|HF_TOKEN|MODELSCOPE_API_TOKEN)=)(?!\"?\$)(\S+)")


def scrub(text: str) -> str:
    """Commands are recorded token-free; this is a second guard for hand-made files."""
    text = SECRET_FLAGS.sub(r"\1<redacted>", text)
    return SECRET_ENV.sub(r"\1<redacted>", text)


def rel(path: Path | str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except (ValueError, OSError):
        return str(path)


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def package_versions(deploy_venv: Path | None) -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    lmdeploy = None
    try:
        lmdeploy = metadata.version("lmdeploy")
    except metadata.PackageNotFoundError:
        if deploy_venv and deploy_venv.is_dir():
            for site in deploy_venv.glob("lib/python*/site-packages"):
                for dist in metadata.distributions(path=[str(site)]):
                    if dist.metadata["Name"] and dist.metadata["Name"].lower() == "lmdeploy":
                        lmdeploy = dist.version
    versions["lmdeploy"] = lmdeploy
    return versions


def file_hash(path: Path | None, root: Path) -> dict | None:
    if not path or not path.is_file():
        return None
    return {"path": rel(path, root), "sha256": rp.sha256_file(path)}


def count_lines(path: Path) -> int | None:
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", errors="replace") as handle:
        return sum(1 for line in handle if line.strip())


# ---------------------------------------------------------------- charts

def plot_loss(run: rp.TrainRun, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    train = [(r["step"], r["loss"]) for r in run.train if r["step"] is not None and r["loss"] is not None]
    evals = [(r["step"], r["eval_loss"]) for r in run.evals if r["step"] is not None and r["eval_loss"] is not None]
    if train:
        ax.plot(*zip(*train), label="train loss", color="tab:blue", linewidth=1.2)
    if evals:
        ax.plot(*zip(*evals), label="eval loss", color="tab:orange", marker="o", linewidth=1.2)
    if not train and not evals:
        ax.text(0.5, 0.5, "no loss logged yet (make train)", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"{run.run_dir.name}: loss")
    ax.grid(alpha=0.3)
    if train or evals:
        ax.legend()
    _save_figure(fig, path)


def plot_accuracy(benchmarks: list[dict], exp: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    width = 0.38
    for offset, side, color in ((-width / 2, "base", "tab:gray"), (width / 2, "tuned", "tab:green")):
        for i, bench in enumerate(benchmarks):
            result = bench[side]
            x = i + offset
            if result["state"] == "done":
                ax.bar(x, result["score"] * 100, width, color=color)
                ax.text(x, result["score"] * 100 + 1, f"{result['score'] * 100:.1f}", ha="center", fontsize=8)
            else:
                ax.text(x, 2, result["state"].replace("_", " "), ha="center", rotation=90, fontsize=8, color=color)
    ax.legend(handles=[Patch(color="tab:gray", label=f"{exp}-base (base)"),
                       Patch(color="tab:green", label=f"{exp} (fine-tuned)")], loc="upper right")
    ax.set_xlim(-0.7, max(len(benchmarks), 1) - 0.3)
    ax.set_xticks(range(len(benchmarks)), [b["key"] for b in benchmarks])
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{exp}: accuracy, base vs fine-tuned")
    ax.grid(axis="y", alpha=0.3)
    _save_figure(fig, path)


def _save_figure(fig, path: Path) -> None:
    import io
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_atomic(path, buffer.getvalue())


# ---------------------------------------------------------------- training facts

def train_results(run: rp.TrainRun) -> dict:
    """The numbers of section 9.1, None where the run has not produced them."""
    losses = [(r["step"], r["loss"]) for r in run.train if r["loss"] is not None]
    evals = [(r["step"], r["eval_loss"]) for r in run.evals if r["eval_loss"] is not None]
    memory = [r["memory_gib"] for r in run.train + run.evals if r.get("memory_gib") is not None]
    if rp.to_number(run.result.get("memory")):
        memory.append(rp.to_number(run.result.get("memory")))
    summary = run.summary
    epoch = summary.get("epoch")
    if epoch is None and run.train:
        epoch = run.train[-1]["epoch"]
    tokens = run.state.get("num_input_tokens_seen") or None
    runtime = rp.to_number(summary.get("train_runtime"))
    best = min(evals, key=lambda e: e[1]) if evals else None
    minimum = min(losses, key=lambda e: e[1]) if losses else None
    # eval_on_start: the held-out loss of the base model, before any step, on the same tokens.
    base_eval = next((loss for step, loss in evals if step == 0), None)
    return {
        "finished": run.finished,
        "step": run.step,
        "max_steps": run.max_steps,
        "epoch": rp.to_number(epoch),
        "num_train_epochs": rp.to_number(run.args.get("num_train_epochs") or run.state.get("num_train_epochs")),
        "final_train_loss": losses[-1][1] if losses else None,
        "final_train_loss_step": losses[-1][0] if losses else None,
        "min_train_loss": minimum[1] if minimum else None,
        "min_train_loss_step": minimum[0] if minimum else None,
        "summary_train_loss": rp.to_number(summary.get("train_loss")),
        "final_eval_loss": evals[-1][1] if evals else None,
        "final_eval_loss_step": evals[-1][0] if evals else None,
        "best_eval_loss": best[1] if best else None,
        "best_eval_loss_step": best[0] if best else None,
        "base_eval_loss": base_eval,
        "eval_loss_drop": base_eval - evals[-1][1] if base_eval is not None and len(evals) > 1 else None,
        "train_runtime_s": runtime,
        "elapsed_s": run.elapsed_s,
        "train_samples_per_second": rp.to_number(summary.get("train_samples_per_second")),
        "train_steps_per_second": rp.to_number(summary.get("train_steps_per_second")),
        "tokens_seen": tokens,
        "tokens_per_second": (tokens / runtime) if tokens and runtime else None,
        "trainable_params": run.trainable_params,
        "model_parameter_info": run.result.get("model_parameter_info"),
        "train_dataset_stats": run.result.get("train_dataset"),
        "val_dataset_stats": run.result.get("val_dataset"),
        "peak_memory_gib": max(memory) if memory else None,
        "train_rows": len(run.train),
        "eval_rows": len(run.evals),
    }


# ---------------------------------------------------------------- evaluation facts

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
    config = eval_suite.resolve(eval_config)
    defaults = config.get("defaults") or {}
    benchmarks = []
    for key in config.get("benchmarks") or []:
        section = {**defaults, **(config.get(key) or {})}
        group = section.get("group") or key
        benchmarks.append({"key": key, "label": section.get("label") or key, "dataset": section.get("dataset"),
                           "group": group, "section": section_of(key, section),
                           "heldout": section.get("source") == "heldout", "target": f"make eval-{group}",
                           "metric_name": section.get("metric"), "licence": section.get("licence"),
                           "url": section.get("url"), "category_rows": section.get("category_rows") or {}})
    return benchmarks


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
    modes = (yaml.safe_load(eval_config.read_text(encoding="utf-8")) or {}).get("base_extra_modes") or []
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
    """A contamination check a checked result records beside its score, when it does (none
    writes one yet: the summary shows it when one does)."""
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


def command_owner(entries: list[dict], command: dict) -> dict | None:
    """The step run a recorded command belongs to: the last run of its step open at its time,
    else the entry of the commands of no run just before it, if of the same step."""
    time = command["time"] or ""
    runs = [e for e in entries if e["step"] == command["step"] and e["outcome"] != "command_only"
            and e["start"] and e["start"] <= time and (not e["end"] or time <= e["end"])]
    if runs:
        return runs[-1]
    last = entries[-1] if entries else None
    return last if last and last["outcome"] == "command_only" and last["step"] == command["step"] else None


def github_slug(text: str) -> str:
    """The anchor GitHub (and GitLab) give a Markdown heading: lower case, punctuation
    removed, spaces as hyphens."""
    import unicodedata
    kept = "".join(ch for ch in str(text).strip().lower()
                   if ch in " -_" or unicodedata.category(ch)[0] in "LMN")
    return kept.replace(" ", "-")


# ---------------------------------------------------------------- the report

class Report:
    def __init__(self, args):
        self.args = args
        self.root = Path(args.repo_root).resolve()
        self.exp = args.exp
        self.notes: list[dict] = []
        self.run = rp.read_run(Path(args.run_dir))
        self.export = rp.read_export(Path(args.export_dir))
        self.steps = rp.read_steps(Path(args.steps))
        self.extra_sides = extra_base_sides(Path(args.eval_config) if args.eval_config else None)
        # Every side evaluated: the fine-tuned model, the base model, the base model in each extra mode.
        self.sides = list(SIDES) + [(extra["side"], extra["suffix"]) for extra in self.extra_sides]
        self.records = self._read_records()
        self.train = train_results(self.run)
        self.versions = package_versions(Path(args.deploy_venv) if args.deploy_venv else None)
        self.config_path = Path(args.config)
        self.config = self._read_config()
        self.gpus = [g.strip() for g in (args.gpus or "").splitlines() if g.strip()]
        self.generated_at = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.benchmarks = self._read_evaluations()

    # -- records of what ran (lab-inputs.json next to each step's outputs)

    def _read_records(self) -> dict:
        records = {"train": fp.read_json(Path(self.args.run_dir) / "lab-inputs.json"),
                   "export": fp.read_json(Path(self.args.export_dir) / "lab-inputs.json")}
        # The evaluations of eval.yaml on both models, as the report shows them; not the folders
        # set aside (<bench>.replaced-<time>) or of a benchmark no longer configured.
        results = Path(self.args.results_dir)
        for bench in read_benchmarks(Path(self.args.eval_config) if self.args.eval_config else None):
            for _, suffix in self.sides:
                served = f"{self.exp}{suffix}"
                records[f"eval-{served}-{bench['key']}"] = fp.read_json(results / served / bench["key"] / "lab-inputs.json")
        return {k: v for k, v in records.items() if v}

    def current_inputs(self, step: str) -> dict | None:
        current_dir = Path(self.args.current_inputs) if self.args.current_inputs else None
        return fp.read_json(current_dir / f"{step}.json") if current_dir and current_dir.is_dir() else None

    def recorded_config(self) -> tuple[str, dict] | None:
        """The training config as it ran: its path, sha256 and content, from the training's record."""
        configs = ((self.records.get("train") or {}).get("inputs") or {}).get("configs") or {}
        for path, entry in configs.items():
            return path, entry
        return None

    def input_changes(self) -> list[str]:
        """Inputs that differ now from what a recorded step ran with (file and key)."""
        lines = []
        for step, record in self.records.items():
            current = self.current_inputs(step)
            if not current or current.get("digest") == record.get("digest"):
                continue
            changes = fp.describe_changes(record.get("inputs") or {}, current.get("inputs") or {})
            lines += [scrub(f"{step}: {change}") for change in changes if not change.startswith("upstream.")]
        return lines[:40]

    def _read_config(self) -> dict:
        recorded = self.recorded_config()
        if recorded and isinstance(recorded[1].get("content"), dict):
            return recorded[1]["content"]
        try:
            with self.config_path.open(encoding="utf-8") as handle:
                return yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as error:  # an unreadable config is reported, not fatal
            self.notes.append(rp.note("config_unreadable", file=rel(self.config_path, self.root), error=str(error)))
            return {}

    def setting(self, key):
        """A training setting as the run saw it (args.json), else as configured."""
        if key in self.run.args and self.run.args[key] not in (None, ""):
            return self.run.args[key]
        return self.config.get(key)

    def served_model_digests(self) -> dict:
        """The digest of the model each side's evaluations must have scored: the
        reported export, and the base model the training started from."""
        export = (self.records.get("export") or {}).get("digest")
        train_model = ((self.records.get("train") or {}).get("inputs") or {}).get("model")
        base = fp.sha256_bytes(fp.canonical({"configs": {}, "command": [], "env": [], "model": train_model,
                                             "files": {}}).encode()) if train_model else None
        return {"tuned": ("export", export), "base": ("base-model", base)}

    def _read_evaluations(self) -> list[dict]:
        """Each benchmark of eval.yaml on both models: its checked result (or why there
        is none) and its command. An evaluation of another model than the one this report
        describes (an earlier export, another base model) is not shown as its result."""
        results = Path(self.args.results_dir)
        expected = self.served_model_digests()
        benchmarks = []
        for bench in read_benchmarks(Path(self.args.eval_config) if self.args.eval_config else None):
            entry = dict(bench)
            for side, suffix in self.sides:
                served = f"{self.exp}{suffix}"
                result = rp.read_eval_result(results / served / bench["key"])
                result["served"] = served
                result["target"] = bench["target"] if side == "tuned" else BASE_TARGET
                if result.get("command"):
                    result["command"] = scrub(result["command"])
                record = self.records.get(f"eval-{served}-{bench['key']}")
                upstream, digest = expected["tuned" if side == "tuned" else "base"]
                # A shared evaluation (scripts/lib/store.sh) files its replies under the name it was served as.
                result["examples"] = rp.read_dialog_replies(results / served / bench["key"], result.get("model") or served) \
                    if bench["section"] == "dialog" and result["state"] == "done" else {}
                if (result["state"] != "not_run" and record and digest is not None
                        and ((record.get("inputs") or {}).get("upstream") or {}).get(upstream) != digest):
                    result = {**result, "state": "other_model", "score": None, "num": None, "subjects": [], "command": None,
                              "metrics": {}, "levels": [], "examples": {}}
                if result["state"] != "done":
                    self.notes.append(rp.note("eval_" + result["state"], benchmark=bench["key"], side=side,
                                              target=result["target"], reason=result.get("reason")))
                elif (result.get("replies") or {}).get("fix"):
                    self.notes.append(rp.note("cut_off", benchmark=bench["key"], side=side, **result["replies"]))
                result["contamination"] = recorded_contamination(result)
                entry[side] = result
            scores = (entry["tuned"]["score"], entry["base"]["score"])
            entry["difference"] = scores[0] - scores[1] if None not in scores else None
            entry["subjects"] = compare_subjects(entry["tuned"], entry["base"])
            entry["stats"] = paired_stats(entry, question_scores(entry["tuned"], self.exp, bench["dataset"]),
                                          question_scores(entry["base"], entry["base"].get("model") or f"{self.exp}-base",
                                                          bench["dataset"]))
            benchmarks.append(entry)
            benchmarks += [category_row(entry, category, [side for side, _ in self.sides])
                           for category in bench["category_rows"]]
        return benchmarks

    def base_sources(self) -> list[dict]:
        """Where each finished evaluation of the base model comes from: the entry of the store of
        shared evaluations its results folder links to (scripts/lib/store.sh), the experiment that
        made it and its evaluation fingerprint (the entry's name)."""
        rows = []
        results = Path(self.args.results_dir)
        for bench in self.benchmarks:
            if ":" in bench["key"]:  # a category row of a benchmark
                continue
            for side, suffix in self.sides[1:]:
                folder = results / f"{self.exp}{suffix}" / bench["key"]
                entry = folder.resolve()
                if bench[side]["state"] != "done" or not folder.is_symlink() or entry.parent.name != STORE_NAME:
                    continue
                record = fp.read_json(entry / STORE_RECORD) or {}
                rows.append({"key": bench["key"], "side": side, "mode": side.partition("@")[2] or None,
                             "experiment": record.get("experiment"), "served": record.get("served"),
                             "fingerprint": entry.name[:12], "here": record.get("experiment") == self.exp})
        return rows

    # -- facts

    def dataset_hashes(self) -> list[dict]:
        """The datasets the training recorded (local files by sha256), else the files now."""
        recorded = ((self.records.get("train") or {}).get("inputs") or {}).get("datasets")
        if recorded is not None:
            return [{"path": d["id"], "sha256": d["sha256"]} for d in recorded if d.get("sha256")]
        return [file_hash(p, self.root) for p in rp.dataset_files(self.setting("dataset"), self.root)]

    def recorded_lock(self) -> dict | None:
        lock = ((self.records.get("train") or {}).get("inputs") or {}).get("lock")
        if lock and lock.get("sha256"):
            return {"path": lock["file"], "sha256": lock["sha256"]}
        return file_hash(Path(self.args.lock_file), self.root)

    def config_hash(self) -> dict | None:
        recorded = self.recorded_config()
        if recorded:
            return {"path": recorded[0], "sha256": recorded[1].get("sha256")}
        return file_hash(self.config_path, self.root)

    def datasets(self) -> list[dict]:
        datasets = self.setting("dataset")
        datasets = datasets if isinstance(datasets, list) else ([datasets] if datasets else [])
        hashes = {h["path"]: h["sha256"] for h in self.dataset_hashes() if h}
        rows = []
        for item in datasets:
            files = rp.dataset_files([item], self.root)
            path = files[0] if files else None
            rows.append({"id": item, "local": path is not None, "rows": count_lines(path) if path else None,
                         "sha256": hashes.get(rel(path, self.root)) if path else None})
        return rows

    def dialog_examples(self, count: int = 3) -> list[dict]:
        """Side by side, for the first held-out conversations both models answered:
        the user's last turn, the lab's reply, the base model's and the fine-tuned one's."""
        for bench in self.benchmarks:
            if bench["section"] != "dialog":
                continue
            tuned, base = bench["tuned"].get("examples") or {}, bench["base"].get("examples") or {}
            rows = []
            for index in sorted(set(tuned) & set(base))[:count]:
                rows.append({"benchmark": bench["key"], "index": index, "user": tuned[index]["user"],
                             "reference": tuned[index]["reference"], "base": base[index]["reply"],
                             "tuned": tuned[index]["reply"]})
            if rows:
                return rows
        return []

    def answer_mode(self) -> str | None:
        """How the models were asked to answer: eval.yaml's answer_mode, as the evaluations recorded it."""
        recorded = {b[side].get("answer_mode") for b in self.benchmarks for side, _ in SIDES} - {None}
        if len(recorded) == 1:
            return recorded.pop()
        path = Path(self.args.eval_config) if self.args.eval_config else None
        config = yaml.safe_load(path.read_text(encoding="utf-8")) if path and path.is_file() else {}
        return ((config or {}).get("defaults") or {}).get("answer_mode")

    def served_commands(self) -> dict:
        """The last deploy command of each served model (steps.jsonl), and its health checks."""
        commands, health = {}, {}
        for command in self.steps["commands"]:
            match = re.search(r"--served_model_name (\S+)", command["command"])
            if command["step"] == "deploy" and match:
                commands[match.group(1)] = scrub(command["command"])
        for event in self.steps["events"]:
            if event.get("step") == "health" and event.get("event") == "result":
                served = str(event.get("detail", "")).split(" ", 1)[0]
                health.setdefault(served, []).append({"time": event.get("time"), "detail": event.get("detail", "")})
        return {f"{self.exp}{suffix}": {"command": commands.get(f"{self.exp}{suffix}"),
                                        "health": health.get(f"{self.exp}{suffix}", [])[-2:]}
                for _, suffix in SIDES}

    def config_rows(self) -> list[dict]:
        rows = []
        for key in CONFIG_TABLE_KEYS:
            value = self.setting(key)
            if value is not None:
                rows.append({"key": key, "value": json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value})
        return rows

    def step_runs(self) -> list[dict]:
        runs = []
        for run in self.steps["runs"]:
            outcome = "ok" if run["exit"] == 0 else ("failed" if run["exit"] is not None else "unfinished")
            if run["exit"] is None and run is self.steps["runs"][-1] and run["step"] == "report":
                outcome = "this_report"
            runs.append({**run, "outcome": outcome})
        return runs

    def step_log(self) -> list[dict]:
        """The step runs and their commands, in time order, numbered: each command belongs to the
        run of its step that was open at its time; a command of no run (a prerequisite such as
        the tiny model) is an entry of its own."""
        entries = [{**run, "commands": []} for run in self.step_runs()]
        for command in self.steps["commands"]:
            command = {**command, "command": scrub(command["command"])}
            owner = command_owner(entries, command)
            if owner is None:
                owner = {"step": command["step"], "start": command["time"], "end": None, "exit": None,
                         "outcome": "command_only", "commands": []}
                entries.append(owner)
            owner["commands"].append(command)
        entries.sort(key=lambda e: (e["start"] is None, e["start"] or ""))
        return [{**e, "number": number} for number, e in enumerate(entries, 1)]

    def flags(self, input_changes: list[str]) -> list[dict]:
        """What the summary must say is missing or doubtful, most serious first."""
        flags = []
        if input_changes:
            flags.append({"kind": "inputs_changed", "count": len(input_changes)})
        if not self.run.exists:
            flags.append({"kind": "not_trained"})
        elif not self.run.finished:
            flags.append({"kind": "unfinished", "step": self.run.step, "max_steps": self.run.max_steps})
        for kind in ("cut_off", "no_answer"):  # the replies' counts (lab-eval.json replies), one line each
            items = [{"benchmark": b["key"], "sides": replies_counts(b, self.sides, kind)} for b in self.benchmarks]
            items = [i for i in items if i["sides"]]
            if items:
                flags.append({"kind": kind, "items": items,
                              "over_limit": any(s["over_limit"] for i in items for s in i["sides"])})
        for bench in self.benchmarks:
            for side, _ in self.sides:
                if bench[side].get("contamination"):
                    flags.append({"kind": "contamination", "benchmark": bench["key"], "side": side,
                                  "detail": bench[side]["contamination"]})
        placeholders = [b["key"] for b in self.benchmarks
                        if any((b[side].get("judge") or {}).get("placeholder") for side, _ in self.sides)]
        if placeholders:
            flags.append({"kind": "placeholder_judge", "benchmarks": placeholders})
        partial = [{"benchmark": b["key"], "measure": m, "n": s["n"], "num": max(s["n_first"], s["n_second"])}
                   for b in self.benchmarks for m, s in b["stats"].items() if s and s["n"] < max(s["n_first"], s["n_second"])]
        if partial:
            flags.append({"kind": "partly_paired", "items": partial})
        for state in ("rejected", "interrupted", "other_model", "not_run"):
            # per benchmark, the models it concerns (both, or one) and the targets that make them
            items = [{"benchmark": b["key"], "sides": [side for side, _ in self.sides if b[side]["state"] == state],
                      "targets": [b[side]["target"] for side, _ in self.sides if b[side]["state"] == state]}
                     for b in self.benchmarks]
            items = [i for i in items if i["sides"]]
            if items:
                flags.append({"kind": "eval_" + state, "items": items,
                              "targets": list(dict.fromkeys(t for i in items for t in i["targets"]))})
        if self.args.git_dirty == "1":
            flags.append({"kind": "dirty"})
        return flags

    def summary(self, input_changes: list[str]) -> dict:
        return {"rows": headline_rows(self.benchmarks), "flags": self.flags(input_changes),
                "commit": (self.args.git_commit or "unknown")[:12]}

    def notes_all(self) -> list[dict]:
        notes = self.run.notes + self.export.get("notes", []) + self.steps["notes"] + self.notes
        if not self.export["exists"]:
            notes.append(rp.note("not_run", what="export", target="make export"))
        if not any(e.get("step") == "health" and e.get("event") == "result" for e in self.steps["events"]):
            notes.append(rp.note("not_run", what="health", target="make health"))
        unique = []
        for item in notes:
            if item not in unique:
                unique.append(item)
        return unique

    def facts(self) -> dict:
        t = self.train
        runs = self.steps["runs"]
        val = self.run.run_dir / "val_dataset.jsonl"
        total = self.export.get("params")
        input_changes = self.input_changes()
        return {
            "exp": self.exp,
            "generated_at": self.generated_at,
            "template": rel(self.args.template, self.root),
            "manifest_name": f"{self.exp}.manifest.json",
            "report_name": f"{self.exp}.md",
            "appendix_name": f"{self.exp}.appendix.md",
            "html_name": f"{self.exp}.html",
            "summary": self.summary(input_changes),
            "paired_method": {"alpha": paired.ALPHA, "resamples": paired.BOOTSTRAP_RESAMPLES,
                              "seed": paired.BOOTSTRAP_SEED},
            "step_log": self.step_log(),
            "input_changes": input_changes,
            "env_file": self.args.env_file,
            "setting": {key: self.setting(key) for key in ("model", "tuner_type", "dataset", "split_dataset_ratio",
                                                            "seed", "data_seed")},
            "times": {"first": min((r["start"] for r in runs if r["start"]), default=None),
                      "last": max((r["end"] for r in runs if r["end"]), default=None)},
            "hardware": {"profile": self.args.profile, "gpu_setting": self.args.gpu_setting, "gpus": self.gpus,
                         "cpu_cores": self.args.cpu_cores},
            "packages": ["python"] + PACKAGES,
            "versions": self.versions,
            "lock": self.recorded_lock(),
            "lock_file": rel(self.args.lock_file, self.root),
            "data": {"datasets": self.datasets(), "val_rows": count_lines(val), "val_path": rel(val, self.root)},
            "config": {"hash": self.config_hash(), "from_args": bool(self.run.args), "rows": self.config_rows()},
            "run": {"exists": self.run.exists, "dir": rel(self.run.run_dir, self.root),
                    "logging": rel(self.run.run_dir / "logging.jsonl", self.root),
                    "checkpoints": self.run.checkpoints, "evals": self.run.evals,
                    "command": scrub(self.run.command) if self.run.command else None, **t},
            "export": {"exists": self.export["exists"], "dir": rel(self.export["dir"], self.root),
                       "checkpoint": rel(self.export["checkpoint"], self.root) if self.export.get("checkpoint") else None,
                       "shards": len(self.export.get("shards", [])), "params": total,
                       "size_mib": self.export["size_bytes"] / 2**20 if self.export.get("size_bytes") is not None else None,
                       "command": scrub(self.export["command"]) if self.export.get("command") else None},
            "served": self.served_commands(),
            "base_sources": self.base_sources(),
            "store_dir": rel(Path(self.args.results_dir).parent / STORE_NAME, self.root),
            "benchmarks": self.benchmarks,
            "benchmark_labels": benchmark_labels(Path(self.args.eval_config) if self.args.eval_config else None),
            "answer_mode": self.answer_mode(),
            "extra_sides": [{**extra, "served": f"{self.exp}{extra['suffix']}"} for extra in self.extra_sides],
            # The evaluated sides in the order the tables list them: base, base in each extra mode, fine-tuned.
            "eval_sides": [{"side": side, "served": f"{self.exp}{suffix}"}
                           for side, suffix in self.sides[1:] + self.sides[:1]],
            "examples": self.dialog_examples(),
            "results_dir": rel(self.args.results_dir, self.root),
            "efficiency": {"trainable_share": t["trainable_params"] / total * 100 if t["trainable_params"] and total else None,
                           "on_gpu": bool(self.gpus)},
            "notes": self.notes_all(),
            "provenance": {"git_commit": self.args.git_commit, "git_dirty": self.args.git_dirty == "1",
                           "lock": self.recorded_lock(), "config": self.config_hash(), "datasets": self.dataset_hashes(),
                           "runs": self.step_runs(),
                           "commands": [{"step": c["step"], "time": c["time"], "command": scrub(c["command"])}
                                        for c in self.steps["commands"]]},
        }

    def manifest(self, facts: dict) -> dict:
        def result(side):
            return {k: side.get(k) for k in ("state", "score", "num", "metric", "metrics", "subjects", "levels", "judge",
                                               "path", "reason", "answer_mode", "replies") if k in side}
        return {
            "schema": 2,
            "experiment": self.exp,
            "generated_at": self.generated_at,
            "git": {"commit": self.args.git_commit, "dirty": self.args.git_dirty == "1"},
            "inputs_digest": self.args.inputs_digest or None,
            "files": {"lock": self.recorded_lock(), "config": self.config_hash(), "datasets": self.dataset_hashes()},
            "fingerprints": self.records,
            "inputs_changed_since": facts["input_changes"],
            "seed": self.setting("seed"),
            "data_seed": self.setting("data_seed"),
            "commands": facts["provenance"]["commands"],
            "train_command": facts["run"]["command"],
            "base_sources": facts["base_sources"],
            "export_command": facts["export"]["command"],
            "steps": self.steps["runs"],
            "versions": self.versions,
            "env_file": self.args.env_file or None,
            "hardware": {"profile": self.args.profile, "gpu_setting": self.args.gpu_setting,
                         "gpus": self.gpus, "gpu_count": len(self.gpus), "device": self.gpus[0] if self.gpus else "CPU",
                         "cpu_cores": int(self.args.cpu_cores) if str(self.args.cpu_cores).isdigit() else self.args.cpu_cores},
            "run_dir": rel(self.run.run_dir, self.root),
            "checkpoint": self.run.checkpoint,
            "export": {k: v for k, v in facts["export"].items() if k in ("dir", "exists", "checkpoint", "params")},
            "results": {
                "train": self.train,
                "eval": {b["key"]: {**{side: result(b[side]) for side, _ in self.sides}, "difference": b["difference"],
                                    "paired": b["stats"]}
                         for b in self.benchmarks},
            },
            "missing": facts["notes"],
        }


# ---------------------------------------------------------------- rendering

def _hms(seconds):
    seconds = int(round(float(seconds)))
    hours, rest = divmod(seconds, 3600)
    return hours, rest // 60, rest % 60


REPORT_TEMPLATES = Path(__file__).resolve().parents[2] / "report"  # macros.zh.md, appendix.zh.md


def _p_value(p) -> str:
    return "<0.001" if p < 0.001 else f"={p:.3f}"


def template_environment(template_dir: Path, labels: dict | None = None) -> jinja2.Environment:
    """The templates' Jinja2 environment. Templates are found beside the one rendered, then in
    report/ (the shared macros.zh.md). `benchmark_labels` (the suite's labels, by default this
    repository's configs/benchmarks.yaml) is a global, so macros.zh.md's label sees it."""
    search = list(dict.fromkeys([str(template_dir), str(REPORT_TEMPLATES)]))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(search), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.globals["benchmark_labels"] = labels if labels is not None else benchmark_labels(None)
    env.filters.update({
        "num": lambda value, digits=4: f"{float(value):.{digits}f}",
        "signed": lambda value, digits=4: f"{float(value):+.{digits}f}",
        "pct": lambda score: f"{score * 100:.2f}%",
        "points": lambda diff: f"{diff * 100:+.2f}",
        "pval": _p_value,
        "slug": github_slug,
        "thousands": lambda value: f"{int(value):,}",
        "hms": _hms,
        "cell": lambda text: str(text).replace("|", "\\|").replace("\n", " "),
        "compact": lambda value: f"{value:g}" if isinstance(value, float) else str(value),
    })
    return env


def render(template_path: Path, facts: dict) -> str:
    try:
        env = template_environment(template_path.parent, facts.get("benchmark_labels"))
        template = env.get_template(template_path.name)
        text = template.render(**facts)
    except jinja2.TemplateSyntaxError as error:
        raise SystemExit(f"report: {template_path}:{error.lineno}: template error: {error.message}")
    except jinja2.UndefinedError as error:
        raise SystemExit(f"report: {template_path}: {error.message} (the facts are listed in scripts/py/report.py, Report.facts)")
    except (TypeError, ValueError) as error:
        # The innermost template frame: the template, or a macro of macros.zh.md it called.
        frame = next((f for f in reversed(traceback.extract_tb(error.__traceback__)) if f.filename.endswith(".md")), None)
        where = f"{frame.filename}:{frame.lineno}" if frame else f"{template_path}:?"
        raise SystemExit(f"report: {where}: {error} (a filter got a missing value: test it with `is none` first)")
    for marker in UNFILLED_MARKERS:
        if marker in text:
            raise SystemExit(f"report: the rendered report still contains {marker}; remove it from {template_path}")
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo-root", default=str(Path(__file__).resolve().parents[2]))
    for name in ("exp", "run-dir", "export-dir", "results-dir", "steps", "config", "lock-file",
                 "template", "out-dir"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--eval-config", default="", help="the experiment's eval.yaml: which benchmarks to show")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--gpu-setting", default="cpu")
    parser.add_argument("--gpus", default="", help="GPU model names, one a line (nvidia-smi)")
    parser.add_argument("--cpu-cores", default=str(os.cpu_count()))
    parser.add_argument("--git-commit", default="unknown")
    parser.add_argument("--git-dirty", default="0")
    parser.add_argument("--deploy-venv", default="")
    parser.add_argument("--env-file", default="", help="the env file's path (its name only; values are never read)")
    parser.add_argument("--current-inputs", default="", help="the current inputs' fingerprints (.state/<EXP>/inputs)")
    parser.add_argument("--inputs-digest", default="", help="the digest of what this report reads (its fingerprint)")
    parser.add_argument("--appendix-template", default="",
                        help="the appendix's template (default: appendix.zh.md beside --template, else report/'s)")
    args = parser.parse_args(argv)
    appendix_template = Path(args.appendix_template or Path(args.template).parent / "appendix.zh.md")
    if not appendix_template.is_file() and not args.appendix_template:
        appendix_template = REPORT_TEMPLATES / "appendix.zh.md"

    try:
        report = Report(args)
        facts = report.facts()
    except rp.ParseError as error:
        print(f"report: error: {error}", file=sys.stderr)
        print("report: fix: repair or move that file away, then rerun make report", file=sys.stderr)
        return 2
    try:
        text = render(Path(args.template), facts)
        appendix = render(appendix_template, facts)
    except SystemExit as error:
        print(error, file=sys.stderr)
        print("report: fix: correct the template (Jinja2: {{ fact }}, {% if %}, {% for %}), then rerun make report",
              file=sys.stderr)
        return 2

    out = Path(args.out_dir)
    plot_loss(report.run, out / f"{args.exp}-loss.png")
    plot_accuracy([b for b in report.benchmarks if b["section"] in ("knowledge", "psych", "general", "safety")], args.exp,
                  out / f"{args.exp}-accuracy.png")
    manifest = report.manifest(facts)
    write_atomic(out / f"{args.exp}.manifest.json",
                 (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    write_atomic(out / facts["appendix_name"], appendix.encode("utf-8"))
    write_atomic(out / facts["html_name"], mdhtml.page(text, out, f"{args.exp} 实验报告").encode("utf-8"))
    write_atomic(out / f"{args.exp}.md", text.encode("utf-8"))
    for item in manifest["missing"]:
        if item["kind"] == "cut_off":
            print(f"report: flagged: {item['benchmark']} ({item['side']}): {item['cut_off']} of {item['asked']} replies "
                  f"cut off at max_tokens {item['max_tokens']}; fix: max_tokens {item['fix']['max_tokens']}"
                  + (f", session length {item['fix']['session_len']}" if item["fix"].get("session_len") else ""),
                  file=sys.stderr)
            continue
        print("report: missing: " + ", ".join(f"{k}={v}" for k, v in item.items() if v is not None), file=sys.stderr)
    print(out / f"{args.exp}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
