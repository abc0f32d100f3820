"""PsyDTCorpus's test dialogues, turn by turn, in the general_qa layout EvalScope 1.14 loads from a
local_path (issue 21, point 4a).

  fetch_psydt.py --out DIR [--repo ID] [--revision REV] [--file PsyDTCorpus_test_single_turn_split.json]
                 [--local FILE]

Downloads the test file of the ModelScope dataset YIRONGCHEN/PsyDTCorpus (SoulChat2.0's corpus:
a JSON list of OpenAI-format dialogues, `messages` with system, user and assistant turns; 4,760
train / 240 test dialogues; the test file holds them split into prefixes that each end with a
counsellor reply) and writes, atomically (lab.files.write_folder_atomic):
  DIR/psydt.jsonl   one row per counsellor turn: the gold history before it as `messages`, the
                    counsellor's reply as `answer` (each turn once, however many prefixes hold it;
                    system prompts left out: the server applies the experiment's own)
  DIR/SOURCE.json   repo, revision, file, dialogues, turns, licence.
--local FILE converts a copy already on disk instead of downloading. Needs the network once
(MODELSCOPE_ENDPOINT / MODELSCOPE_API_TOKEN are the ModelScope client's; make preflight checks it).
Licence: Apache-2.0 (SoulChat2.0, as its dataset card states).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab.counselling import dialogue_turn_rows  # noqa: E402
from lab.files import write_folder_atomic  # noqa: E402

REPO_ID = "YIRONGCHEN/PsyDTCorpus"
TEST_FILE = "PsyDTCorpus_test_single_turn_split.json"
SUBSET = "psydt"
LICENCE = "Apache-2.0 (SoulChat2.0 / PsyDTCorpus dataset card)"


def dialogues_of(value) -> list[list]:
    """The message lists of the source: a JSON list of {messages: [...]} (or of message lists)."""
    if not isinstance(value, list):
        raise ValueError("the test file is not a JSON list of dialogues")
    found = []
    for item in value:
        messages = item.get("messages") if isinstance(item, dict) else item
        if isinstance(messages, list):
            found.append(messages)
    return found


def write(out: Path, rows: list[dict], source: dict) -> None:
    write_folder_atomic(out, {f"{SUBSET}.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                              "SOURCE.json": json.dumps(source, ensure_ascii=False, indent=1) + "\n"})


def download(repo: str, file: str, revision: str | None) -> Path:
    from modelscope.hub.file_download import dataset_file_download

    return Path(dataset_file_download(repo, file, revision=revision))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--repo", default=REPO_ID)
    parser.add_argument("--file", default=TEST_FILE)
    parser.add_argument("--revision", default=None)
    parser.add_argument("--local", default=None, help="a copy of the test file instead of the download")
    args = parser.parse_args(argv)
    try:
        path = Path(args.local) if args.local else download(args.repo, args.file, args.revision)
        dialogues = dialogues_of(json.loads(path.read_text(encoding="utf-8")))
    except ValueError as error:
        print(f"[fetch] error: {args.file} of {args.repo}: {error}", file=sys.stderr)
        print("[fetch] fix: check the file's layout against scripts/py/fetch_psydt.py", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - the network, the hub, a missing file: one message
        print(f"[fetch] error: could not get {args.file} of {args.repo}: {error}", file=sys.stderr)
        print("[fetch] fix: check the network to ModelScope (MODELSCOPE_ENDPOINT; make preflight checks it), "
              "or pass --local with a copy of the file", file=sys.stderr)
        return 1
    rows = dialogue_turn_rows(dialogues)
    if not rows:
        print(f"[fetch] error: no counsellor turn answering a client turn in {args.file}", file=sys.stderr)
        print("[fetch] fix: check the file's layout against scripts/py/fetch_psydt.py", file=sys.stderr)
        return 1
    source = {"repo": args.repo, "revision": args.revision, "file": args.file, "items": len(dialogues),
              "turns": len(rows), "licence": LICENCE}
    write(Path(args.out), rows, source)
    print(f"[fetch] {len(rows)} counsellor turns of {len(dialogues)} items of {args.file} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
