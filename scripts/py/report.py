"""Renders report/<EXP>.md, the two PNG charts and report/<EXP>.manifest.json from
the run's own files. Called by scripts/report.sh, which passes the facts only the
shell knows (git state, GPUs, core count) as arguments.

Exit status: 0 with a report (missing parts are marked 未运行), 2 when a file is
not JSON (the message names file and line)."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as metadata
import json
import os
import platform
import re
import string
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fingerprint as fp  # noqa: E402
import runparse as rp  # noqa: E402

PACKAGES = ["torch", "transformers", "peft", "ms-swift", "evalscope", "swanlab"]
SECRET_FLAGS = re.compile(r"(--(?:swanlab_token|api_key|hub_token|token)[ =])(?!\"?\$)(\S+)")
SECRET_ENV = re.compile(r"\b((?:SWANLAB_TOKEN|SWANLAB_API_KEY|SERVE_API_KEY|HF_TOKEN|MODELSCOPE_API_TOKEN)=)(?!\"?\$)(\S+)")


# ---------------------------------------------------------------- formatting

def not_run(target: str) -> str:
    return f"未运行（{target}）"


def fmt(value, digits: int = 4, missing: str = "未记录") -> str:
    if value is None:
        return missing
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15 and digits == 0:
            return str(int(value))
        return f"{value:.{digits}f}"
    return str(value)


def fmt_int(value) -> str:
    return f"{int(value):,}" if value is not None else "未记录"


def fmt_duration(seconds) -> str:
    if seconds is None:
        return "未记录"
    seconds = float(seconds)
    h, rest = divmod(int(round(seconds)), 3600)
    m, s = divmod(rest, 60)
    text = f"{h} 小时 {m} 分 {s} 秒" if h else (f"{m} 分 {s} 秒" if m else f"{s} 秒")
    return f"{text}（{seconds} s）"


def pct(score) -> str:
    return "未记录" if score is None else f"{score * 100:.2f}%"


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |")
    return "\n".join(lines)


def code(text: str, lang: str = "bash") -> str:
    return f"```{lang}\n{text.rstrip()}\n```"


def scrub(text: str) -> str:
    """Commands are recorded token-free; this is a second guard for hand-made files."""
    text = SECRET_FLAGS.sub(r"\1<redacted>", text)
    return SECRET_ENV.sub(r"\1<redacted>", text)


def rel(path: Path | str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except (ValueError, OSError):
        return str(path)


# ---------------------------------------------------------------- atomic output

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


# ---------------------------------------------------------------- facts

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
    if lmdeploy:
        versions["lmdeploy"] = lmdeploy
    return versions


def file_hash(path: Path | None, root: Path) -> dict | None:
    if not path or not path.is_file():
        return None
    return {"path": rel(path, root), "sha256": rp.sha256_file(path)}


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


def plot_accuracy(evals: dict, exp: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    labels = ["C-Eval", "CMMLU", "CMMLU psychology"]
    width = 0.38
    for offset, side, color in ((-width / 2, "base", "tab:gray"), (width / 2, "tuned", "tab:green")):
        for i, bench in enumerate(rp.BENCHMARKS):
            report = evals[bench.key][side]
            x = i + offset
            if report and report["score"] is not None:
                ax.bar(x, report["score"] * 100, width, color=color)
                ax.text(x, report["score"] * 100 + 1, f"{report['score'] * 100:.1f}", ha="center", fontsize=8)
            else:
                ax.text(x, 2, "not run", ha="center", rotation=90, fontsize=8, color=color)
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color="tab:gray", label=f"{exp}-base (base)"),
                       Patch(color="tab:green", label=f"{exp} (fine-tuned)")], loc="upper right")
    ax.set_xlim(-0.7, len(labels) - 0.3)
    ax.set_xticks(range(len(labels)), labels)
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


# ---------------------------------------------------------------- results

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


def eval_results(evals: dict) -> dict:
    out = {}
    for bench in rp.BENCHMARKS:
        tuned, base = evals[bench.key]["tuned"], evals[bench.key]["base"]
        diff = None
        if tuned and base and tuned["score"] is not None and base["score"] is not None:
            diff = tuned["score"] - base["score"]
        out[bench.key] = {"label": bench.label, "tuned": tuned, "base": base, "difference": diff,
                          "target": bench.target, "base_target": rp.BASE_TARGET}
    return out


# ---------------------------------------------------------------- sections

class Report:
    def __init__(self, args):
        self.args = args
        self.root = Path(args.repo_root).resolve()
        self.exp = args.exp
        self.notes: list[str] = []
        self.run = rp.read_run(Path(args.run_dir))
        self.export = rp.read_export(Path(args.export_dir))
        self.steps = rp.read_steps(Path(args.steps))
        self.evals_raw = rp.read_evals(Path(args.results_dir), self.exp)
        self.records = self._read_records()
        self._drop_stale_evaluations()
        self.train = train_results(self.run)
        self.evals = eval_results(self.evals_raw)
        self.versions = package_versions(Path(args.deploy_venv) if args.deploy_venv else None)
        self.config_path = Path(args.config)
        self.config = self._read_config()
        self.gpus = [g.strip() for g in (args.gpus or "").splitlines() if g.strip()]
        self.generated_at = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _read_records(self) -> dict:
        """What each step recorded, when it ran, as made from (lab-inputs.json next to its outputs)."""
        records = {"train": fp.read_json(Path(self.args.run_dir) / "lab-inputs.json"),
                   "export": fp.read_json(Path(self.args.export_dir) / "lab-inputs.json")}
        results = Path(self.args.results_dir)
        for path in sorted(results.glob("*/*/lab-inputs.json")) if results.is_dir() else []:
            records[f"eval-{path.parent.parent.name}-{path.parent.name}"] = fp.read_json(path)
        return {k: v for k, v in records.items() if v}

    def current_inputs(self, step: str) -> dict | None:
        current_dir = Path(self.args.current_inputs) if self.args.current_inputs else None
        return fp.read_json(current_dir / f"{step}.json") if current_dir and current_dir.is_dir() else None

    def _drop_stale_evaluations(self) -> None:
        """An evaluation of another model than the one this report describes (an earlier
        export, or another base model) is not shown as a result of this run."""
        export = (self.records.get("export") or {}).get("digest")
        train_model = ((self.records.get("train") or {}).get("inputs") or {}).get("model")
        base = fp.sha256_bytes(fp.canonical({"configs": {}, "command": [], "env": [], "model": train_model,
                                             "files": {}}).encode()) if train_model else None
        for bench in rp.BENCHMARKS:
            for side, served, target, model in (("tuned", self.exp, bench.target, ("export", export)),
                                                ("base", f"{self.exp}-base", rp.BASE_TARGET, ("base-model", base))):
                record = self.records.get(f"eval-{served}-{bench.key}")
                if not self.evals_raw[bench.key][side] or not record or model[1] is None:
                    continue
                if ((record.get("inputs") or {}).get("upstream") or {}).get(model[0]) != model[1]:
                    self.evals_raw[bench.key][side] = None
                    self.notes.append(f"{bench.label}（{'微调后' if side == 'tuned' else '基座'}）的已有结果评测的是另一个模型"
                                      f"（此前的导出或基座），未计入本报告：运行 {target} 重新评测")

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
            lines += [f"{step}: {change}" for change in changes if not change.startswith("upstream.")]
        return lines

    def inputs_notice(self) -> str:
        changes = self.input_changes()
        if not changes:
            return ""
        items = "\n".join(f"> - `{scrub(c)}`" for c in changes[:40])
        return ("> **注意：当前的配置或输入与本报告中的运行不一致。** 本报告描述的是实际运行时的输入"
                "（记录在各输出目录的 lab-inputs.json 中）；以下输入此后发生了变化"
                "（`make all` 会重新运行受影响的步骤）：\n" + items + "\n")

    def _read_config(self) -> dict:
        recorded = self.recorded_config()
        if recorded and isinstance(recorded[1].get("content"), dict):
            return recorded[1]["content"]
        try:
            import yaml
            with self.config_path.open(encoding="utf-8") as handle:
                return yaml.safe_load(handle) or {}
        except Exception as error:  # an unreadable config is reported, not fatal
            self.notes.append(f"无法读取 {rel(self.config_path, self.root)}：{error}")
            return {}

    def setting(self, key):
        """A training setting as the run saw it (args.json), else as configured."""
        if key in self.run.args and self.run.args[key] not in (None, ""):
            return self.run.args[key]
        return self.config.get(key)

    # -- pieces used by several sections

    def commands(self, step: str) -> list[str]:
        """Commands of a step; "eval" also matches eval-ceval, eval-base, ..."""
        return [scrub(c["command"]) for c in self.steps["commands"]
                if c["step"] == step or str(c["step"]).startswith(step + "-")]

    def last_run(self, step: str) -> dict | None:
        runs = [r for r in self.steps["runs"] if r["step"] == step]
        return runs[-1] if runs else None

    def health_events(self) -> list[dict]:
        return [e for e in self.steps["events"] if e.get("step") == "health" and e.get("event") == "result"]

    def dataset_hashes(self) -> list[dict]:
        """The datasets the training recorded (local files by sha256), else the files now."""
        recorded = ((self.records.get("train") or {}).get("inputs") or {}).get("datasets")
        if recorded is not None:
            return [{"path": d["id"], "sha256": d["sha256"]} for d in recorded if d.get("sha256")]
        datasets = self.setting("dataset")
        return [file_hash(p, self.root) for p in rp.dataset_files(datasets, self.root)]

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

    # -- sections

    def overview(self) -> str:
        t = self.train
        if not self.run.exists:
            status = not_run("make train")
        elif t["finished"]:
            status = "训练已完成"
        else:
            status = f"训练进行中或已中断（第 {fmt(t['step'])} / {fmt(t['max_steps'])} 步；make train 会从最后一个检查点继续）"
        first = min((r["start"] for r in self.steps["runs"] if r["start"]), default=None)
        last = max((r["end"] for r in self.steps["runs"] if r["end"]), default=None)
        hardware = f"{len(self.gpus)} × {self.gpus[0]}" if self.gpus else "CPU"
        datasets = self.setting("dataset")
        rows = [
            ["实验名", f"`{self.exp}`"],
            ["基座模型", f"`{self.setting('model') or '未记录'}`"],
            ["数据集", ", ".join(f"`{d}`" for d in (datasets if isinstance(datasets, list) else [datasets])) if datasets else "未记录"],
            ["训练方式", f"{self.setting('tuner_type') or self.setting('train_type') or '未记录'}（ms-swift `swift sft`）"],
            ["实验时间", f"{first or '未记录'} — {last or '未记录'}（UTC，来自 .state/{self.exp}/steps.jsonl）"],
            ["硬件", f"{hardware}；主机 {self.args.cpu_cores} 个 CPU 核"],
            ["状态", status],
        ]
        return table(["项目", "内容"], rows)

    def environment(self) -> str:
        v = self.versions
        rows = [[name, f"`{v[name]}`" if v.get(name) else "未安装"] for name in ["python"] + PACKAGES]
        if "lmdeploy" in v:
            rows.append(["lmdeploy（部署专用环境）", f"`{v['lmdeploy']}`"])
        lock = self.recorded_lock()
        gpu = "、".join(f"GPU {i}: {name}" for i, name in enumerate(self.gpus)) if self.gpus else "CPU（未检测到 NVIDIA GPU）"
        text = table(["组件", "版本"], rows)
        text += "\n\n" + table(["项目", "内容"], [
            ["设备配置", f"`{self.args.profile}`（GPU={self.args.gpu_setting}）"],
            ["GPU", gpu],
            ["CPU 核数", self.args.cpu_cores],
            ["依赖锁文件", f"`{lock['path']}` sha256 `{lock['sha256']}`" if lock else f"`{rel(self.args.lock_file, self.root)}` 不存在"],
        ])
        text += "\n\n重建环境：`make env`（按锁文件安装，锁文件未变时不重装）。"
        return text

    def data(self) -> str:
        datasets = self.setting("dataset")
        datasets = datasets if isinstance(datasets, list) else ([datasets] if datasets else [])
        rows = []
        local = {h["path"]: h for h in self.dataset_hashes() if h}
        for item in datasets:
            files = rp.dataset_files([item], self.root)
            if files:
                path = files[0]
                count = sum(1 for line in path.open(encoding="utf-8", errors="replace") if line.strip())
                h = local.get(rel(path, self.root))
                rows.append([f"`{item}`", f"本地文件，{count} 条", f"`{h['sha256']}`" if h else "未记录"])
            else:
                rows.append([f"`{item}`", "远程数据集（ModelScope/Hugging Face）", "未记录（非本地文件）"])
        if not rows:
            return "未记录（配置和 args.json 中都没有 dataset）"
        val = self.run.run_dir / "val_dataset.jsonl"
        val_count = sum(1 for line in val.open(encoding="utf-8", errors="replace") if line.strip()) if val.is_file() else None
        text = table(["数据集", "来源与规模", "sha256"], rows)
        text += (f"\n\n- **验证集划分**: split_dataset_ratio = `{self.setting('split_dataset_ratio')}`，"
                 f"验证集 {fmt_int(val_count) + ' 条（' + rel(val, self.root) + '）' if val_count is not None else '未记录'}")
        for label, key in (("训练集 token 数统计", "train_dataset_stats"), ("验证集 token 数统计", "val_dataset_stats")):
            if self.train.get(key):
                text += f"\n- **{label}**（ms-swift：均值±标准差, 最小, 最大, 条数）: `{self.train[key]}`"
        text += f"\n- **数据顺序种子**: data_seed = `{self.setting('data_seed')}`"
        return text

    def train_config(self) -> str:
        keys = ["model", "tuner_type", "torch_dtype", "num_train_epochs", "per_device_train_batch_size",
                "per_device_eval_batch_size", "gradient_accumulation_steps", "learning_rate", "lr_scheduler_type",
                "warmup_ratio", "lora_rank", "lora_alpha", "lora_dropout", "target_modules", "router_aux_loss_coef",
                "max_length", "split_dataset_ratio", "eval_steps", "save_steps", "save_total_limit",
                "logging_steps", "seed", "data_seed"]
        rows = [[f"`{k}`", f"`{json.dumps(self.setting(k), ensure_ascii=False) if isinstance(self.setting(k), (list, dict)) else self.setting(k)}`"]
                for k in keys if self.setting(k) is not None]
        config = self.config_hash()
        text = (f"配置文件：`{config['path']}`（运行时的 sha256 `{config['sha256']}`）；下表取自运行目录的 args.json"
                f"（{'存在' if self.run.args else '不存在，改用配置文件'}）。\n\n") if config else ""
        text += table(["参数", "值"], rows) if rows else "未记录"
        command = self.run.command or (self.commands("train")[-1] if self.commands("train") else None)
        text += "\n\n训练命令（不含密钥，来自 lab-command.txt）：\n\n"
        text += code(scrub(command)) if command else not_run("make train")
        return text

    def train_process(self) -> str:
        if not self.run.exists:
            return not_run("make train")
        text = f"![loss 曲线]({self.exp}-loss.png)\n\n"
        text += (f"训练日志 {len(self.run.train)} 条、验证评估 {len(self.run.evals)} 条"
                 f"（{rel(self.run.run_dir / 'logging.jsonl', self.root)}）；检查点："
                 f"{', '.join(self.run.checkpoints) if self.run.checkpoints else '无'}。\n\n")
        if self.run.evals:
            text += table(["步", "epoch", "eval_loss", "eval_token_acc"],
                          [[fmt(e["step"]), fmt(e["epoch"], 3), fmt(e["eval_loss"]), fmt(e["eval_token_acc"])] for e in self.run.evals])
        else:
            text += "验证评估：" + not_run("make train，且配置 split_dataset_ratio > 0")
        text += "\n\n实时查看进度：`make status EXP=" + self.exp + "`。"
        return text

    def export_section(self) -> str:
        e = self.export
        if not e["exists"]:
            return not_run("make export")
        size = e.get("size_bytes")
        rows = [
            ["目录", f"`{rel(e['dir'], self.root)}`"],
            ["来源检查点", f"`{rel(e['checkpoint'], self.root)}`" if e.get("checkpoint") else "未记录"],
            ["权重文件", f"{len(e.get('shards', []))} 个 safetensors"],
            ["参数量", fmt_int(e.get("params"))],
            ["目录大小", f"{size / 2**20:.1f} MiB" if size is not None else "未记录"],
        ]
        text = table(["项目", "内容"], rows)
        command = e.get("command")
        text += "\n\n导出命令：\n\n" + (code(scrub(command)) if command else "未记录")
        return text

    def deploy(self) -> str:
        commands = self.commands("deploy")
        text = "部署命令（最近一次）：\n\n" + (code(commands[-1]) if commands else not_run("make deploy"))
        events = self.health_events()
        if events:
            text += "\n\n" + table(["时间", "健康检查结果"], [[e.get("time"), e.get("detail", "")] for e in events[-4:]])
        else:
            text += "\n\n健康检查：" + not_run("make health")
        return text

    def evaluation(self) -> str:
        commands = self.commands("eval")
        text = ("评测命令：\n\n" + code("\n\n".join(commands[-6:]))) if commands else "评测命令：" + not_run("make eval-ceval / make eval-cmmlu / make eval-base")
        details = []
        for bench in rp.BENCHMARKS:
            result = self.evals[bench.key]
            tuned, base = result["tuned"], result["base"]
            if not tuned and not base:
                continue
            names = []
            for report in (tuned, base):
                for s in (report or {}).get("subjects", []):
                    if s["name"] not in names:
                        names.append(s["name"])
            by = {side: {s["name"]: s for s in (r or {}).get("subjects", [])} for side, r in (("tuned", tuned), ("base", base))}
            rows = []
            for name in names:
                t, b = by["tuned"].get(name), by["base"].get(name)
                diff = (t["score"] - b["score"]) * 100 if t and b and t["score"] is not None and b["score"] is not None else None
                rows.append([f"`{name}`", t["num"] if t else (b["num"] if b else ""),
                             pct(t["score"]) if t else not_run(bench.target), pct(b["score"]) if b else not_run(rp.BASE_TARGET),
                             f"{diff:+.2f} 个百分点" if diff is not None else "—"])
            details.append(f"**{bench.label}** 各学科：\n\n" + table(["学科", "题数", "微调后", "基座", "差值"], rows))
        text += "\n\n" + ("\n\n".join(details) if details else "各学科明细：" + not_run("make eval-ceval / make eval-cmmlu"))
        text += f"\n\n结果文件位于 `{rel(self.args.results_dir, self.root)}/`；查看界面：`make eval-app`。"
        return text

    def train_results_section(self) -> str:
        t = self.train
        if not self.run.exists:
            return "训练结果：" + not_run("make train")
        unfinished = "训练未结束（make train）"
        rows = [
            ["总步数", f"{fmt(t['step'])} / {fmt(t['max_steps'])}" if t["max_steps"] else fmt(t["step"])],
            ["训练轮数（epoch）", f"{fmt(t['epoch'], 3)}（配置 {fmt(t['num_train_epochs'], 0)}）"],
            ["最终训练 loss", f"{fmt(t['final_train_loss'])}（第 {t['final_train_loss_step']} 步）" if t["final_train_loss"] is not None else not_run("make train")],
            ["最低训练 loss", f"{fmt(t['min_train_loss'])}（第 {t['min_train_loss_step']} 步）" if t["min_train_loss"] is not None else not_run("make train")],
            ["全程平均训练 loss（train_loss）", fmt(t["summary_train_loss"]) if t["summary_train_loss"] is not None else unfinished],
            ["最终验证 loss", f"{fmt(t['final_eval_loss'])}（第 {t['final_eval_loss_step']} 步）" if t["final_eval_loss"] is not None else not_run("make train，需 split_dataset_ratio > 0")],
            ["最佳验证 loss", f"{fmt(t['best_eval_loss'])}（第 {t['best_eval_loss_step']} 步）" if t["best_eval_loss"] is not None else not_run("make train，需 split_dataset_ratio > 0")],
            ["训练时间", fmt_duration(t["train_runtime_s"]) if t["train_runtime_s"] is not None else f"{unfinished}；已用 {fmt_duration(t['elapsed_s'])}"],
        ]
        return table(["指标", "数值"], rows)

    def eval_results_section(self) -> str:
        rows = []
        for bench in rp.BENCHMARKS:
            r = self.evals[bench.key]
            tuned = r["tuned"]
            rows.append([bench.label, fmt_int(tuned["num"]) if tuned else "—",
                         pct(tuned["score"]) if tuned else not_run(bench.target),
                         f"`{tuned['metric']}`" if tuned and tuned.get("metric") else "—"])
        return "微调后模型（`" + self.exp + "`）：\n\n" + table(["基准", "题数", "准确率", "指标"], rows)

    def comparison(self) -> str:
        rows = []
        for bench in rp.BENCHMARKS:
            r = self.evals[bench.key]
            tuned, base, diff = r["tuned"], r["base"], r["difference"]
            rows.append([bench.label,
                         pct(base["score"]) if base else not_run(rp.BASE_TARGET),
                         pct(tuned["score"]) if tuned else not_run(bench.target),
                         f"{diff * 100:+.2f} 个百分点" if diff is not None else "—"])
        return (table(["基准", f"基座（{self.exp}-base）", f"微调后（{self.exp}）", "差值"], rows)
                + f"\n\n![准确率对比]({self.exp}-accuracy.png)")

    def efficiency(self) -> str:
        t = self.train
        unfinished = "训练未结束（make train）" if self.run.exists else not_run("make train")
        memory = (f"{t['peak_memory_gib']:.2f} GiB（logging.jsonl 中 memory(GiB) / memory 的最大值，即 torch 保留显存峰值）" if t["peak_memory_gib"] is not None
                  else ("未记录（CPU 训练，ms-swift 不记录显存）" if not self.gpus else "未记录（logging.jsonl 中没有 memory(GiB)）"))
        total = self.export.get("params")
        trainable = t["trainable_params"]
        share = f"，占合并后模型 {fmt_int(total)} 个参数的 {trainable / total * 100:.3f}%" if trainable and total else ""
        rows = [
            ["吞吐（样本/秒）", fmt(t["train_samples_per_second"], 3) if t["train_samples_per_second"] is not None else unfinished],
            ["吞吐（步/秒）", fmt(t["train_steps_per_second"], 3) if t["train_steps_per_second"] is not None else unfinished],
            ["吞吐（token/秒）", fmt(t["tokens_per_second"], 1) if t["tokens_per_second"] is not None else "未记录（trainer_state.json 的 num_input_tokens_seen 为 0）"],
            ["可训练参数", (f"{fmt_int(trainable)}（LoRA adapter_model.safetensors 的张量元素数{share}）" if trainable is not None else
                         (not_run("make train") if not self.run.checkpoints else "未记录（检查点中没有 adapter_model.safetensors）"))],
            ["ms-swift 记录的参数信息", f"`{t['model_parameter_info']}`" if t["model_parameter_info"] else "未记录（logging.jsonl 最后一行没有 model_parameter_info）"],
            ["峰值显存", memory],
        ]
        return table(["指标", "数值"], rows)

    def missing(self) -> str:
        items = list(dict.fromkeys(self.run.notes + self.export.get("notes", []) + self.steps["notes"] + self.notes))
        if not self.export["exists"]:
            items.append("导出：" + not_run("make export"))
        for bench in rp.BENCHMARKS:
            r = self.evals[bench.key]
            if not r["tuned"]:
                items.append(f"{bench.label}（微调后）：" + not_run(bench.target))
            if not r["base"]:
                items.append(f"{bench.label}（基座）：" + not_run(rp.BASE_TARGET))
        if not self.health_events():
            items.append("健康检查：" + not_run("make health"))
        return "\n".join(f"- {i}" for i in items) if items else "无：所有步骤的结果都已记录。"

    def provenance(self) -> str:
        git = f"`{self.args.git_commit}`" + ("（工作区有未提交的修改）" if self.args.git_dirty == "1" else "（工作区干净）")
        hashes = [["代码版本（git）", git]]
        lock = self.recorded_lock()
        config = self.config_hash()
        for label, h in (("依赖锁文件", lock), ("实验配置", config)):
            hashes.append([label, f"`{h['path']}` `{h['sha256']}`" if h else "不存在"])
        for h in self.dataset_hashes():
            hashes.append(["数据集文件", f"`{h['path']}` `{h['sha256']}`"])
        hashes.append(["随机种子", f"seed `{self.setting('seed')}`，data_seed `{self.setting('data_seed')}`（args.json）"])
        text = table(["项目", "内容"], hashes)
        env = f" ENV_FILE={self.args.env_file}" if self.args.env_file else ""

        def outcome(r):
            if r["exit"] is not None:
                return "成功" if r["exit"] == 0 else f"失败（exit {r['exit']}）"
            if r is self.steps["runs"][-1] and r["step"] == "report":
                return "进行中（即本报告）"
            return "未结束或被中断"
        runs = [[r["step"], r["start"] or "未记录", r["end"] or "—", outcome(r)] for r in self.steps["runs"]]
        text += "\n\n各步骤时间（UTC，来自 `.state/" + self.exp + "/steps.jsonl`）：\n\n"
        text += table(["步骤", "开始", "结束", "结果"], runs) if runs else "未记录（尚未运行任何步骤）"
        commands = [f"# {c['step']} @ {c['time']}\n{scrub(c['command'])}" for c in self.steps["commands"]]
        text += "\n\n执行过的命令（按顺序，不含密钥）：\n\n" + (code("\n\n".join(commands)) if commands else "未记录")
        text += (f"\n\n复现：`git checkout {self.args.git_commit}`，`make env`，然后 "
                 f"`make train export EXP={self.exp}{env}`（评测：`make eval-ceval eval-cmmlu eval-base EXP={self.exp}{env}`）。"
                 "逐步 loss 是否一致可用 `tests/check_repro.sh` 检查（smoke 实验，CPU）。")
        return text

    # -- outputs

    def values(self) -> dict:
        return {
            "exp": self.exp, "generated_at": self.generated_at, "manifest_name": f"{self.exp}.manifest.json",
            "inputs_notice": self.inputs_notice(),
            "overview": self.overview(), "environment": self.environment(), "data": self.data(),
            "train_config": self.train_config(), "train_process": self.train_process(),
            "export": self.export_section(), "deploy": self.deploy(), "evaluation": self.evaluation(),
            "train_results": self.train_results_section(), "eval_results": self.eval_results_section(),
            "comparison": self.comparison(), "efficiency": self.efficiency(), "missing": self.missing(),
            "provenance": self.provenance(),
        }

    def manifest(self) -> dict:
        def strip(report):
            return None if report is None else {k: report[k] for k in ("score", "num", "metric", "subjects", "path")}
        return {
            "schema": 1,
            "experiment": self.exp,
            "generated_at": self.generated_at,
            "git": {"commit": self.args.git_commit, "dirty": self.args.git_dirty == "1"},
            "inputs_digest": self.args.inputs_digest or None,
            "files": {
                "lock": self.recorded_lock(),
                "config": self.config_hash(),
                "datasets": self.dataset_hashes(),
            },
            "fingerprints": self.records,
            "inputs_changed_since": self.input_changes(),
            "seed": self.setting("seed"),
            "data_seed": self.setting("data_seed"),
            "commands": [{"step": c["step"], "time": c["time"], "command": scrub(c["command"])} for c in self.steps["commands"]],
            "train_command": scrub(self.run.command) if self.run.command else None,
            "export_command": scrub(self.export["command"]) if self.export.get("command") else None,
            "steps": self.steps["runs"],
            "versions": self.versions,
            "env_file": self.args.env_file or None,
            "hardware": {"profile": self.args.profile, "gpu_setting": self.args.gpu_setting,
                         "gpus": self.gpus, "gpu_count": len(self.gpus), "device": self.gpus[0] if self.gpus else "CPU",
                         "cpu_cores": int(self.args.cpu_cores) if str(self.args.cpu_cores).isdigit() else self.args.cpu_cores},
            "run_dir": rel(self.run.run_dir, self.root),
            "checkpoint": self.run.checkpoint,
            "export": {k: (rel(v, self.root) if k in ("dir", "checkpoint") else v) for k, v in self.export.items()
                       if k in ("dir", "exists", "checkpoint", "params", "size_bytes")},
            "results": {
                "train": self.train,
                "eval": {k: {"tuned": strip(v["tuned"]), "base": strip(v["base"]), "difference": v["difference"]}
                         for k, v in self.evals.items()},
            },
            "missing": [line[2:] for line in self.missing().splitlines() if line.startswith("- ")],
        }


def render(template_text: str, values: dict, template_path: str) -> str:
    try:
        text = string.Template(template_text).substitute(values)
    except KeyError as error:
        raise SystemExit(f"report: {template_path}: unknown placeholder ${{{error.args[0]}}}; "
                         f"known: {', '.join(sorted(values))}")
    except ValueError as error:
        raise SystemExit(f"report: {template_path}: bad placeholder ({error}); write a literal $ as $$")
    for marker in ("[待补充]", "[待评测]", "[待对比]", "[待分析]"):
        if marker in text:
            raise SystemExit(f"report: the rendered report still contains {marker}; remove it from {template_path}")
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo-root", default=str(Path(__file__).resolve().parents[2]))
    for name in ("exp", "run-dir", "export-dir", "results-dir", "steps", "config", "lock-file",
                 "template", "out-dir"):
        parser.add_argument(f"--{name}", required=True)
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
    args = parser.parse_args(argv)

    try:
        report = Report(args)
        values = report.values()
        manifest = report.manifest()
    except rp.ParseError as error:
        print(f"report: error: {error}", file=sys.stderr)
        print("report: fix: repair or move that file away, then rerun make report", file=sys.stderr)
        return 2

    out = Path(args.out_dir)
    template_path = Path(args.template)
    text = render(template_path.read_text(encoding="utf-8"), values, str(template_path))
    plot_loss(report.run, out / f"{args.exp}-loss.png")
    plot_accuracy(report.evals_raw, args.exp, out / f"{args.exp}-accuracy.png")
    write_atomic(out / f"{args.exp}.manifest.json",
                 (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    write_atomic(out / f"{args.exp}.md", text.encode("utf-8"))
    for note in manifest["missing"]:
        print(f"report: missing: {note}", file=sys.stderr)
    print(out / f"{args.exp}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
