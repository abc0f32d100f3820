"""An external test set's overlap with the training set (issue 21, point 6), measured before
scoring on it.

  contamination.py --test DIR --config SFT.yaml --repo-root ROOT --cache-root CACHE
                   [--dataset ID_OR_PATH] [--limit SHARE] --out FILE

The test replies are the `answer` of every general_qa row in DIR/*.jsonl; the training replies
the counsellor turns of the training set: each entry of sft.yaml's `dataset` (or --dataset, the
env file's DATASET), a local file, or a hub dataset where ms-swift downloaded it under CACHE
(scripts/py/check_remote.py's cached_location). Writes FILE atomically:
  {test_replies, train_replies, ngram_chars, ngram_matches, ngram_share, exact_duplicates,
   exact_share, limit, flagged, train: [where each dataset was read], missing: [not found]}
ngram_share: the share of test replies sharing a run of ngram_chars characters (whitespace and
punctuation removed) with a training reply; flagged: ngram_share above --limit. A training set
that is nowhere on disk (not trained yet here) is recorded as missing, not measured as clean.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab.counselling import (DEFAULT_CONTAMINATION_LIMIT, contamination, data_files, read_rows,  # noqa: E402
                             reply_texts, rows_of_set)
from lab.files import load_yaml, write_json_atomic  # noqa: E402


def training_locations(args) -> tuple[list[Path], list[str]]:
    """Where each training dataset is on disk, and the entries found nowhere."""
    from lab.configs import cached_location, parse_dataset, truthy

    config = load_yaml(Path(args.config).read_text(encoding="utf-8")) or {}
    entries = [args.dataset] if args.dataset else config.get("dataset") or []
    if isinstance(entries, str):
        entries = [entries]
    root, found, missing = Path(args.repo_root), [], []
    for raw in entries:
        entry = parse_dataset(str(raw), root, truthy(config.get("use_hf", False)))
        if entry.local:
            path = Path(str(raw).split("#")[0]).expanduser()
            found.append(path if path.is_absolute() or path.exists() else root / path)
            continue
        location = cached_location(entry, Path(args.cache_root))
        if location:
            found.append(location)
        else:
            missing.append(str(raw))
    return found, missing


def training_replies(locations: list[Path]):
    for location in locations:
        for path in data_files(location):
            try:
                for row in read_rows(path):
                    if isinstance(row, dict):
                        yield from reply_texts(row)
            except ValueError:
                continue  # not a dataset file (a JSON card or state file in the download)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", required=True, help="the evaluation set (general_qa rows)")
    parser.add_argument("--config", required=True, help="the experiment's sft.yaml")
    parser.add_argument("--repo-root", required=True)
    parser.add_argument("--cache-root", required=True)
    parser.add_argument("--dataset", default=None, help="the env file's DATASET, overriding sft.yaml's")
    parser.add_argument("--limit", type=float, default=DEFAULT_CONTAMINATION_LIMIT)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    tests = [str(row.get("answer") or "") for row in rows_of_set(Path(args.test)) if isinstance(row, dict)]
    if not tests:
        print(f"[eval] error: no general_qa rows with an answer in {args.test}", file=sys.stderr)
        print("[eval] fix: fetch the set again (remove the folder; make evaluates and fetches it)", file=sys.stderr)
        return 1
    locations, missing = training_locations(args)
    result = contamination(tests, training_replies(locations), limit=args.limit)
    result.update(train=[str(p) for p in locations], missing=missing)
    if missing:
        result["flagged"] = False
    write_json_atomic(Path(args.out), result)
    print(f"[eval] overlap with the training set: {result['ngram_matches']} of {result['test_replies']} test replies share "
          f"{result['ngram_chars']} characters with one of {result['train_replies']} training replies, "
          f"{result['exact_duplicates']} exact duplicates" + (f"; not found: {', '.join(missing)}" if missing else ""),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
