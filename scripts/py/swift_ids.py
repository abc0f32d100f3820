"""The model and dataset entries of a training config as ms-swift reads them (lab/configs.py),
for scripts/preflight.sh: one line an entry,

  KIND<TAB>WHERE<TAB>VALUE<TAB>RAW<TAB>CACHED

KIND model or dataset; WHERE local (VALUE: its absolute path), hub (VALUE: the hub id, CACHED:
where the hub's SDK keeps it under --cache-root, or empty) or missing (written as a path, not
there: VALUE its absolute path); RAW as written. CACHED last: bash's read joins empty fields
split by tabs.

  swift_ids.py --config SFT.yaml --repo-root DIR [--cache-root DIR] [--model M] [--dataset D]

Exit 2 naming the file when the config cannot be read.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from lab import configs


def absolute(path: str, root: Path) -> str:
    expanded = os.path.expanduser(path)
    return expanded if os.path.isabs(expanded) else str(root / expanded)


def line(entry: configs.SwiftEntry, root: Path, cache_root: Path | None) -> str:
    if entry.local:
        where, value, cached = "local", absolute(entry.path, root), ""
    elif entry.looks_like_a_path():
        text = entry.raw.split("#", 1)[0] if entry.kind == "dataset" else entry.raw
        where, value, cached = "missing", absolute(text, root), ""
    else:
        location = configs.cached_location(entry, cache_root) if cache_root else None
        where, value, cached = "hub", entry.repo_id, str(location or "")
    return "\t".join((entry.kind, where, value, entry.raw, cached))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--repo-root", required=True)
    parser.add_argument("--cache-root", default="")
    parser.add_argument("--model", default="")
    parser.add_argument("--dataset", default="")
    args = parser.parse_args(argv)
    root = Path(args.repo_root)
    try:
        entries = configs.read_entries(Path(args.config), root, args.model or None, args.dataset or None)
    except (OSError, yaml.YAMLError) as error:
        print(f"error: {args.config}: cannot be read ({error})", file=sys.stderr)
        print("fix: correct the file (YAML key: value lines)", file=sys.stderr)
        return 2
    cache_root = Path(args.cache_root) if args.cache_root else None
    for entry in entries:
        print(line(entry, root, cache_root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
