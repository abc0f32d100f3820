"""Times the report parser on a generated logging.jsonl (default 100,000 rows).
    python scripts/bench/report_parse.py [ROWS]"""

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "py"))
import runparse as rp  # noqa: E402


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        with (run_dir / "logging.jsonl").open("w") as handle:
            for step in range(1, rows + 1):
                handle.write(json.dumps({"loss": f"{8 - step / rows:.6f}", "grad_norm": "0.5", "learning_rate": "1e-4",
                                         "token_acc": "0.3", "epoch": f"{step / rows:.5f}",
                                         "global_step/max_steps": f"{step}/{rows}", "elapsed_time": f"{step}s",
                                         "remaining_time": f"{rows - step}s", "train_speed(s/it)": "1.0"}) + "\n")
        size = (run_dir / "logging.jsonl").stat().st_size
        started = time.perf_counter()
        run = rp.read_run(run_dir)
        elapsed = time.perf_counter() - started
    print(f"{len(run.train)} rows ({size / 2**20:.1f} MiB) parsed in {elapsed:.3f} s "
          f"({len(run.train) / elapsed:,.0f} rows/s)")


if __name__ == "__main__":
    main()
