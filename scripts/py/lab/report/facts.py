"""The facts of an experiment's report, read from the run's own files: the training run and
its record, the export, the steps log, each evaluation (lab.report.evaluations), the versions
and hashes of what ran. `Report(ReportInputs(...)).facts()` is the dict the templates get;
`manifest(facts)` the report's manifest.json. make compare and make table build one Report
per experiment (ReportInputs with the paths they know) and read its public attributes."""
from __future__ import annotations

import datetime as dt
import importlib.metadata as metadata
import json
import os
import platform
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

import fingerprint as fp
import paired
import runparse as rp
from lab import REPO_ROOT, counselling_report, human_facts
from lab.files import load_yaml, rel, sha256_bytes, sha256_file
from lab.report.evaluations import (BASE_TARGET, SIDES, STORE_NAME, STORE_RECORD, arena_sides, benchmark_labels, category_row,
                                    compare_subjects,
                                    extra_base_sides, headline_rows, paired_stats, question_scores, read_benchmarks,
                                    recorded_contamination, replies_counts)

PACKAGES = ["torch", "transformers", "peft", "ms-swift", "evalscope", "swanlab"]
CONFIG_TABLE_KEYS = ["model", "tuner_type", "torch_dtype", "num_train_epochs", "per_device_train_batch_size",
                     "per_device_eval_batch_size", "gradient_accumulation_steps", "learning_rate", "lr_scheduler_type",
                     "warmup_ratio", "lora_rank", "lora_alpha", "lora_dropout", "target_modules", "router_aux_loss_coef",
                     "max_length", "split_dataset_ratio", "eval_steps", "save_steps", "save_total_limit",
                     "logging_steps", "seed", "data_seed"]
SECRET_FLAGS = re.compile(r"(--(?:swanlab_token|api_key|hub_token|token)[ =])(?!\"?\$)(\S+)")
SECRET_ENV = re.compile(r"\b((?:SWANLAB_TOKEN|SWANLAB_API_KEY|SERVE_API_KEY|HF_TOKEN|MODELSCOPE_API_TOKEN)=)(?!\"?\$)(\S+)")


def scrub(text: str) -> str:
    """Commands are recorded token-free; this is a second guard for hand-made files."""
    text = SECRET_FLAGS.sub(r"\1<redacted>", text)
    return SECRET_ENV.sub(r"\1<redacted>", text)


