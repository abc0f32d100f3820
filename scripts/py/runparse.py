"""Parsers for an ms-swift run dir, an export dir, step provenance and EvalScope reports.

Every reader returns what it could read plus notes about what is missing: facts
({"kind": ..., "file": ...}) that the report's template words (report/template.zh.md,
macro `note`); only a file that is not JSON at all raises ParseError (file and line).
Standard library only, so tests and `make status` can use it without the training stack.

  runparse.py progress RUN_DIR   the training's progress as JSON (make status)
  runparse.py finished RUN_DIR   exit 0 when the training wrote its final summary
"""

from __future__ import annotations

import json
import re
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ParseError(Exception):
    """A file that is not JSON (or JSON lines): names the file and the line."""

    def __init__(self, path: Path | str, line: int, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{path}:{line}: not valid JSON ({reason})")


# ---------------------------------------------------------------- values

_DURATION = re.compile(r"(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s)?$")


def to_number(value: Any) -> float | None:
    """ms-swift logs numbers as strings ('5.694'); None when not a number."""
    if value is None or value.__class__ is bool:
        return None
    if value.__class__ is float:
        return value
    if value.__class__ is int:
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def parse_duration(text: Any) -> float | None:
    """'1h 2m 3s' / '3s' / '1m 6s' -> seconds; None when not a duration."""
    if text is None:
        return None
    number = to_number(text)
    if number is not None:
        return number
    match = _DURATION.match(str(text).strip())
    if not match or not any(match.groups()):
        return None
    d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return ((d * 24 + h) * 60 + m) * 60 + s


def parse_step_fraction(text: Any) -> tuple[int | None, int | None]:
    """'9/10' -> (9, 10)."""
    match = re.match(r"\s*(\d+)\s*/\s*(\d+)\s*$", str(text or ""))
    return (int(match.group(1)), int(match.group(2))) if match else (None, None)


# ---------------------------------------------------------------- readers

def note(kind: str, **facts) -> dict:
    return {"kind": kind, **facts}


def read_jsonl(path: Path) -> tuple[list[dict], list[dict]]:
    """Rows of a JSON-lines file. A last line cut off mid-write (a run in
    progress, a full disk) is dropped with a note; any other bad line raises."""
    notes: list[dict] = []
    rows: list[dict] = []
    data = path.read_bytes()
    if not data.strip():
        return [], [note("empty", file=path.name)]
    lines = data.decode("utf-8", errors="replace").split("\n")
    ends_with_newline = lines[-1] == ""
    if ends_with_newline:
        lines.pop()
    last = len(lines)
    loads = json.loads
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = loads(line)
        except json.JSONDecodeError as error:
            if number == last and line.lstrip().startswith("{"):
                notes.append(note("truncated_line", file=path.name, line=number))
                continue
            raise ParseError(path, number, error.msg) from None
        if not isinstance(row, dict):
            raise ParseError(path, number, "a line is not a JSON object")
        rows.append(row)
    return rows, notes


def read_json_object(path: Path, shown: str | None = None) -> tuple[dict | None, list[dict]]:
    """A JSON object file. A truncated one yields None plus a note (the caller may
    salvage parts with salvage_log_history); one that is not JSON raises."""
    text = path.read_text(encoding="utf-8", errors="replace")
    shown = shown or path.name
    if not text.strip():
        return None, [note("empty", file=shown)]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        if text.lstrip().startswith("{") and error.pos >= len(text.rstrip()) - 1:
            return None, [note("truncated", file=shown)]
        raise ParseError(path, error.lineno, error.msg) from None
    if not isinstance(value, dict):
        raise ParseError(path, 1, "not a JSON object")
    return value, []


def salvage_log_history(path: Path) -> list[dict]:
    """The complete log_history rows before the point where a truncated
    trainer_state.json was cut off."""
    text = path.read_text(encoding="utf-8", errors="replace")
    start = text.find('"log_history"')
    if start < 0:
        return []
    pos = text.find("[", start)
    decoder = json.JSONDecoder()
    rows = []
    while pos >= 0:
        pos += 1
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] != "{":
            break
        try:
            row, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            break
        if isinstance(row, dict):
            rows.append(row)
    return rows


