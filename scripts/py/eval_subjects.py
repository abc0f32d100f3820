"""Print the subject keys EvalScope knows for a benchmark, one a line.

Usage: python scripts/py/eval_subjects.py DATASET   (e.g. cmmlu)
scripts/eval.sh uses it to stop on a misspelt subject before asking the server:
EvalScope silently drops an unknown CMMLU subject.
"""
import sys

from evalscope.api.registry import BENCHMARK_REGISTRY


def main() -> int:
    meta = BENCHMARK_REGISTRY.get(sys.argv[1])
    if not meta:
        print(f"unknown EvalScope benchmark: {sys.argv[1]}", file=sys.stderr)
        return 1
    print("\n".join(meta.subset_list))
    return 0


if __name__ == "__main__":
    sys.exit(main())
