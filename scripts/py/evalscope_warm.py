"""A warm launcher for the evaluations of one scripts/eval.sh run: EvalScope, torch and
datasets are imported once (about 3 s of CPU per process on 2 cores, most of a small
evaluation's cost), then each evaluation runs in a child forked from this process, exactly
as `python scripts/py/evalscope_lab.py ARGS...` runs it in a fresh one: its own environment,
working directory, argv and exit status, and this process's stdout and stderr.

  evalscope_warm.py REQUESTS

REQUESTS is a FIFO that scripts/eval.sh made (never a file: a request carries the keys of
its environment). A request is NUL-terminated fields: the FIFO to answer on, the working
directory, the number of NAME=VALUE environment entries, those entries, the arguments of
evalscope_lab.py, and the field `.end`. The answer is the child's exit status, one line.
REQUESTS.ready appears once requests are read (before, what is written could be lost).
The fork happens while this process has one thread (the imports start none), so the
child inherits no lock held by another. The imported modules' objects are frozen out of the
garbage collector first (gc.freeze): EvalScope collects after each evaluation, and a child
would otherwise walk, and so copy, every page of them (0.2 CPU-seconds an evaluation).
"""
from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evalscope_lab  # noqa: E402

END = ".end"


def warm_up() -> None:
    """What every evaluation imports (the modules, not their state: each child sets its own)."""
    import datasets  # noqa: F401
    import torch  # noqa: F401
    from evalscope.api.registry import MODEL_APIS  # noqa: F401
    from evalscope.cli.cli import run_cmd  # noqa: F401
    from evalscope.models.openai_compatible import OpenAICompatibleAPI  # noqa: F401
    import evalscope.run  # noqa: F401


def read_requests(stream):
    """Yields each request's fields from the FIFO."""
    buffer, fields = b"", []
    while True:
        chunk = stream.read(65536)
        if not chunk:
            return
        buffer += chunk
        *done, buffer = buffer.split(b"\0")
        for field in done:
            text = field.decode("utf-8", "surrogateescape")
            if text == END:
                yield fields
                fields = []
            else:
                fields.append(text)


def run_child(cwd: str, env: list[str], argv: list[str]) -> int:
    """In the forked child: the evaluation as a fresh `python evalscope_lab.py ARGV` would run it."""
    os.chdir(cwd)
    for entry in env:
        name, _, value = entry.partition("=")
        os.environ[name] = value
    sys.argv = ["evalscope_lab.py", *argv]
    try:
        status = evalscope_lab.main()
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # noqa: BLE001 - printed as Python would, then a failure status
        import traceback
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return int(status or 0)


def serve(requests: str) -> int:
    warm_up()
    gc.freeze()
    # Opened for reading and writing, so a request's writer closing is no end of file.
    with open(os.open(requests, os.O_RDWR), "rb", buffering=0) as stream:
        # A FIFO drops what was written while nobody had it open: clients wait for this.
        Path(requests + ".ready").touch()
        for fields in read_requests(stream):
            try:
                answer, cwd, count = fields[0], fields[1], int(fields[2])
                env, argv = fields[3:3 + count], fields[3 + count:]
            except (IndexError, ValueError):
                print("evalscope_warm.py: a malformed request, ignored", file=sys.stderr)
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                os._exit(run_child(cwd, env, argv))
            _, wait_status = os.waitpid(pid, 0)
            status = os.waitstatus_to_exitcode(wait_status)
            with open(answer, "w") as out:
                out.write(f"{status if status >= 0 else 128 - status}\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(serve(sys.argv[1]))
