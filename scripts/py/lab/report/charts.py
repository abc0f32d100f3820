"""The report's charts as PNG files (matplotlib, headless): the loss curves of a run, the
accuracy bars base vs fine-tuned; save_figure for make compare's charts too."""
from __future__ import annotations

import io
from pathlib import Path

import runparse as rp
from lab.files import write_atomic


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
    save_figure(fig, path)


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
    save_figure(fig, path)


def save_figure(fig, path: Path) -> None:
    """FIG as a PNG at PATH, written atomically; the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