def safetensors_param_count(path: Path) -> int | None:
    """Number of parameters in a .safetensors file, from its JSON header."""
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error):
        return None
    total = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in info.get("shape", []):
            count *= dim
        total += count
    return total


# ---------------------------------------------------------------- training run

@dataclass
class TrainRun:
    run_dir: Path
    exists: bool = False
    train: list[dict] = field(default_factory=list)   # {step, loss, epoch, lr, grad_norm, token_acc, memory}
    evals: list[dict] = field(default_factory=list)   # {step, eval_loss, eval_token_acc, epoch}
    summary: dict = field(default_factory=dict)       # the final row: train_runtime, ...
    args: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)         # newest trainer_state.json (less log_history)
    checkpoint: str | None = None
    checkpoints: list[str] = field(default_factory=list)
    step: int | None = None
    max_steps: int | None = None
    elapsed_s: float | None = None
    remaining_s: float | None = None
    trainable_params: int | None = None
    command: str | None = None
    result: dict = field(default_factory=dict)        # ms-swift's final line (less log_history)
    notes: list[dict] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return "train_runtime" in self.summary


def _checkpoint_step(path: Path) -> int:
    match = re.search(r"checkpoint-(\d+)$", path.name)
    return int(match.group(1)) if match else -1


def _train_row(row: dict, step: int | None) -> dict:
    return {
        "step": step,
        "loss": to_number(row.get("loss")),
        "epoch": to_number(row.get("epoch")),
        "learning_rate": to_number(row.get("learning_rate")),
        "grad_norm": to_number(row.get("grad_norm")),
        "token_acc": to_number(row.get("token_acc")),
        "memory_gib": to_number(row.get("memory(GiB)")),
    }


def _eval_row(row: dict, step: int | None) -> dict:
    return {
        "step": step,
        "eval_loss": to_number(row.get("eval_loss")),
        "eval_token_acc": to_number(row.get("eval_token_acc")),
        "epoch": to_number(row.get("epoch")),
        "memory_gib": to_number(row.get("memory(GiB)")),
    }


def rows_from_logging(rows: list[dict]) -> tuple[list[dict], list[dict], dict, dict]:
    """Splits logging.jsonl rows into train rows, eval rows, the final summary and
    the progress of the last row ({step, max_steps, elapsed_s, remaining_s})."""
    train, evals, summary, progress = [], [], {}, {}
    last = None
    for row in rows:
        fraction = row.get("global_step/max_steps")
        step = None
        if fraction is not None:
            done, _, _ = str(fraction).partition("/")
            step = int(done) if done.strip().isdigit() else None
            if step is not None:
                last = row
        if "train_runtime" in row:
            summary.update({k: (to_number(v) if to_number(v) is not None else v) for k, v in row.items()})
        elif "last_model_checkpoint" in row or "model_parameter_info" in row:
            # ms-swift's last line: the run's result (its own copy of log_history, peak memory).
            summary["result"] = {k: v for k, v in row.items() if k != "log_history"}
            summary["result_log_history"] = row.get("log_history") or []
        elif "eval_loss" in row:
            evals.append(_eval_row(row, step))
        elif "loss" in row:
            train.append(_train_row(row, step))
    if last is not None:
        step, max_steps = parse_step_fraction(last.get("global_step/max_steps"))
        progress = {"step": step, "max_steps": max_steps,
                    "elapsed_s": parse_duration(last.get("elapsed_time")),
                    "remaining_s": parse_duration(last.get("remaining_time"))}
    return train, evals, summary, progress


def rows_from_log_history(history: list[dict]) -> tuple[list[dict], list[dict], dict]:
    train, evals, summary = [], [], {}
    for row in history:
        step = row.get("step")
        step = int(step) if isinstance(step, (int, float)) else None
        if "train_runtime" in row:
            summary = dict(row)
        elif "eval_loss" in row:
            evals.append(_eval_row(row, step))
        elif "loss" in row:
            train.append(_train_row(row, step))
    return train, evals, summary


