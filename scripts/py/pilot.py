"""The full run of an experiment projected from its pilot (make pilot): report/<exp>-pilot.md.

  pilot.py --plan PLAN.json --template report/pilot.zh.md --out report/<exp>-pilot.md

PLAN comes from scripts/pilot-report.sh: the pilot's folders, each benchmark's settings in
the full run and in the pilot (from the shell's command builders), the question counts of
local sets, the longest prompts and the server's session length. This file reads what the
pilot measured (its run dir's args.json and logging.jsonl, .state/<exp>/steps.jsonl, each
benchmark's lab-eval.json with its `replies` when present), projects the full run step by
step, lists the settings the measurements say to change, and renders the Jinja2 template,
which holds every word. Written atomically; exit 2 when a file is not JSON.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import runparse as rp  # noqa: E402
from lab.files import load_yaml, rel as relative_to, write_atomic  # noqa: E402
from lab.report.render import render_or_exit  # noqa: E402

CUT_OFF_LIMIT = 0.02        # a cut-off share above this asks for a larger max_tokens
MAX_TOKENS_FACTOR = 2       # the cut replies' length beyond max_tokens is unknown: double it
SESSION_STEP = 1024         # a recommended session length is rounded up to this
MEMORY_MARGIN = 1.10        # the peak memory of a few steps, plus 10 %
BATCH_GAIN = 1.25           # perf faster than the evaluation by this much: more requests in flight
STEP_EVENTS = ("preflight", "train", "export", "deploy", "health", "eval")
_DATASET_STATS = re.compile(r"^\s*([0-9.]+)\s*±.*size=(\d+)\s*$")


# ---------------------------------------------------------------- measurements

def parse_dataset_stats(text) -> tuple[float | None, int | None]:
    """ms-swift's '385.67±47.66, min=296, max=505, size=61' -> (mean tokens, rows)."""
    match = _DATASET_STATS.match(str(text or ""))
    return (float(match.group(1)), int(match.group(2))) if match else (None, None)


def row_elapsed(row: dict, start_step: int = 0) -> float | None:
    """Seconds since training began at a logged row: ms-swift logs train_speed(s/it) as
    elapsed / steps to the microsecond, its elapsed_time only to the second."""
    step, _ = rp.parse_step_fraction(row.get("global_step/max_steps"))
    seconds_per_step = rp.to_number(row.get("train_speed(s/it)"))
    if seconds_per_step is None:
        per_second = rp.to_number(row.get("train_speed(iter/s)"))
        seconds_per_step = 1 / per_second if per_second else None
    if step is None or seconds_per_step is None or step <= start_step:
        return rp.parse_duration(row.get("elapsed_time"))
    return seconds_per_step * (step - start_step)


def step_seconds(train_rows: list[dict], eval_rows: list[dict]) -> dict:
    """The seconds of one optimizer step: between the first and the last logged training
    step, less the held-out evaluations in between (each logged with its eval_runtime).
    The first step's time (and an evaluation before it) is left out; checkpoint saves
    in between are counted in. {seconds, first, last, evals_between} or {} when unknown."""
    timed = [(r["step"], r["elapsed"]) for r in train_rows if r["step"] is not None and r["elapsed"] is not None]
    if len(timed) >= 2 and timed[-1][0] > timed[0][0]:
        (first, start), (last, end) = timed[0], timed[-1]
        between = [e["runtime"] for e in eval_rows if e["step"] is not None and first <= e["step"] < last
                   and e["runtime"] is not None]
        seconds = (end - start - sum(between)) / (last - first)
        if seconds > 0:
            return {"seconds": seconds, "first": first, "last": last, "evals_between": len(between)}
    if timed and timed[-1][0]:
        return {"seconds": timed[-1][1] / timed[-1][0], "first": 0, "last": timed[-1][0], "evals_between": None}
    return {}


