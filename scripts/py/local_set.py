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


def parquet_rows(path: Path) -> int:
    """The row count a Parquet file's footer states (FileMetaData.num_rows, Thrift compact
    protocol), read without pyarrow: printing a runbook needs only this, before make env."""
    with path.open("rb") as handle:
        handle.seek(-8, 2)
        tail = handle.read(8)
        if tail[4:] != b"PAR1":
            raise ValueError(f"{path}: not a Parquet file")
        size = int.from_bytes(tail[:4], "little")
        handle.seek(-8 - size, 2)
        data = handle.read(size)
    pos = 0

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    def zigzag(value: int) -> int:
        return (value >> 1) ^ -(value & 1)

    def skip(kind: int, in_collection: bool = False) -> None:
        nonlocal pos
        if kind in (1, 2):  # a bool: in the field header, but one byte in a list, set or map
            pos += 1 if in_collection else 0
        elif kind == 3:
            pos += 1
        elif kind in (4, 5, 6):
            varint()
        elif kind == 7:
            pos += 8
        elif kind == 8:
            length = varint()
            pos += length
        elif kind in (9, 10):
            header = data[pos]
            pos += 1
            count = header >> 4 if header >> 4 != 15 else varint()
            for _ in range(count):
                skip(header & 0x0F, True)
        elif kind == 11:
            count = varint()
            if count:
                types = data[pos]
                pos += 1
                for _ in range(count):
                    skip(types >> 4, True)
                    skip(types & 0x0F, True)
        elif kind == 12:
            struct()
        else:
            raise ValueError(f"{path}: unknown Thrift type {kind} in the footer")

    def struct(want: int | None = None):
        nonlocal pos
        field = 0
        while True:
            header = data[pos]
            pos += 1
            if header == 0:
                return None
            field = field + (header >> 4) if header >> 4 else zigzag(varint())
            if field == want and header & 0x0F == 6:
                return zigzag(varint())
            skip(header & 0x0F)

    rows = struct(want=3)  # FileMetaData: 1 version, 2 schema, 3 num_rows
    if rows is None:
        raise ValueError(f"{path}: no row count in the footer")
    return rows


def subjects(folder: Path) -> Counter:
    configs = readme_configs(folder)
    if configs == ["main"] and (folder / "main" / "test.jsonl").is_file():
        return Counter({"main": sum(1 for _ in rows(folder / "main" / "test.jsonl"))})
    parquets = sorted(folder.glob("data/*/test.parquet"))
    if parquets:
        return Counter({path.parent.name: parquet_rows(path) for path in parquets})
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
            except (OSError, ValueError, KeyError) as error:  # a broken file: named, the others still listed
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
