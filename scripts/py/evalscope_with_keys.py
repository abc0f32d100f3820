"""Run `evalscope` with the keys it cannot read from the environment, never in argv.

EvalScope 1.14 reads the served model's key from EVALSCOPE_API_KEY for `eval`, but
`evalscope perf` takes it only as --api-key, and the judge models of `--judge` only
as an `api_key` inside that JSON: both would show in the process list. This launcher
takes evalscope's own arguments, adds SERVE_API_KEY (perf) and JUDGE_API_KEY (each
judge model) from the environment to them in this process, and runs evalscope here.

Usage: SERVE_API_KEY=... JUDGE_API_KEY=... python evalscope_with_keys.py eval|perf ARGS...
"""
from __future__ import annotations

import json
import os
import sys


def with_keys(argv: list[str], serve_key: str, judge_key: str) -> list[str]:
    argv = list(argv)
    if serve_key and argv[:1] == ["perf"]:
        argv += ["--api-key", serve_key]
    if judge_key and "--judge" in argv:
        index = argv.index("--judge") + 1
        judge = json.loads(argv[index])
        for model in judge.get("models") or []:
            model["api_key"] = judge_key
        argv[index] = json.dumps(judge, ensure_ascii=False)
    return argv


def main() -> int:
    serve_key = os.environ.pop("SERVE_API_KEY", "")
    judge_key = os.environ.pop("JUDGE_API_KEY", "")
    argv = with_keys(sys.argv[1:], serve_key, judge_key)
    from evalscope.cli.cli import run_cmd

    sys.argv = ["evalscope", *argv]
    return run_cmd()


if __name__ == "__main__":
    sys.exit(main())
