"""Does the longest prompt of each local question set, plus the tokens the model may
generate, fit in the server's session length? Checked before the first question.

  prompt_budget.py --tokenizer MODEL_DIR --session-len N [--system FILE]
                   --set NAME DIR FEW_SHOT MAX_TOKENS [--set ...]

The estimate, in the model's own tokens: the system prompt, FEW_SHOT times the longest
example of the set's dev split, the longest question (with its choices; a general_qa row:
all its messages), and 64 tokens for the chat template around them. One line per set:
`NAME<TAB>PROMPT_TOKENS<TAB>MAX_TOKENS`. Exits 1 naming both numbers for a set whose
prompt plus MAX_TOKENS exceeds N (the server would cut the prompt or refuse it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TEMPLATE_TOKENS = 64


def rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def row_text(row: dict) -> str:
    """A question with its choices (C-Eval, CMMLU, MMLU, MMLU-Pro), or a chat's messages."""
    if row.get("messages"):
        return "\n".join(str(m.get("content") or "") for m in row["messages"])
    parts = [str(row.get("question") or "")]
    for key in ("choices", "options"):
        parts += [str(c) for c in row.get(key) or []]
    parts += [str(row[k]) for k in ("A", "B", "C", "D", "E", "F") if k in row]
    parts.append(str(row.get("answer") or ""))
    return "\n".join(parts)


def splits(folder: Path) -> tuple[list[dict], list[dict]]:
    """(questions, few-shot examples) of a local set in any layout local_set.py knows:
    C-Eval <subject>/val|dev, CMMLU test|dev, MMLU all/test|dev, MMLU-Pro data/test|validation,
    GSM8K main/test|train, general_mcq <subset>_val|_dev, general_qa <subset>.jsonl."""
    questions = rows(folder / "test.jsonl") + rows(folder / "data" / "test.jsonl") + \
        [row for path in sorted(folder.glob("*/test.jsonl")) for row in rows(path)] + \
        [row for path in sorted(folder.glob("*/val.jsonl")) for row in rows(path)]
    examples = rows(folder / "dev.jsonl") + rows(folder / "data" / "validation.jsonl") + \
        [row for path in sorted(folder.glob("*/dev.jsonl")) for row in rows(path)] + \
        [row for path in sorted(folder.glob("*/train.jsonl")) for row in rows(path)] + \
        [row for path in sorted(folder.glob("*_dev.jsonl")) for row in rows(path)]
    if not questions:
        questions = [row for path in sorted(folder.glob("*.jsonl")) if not path.name.endswith("_dev.jsonl")
                     for row in rows(path)]
    return questions, examples


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--session-len", type=int, required=True)
    parser.add_argument("--system", default=None)
    parser.add_argument("--set", nargs=4, action="append", default=[], metavar=("NAME", "DIR", "FEW_SHOT", "MAX_TOKENS"))
    args = parser.parse_args(argv)

    tokenizer_file = Path(args.tokenizer) / "tokenizer.json"
    if tokenizer_file.is_file():  # the fast tokenizer alone: no transformers import (seconds)
        from tokenizers import Tokenizer

        fast = Tokenizer.from_file(str(tokenizer_file))

        def count(text: str) -> int:
            return len(fast.encode(text, add_special_tokens=False).ids)
    else:
        from transformers import AutoTokenizer

        slow = AutoTokenizer.from_pretrained(args.tokenizer)

        def count(text: str) -> int:
            return len(slow(text, add_special_tokens=False)["input_ids"])

    system = count(Path(args.system).read_text(encoding="utf-8")) if args.system else 0
    too_long = []
    for name, folder, few_shot, max_tokens in args.set:
        questions, examples = splits(Path(folder))
        longest = max((count(row_text(row)) for row in questions), default=0)
        example = max((count(row_text(row)) for row in examples), default=0)
        prompt = system + int(few_shot) * example + longest + TEMPLATE_TOKENS
        print(f"{name}\t{prompt}\t{max_tokens}")
        if prompt + int(max_tokens) > args.session_len:
            too_long.append((name, prompt, int(max_tokens)))
    for name, prompt, max_tokens in too_long:
        print(f"[eval] error: {name}: its longest prompt is about {prompt} tokens and the model may generate "
              f"{max_tokens} more: {prompt + max_tokens} > the server's session length {args.session_len}", file=sys.stderr)
    if too_long:
        print("[eval] fix: raise the session length in deploy.yaml (lmdeploy_session_len, or max_length), "
              "or lower max_tokens or few_shot in eval.yaml", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