def read_run(run_dir: Path) -> TrainRun:
    run = TrainRun(run_dir=run_dir)
    if not run_dir.is_dir():
        run.notes.append(note("no_run_dir", file=str(run_dir)))
        return run
    run.exists = True

    args_path = run_dir / "args.json"
    if args_path.is_file():
        args, notes = read_json_object(args_path)
        run.args, run.notes = args or {}, run.notes + notes
    else:
        run.notes.append(note("missing", file="args.json"))

    command_path = run_dir / "lab-command.txt"
    if command_path.is_file():
        run.command = command_path.read_text(encoding="utf-8", errors="replace").strip()

    # The newest trainer_state.json that can be read (a checkpoint being written may be cut off).
    checkpoints = sorted((p for p in run_dir.glob("checkpoint-*") if p.is_dir()), key=_checkpoint_step, reverse=True)
    run.checkpoints = [p.name for p in reversed(checkpoints)]
    history: list[dict] = []
    for checkpoint in checkpoints:
        state_path = checkpoint / "trainer_state.json"
        if not state_path.is_file():
            run.notes.append(note("missing", file=f"{checkpoint.name}/trainer_state.json"))
            continue
        state, notes = read_json_object(state_path, f"{checkpoint.name}/trainer_state.json")
        run.notes += notes
        if state is None:
            salvaged = salvage_log_history(state_path)
            if salvaged and not history:
                history = salvaged
                run.notes.append(note("salvaged", file=f"{checkpoint.name}/trainer_state.json", rows=len(salvaged)))
            continue
        run.checkpoint = checkpoint.name
        history = state.get("log_history") or history
        run.state = {k: v for k, v in state.items() if k != "log_history"}
        break
    if not checkpoints:
        run.notes.append(note("no_checkpoints"))

    logging_path = run_dir / "logging.jsonl"
    progress: dict = {}
    if logging_path.is_file():
        rows, notes = read_jsonl(logging_path)
        run.notes += notes
        run.train, run.evals, run.summary, progress = rows_from_logging(rows)
    else:
        run.notes.append(note("missing", file="logging.jsonl"))

    # trainer_state.json (or the result line) fills in what logging.jsonl lacks.
    result = run.summary.pop("result", None)
    result_history = run.summary.pop("result_log_history", None)
    if result is not None:
        run.result = result
        if not history and result_history:
            history = result_history
    if history:
        h_train, h_evals, h_summary = rows_from_log_history(history)
        if len(h_train) > len(run.train):
            run.train = h_train
        if len(h_evals) > len(run.evals):
            run.evals = h_evals
        if "train_runtime" not in run.summary and h_summary:
            run.summary.update(h_summary)
    run.step = progress.get("step") or run.state.get("global_step")
    run.max_steps = progress.get("max_steps") or run.state.get("max_steps")
    run.elapsed_s = progress.get("elapsed_s")
    run.remaining_s = progress.get("remaining_s")
    if run.train and run.step is None:
        run.step = run.train[-1]["step"]

    if "train_runtime" not in run.summary:
        run.notes.append(note("unfinished"))
    if not run.evals:
        run.notes.append(note("no_eval_rows"))

    # Trainable parameters = the LoRA adapter's tensors in the newest checkpoint.
    for checkpoint in checkpoints:
        adapter = checkpoint / "adapter_model.safetensors"
        if adapter.is_file():
            run.trainable_params = safetensors_param_count(adapter)
            break
    return run


# ---------------------------------------------------------------- export

