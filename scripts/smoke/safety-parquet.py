"""Writes the smoke's SafetyBench sample (configs/smoke/data/safety_bench/zh.jsonl, readable)
as the parquet EvalScope 1.14's safety_bench loads (data/zh/test.parquet beside it).

  python scripts/smoke/safety-parquet.py configs/smoke/data/safety_bench
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema([("id", pa.int64()), ("category", pa.string()), ("question", pa.string()),
                    ("options", pa.list_(pa.string())), ("answer", pa.int64())])


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    folder = Path(argv[0])
    rows = [json.loads(line) for line in (folder / "zh.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    out = folder / "data" / "zh" / "test.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    pq.write_table(table, out, compression="none")
    print(f"{len(rows)} questions -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