def read_training(run_dir: Path) -> dict:
    """What the pilot's training measured (logging.jsonl, args.json)."""
    facts: dict = {"args": {}, "train_rows": [], "eval_rows": [], "summary": {}, "memory_gib": None,
                   "mean_tokens": None, "train_size": None, "val_size": None, "epoch_per_step": None}
    args_path = run_dir / "args.json"
    if args_path.is_file():
        facts["args"] = rp.read_json_object(args_path)[0] or {}
    log_path = run_dir / "logging.jsonl"
    rows = rp.read_jsonl(log_path)[0] if log_path.is_file() else []
    memory = []
    for row in rows:
        step, _ = rp.parse_step_fraction(row.get("global_step/max_steps"))
        if rp.to_number(row.get("memory(GiB)")) is not None:
            memory.append(rp.to_number(row.get("memory(GiB)")))
        if "train_runtime" in row:
            facts["summary"] = row
        elif "train_dataset" in row:
            facts["mean_tokens"], facts["train_size"] = parse_dataset_stats(row.get("train_dataset"))
            facts["val_size"] = parse_dataset_stats(row.get("val_dataset"))[1]
        elif "eval_loss" in row:
            facts["eval_rows"].append({"step": step, "runtime": rp.to_number(row.get("eval_runtime"))})
        elif "loss" in row:
            epoch = rp.to_number(row.get("epoch"))
            facts["train_rows"].append({"step": step, "elapsed": row_elapsed(row), "epoch": epoch})
            if step and epoch:
                facts["epoch_per_step"] = epoch / step
    facts["memory_gib"] = max(memory) if memory else None
    facts["step"] = step_seconds(facts["train_rows"], facts["eval_rows"])
    runtimes = [e["runtime"] for e in facts["eval_rows"] if e["runtime"] is not None]
    facts["eval_seconds"] = sum(runtimes) / len(runtimes) if runtimes else None
    facts["train_runtime"] = rp.to_number(facts["summary"].get("train_runtime"))
    facts["steps_done"] = facts["train_rows"][-1]["step"] if facts["train_rows"] else None
    return facts


def step_durations(steps_path: Path) -> dict:
    """{step: seconds} of the last successful run of each step in .state/<exp>/steps.jsonl."""
    durations = {}
    for run in rp.read_steps(steps_path)["runs"]:
        if run["exit"] == 0 and run["start"] and run["end"]:
            start = dt.datetime.fromisoformat(run["start"].replace("Z", "+00:00"))
            end = dt.datetime.fromisoformat(run["end"].replace("Z", "+00:00"))
            durations[run["step"]] = (end - start).total_seconds()
    return durations


# ---------------------------------------------------------------- projections

def steps_per_epoch(train_size: int, batch: int, accumulation: int, world: int) -> int:
    """Optimizer steps in one epoch, as transformers 5 counts them: each rank reads
    ceil(rows / world) rows in batches of `batch` (the last one short), and an epoch's last
    step takes the remaining batches."""
    batches = math.ceil(math.ceil(train_size / world) / batch)
    return max(math.ceil(batches / accumulation), 1)


def planned_steps(per_epoch: int, epochs: float, max_steps: int | None) -> int:
    if max_steps and max_steps > 0:
        return int(max_steps)
    return math.ceil(epochs * per_epoch)


def planned_evals(total_steps: int, strategy: str, eval_steps, eval_on_start: bool, epochs: float) -> int:
    """Held-out evaluations of a run: every eval_steps (and, by ms-swift, at the last step),
    or every epoch; one more before the first step with eval_on_start."""
    count = 1 if eval_on_start else 0
    if strategy == "steps" and eval_steps:
        count += total_steps // int(eval_steps) + (1 if total_steps % int(eval_steps) else 0)
    elif strategy == "epoch":
        count += math.ceil(epochs)
    return count


