"""Rows for evaluating counselling replies on conversations the model never trained on:
ms-swift's held-out split of this run (val_dataset.jsonl in the run dir).

  heldout_set.py --val RUN_DIR/val_dataset.jsonl --rows N --out DIR

Writes, atomically, for the first N conversations of the split (in its order):
  DIR/dialog.jsonl  EvalScope general_qa rows: the conversation up to its last user turn
                    as `messages`, the lab's reply to it as `answer`
  DIR/prompts.txt   the same conversations for `evalscope perf --dataset line_by_line`,
                    one JSON message list a line
System messages are left out: the server applies the experiment's own system prompt,
as in training. A conversation that does not end with an assistant reply after a user
turn is skipped. Exits 1 naming the file when no row can be made.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lab.files import write_atomic


def messages_of(row: dict) -> list[dict]:
    """ms-swift writes each message of a held-out row as a JSON string (4.6), or a dict."""
    messages = []
    for item in row.get("messages") or []:
        message = json.loads(item) if isinstance(item, str) else item
        if isinstance(message, dict) and message.get("role") in ("user", "assistant"):
            messages.append({"role": message["role"], "content": str(message.get("content") or "")})
    return messages


def dialog_row(messages: list[dict]) -> dict | None:
    if len(messages) < 2 or messages[-1]["role"] != "assistant" or messages[-2]["role"] != "user":
        return None
    if not messages[-1]["content"].strip():
        return None
    return {"messages": messages[:-1], "answer": messages[-1]["content"]}


def write_lines(path: Path, lines: list[str]) -> None:
    write_atomic(path, "".join(line + "\n" for line in lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    rows = []
    if not Path(args.val).is_file():
        print(f"heldout_set.py: the training's held-out split {args.val} is not there: train first "
              "(with split_dataset_ratio > 0 in sft.yaml)", file=sys.stderr)
        return 1
    with open(args.val, encoding="utf-8") as handle:
        for line in handle:
            if line.strip() and len(rows) < args.rows:
                row = dialog_row(messages_of(json.loads(line)))
                if row:
                    rows.append(row)
    if not rows:
        print(f"heldout_set.py: no conversation in {args.val} ends with a reply to a user turn", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_lines(out / "dialog.jsonl", [json.dumps(row, ensure_ascii=False) for row in rows])
    write_lines(out / "prompts.txt", [json.dumps(row["messages"], ensure_ascii=False) for row in rows])
    print(f"[eval] {len(rows)} held-out conversations from {args.val} in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
