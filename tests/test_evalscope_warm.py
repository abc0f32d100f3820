"""scripts/py/evalscope_warm.py: each request runs in a forked child as a fresh process would
run it: its own environment, working directory, arguments and exit status."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The launcher with a fake evalscope_lab.main that writes what it got, and no warm-up imports.
SERVER = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
import evalscope_warm
def fake_main():
    out = os.environ["FAKE_OUT"]
    with open(out, "a") as handle:
        handle.write(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "token": os.environ.get("TOKEN"),
                                 "pid": os.getpid()}) + "\\n")
    if sys.argv[1] == "crash":
        os.kill(os.getpid(), 9)
    if sys.argv[1] == "raise":
        raise RuntimeError("boom")
    return int(sys.argv[1])
evalscope_warm.evalscope_lab.main = fake_main
evalscope_warm.warm_up = lambda: None
evalscope_warm.serve(sys.argv[2])
"""


@pytest.fixture
def launcher(tmp_path):
    requests, answer = tmp_path / "requests", tmp_path / "answer"
    os.mkfifo(requests)
    os.mkfifo(answer)
    out = tmp_path / "calls.jsonl"
    env = {**os.environ, "FAKE_OUT": str(out)}
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(REPO / "scripts" / "py"), str(requests)],
                              env=env, stderr=subprocess.PIPE, text=True)
    for _ in range(200):
        if Path(f"{requests}.ready").exists():
            break
        time.sleep(0.05)

    def ask(cwd: Path, entries: list[str], argv: list[str]) -> int:
        fields = [str(answer), str(cwd), str(len(entries)), *entries, *argv, ".end"]
        fd = os.open(requests, os.O_RDWR)
        os.write(fd, b"".join(f.encode() + b"\0" for f in fields))
        os.close(fd)
        # Read as scripts/eval.sh reads it: opened for reading and writing, up to the newline.
        fd = os.open(answer, os.O_RDWR)
        line = b""
        while not line.endswith(b"\n"):
            line += os.read(fd, 64)
        os.close(fd)
        return int(line)

    def calls():
        return [json.loads(line) for line in out.read_text().splitlines()]

    yield ask, calls, server
    server.kill()
    server.wait()


def test_each_request_gets_its_own_environment_directory_arguments_and_status(launcher, tmp_path):
    ask, calls, server = launcher
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    assert ask(first, ["TOKEN=secret one"], ["0", "--datasets", "ceval"]) == 0
    assert ask(second, [], ["3"]) == 3
    one, two = calls()
    assert one["argv"] == ["evalscope_lab.py", "0", "--datasets", "ceval"] and one["cwd"] == str(first)
    assert one["token"] == "secret one"
    assert two["token"] is None and two["cwd"] == str(second)  # nothing of the first request stays
    assert one["pid"] != two["pid"] != server.pid


def test_a_child_that_dies_or_raises_fails_and_the_launcher_goes_on(launcher, tmp_path):
    ask, calls, server = launcher
    assert ask(tmp_path, [], ["crash"]) == 128 + 9
    assert ask(tmp_path, [], ["raise"]) == 1
    assert ask(tmp_path, [], ["0"]) == 0
    assert server.poll() is None
    assert len(calls()) == 3
