"""Makes tests/fixtures/arena/ by running EvalScope for real: two models answer 8 counselling
prompts (general_qa, through scripts/py/evalscope_lab.py --replies harmony, as the pipeline
runs them), then EvalScope's general_arena pairs their reviews and has a judge compare them
in both orders. Models and judge are tests/stubs/arena_server.py on 127.0.0.1.

  .venv/bin/python tests/stubs/make_arena_fixture.py [OUT_DIR]   (default tests/fixtures/arena)

The outcomes are chosen per prompt (the `q=N` of each final channel, the question's tags; see
arena_server.py), so tests/test_arena.py can check the parsed counts against a hand count:
  P0 q3 vs q1: win (strong)   P1 q2 vs q1: win       P2 q2 vs q2: tie      P3 q1 vs q3: loss (strong)
  P4 [偏向A]: A>B in both orders, a tie once reduced   P5 [乱码]: no usable verdict
  P6 q1 vs q2: loss           P7 q3 vs q2: win
Every reply's analysis channel says 推理 q=9: a judge shown it would answer no verdict.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ["我最近压力很大，晚上睡不好。", "和室友总是吵架，我该怎么办？", "考试前特别焦虑。", "我觉得没人理解我。",
           "[偏向A] 工作上总被批评，很沮丧。", "[乱码] 分手以后一直走不出来。", "父母总拿我和别人比较。", "换了新城市，很孤独。"]
QUALITY = {"tuned": [3, 2, 2, 1, 3, 3, 1, 3], "base": [1, 1, 2, 3, 1, 1, 2, 2]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_inputs(work: Path) -> None:
    data = work / "data"
    data.mkdir()
    with (data / "dialog.jsonl").open("w", encoding="utf-8") as handle:
        for index, prompt in enumerate(PROMPTS):
            row = {"messages": [{"role": "user", "content": f"P{index} {prompt}"}], "answer": f"参考回复 {index}"}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    replies = {model: [{"match": f"P{index} ", "analysis": f"推理 q=9：先想想 P{index}。",
                        "final": f"回复 P{index}，q={q}。"} for index, q in enumerate(qualities)]
               for model, qualities in QUALITY.items()}
    (work / "replies.json").write_text(json.dumps(replies, ensure_ascii=False), encoding="utf-8")


def wait_until_up(port: int) -> None:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the stub server did not start")


def evalscope(*args: str) -> None:
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    subprocess.run([sys.executable, str(ROOT / "scripts/py/evalscope_lab.py"), "--replies", "harmony", *args],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests/fixtures/arena"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_inputs(work)
        port = free_port()
        server = subprocess.Popen([sys.executable, str(ROOT / "tests/stubs/arena_server.py"), "--port", str(port),
                                   "--replies", str(work / "replies.json"), "--log", str(work / "judge.jsonl")])
        try:
            wait_until_up(port)
            api = f"http://127.0.0.1:{port}/v1"
            dataset_args = json.dumps({"general_qa": {"local_path": str(work / "data"), "subset_list": ["dialog"]}})
            for model in QUALITY:
                evalscope("eval", "--eval-type", "openai_api", "--api-url", api, "--api-key", "EMPTY", "--model", model,
                          "--datasets", "general_qa", "--dataset-args", dataset_args,
                          "--generation-config", '{"max_tokens":64,"temperature":0}',
                          "--work-dir", str(work / model), "--no-timestamp")
            arena_args = json.dumps({"general_arena": {"extra_params": {
                "models": [{"name": "tuned", "report_path": str(work / "tuned/reports/tuned")},
                           {"name": "base", "report_path": str(work / "base/reports/base")}],
                "baseline": "base"}}})
            judge = json.dumps({"strategy": "llm", "position_swap": "on", "models": [
                {"model_id": "judge", "api_url": api, "generation_config": {"temperature": 0, "max_tokens": 256}}]})
            evalscope("eval", "--eval-type", "mock_llm", "--model", "arena", "--datasets", "general_arena",
                      "--dataset-args", arena_args, "--judge", judge, "--eval-batch-size", "4",
                      "--work-dir", str(work / "arena"), "--no-timestamp")
        finally:
            server.terminate()
            server.wait()
        if out.exists():
            shutil.rmtree(out)
        for part in ("tuned", "base", "arena"):
            for kind in ("reports", "reviews"):
                shutil.copytree(work / part / kind, out / part / kind, ignore=shutil.ignore_patterns("*.html"))
        shutil.copy(work / "judge.jsonl", out / "judge-requests.jsonl")
        # The temporary folder's path, wherever EvalScope recorded it, as a stable name.
        for path in out.rglob("*.json*"):
            path.write_text(path.read_text(encoding="utf-8").replace(str(work), "<work>"), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
