"""An OpenAI-compatible server on 127.0.0.1 that answers with recorded-shape gpt-oss replies.

  replay_server.py --port P --replies FILE --log FILE [--model NAME ...]

Serves /v1/models (the --model names) and /v1/chat/completions. Each chat request is
appended to --log as one JSON line (the whole body), then answered with the first reply
of FILE whose `match` occurs in the request's last user message, in the shape an engine
returns it (`form`):
  raw       content `<|channel|>analysis<|message|>A<|end|><|start|>assistant<|channel|>final<|message|>F<|return|>`,
            as ms-swift's lmdeploy and transformers engines decode it (special tokens kept);
            without `final`, the analysis alone, unterminated (cut off)
  stripped  the same with the special tokens skipped: `analysisAassistantfinalF`
  field     `reasoning_content` A and `content` F (a server with a reasoning parser)
When the request prefills the final channel (chat_template_kwargs.response_prefix, as
ms-swift does), the reply is that prefix and F, as ms-swift returns it.
`finish_reason` (default stop) and `completion_tokens` (default: a count of the text's
characters) are returned as given. A request no reply matches gets HTTP 400.
The replies' wording is this repo's; their shape follows the harmony format, ms-swift
4.6's decoding and the OpenAI chat completion schema.
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def last_user_text(body: dict) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
            return content or ""
    return ""


def render(reply: dict, prefix: str | None) -> dict:
    """The assistant message of the reply in its form."""
    analysis, final, form = reply.get("analysis", ""), reply.get("final"), reply.get("form", "raw")
    if prefix:
        return {"role": "assistant", "content": prefix + (final or "")}
    if form == "field":
        return {"role": "assistant", "content": final or "", "reasoning_content": analysis}
    if form == "stripped":
        text = f"analysis{analysis}" + ("" if final is None else f"assistantfinal{final}")
        return {"role": "assistant", "content": text}
    text = f"<|channel|>analysis<|message|>{analysis}"
    if final is not None:
        text += f"<|end|><|start|>assistant<|channel|>final<|message|>{final}<|return|>"
    return {"role": "assistant", "content": text}


class OpenAIHandler(BaseHTTPRequestHandler):
    """What every stub OpenAI server here shares (tests/stubs/arena_server.py too): quiet, JSON
    answers, /v1/models from model_names(), a chat completion's body and its answer."""

    def log_message(self, *args):  # quiet: the request log is the record
        pass

    def model_names(self) -> list[str]:
        return self.server.models

    def send_json(self, status: int, value: dict) -> None:
        data = json.dumps(value, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            self.send_json(200, {"object": "list", "data": [
                {"id": name, "object": "model", "owned_by": self.server_version.split("/")[0]} for name in self.model_names()]})
        else:
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})

    def read_body(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")

    def send_completion(self, completion_id: str, model: str | None, message: dict, prompt_tokens: int,
                        completion_tokens: int, finish_reason: str = "stop", **choice) -> None:
        self.send_json(200, {
            "id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, **choice}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}})


class Handler(OpenAIHandler):
    server_version = "replay/1"

    def do_POST(self):
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        body = self.read_body()
        with self.server.lock, open(self.server.log, "a", encoding="utf-8") as log:
            log.write(json.dumps(body, ensure_ascii=False) + "\n")
        text = last_user_text(body)
        reply = next((r for r in self.server.replies if r["match"] in text), None)
        if reply is None:
            self.send_json(400, {"error": {"message": f"no replay reply matches: {text[:80]!r}"}})
            return
        prefix = (body.get("chat_template_kwargs") or {}).get("response_prefix")
        message = render(reply, prefix)
        tokens = reply.get("completion_tokens") or len(message["content"]) + len(message.get("reasoning_content") or "")
        self.send_completion(f"chatcmpl-replay-{time.monotonic_ns()}", body.get("model"), message, len(text), tokens,
                             reply.get("finish_reason", "stop"), logprobs=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--replies", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--model", action="append", default=[])
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.replies = json.load(open(args.replies, encoding="utf-8"))
    server.models, server.log, server.lock = args.model, args.log, threading.Lock()
    server.serve_forever()


if __name__ == "__main__":
    main()
