"""Checks one EvalScope report and records it as the evaluation's result.

  eval_result.py --report REPORT.json --benchmark B --model SERVED --config CONFIG
                 --out RESULT.json [--expected-num N] [--subject S ...]
                 [--inputs-digest D] [--seconds S]

Accepted (exit 0): an accuracy in [0, 1], N questions scored when N is given, and
every listed subject present. RESULT.json is then written atomically:
  {inputs_digest, benchmark, dataset, model, metric, score, num,
   subsets: [{name, score, num}], eval_seconds, report}
Rejected (exit 1): the reason and the fix go to stderr, RESULT.json is not
written, and a rejection record goes to lab-eval-rejected.json beside it, so the
report shows the evaluation as rejected, never as a score.

scripts/eval.sh runs it after each EvalScope run, and so does the runbook: the
report and SwanLab read only these results.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path

REJECTED_NAME = "lab-eval-rejected.json"


class Rejected(Exception):
    def __init__(self, reason: str, fix: str):
        super().__init__(reason)
        self.reason, self.fix = reason, fix


def write_json_atomically(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(value, handle, ensure_ascii=False)
        handle.write("\n")
    os.replace(tmp, path)


def subsets_of(metric: dict) -> list[dict]:
    return [{"name": s.get("name"), "score": s.get("score"), "num": s.get("num")}
            for category in metric.get("categories") or []
            for s in (category or {}).get("subsets") or [] if not s.get("is_aggregate")]


def check(report_path: Path, args) -> dict:
    """The result of an accepted report; raises Rejected naming what is wrong."""
    rerun = "read the log above; rerunning make resumes from the cached predictions"
    if not report_path.is_file():
        raise Rejected(f"evalscope wrote no report ({args.report_shown}); no questions were scored?",
                       f"check the subjects and local_path in {args.config} and the log above")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        metric = report["metrics"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        raise Rejected(f"{args.report_shown} is not an EvalScope report with metrics", rerun) from None
    score, num = metric.get("score"), metric.get("num")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
        raise Rejected(f"{args.report_shown} has no accuracy in [0, 1] (score {score!r})", rerun)
    if args.expected_num is not None and num != args.expected_num:
        raise Rejected(f"scored {num} questions, expected {args.expected_num}", rerun)
    subsets = subsets_of(metric)
    names = {s["name"] for s in subsets}
    for subject in args.subject:
        if subject not in names:
            raise Rejected(f"subject '{subject}' has no results in {args.report_shown}",
                           f"check that {report.get('dataset_name') or 'the dataset'} has subject '{subject}' ({args.config})")
    return {"inputs_digest": args.inputs_digest, "benchmark": args.benchmark,
            "dataset": report.get("dataset_name"), "model": args.model,
            "metric": metric.get("name") or (metric.get("identity") or {}).get("name"),
            "score": score, "num": num, "subsets": subsets, "eval_seconds": args.seconds,
            "report": args.report_shown}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", required=True, help="EvalScope's reports/<model>/<dataset>.json")
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--model", required=True, help="the served model name that was scored")
    parser.add_argument("--config", required=True, help="the evaluation config, for the messages")
    parser.add_argument("--out", required=True, help="where the accepted result goes (lab-eval.json)")
    parser.add_argument("--expected-num", type=int, help="questions the run must have scored")
    parser.add_argument("--subject", action="append", default=[], help="a subject that must have results")
    parser.add_argument("--inputs-digest", default=None, help="the evaluation's fingerprint")
    parser.add_argument("--seconds", type=float, default=None, help="wall time of the EvalScope run")
    args = parser.parse_args(argv)

    report_path, out = Path(args.report), Path(args.out)
    root = str(Path.cwd()) + os.sep
    args.report_shown = args.report[len(root):] if args.report.startswith(root) else args.report
    rejected_path = out.parent / REJECTED_NAME
    try:
        result = check(report_path, args)
    except Rejected as rejected:
        write_json_atomically(rejected_path, {
            "inputs_digest": args.inputs_digest, "benchmark": args.benchmark, "model": args.model,
            "reason": rejected.reason, "at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
        print(f"[eval] error: {args.benchmark}: {rejected.reason}", file=sys.stderr)
        print(f"[eval] fix: {rejected.fix}", file=sys.stderr)
        return 1
    if rejected_path.exists():
        rejected_path.unlink()
    write_json_atomically(out, result)
    seconds = f" in {args.seconds:g}s" if args.seconds is not None else ""
    print(f"[eval] {args.benchmark} on {args.model}: accuracy {result['score']:g} on {result['num']} questions{seconds}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
