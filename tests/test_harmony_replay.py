"""Only gpt-oss's final channel is scored: harmony replies split one way for every form,
and EvalScope, run for real through scripts/py/evalscope_lab.py against a replay server
(tests/stubs/replay_server.py, tests/fixtures/replay), scores exactly the final channels."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts" / "py"))

import eval_result  # noqa: E402
from harmony import FINAL_PREFIX, parse_reply  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "replay"
PYTHON = sys.executable
MODEL = "gpt-oss-20b"


@pytest.mark.parametrize("text, prefilled, analysis, final, form", [
    ("<|channel|>analysis<|message|>答案：A？<|end|><|start|>assistant<|channel|>final<|message|>答案：C<|return|>",
     False, "答案：A？", "答案：C", "raw"),
    ("<|channel|>analysis<|message|>答案：A", False, "答案：A", None, "raw"),
    ("<|channel|>analysis<|message|>想<|end|><|start|>assistant<|channel|>final<|message|><|return|>", False, "想", "", "raw"),
    ("<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}<|call|>", False, "{}", None, "raw"),
    ("analysis不选B。assistantfinal答案：A", False, "不选B。", "答案：A", "stripped"),
    ("analysis答案可能是B", False, "答案可能是B", None, "stripped"),
    (FINAL_PREFIX + "答案：B", True, "", "答案：B", "raw"),
    ("答案：B", True, "", "答案：B", "plain"),
    ("答案：B", False, "", None, "plain"),
    ("", False, "", None, "plain"),
])
def test_parse_reply_takes_the_last_final_channel_only(text, prefilled, analysis, final, form):
    reply = parse_reply(text, prefilled)
    assert (reply.analysis, reply.final, reply.form) == (analysis, final, form)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    """The replay server on a free port; yields (base_url, request log path)."""
    folder = tmp_path_factory.mktemp("replay")
    log = folder / "requests.jsonl"
    log.touch()
    port = free_port()
    server = subprocess.Popen([PYTHON, str(REPO / "tests/stubs/replay_server.py"), "--port", str(port),
                               "--replies", str(FIXTURES / "replies.json"), "--log", str(log),
                               "--model", MODEL, "--model", "judge"])
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/models", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    yield url, log
    server.terminate()
    server.wait(timeout=10)


def evalscope(url: str, work_dir: Path, dataset: str, dataset_args: dict, generation: dict, *extra: str,
              html: bool = True):
    """EvalScope for real, as scripts/lib/eval_config.sh builds it for a harmony model (html=False:
    with EVALSCOPE_HTML=0, as env/smoke.env has it)."""
    shutil.rmtree(work_dir, ignore_errors=True)
    env = {**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    env.pop("EVALSCOPE_HTML", None)
    if not html:
        env["EVALSCOPE_HTML"] = "0"
    run = subprocess.run([PYTHON, str(REPO / "scripts/py/evalscope_lab.py"), "--replies", "harmony",
                    "eval", "--eval-type", "openai_api", "--api-url", url, "--api-key", "EMPTY", "--model", MODEL,
                    "--datasets", dataset, "--dataset-args", json.dumps({dataset: dataset_args}),
                    "--generation-config", json.dumps(generation), *extra,
                    "--eval-batch-size", "2", "--work-dir", str(work_dir), "--no-timestamp"],
                   env=env, cwd=work_dir.parent, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    reviews = {}
    for path in (work_dir / "reviews" / MODEL).glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            reviews[row["index"]] = row["sample_score"]["score"]
    return reviews


def requests_of(log: Path, model: str) -> list[dict]:
    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    return [row for row in rows if row.get("model") == model]


CEVAL_ARGS = {"local_path": str(FIXTURES / "ceval"), "subset_list": ["education_science"], "few_shot_num": 0}
# The answer each replayed reply gives in its final channel ('' = none to score), by question.
EXPECTED_LETTERS = ["C", "D", "", "", "A", "", "B", "", "C"]


def test_evalscope_scores_only_the_final_channel_in_every_form(replay, tmp_path):
    url, log = replay
    reviews = evalscope(url, tmp_path / "ceval", "ceval", CEVAL_ARGS,
                        {"max_tokens": 64, "temperature": 0,
                         "extra_body": {"chat_template_kwargs": {"reasoning_effort": "medium"}}})
    assert [reviews[i]["extracted_prediction"] for i in range(9)] == EXPECTED_LETTERS
    # Right: 1 (C), 5 (A), 7 (B), 9 (C); the cut-off and empty replies are wrong, not the letter of their reasoning.
    assert [reviews[i]["value"]["accuracy"] for i in range(9)] == [1, 0, 0, 0, 1, 0, 1, 0, 1]
    assert (tmp_path / "ceval" / "reports" / "report.html").is_file()  # EvalScope's own page, by default
    # Every request carried the answer mode to the server.
    asked = requests_of(log, MODEL)
    assert asked and all(r.get("chat_template_kwargs") == {"reasoning_effort": "medium"} for r in asked)

    out = tmp_path / "lab-eval.json"
    report = tmp_path / "ceval" / "reports" / MODEL / "ceval.json"
    assert eval_result.main(["--report", str(report), "--benchmark", "ceval", "--model", MODEL, "--config", "eval.yaml",
                             "--out", str(out), "--expected-num", "9", "--replies-dir", str(tmp_path / "ceval"),
                             "--max-tokens", "64", "--answer-mode", "reasoning-medium"]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["score"] == pytest.approx(4 / 9, abs=1e-4)  # EvalScope rounds to 4 places
    replies = result["replies"]
    # Final channels: 1, 2, 5, 7, 9 (4 and 8 are empty); cut off: 3, 6, 8; nothing to score: 3, 4, 6, 8.
    assert (replies["asked"], replies["final"], replies["cut_off"], replies["no_answer"]) == (9, 5, 3, 4)
    assert result["answer_mode"] == "reasoning-medium"
    # 3 of 9 cut off is over 2 %: the fix doubles max_tokens and names the session that needs.
    assert replies["fix"] == {"max_tokens": 128, "session_len": replies["longest_prompt"] + 128}


def test_a_prefilled_final_channel_is_requested_and_its_reply_scored(replay, tmp_path):
    url, log = replay
    before = len(requests_of(log, MODEL))
    reviews = evalscope(url, tmp_path / "ceval", "ceval", CEVAL_ARGS,
                        {"max_tokens": 64, "temperature": 0,
                         "extra_body": {"chat_template_kwargs": {"response_prefix": FINAL_PREFIX}}}, html=False)
    asked = requests_of(log, MODEL)[before:]
    assert len(asked) == 9 and all(r["chat_template_kwargs"] == {"response_prefix": FINAL_PREFIX} for r in asked)
    # ms-swift returns the prefix and the final text: every reply has a final channel, empty or not.
    assert [reviews[i]["extracted_prediction"] for i in range(9)] == ["C", "D", "", "", "A", "", "B", "", "C"]
    # EVALSCOPE_HTML=0: the report our pipeline reads is written, EvalScope's HTML page is not.
    assert (tmp_path / "ceval" / "reports" / MODEL / "ceval.json").is_file()
    assert not (tmp_path / "ceval" / "reports" / "report.html").exists()


def test_dialogue_metrics_and_the_judge_see_only_the_final_channel(replay, tmp_path):
    url, log = replay
    judge = {"strategy": "llm", "models": [{"model_id": "judge", "api_url": url, "api_key": "EMPTY",
                                            "generation_config": {"temperature": 0, "max_tokens": 64}}],
             "contract": {"score_type": "numeric",
                          "prompt_template": (REPO / "configs/judge/reply-rubric.zh.txt").read_text(encoding="utf-8")}}
    dialog_args = {"local_path": str(FIXTURES / "dialog"), "subset_list": ["dialog"]}
    generation = {"max_tokens": 64, "temperature": 0}
    reviews = evalscope(url, tmp_path / "dialog", "general_qa", dialog_args, generation)
    bleu = [reviews[i]["value"]["bleu-1"] if "bleu-1" in reviews[i]["value"] else reviews[i]["value"].get("BLEU-1")
            for i in range(3)]
    # The final channels are the references word for word; the cut-off reply has none.
    assert bleu[:2] == [pytest.approx(1.0), pytest.approx(1.0)] and bleu[2] == 0
    for score in reviews.values():
        assert "<|" not in score["prediction"] and "analysis" not in score["prediction"]

    before = len(requests_of(log, "judge"))
    judged = evalscope(url, tmp_path / "judged", "general_qa",
                       {**dialog_args, "metric_list": ["acc"], "primary_metric": "acc"}, generation,
                       "--judge", json.dumps(judge, ensure_ascii=False))
    prompts = [r["messages"][-1]["content"] for r in requests_of(log, "judge")[before:]]
    assert len(prompts) == 3
    finals = [json.loads(line)["answer"] for line in (FIXTURES / "dialog/dialog.jsonl").read_text().splitlines()]
    analyses = [r["analysis"] for r in json.loads((FIXTURES / "replies.json").read_text()) if r["match"] in
                "".join(json.loads(line)["messages"][0]["content"] for line in
                        (FIXTURES / "dialog/dialog.jsonl").read_text().splitlines())]
    for prompt in prompts:
        assert not any(analysis in prompt for analysis in analyses)
        assert "<|channel|>" not in prompt
    assert sum(any(final in prompt for prompt in prompts) for final in finals[:2]) == 2
    # The judge's own harmony reply is split too: its verdict is read from its final channel.
    assert sorted(v["value"].get("acc") for v in judged.values() if v["value"])[-1] == pytest.approx(0.8)