def project_training(train: dict, sft: dict, world: int, durations: dict) -> dict:
    """The full training: its steps from the dataset, batch, accumulation, epochs and world
    size; its time from the pilot's step time, held-out evaluation time and start-up."""
    args = train["args"]
    batch = int(args.get("per_device_train_batch_size") or sft.get("per_device_train_batch_size") or 1)
    accumulation = int(args.get("gradient_accumulation_steps") or sft.get("gradient_accumulation_steps") or 1)
    epochs = float(sft.get("num_train_epochs", args.get("num_train_epochs") or 1))
    max_steps = sft.get("max_steps")
    out: dict = {"batch": batch, "accumulation": accumulation, "epochs": epochs, "world": world,
                 "max_steps_config": max_steps if isinstance(max_steps, int) and max_steps > 0 else None,
                 "samples_per_step": batch * accumulation * world, "per_epoch": None, "steps": None,
                 "per_epoch_source": None, "batches": None}
    if train["train_size"]:
        out["batches"] = math.ceil(math.ceil(train["train_size"] / world) / batch)
        out["per_epoch"] = steps_per_epoch(train["train_size"], batch, accumulation, world)
        out["per_epoch_source"] = "dataset"
    elif train["epoch_per_step"]:
        out["per_epoch"] = max(round(1 / train["epoch_per_step"]), 1)
        out["per_epoch_source"] = "epoch"
    if out["per_epoch"] or out["max_steps_config"]:
        out["steps"] = planned_steps(out["per_epoch"] or 0, epochs, out["max_steps_config"])
    strategy = str(args.get("eval_strategy") or sft.get("eval_strategy") or "no")
    eval_steps = args.get("eval_steps") or sft.get("eval_steps")
    eval_on_start = bool(args.get("eval_on_start", sft.get("eval_on_start", False)))
    out["evals"] = planned_evals(out["steps"], strategy, eval_steps, eval_on_start, epochs) if out["steps"] else None
    out["eval_steps"] = eval_steps if strategy == "steps" else None
    out["eval_on_start"] = eval_on_start
    out["save_steps"] = args.get("save_steps") or sft.get("save_steps")
    step = train["step"].get("seconds")
    wall = durations.get("train")
    out["startup"] = max(wall - train["train_runtime"], 0.0) if wall is not None and train["train_runtime"] else None
    out["step_seconds"] = step
    out["eval_seconds"] = train["eval_seconds"]
    if step is not None and out["steps"] is not None:
        out["seconds"] = (out["startup"] or 0) + out["steps"] * step + (out["evals"] or 0) * (train["eval_seconds"] or 0)
    else:
        out["seconds"] = None
    mean = train["mean_tokens"]
    out["tokens_per_second"] = mean * out["samples_per_step"] / step if mean and step else None
    out["total_tokens"] = mean * train["train_size"] * epochs if mean and train["train_size"] else None
    return out


def replies_facts(replies) -> dict | None:
    """lab-eval.json's `replies` (EvalScope predictions summarised by eval_result.py):
    shares of cut-off, final-channel and unanswered replies, the token statistics."""
    if not isinstance(replies, dict) or not replies.get("asked"):
        return None
    asked = replies["asked"]
    tokens = {key: (replies.get("tokens") or {}).get(key) for key in ("mean", "p95", "max")}
    return {"asked": asked, "cut_off": replies.get("cut_off"), "final": replies.get("final"),
            "no_answer": replies.get("no_answer"), "max_tokens": replies.get("max_tokens"),
            "cut_off_share": (replies.get("cut_off") or 0) / asked,
            "final_share": replies["final"] / asked if isinstance(replies.get("final"), int) else None,
            "no_answer_share": replies["no_answer"] / asked if isinstance(replies.get("no_answer"), int) else None,
            "tokens": tokens, "analysis_tokens": replies.get("analysis_tokens"),
            "final_tokens": replies.get("final_tokens"), "longest_prompt": replies.get("longest_prompt"),
            "cut_off_limit": replies.get("cut_off_limit")}


def recommended_max_tokens(max_tokens: int, replies: dict | None) -> int | None:
    """More than the cut-off limit (eval_result.py's, else CUT_OFF_LIMIT) of the replies stopped
    at max_tokens: their real length is
    unknown beyond it (the p95 sits at the cap), so twice max_tokens, and never below the
    p95 plus a quarter. None when the replies fit (or are unknown)."""
    if not replies or replies["cut_off_share"] <= (replies.get("cut_off_limit") or CUT_OFF_LIMIT):
        return None
    p95 = rp.to_number((replies.get("tokens") or {}).get("p95")) or 0
    return max(MAX_TOKENS_FACTOR * max_tokens, math.ceil(p95 * 1.25))