def read_export(export_dir: Path) -> dict:
    info: dict[str, Any] = {"dir": str(export_dir), "exists": export_dir.is_dir(), "notes": []}
    if not info["exists"]:
        return info
    shards = sorted(export_dir.glob("*.safetensors"))
    info["shards"] = [p.name for p in shards]
    info["size_bytes"] = sum(p.stat().st_size for p in export_dir.rglob("*") if p.is_file())
    counts = [safetensors_param_count(p) for p in shards]
    info["params"] = sum(c for c in counts if c is not None) if shards and None not in counts else None
    meta_path = export_dir / "lab-export.json"
    if meta_path.is_file():
        meta, notes = read_json_object(meta_path)
        info["notes"] += notes
        info.update({k: v for k, v in (meta or {}).items() if k in ("checkpoint", "command")})
    else:
        info["notes"].append(note("missing", file="lab-export.json"))
    return info


# ---------------------------------------------------------------- step provenance

def read_steps(path: Path) -> dict:
    """steps.jsonl -> {'runs': [{step, start, end, exit}], 'commands': [{step, time, command}],
    'events': [other events]}."""
    result: dict[str, list] = {"runs": [], "commands": [], "events": [], "notes": []}
    if not path.is_file():
        result["notes"].append(note("missing", file=path.name))
        return result
    rows, notes = read_jsonl(path)
    result["notes"] += notes
    open_runs: dict[str, dict] = {}
    for row in rows:
        step, event, time = row.get("step", "?"), row.get("event"), row.get("time")
        if event == "start":
            run = {"step": step, "start": time, "end": None, "exit": None}
            result["runs"].append(run)
            open_runs[step] = run
        elif event == "end":
            run = open_runs.pop(step, None)
            if run is None:
                run = {"step": step, "start": None, "end": None, "exit": None}
                result["runs"].append(run)
            run["end"] = time
            match = re.search(r"exit (\d+)", str(row.get("detail", "")))
            run["exit"] = int(match.group(1)) if match else None
        elif event == "command":
            result["commands"].append({"step": step, "time": time, "command": row.get("detail", "")})
        else:
            result["events"].append(row)
    return result


# ---------------------------------------------------------------- evaluations

EVAL_DONE = "lab-eval.json"            # scripts/py/eval_result.py accepted the report
EVAL_REJECTED = "lab-eval-rejected.json"


def read_eval_result(work_dir: Path) -> dict:
    """What became of one evaluation (one benchmark on one served model), from the
    files scripts/eval.sh (or the runbook) leaves in its results folder:
      done         lab-eval.json: the checked score, count, subjects (every metric; a perf
                   run's levels; a judged run's verdict summary, its score None when the
                   judge gave no valid verdict)
      skipped      lab-eval.json of a judged benchmark with no judge configured
      rejected     lab-eval-rejected.json: EvalScope's report failed the check (reason)
      interrupted  started (lab-inputs.json or a result not yet logged) but not finished
      not_run      nothing there
    Scores come only from lab-eval.json, never from EvalScope's own report."""
    command_path = work_dir / "lab-command.txt"
    command = command_path.read_text(encoding="utf-8", errors="replace").strip() if command_path.is_file() else None
    result = {"state": "not_run", "score": None, "num": None, "metric": None, "metrics": {}, "subjects": [],
              "levels": [], "judge": None, "eval_seconds": None, "reason": None, "command": command, "path": None,
              "replies": None, "answer_mode": None, "categories": [], "extra": None, "model": None}
    done = work_dir / EVAL_DONE
    if done.is_file():
        record, _ = read_json_object(done)
        record = record or {}
        if record.get("skipped"):
            return {**result, "state": "skipped", "reason": record["skipped"]}
        score = record.get("score")
        if isinstance(score, (int, float)) or record.get("kind") == "perf" or record.get("judge") is not None \
                or "score" in record:
            subjects = [{"name": s.get("name"), "score": to_number(s.get("score")), "num": s.get("num")}
                        for s in record.get("subsets") or []]
            return {**result, "state": "done", "score": float(score) if isinstance(score, (int, float)) else None,
                    "num": record.get("num"), "metric": record.get("metric"), "metrics": record.get("metrics") or {},
                    "subjects": subjects, "levels": record.get("levels") or [], "judge": record.get("judge"),
                    "eval_seconds": record.get("eval_seconds"), "path": str(done),
                    "replies": record.get("replies"), "answer_mode": record.get("answer_mode"),
                    "categories": record.get("categories") or [], "extra": record.get("extra"),
                    "model": record.get("model")}
    rejected = work_dir / EVAL_REJECTED
    if rejected.is_file():
        record, _ = read_json_object(rejected)
        return {**result, "state": "rejected", "reason": (record or {}).get("reason")}
    if (work_dir / "lab-inputs.json").is_file() or (work_dir / "lab-eval.pending.json").is_file():
        return {**result, "state": "interrupted"}
    return result


