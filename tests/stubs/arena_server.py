"""An OpenAI-compatible server on 127.0.0.1 for the arena's tests: two answering models and a judge.

  arena_server.py --port P --replies FILE --log FILE

Serves /v1/models and /v1/chat/completions. FILE is a JSON object {model: [{match, analysis,
final}]}: a request to one of its models is answered with the first reply whose `match` occurs
in the last user message, as raw harmony (`<|channel|>analysis<|message|>A<|end|><|start|>
assistant<|channel|>final<|message|>F<|return|>`, ms-swift's lmdeploy and transformers
engines' shape). Any other model is the judge of EvalScope's general_arena: it reads the two
answers out of the adapter's grader prompt and answers with the verdict JSON the adapter's
contract asks for, by these rules (this repo's, to make every outcome happen):
  the question holds [乱码]     not JSON (an unusable verdict)
  the question holds [偏向A]    always A>B (a judge biased to the first position)
  otherwise                    each answer's `q=N` compared: a difference of 2 or more is
                               A>>B or B>>A, of 1 A>B or B>A, none A=B
An answer holding 推理 (only the analysis channel does) gets a verdict that is not JSON
either: a judge shown the reasoning would make the test's counts wrong.
Every judge request is appended to --log as one JSON line.
"""
from __future__ import annotations

import argparse
import json
import re
import threading
from http.server import ThreadingHTTPServer

from replay_server import OpenAIHandler, last_user_text, render  # its sibling: the same OpenAI stub

ANSWER = re.compile(r"<\|The Start of Assistant ([AB])'s Answer\|>\n(.*?)\n<\|The End of Assistant \1's Answer\|>", re.DOTALL)
QUALITY = re.compile(r"q=(\d+)")


def quality(answer: str) -> int:
    found = QUALITY.search(answer)
    return int(found.group(1)) if found else 0


def verdict(prompt: str) -> str:
    """The judge's reply to one grader prompt (see the module's rules)."""
    answers = dict(ANSWER.findall(prompt))
    if "[乱码]" in prompt or "推理" in "".join(answers.values()) or set(answers) != {"A", "B"}:
        return "无法判断"
    if "[偏向A]" in prompt:
        label = "A>B"
    else:
        difference = quality(answers["A"]) - quality(answers["B"])
        label = "A=B" if difference == 0 else ("A" if difference > 0 else "B") + (">>" if abs(difference) >= 2 else ">") + \
            ("B" if difference > 0 else "A")
    return json.dumps({"reasoning": "按 q 值比较。", "verdict": label}, ensure_ascii=False)


class Handler(OpenAIHandler):
    server_version = "arena/1"

    def model_names(self) -> list[str]:
        return list(self.server.replies) + ["judge"]

    def do_POST(self):
        body = self.read_body()
        model, text = body.get("model"), last_user_text(body)
        if model in self.server.replies:
            reply = next((r for r in self.server.replies[model] if r["match"] in text), None)
            if reply is None:
                self.send_json(400, {"error": f"no reply of {model} matches the request"})
                return
            content = render(reply, None)["content"]  # raw harmony, analysis then final
        else:
            content = verdict(text)
            with self.server.lock, open(self.server.log, "a", encoding="utf-8") as log:
                log.write(json.dumps({"model": model, "prompt": text, "reply": content}, ensure_ascii=False) + "\n")
        self.send_completion("chatcmpl-arena", model, {"role": "assistant", "content": content}, len(text), len(content))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--replies", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    with open(args.replies, encoding="utf-8") as handle:
        server.replies = json.load(handle)
    server.log, server.lock = args.log, threading.Lock()
    server.serve_forever()


if __name__ == "__main__":
    main()
