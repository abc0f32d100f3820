"""The subjects of a local evaluation set, in one of the layouts EvalScope 1.14 loads
offline, with the number of questions of each: one `SUBJECT<TAB>COUNT` line each.

  local_set.py DIR
  local_set.py --each DIR...   every DIR's, as DIR<TAB>SUBJECT<TAB>COUNT lines (one start for all;
                               a DIR in no layout has no line; a DIR this Python cannot read
                               has one line !<TAB>DIR<TAB>WHY, and the others are still listed)

Layouts (what scripts/eval.sh needs to check the subjects and the scored count):
  C-Eval     README.md front matter with one config per subject; DIR/<subject>/val.jsonl
  CMMLU      DIR/test.jsonl, the subject in `category`
  MMLU       README.md front matter with the one config `all`; DIR/all/test.jsonl, `subject`
  MMLU-Pro   DIR/data/test.jsonl, the subject in `category` (lower-cased, as EvalScope does)
  GSM8K      README.md front matter with the one config `main`; DIR/main/test.jsonl
  SafetyBench  DIR/data/<config>/test.parquet (zh, en, zh_subset), one subject per config
  general_mcq  DIR/<subset>_val.jsonl scored (DIR/<subset>_dev.jsonl: few-shot examples)
  general_qa DIR/<subset>.jsonl, one file per subset
Exits 1 naming the folder when it holds none of them.
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path


def rows(path: Path):
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def readme_configs(folder: Path) -> list[str]:
    readme = folder / "README.md"
    if not readme.is_file():
        return []
    return [name for name in re.findall(r"^- config_name:\s*(\S+)", readme.read_text(encoding="utf-8"), re.M)
            if name != "default"]


def subjects(folder: Path) -> Counter:
    configs = readme_configs(folder)
    if configs == ["main"] and (folder / "main" / "test.jsonl").is_file():
        return Counter({"main": sum(1 for _ in rows(folder / "main" / "test.jsonl"))})
    parquets = sorted(folder.glob("data/*/test.parquet"))
    if parquets:
        import pyarrow.parquet as pq

        return Counter({path.parent.name: pq.read_metadata(path).num_rows for path in parquets})
    scored = sorted(folder.glob("*_val.jsonl"))
    if scored:
        return Counter({path.name[:-len("_val.jsonl")]: sum(1 for _ in rows(path)) for path in scored})
    if configs == ["all"] and (folder / "all" / "test.jsonl").is_file():
        return Counter(row["subject"] for row in rows(folder / "all" / "test.jsonl"))
    if configs:
        return Counter({name: sum(1 for _ in rows(folder / name / "val.jsonl")) if (folder / name / "val.jsonl").is_file()
                        else 0 for name in configs})
    if (folder / "test.jsonl").is_file():
        return Counter(row["category"] for row in rows(folder / "test.jsonl"))
    if (folder / "data" / "test.jsonl").is_file():
        return Counter(str(row["category"]).lower() for row in rows(folder / "data" / "test.jsonl"))
    return Counter({path.stem: sum(1 for _ in rows(path)) for path in sorted(folder.glob("*.jsonl"))})


def main(argv: list[str]) -> int:
    if argv[:1] == ["--each"]:
        for folder in argv[1:]:
            try:
                found = subjects(Path(folder))
            except (ImportError, OSError, ValueError, KeyError) as error:  # e.g. a parquet, and no pyarrow
                print(f"!\t{folder}\t{type(error).__name__}: {error}")
                continue
            for name in sorted(found):
                print(f"{folder}\t{name}\t{found[name]}")
        return 0
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    found = subjects(Path(argv[0]))
    if not found:
        print(f"{argv[0]}: no evaluation set in a layout EvalScope loads (see scripts/py/local_set.py)", file=sys.stderr)
        return 1
    for name in sorted(found):
        print(f"{name}\t{found[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