def message_text(message: dict) -> str:
    """A message's text: a harmony reply split by scripts/py/evalscope_lab.py keeps its
    final channel as the text part and its analysis as a reasoning part (not shown)."""
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(part.get("text") or "" for part in content if isinstance(part, dict) and part.get("type") == "text")
    return content or ""


def read_dialog_replies(work_dir: Path, served: str) -> dict:
    """{index: {user, reference, reply}} of a general_qa run: EvalScope's reviews hold the
    conversation (ending with the model's reply) and the reference."""
    replies = {}
    for path in sorted((work_dir / "reviews" / served).glob("*.jsonl")):
        rows, _ = read_jsonl(path)
        for row in rows:
            messages = row.get("messages") or []
            users = [m.get("content") for m in messages if m.get("role") == "user"]
            reply = message_text(messages[-1]) if messages and messages[-1].get("role") == "assistant" else None
            target = row.get("target")
            reference = target[0] if isinstance(target, list) and target else target
            if isinstance(row.get("index"), int) and users and reply is not None:
                replies[row["index"]] = {"user": users[-1], "reference": reference, "reply": reply}
    return replies


def dataset_files(datasets: Any, repo_root: Path) -> list[Path]:
    """The local files among a dataset list (relative paths are relative to the repo)."""
    if isinstance(datasets, str):
        datasets = [datasets]
    files = []
    for item in datasets or []:
        path = Path(str(item).split("#")[0])
        if not path.is_absolute():
            path = repo_root / path
        if path.is_file():
            files.append(path)
    return files


# ---------------------------------------------------------------- make status

def progress(run: TrainRun, rows: list[dict]) -> dict:
    """What `make status` shows of a run: its last step, losses, time, speed, memory."""
    def last(predicate):
        return next((r for r in reversed(rows) if predicate(r)), {})
    stepped = last(lambda r: "global_step/max_steps" in r)
    train = last(lambda r: "loss" in r and "eval_loss" not in r)
    evaluated = last(lambda r: "eval_loss" in r)
    memory = [to_number(r.get("memory(GiB)")) for r in rows if to_number(r.get("memory(GiB)")) is not None]
    return {
        "exists": run.exists, "logged": bool(rows), "finished": run.finished,
        "step": run.step, "max_steps": run.max_steps, "epoch": to_number(stepped.get("epoch")),
        "elapsed": stepped.get("elapsed_time"), "remaining": stepped.get("remaining_time"),
        "speed": to_number(stepped.get("train_speed(s/it)")),
        "memory_gib": max(memory) if memory else None,
        "loss": to_number(train.get("loss")), "loss_step": train.get("global_step/max_steps"),
        "eval_loss": to_number(evaluated.get("eval_loss")), "eval_step": evaluated.get("global_step/max_steps"),
        "train_runtime": to_number(run.summary.get("train_runtime")), "train_loss": to_number(run.summary.get("train_loss")),
    }


def read_progress(run_dir: Path) -> dict:
    run = read_run(run_dir)
    log = run_dir / "logging.jsonl"
    rows = read_jsonl(log)[0] if log.is_file() else []
    return progress(run, rows)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] in ("progress", "finished"):
        try:
            facts = read_progress(Path(argv[1]))
        except ParseError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        if argv[0] == "finished":
            return 0 if facts["finished"] else 1
        print(json.dumps(facts, ensure_ascii=False))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