def round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)


def project_eval(bench: dict, record: dict | None) -> dict:
    """One benchmark: questions per minute in the pilot (at the configured concurrency),
    and the full run's time from its question count (or its bound)."""
    full = bench["full"]
    out = {"name": bench["name"], "kind": bench["kind"], "concurrency": bench["concurrency"],
           "full_questions": full["questions"], "full_bound": full["bound"], "subjects": full["subjects"],
           "pilot_questions": None, "seconds": None, "per_minute": None, "projected": None, "state": "not_run",
           "replies": None, "max_tokens": bench["max_tokens"], "reason": None, "below_concurrency": False,
           "eval_batch_size": bench.get("eval_batch_size"), "judged": bool(bench.get("judged")), "basis": None}
    if bench.get("skipped"):
        return {**out, "state": "skipped", "reason": bench["skipped"], "projected": 0.0}
    if not bench.get("measured", True):
        return {**out, "state": "not_measured"}
    if record is None:
        return out
    if record.get("skipped"):
        return {**out, "state": "skipped", "reason": record["skipped"], "projected": 0.0}
    out["state"] = "done"
    out["seconds"] = rp.to_number(record.get("eval_seconds"))
    out["replies"] = replies_facts(record.get("replies"))
    if bench["kind"] == "perf":
        return project_perf(bench, record, out)
    num = record.get("num") if isinstance(record.get("num"), int) and record.get("num") > 0 else None
    asked = (out["replies"] or {}).get("asked") or num or bench["pilot"]["questions"]
    out["pilot_questions"] = asked
    if asked and out["seconds"]:
        out["per_minute"] = asked / out["seconds"] * 60
        questions = full["questions"] if full["questions"] is not None else full["bound"]
        if questions is not None:
            out["projected"] = questions / out["per_minute"] * 60
    out["below_concurrency"] = bool(asked and asked < bench["concurrency"])
    return out


def project_perf(bench: dict, record: dict, out: dict) -> dict:
    """evalscope perf: each full level's requests at the pilot's average latency (measured at
    the highest concurrency, so at most what a lower level takes), plus the pilot's start-up."""
    levels = record.get("levels") or []
    if not levels:
        return out
    level = levels[0]
    latency = rp.to_number(level.get("avg_latency_s"))
    parallel, number = level.get("parallel"), level.get("number")
    out.update({"pilot_questions": number, "latency": latency, "parallel": parallel,
                "output_tok_s": rp.to_number(level.get("output_tok_s")),
                "requests_s": rp.to_number(level.get("requests_s")),
                "avg_output_tokens": rp.to_number(level.get("avg_output_tokens")),
                "full_levels": list(zip(bench["full"]["parallel"], bench["full"]["number"]))})
    if latency is None or not parallel or not number:
        return out
    measured = number * latency / parallel
    startup = max((out["seconds"] or measured) - measured, 0.0)
    out["startup"] = startup
    out["projected"] = startup + sum(n * latency / p for p, n in out["full_levels"])
    if out["seconds"]:
        out["per_minute"] = number / out["seconds"] * 60
    return out


def project_unmeasured(evals: list[dict]) -> None:
    """A benchmark the pilot left out (its section's `benchmarks`) takes the questions per
    minute of a measured one of its kind: judged like it, then with the nearest max_tokens."""
    measured = [e for e in evals if e["state"] == "done" and e["kind"] == "eval" and e["per_minute"]]
    for item in evals:
        if item["state"] != "not_measured" or item["kind"] != "eval" or not measured:
            continue
        basis = min(measured, key=lambda e: (e["judged"] != item["judged"], abs(e["max_tokens"] - item["max_tokens"])))
        questions = item["full_questions"] if item["full_questions"] is not None else item["full_bound"]
        item.update(basis=basis["name"], per_minute=basis["per_minute"],
                    projected=questions / basis["per_minute"] * 60 if questions is not None else None)


