"""Log one EvalScope report (overall and per-subject accuracy, question counts) to SwanLab.

Usage: python scripts/py/log_eval_swanlab.py --report REPORT.json --project P --name N
       --benchmark B --mode cloud|offline --log-dir DIR
EvalScope 1.14 cannot report to SwanLab itself. In cloud mode the key comes from
the SWANLAB_API_KEY environment variable only; offline mode writes DIR/run-*/
(upload later with `swanlab sync -p P DIR/run-...`).
"""
import argparse
import json
import os
import sys


def report_metrics(report: dict, benchmark: str) -> tuple[dict, dict]:
    """Returns (metrics to log, summary config) from an EvalScope report JSON."""
    metric = report["metrics"][0]
    logged = {f"{benchmark}/accuracy": metric["score"], f"{benchmark}/num": metric["num"]}
    subjects = {}
    for category in metric.get("categories", []):
        for subset in category.get("subsets", []):
            subjects[subset["name"]] = subset
            logged[f"{benchmark}/subject/{subset['name']}/accuracy"] = subset["score"]
            logged[f"{benchmark}/subject/{subset['name']}/num"] = subset["num"]
    config = {
        "benchmark": benchmark,
        "dataset": report.get("dataset_name"),
        "model": report.get("model_name"),
        "metric": metric.get("name"),
        "subjects": sorted(subjects),
    }
    return logged, config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--mode", choices=["cloud", "offline"], default="offline")
    parser.add_argument("--log-dir", required=True)
    args = parser.parse_args()

    with open(args.report, encoding="utf-8") as f:
        logged, config = report_metrics(json.load(f), args.benchmark)
    if args.mode == "cloud" and not os.environ.get("SWANLAB_API_KEY"):
        print("error: cloud mode needs SWANLAB_API_KEY in the environment", file=sys.stderr)
        return 1

    import swanlab

    os.makedirs(args.log_dir, exist_ok=True)
    kwargs = {}
    if hasattr(swanlab, "Settings"):
        kwargs["settings"] = swanlab.Settings(interactive=False)
    mode = "online" if args.mode == "cloud" else "offline"
    swanlab.init(project=args.project, name=args.name, config=config, mode=mode, log_dir=args.log_dir, **kwargs)
    swanlab.log(logged)
    swanlab.finish()
    print(f"logged {len(logged)} metrics of {args.name} to SwanLab ({args.mode}, project {args.project})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