@dataclass
class ReportInputs:
    """What a Report reads: the experiment's paths (scripts/report.sh gathers them, or
    scripts/compare.sh once per experiment) and the facts only the shell knows. Paths are
    strings as given on the command line; an empty one is not given. make compare and make
    table give the paths only: the rest keeps its default."""
    exp: str
    run_dir: str
    export_dir: str
    results_dir: str
    steps: str
    config: str
    eval_config: str = ""  # the experiment's eval.yaml: which benchmarks to show
    repo_root: str = str(REPO_ROOT)
    lock_file: str = ""
    template: str = ""
    deploy_venv: str = ""
    current_inputs: str = ""  # the current inputs' fingerprints (.state/<EXP>/inputs)
    inputs_digest: str = ""  # the digest of what the report reads (its fingerprint)
    env_file: str = ""  # the env file's path (its name only; values are never read)
    profile: str = "cpu"
    gpu_setting: str = "cpu"
    gpus: str = ""  # GPU model names, one a line (nvidia-smi)
    cpu_cores: str = field(default_factory=lambda: str(os.cpu_count()))
    git_commit: str = "unknown"
    git_dirty: str = "0"

    @classmethod
    def from_namespace(cls, args) -> "ReportInputs":
        """The inputs among a command line's parsed arguments (argparse: --run-dir is run_dir)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})


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
    return {"path": rel(path, root), "sha256": sha256_file(path)}


def count_lines(path: Path) -> int | None:
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", errors="replace") as handle:
        return sum(1 for line in handle if line.strip())


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


class Report:
    """An experiment's report as facts. Public to make compare and make table: exp, run (the
    training run read), train (its numbers), export, records (each step's lab-inputs.json),
    benchmarks (each evaluation, both models), setting(key), recorded_config(), dataset_hashes(),
    config_hash(); facts() and manifest() for make report."""

    def __init__(self, inputs: ReportInputs):
        self.inputs = args = inputs
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
        records = {"train": fp.read_json(Path(self.inputs.run_dir) / "lab-inputs.json"),
                   "export": fp.read_json(Path(self.inputs.export_dir) / "lab-inputs.json")}
        # The evaluations of eval.yaml on both models, as the report shows them; not the folders
        # set aside (<bench>.replaced-<time>) or of a benchmark no longer configured.
        results = Path(self.inputs.results_dir)
        for bench in read_benchmarks(Path(self.inputs.eval_config) if self.inputs.eval_config else None):
            if bench["section"] == "arena":  # its own step (make arena), in the fine-tuned model's folder
                records["arena"] = fp.read_json(results / self.exp / bench["key"] / "lab-inputs.json")
                continue
            for _, suffix in self.sides:
                served = f"{self.exp}{suffix}"
                records[f"eval-{served}-{bench['key']}"] = fp.read_json(results / served / bench["key"] / "lab-inputs.json")
        return {k: v for k, v in records.items() if v}

    def current_inputs(self, step: str) -> dict | None:
        current_dir = Path(self.inputs.current_inputs) if self.inputs.current_inputs else None
        return fp.read_json(current_dir / f"{step}.json") if current_dir and current_dir.is_dir() else None

    def recorded_config(self, step: str = "train") -> tuple[str, dict] | None:
        """The config of STEP as it ran (sft.yaml for train, export.yaml for export): its path,
        and its sha256 and content, from the step's record."""
        configs = ((self.records.get(step) or {}).get("inputs") or {}).get("configs") or {}
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
                return load_yaml(handle) or {}
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
        base = sha256_bytes(fp.canonical({"configs": {}, "command": [], "env": [], "model": train_model,
                                             "files": {}}).encode()) if train_model else None
        return {"tuned": ("export", export), "base": ("base-model", base)}

    def _read_evaluations(self) -> list[dict]:
        """Each benchmark of eval.yaml on both models: its checked result (or why there
        is none) and its command. An evaluation of another model than the one this report
        describes (an earlier export, another base model) is not shown as its result."""
        results = Path(self.inputs.results_dir)
        expected = self.served_model_digests()
        benchmarks, arenas = [], []
        for bench in read_benchmarks(Path(self.inputs.eval_config) if self.inputs.eval_config else None):
            entry = dict(bench)
            if bench["section"] == "arena":  # read after the evaluations it pairs, in its place
                arenas.append((len(benchmarks), entry))
                continue
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
        for place, entry in reversed(arenas):
            benchmarks.insert(place, self._read_arena(entry, benchmarks))
        return benchmarks

    def _read_arena(self, entry: dict, read: list[dict]) -> dict:
        """The arena (make arena): the fine-tuned model against the base on the same prompts, one
        result (results/<exp>/<exp>/<arena>), shown as made from other replies when a paired
        evaluation has been redone since, or is itself of another model (READ: the benchmarks
        read before it; a retrained model's old replies are no reply of the current one)."""
        stale = {b["key"] for b in read if "other_model" in (b.get("tuned", {}).get("state"), b.get("base", {}).get("state"))}
        results = Path(self.inputs.results_dir)
        result = rp.read_eval_result(results / self.exp / entry["key"])
        if result.get("command"):
            result["command"] = scrub(result["command"])
        result.update(served=self.exp, target=entry["target"], examples={}, contamination=None)
        current = {}
        for pair in ((result.get("extra") or {}).get("pairs") or []):
            digests = [(fp.read_json(results / served / pair["name"] / "lab-eval.json") or {}).get("inputs_digest")
                       for served in (self.exp, f"{self.exp}-base")]
            current[pair["name"]] = None if pair["name"] in stale else dict(zip(("tuned", "base"), digests))
        sides = arena_sides(result, [side for side, _ in self.sides], current)
        if sides["tuned"]["state"] != "done":
            self.notes.append(rp.note("eval_" + sides["tuned"]["state"], benchmark=entry["key"], side="tuned",
                                      target=entry["target"], reason=result.get("reason")))
        return {**entry, **sides, "difference": None, "subjects": [], "stats": {}}

    def base_sources(self) -> list[dict]:
        """Where each finished evaluation of the base model comes from: the entry of the store of
        shared evaluations its results folder links to (scripts/lib/store.sh), the experiment that
        made it and its evaluation fingerprint (the entry's name)."""
        rows = []
        results = Path(self.inputs.results_dir)
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
        return file_hash(Path(self.inputs.lock_file), self.root)

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
        path = Path(self.inputs.eval_config) if self.inputs.eval_config else None
        config = load_yaml(path.read_text(encoding="utf-8")) if path and path.is_file() else {}
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
        flags += counselling_report.contamination_flags(self.benchmarks, [side for side, _ in self.sides])
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
        if self.inputs.git_dirty == "1":
            flags.append({"kind": "dirty"})
        return flags

    def summary(self, input_changes: list[str]) -> dict:
        return {"rows": headline_rows(self.benchmarks), "flags": self.flags(input_changes),
                "commit": (self.inputs.git_commit or "unknown")[:12]}

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
            "template": rel(self.inputs.template, self.root),
            "manifest_name": f"{self.exp}.manifest.json",
            "report_name": f"{self.exp}.md",
            "appendix_name": f"{self.exp}.appendix.md",
            "html_name": f"{self.exp}.html",
            "summary": self.summary(input_changes),
            "paired_method": {"alpha": paired.ALPHA, "resamples": paired.BOOTSTRAP_RESAMPLES,
                              "seed": paired.BOOTSTRAP_SEED},
            "step_log": self.step_log(),
            "input_changes": input_changes,
            "env_file": self.inputs.env_file,
            "setting": {key: self.setting(key) for key in ("model", "tuner_type", "dataset", "split_dataset_ratio",
                                                            "seed", "data_seed")},
            "times": {"first": min((r["start"] for r in runs if r["start"]), default=None),
                      "last": max((r["end"] for r in runs if r["end"]), default=None)},
            "hardware": {"profile": self.inputs.profile, "gpu_setting": self.inputs.gpu_setting, "gpus": self.gpus,
                         "cpu_cores": self.inputs.cpu_cores},
            "packages": ["python"] + PACKAGES,
            "versions": self.versions,
            "lock": self.recorded_lock(),
            "lock_file": rel(self.inputs.lock_file, self.root),
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
            "store_dir": rel(Path(self.inputs.results_dir).parent / STORE_NAME, self.root),
            "benchmarks": self.benchmarks,
            "benchmark_labels": benchmark_labels(Path(self.inputs.eval_config) if self.inputs.eval_config else None),
            "answer_mode": self.answer_mode(),
            "extra_sides": [{**extra, "served": f"{self.exp}{extra['suffix']}"} for extra in self.extra_sides],
            # The evaluated sides in the order the tables list them: base, base in each extra mode, fine-tuned.
            "eval_sides": [{"side": side, "served": f"{self.exp}{suffix}"}
                           for side, suffix in self.sides[1:] + self.sides[:1]],
            "examples": self.dialog_examples(),
            "counselling": counselling_report.facts(
                self.benchmarks, Path(self.inputs.eval_config) if self.inputs.eval_config else None,
                [{"side": side, "served": f"{self.exp}{suffix}"} for side, suffix in self.sides[1:] + self.sides[:1]]),
            "human": human_facts.report_facts(Path(self.inputs.results_dir), self.exp),  # 9.5, make human-report
            "results_dir": rel(self.inputs.results_dir, self.root),
            "efficiency": {"trainable_share": t["trainable_params"] / total * 100 if t["trainable_params"] and total else None,
                           "on_gpu": bool(self.gpus)},
            "notes": self.notes_all(),
            "provenance": {"git_commit": self.inputs.git_commit, "git_dirty": self.inputs.git_dirty == "1",
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
            "git": {"commit": self.inputs.git_commit, "dirty": self.inputs.git_dirty == "1"},
            "inputs_digest": self.inputs.inputs_digest or None,
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
            "env_file": self.inputs.env_file or None,
            "hardware": {"profile": self.inputs.profile, "gpu_setting": self.inputs.gpu_setting,
                         "gpus": self.gpus, "gpu_count": len(self.gpus), "device": self.gpus[0] if self.gpus else "CPU",
                         "cpu_cores": int(self.inputs.cpu_cores) if str(self.inputs.cpu_cores).isdigit() else self.inputs.cpu_cores},
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

