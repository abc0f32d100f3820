"""gpt-oss replies in the harmony format: which part is the final answer.

gpt-oss writes its reasoning in an `analysis` channel, then its answer in a `final`
channel. What a server returns depends on the engine:
  raw        <|channel|>analysis<|message|>…<|end|><|start|>assistant<|channel|>final<|message|>…<|return|>
             (ms-swift's lmdeploy and transformers engines: the decoded text, special tokens kept)
  stripped   analysis…assistantfinal…   (an engine that skips special tokens)
  field      the reasoning in a separate `reasoning_content` field, `content` the answer
             (a server with a reasoning parser: EvalScope splits it out itself)
With a prefilled final channel (answer mode `final`) the model starts inside the final
channel: ms-swift prepends the prefix to the reply, other engines return only what
follows it, with no markup.

Only the final channel is an answer. A reply with no final channel (cut off in its
reasoning, or never leaving it) has none, whatever letters its reasoning names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

FINAL_PREFIX = "<|channel|>final<|message|>"
# Tokens that close a message, and the header of the next one.
_END_TOKENS = ("<|return|>", "<|end|>", "<|call|>")
# A message header: its channel name, then anything (a recipient, <|constrain|>json) up
# to <|message|>, never across another header.
_CHANNEL = re.compile(r"<\|channel\|>([a-z]+)(?:(?!<\|channel\|>).)*?<\|message\|>", re.DOTALL)
_STRIPPED_START = re.compile(r"^(analysis|commentary|final)")
_STRIPPED_FINAL = "assistantfinal"


@dataclass(frozen=True)
class Reply:
    analysis: str           # the reasoning (analysis and commentary channels), "" if none
    final: str | None       # the final channel's text; None when the reply has none
    form: str               # raw, stripped or plain (no markup)


def _strip_end(text: str) -> str:
    cut = min((i for i in (text.find(t) for t in _END_TOKENS) if i >= 0), default=len(text))
    return text[:cut]


def _parse_raw(text: str) -> Reply:
    channels = list(_CHANNEL.finditer(text))
    final = None
    analysis = []
    for index, match in enumerate(channels):
        body_end = channels[index + 1].start() if index + 1 < len(channels) else len(text)
        body = _strip_end(text[match.end():body_end])
        if match.group(1) == "final":
            final = body  # the last final channel is the answer
        else:
            analysis.append(body)
    return Reply("\n".join(analysis), final, "raw")


def _parse_stripped(text: str) -> Reply:
    kind = _STRIPPED_START.match(text).group(1)
    if kind == "final":
        return Reply("", text[len("final"):], "stripped")
    body = text[len(kind):]
    cut = body.rfind(_STRIPPED_FINAL)
    if cut < 0:
        return Reply(body, None, "stripped")
    return Reply(body[:cut], body[cut + len(_STRIPPED_FINAL):], "stripped")


def parse_reply(text: str, prefilled_final: bool) -> Reply:
    """Splits one reply. prefilled_final: the request prefilled the final channel, so a
    reply without markup is the final channel's continuation; otherwise it has no answer."""
    text = text or ""
    if "<|channel|>" in text:
        return _parse_raw(text)
    if _STRIPPED_START.match(text):
        return _parse_stripped(text)
    return Reply("", text if prefilled_final else None, "plain")