def recommendations(plan: dict, evals: list[dict], train: dict, requirements: dict) -> list[dict]:
    """The settings the measurements say to change, each with the numbers behind it."""
    found = []
    session = plan["session"]
    for item in evals:
        value = recommended_max_tokens(item["max_tokens"], item["replies"])
        if value is None:
            continue
        # The longest prompt the server counted (EvalScope's usage), else prompt_budget.py's estimate.
        prompt = item["replies"].get("longest_prompt") or plan["prompt_tokens"].get(item["name"])
        needed = prompt + value if prompt is not None else None
        found.append({"kind": "max_tokens", "bench": item["name"], "current": item["max_tokens"], "value": value,
                      "share": item["replies"]["cut_off_share"], "p95": (item["replies"]["tokens"] or {}).get("p95"),
                      "prompt": prompt, "session_needed": needed, "session_limit": session["limit"],
                      "session_key": session["key"],
                      "session_value": round_up(needed, SESSION_STEP) if needed and session["limit"]
                      and needed > session["limit"] else None})
    perf = next((e for e in evals if e["kind"] == "perf" and e.get("output_tok_s")), None)
    if perf:
        slow = [e for e in evals if e["kind"] != "perf" and e["per_minute"] and e["replies"]
                and rp.to_number((e["replies"]["tokens"] or {}).get("mean"))]
        if slow:
            main = max(slow, key=lambda e: e["projected"] or 0)
            tok_s = main["per_minute"] / 60 * rp.to_number(main["replies"]["tokens"]["mean"])
            if perf["parallel"] > main["concurrency"] and perf["output_tok_s"] > BATCH_GAIN * tok_s:
                found.append({"kind": "eval_batch_size", "bench": main["name"], "concurrency": main["concurrency"],
                              "current": main["eval_batch_size"],
                              "tok_s": tok_s, "perf_parallel": perf["parallel"], "perf_tok_s": perf["output_tok_s"],
                              "value": max(perf["parallel"] // max(plan["nproc"], 1), 1)})
    peak = train["memory_gib"]
    wanted = requirements.get("GPU_FREE_MIB_PER_GPU")
    if peak and plan["gpu"] != "cpu":
        needed = round_up(peak * MEMORY_MARGIN * 1024, 1024)
        if wanted is None or needed > wanted:
            found.append({"kind": "gpu_memory", "peak_gib": peak, "current": wanted, "value": needed})
    return found


def read_requirements(path: Path) -> dict:
    values = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            match = re.match(r"^([A-Z_]+)=([0-9]+)\s*$", line)
            if match:
                values[match.group(1)] = int(match.group(2))
    return values


def read_record(path: str) -> dict | None:
    p = Path(path)
    return rp.read_json_object(p)[0] if p.is_file() else None


class Projection:
    def __init__(self, plan: dict):
        self.plan = plan
        self.train = read_training(Path(plan["run_dir"]))
        self.durations = step_durations(Path(plan["steps"]))
        self.sft = load_yaml(Path(plan["sft"]).read_text(encoding="utf-8")) or {}
        self.requirements = read_requirements(Path(plan["requirements"]))

    def facts(self) -> dict:
        plan, d = self.plan, self.durations
        world = (plan["nproc"] or 1) * (plan["nnodes"] or 1)
        training = project_training(self.train, self.sft, world, d)
        evals = [project_eval(bench, read_record(bench["result"])) for bench in plan["benchmarks"]]
        project_unmeasured(evals)
        rejected = {b["name"]: (read_record(b["rejected"]) or {}).get("reason") for b in plan["benchmarks"]
                    if Path(b["rejected"]).is_file()}
        for item in evals:
            if item["state"] == "not_run" and item["name"] in rejected:
                item.update(state="rejected", reason=rejected[item["name"]])
        measured_evals = sum(e["seconds"] or 0 for e in evals)
        eval_overhead = max(d["eval"] - measured_evals, 0.0) if "eval" in d else None
        projected = [e["projected"] for e in evals]
        eval_total = sum(projected) + (eval_overhead or 0) if None not in projected else None
        steps = [
            {"step": "preflight", "pilot": d.get("preflight"), "projected": d.get("preflight"), "gpus": 0},
            {"step": "train", "pilot": d.get("train"), "projected": training["seconds"], "gpus": world},
            {"step": "export", "pilot": d.get("export"), "projected": d.get("export"), "gpus": plan["nproc"]},
            {"step": "deploy", "pilot": d.get("deploy"), "projected": d.get("deploy"), "gpus": plan["nproc"]},
            {"step": "health", "pilot": d.get("health"), "projected": d.get("health"), "gpus": plan["nproc"]},
            {"step": "eval", "pilot": d.get("eval"), "projected": eval_total, "gpus": plan["nproc"]},
        ]
        gpu = plan["gpu"] != "cpu"
        for step in steps:
            step["gpu_hours"] = step["projected"] * step["gpus"] / 3600 if gpu and step["projected"] is not None else None
        known = [s["projected"] for s in steps]
        total = sum(known) if None not in known else None
        base = [d.get("deploy"), d.get("health"), eval_total]
        base_total = sum(base) if None not in base else None
        pilot_total = sum(d[s] for s in STEP_EVENTS if s in d)
        return {
            "exp": plan["exp"], "pilot_of": plan["pilot_of"], "config": plan["config"], "gpu": plan["gpu"],
            "gpu_run": gpu, "nproc": plan["nproc"], "nnodes": plan["nnodes"], "world": world,
            "scale": plan["scale"], "training": training, "train": self.train, "evals": evals,
            "eval_overhead": eval_overhead, "steps": steps, "total": total,
            "total_gpu_hours": sum(s["gpu_hours"] for s in steps) if gpu and total is not None else None,
            "base_total": base_total,
            "base_gpu_hours": base_total * plan["nproc"] / 3600 if gpu and base_total is not None else None,
            "pilot_total": pilot_total, "pilot_steps": d,
            "replies_known": [e["name"] for e in evals if e["replies"]],
            "replies_unknown": [e["name"] for e in evals if e["state"] == "done" and e["kind"] != "perf"
                                and not e["replies"]],
            "hub_bounds": [e for e in evals if e["full_questions"] is None and e["full_bound"] is not None],
            "unknown_counts": [e["name"] for e in evals if e["kind"] != "perf" and e["state"] != "skipped"
                               and e["full_questions"] is None and e["full_bound"] is None],
            "not_measured": [e for e in evals if e["state"] == "not_measured"],
            "below_concurrency": [e["name"] for e in evals if e["below_concurrency"]],
            "recommendations": recommendations(plan, evals, self.train, self.requirements),
            "session": plan["session"], "prompt_tokens": plan["prompt_tokens"],
            "cut_off_limit": CUT_OFF_LIMIT, "memory_margin": MEMORY_MARGIN, "batch_gain": BATCH_GAIN,
            "requirements": self.requirements,
            "files": {"run_dir": rel(plan["run_dir"]), "steps": rel(plan["steps"]),
                      "results": rel(str(Path(plan["benchmarks"][0]["result"]).parents[1])) if plan["benchmarks"] else None},
        }


def rel(path: str) -> str:
    return relative_to(path, Path.cwd())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", required=True, help="scripts/pilot-report.sh's plan (JSON)")
    parser.add_argument("--template", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    plan = json.loads(Path(args.plan).read_text(encoding="utf-8"))
    try:
        facts = Projection(plan).facts()
    except rp.ParseError as error:
        print(f"[pilot] error: {error}", file=sys.stderr)
        print("[pilot] fix: repair or move that file away, then rerun make pilot", file=sys.stderr)
        return 2
    text = render_or_exit(Path(args.template), facts, "[pilot]", "correct the template, then rerun make pilot")
    out = Path(args.out)
    if not out.is_file() or out.read_text(encoding="utf-8") != text:
        write_atomic(out, text)
    print(f"[pilot] {rel(str(out))}: the full run of {plan['pilot_of']} projected from the pilot", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
