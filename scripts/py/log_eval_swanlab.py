"""Log a model's evaluation results (overall and per-subject accuracy, question counts,
how the replies ended: final channel, cut off, no answer, generated tokens) to SwanLab: one process and one SwanLab run for all the benchmarks given.

Usage: python scripts/py/log_eval_swanlab.py --project P --name N --mode cloud|local
       --log-dir DIR [--run-id ID] [--group G] RESULT.json...
RESULT.json is what scripts/py/eval_result.py accepted (lab-eval.json): only checked
results reach SwanLab. EvalScope 1.14 cannot report to SwanLab itself. With --run-id
the run is resumed (resume="allow"), so the evaluations of one model made by several
`make eval-*` land in one run. A base-model evaluation another experiment made and this one
links (scripts/lib/store.sh) is not given here: it is logged once, by the experiment that made
it, with its evaluation fingerprint in the run's config. In cloud mode the key comes from the SWANLAB_API_KEY
environment variable only; local mode writes DIR/run-*/ and the dashboard's index
DIR/runs.swanlab (`make dashboard`; upload later with `swanlab sync -p P DIR/run-...`).
"""
import argparse
import json
import os
import sys


PERF_KEYS = ("output_tok_s", "requests_s", "avg_ttft_ms", "ttft_ms_p50", "ttft_ms_p99", "avg_latency_s",
             "latency_s_p50", "latency_s_p99")


def result_metrics(result: dict) -> dict:
    """The numbers of one checked result, under its benchmark's name: the primary score
    (accuracy for multiple choice) and count, every other metric (BLEU, ROUGE), each
    subject, a judge's coverage, an external test set's overlap with the training set, a perf
    run's figures per concurrency level."""
    bench = result["benchmark"]
    logged = {}
    if isinstance(result.get("score"), (int, float)):
        name = "accuracy" if result.get("metric") in (None, "accuracy") else "score"
        logged[f"{bench}/{name}"] = result["score"]
    if isinstance(result.get("num"), (int, float)) and result.get("kind") != "perf":
        logged[f"{bench}/num"] = result["num"]
    for label, value in (result.get("metrics") or {}).items():
        if label != result.get("metric") or label != "accuracy":
            logged[f"{bench}/{label}"] = value
    for subset in result.get("subsets") or []:
        if len(result.get("subsets") or []) > 1 or result.get("metric") == "accuracy":
            logged[f"{bench}/subject/{subset['name']}/accuracy"] = subset["score"]
            logged[f"{bench}/subject/{subset['name']}/num"] = subset["num"]
    for category in result.get("categories") or []:
        if isinstance(category.get("score"), (int, float)):
            logged[f"{bench}/category/{category['name']}/accuracy"] = category["score"]
            logged[f"{bench}/category/{category['name']}/num"] = category["num"]
    for key, value in (result.get("extra") or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            logged[f"{bench}/{key}"] = value
    # An external test set's overlap with the training set (scripts/py/contamination.py).
    overlap = result.get("contamination") or {}
    for key in ("ngram_share", "exact_duplicates"):
        if isinstance(overlap.get(key), (int, float)) and not isinstance(overlap.get(key), bool):
            logged[f"{bench}/contamination/{key}"] = overlap[key]
    judge = result.get("judge") or {}
    if isinstance(judge.get("coverage"), (int, float)):
        logged[f"{bench}/judge_coverage"] = judge["coverage"]
    replies = result.get("replies") or {}
    for key in ("asked", "final", "cut_off", "no_answer", "cut_off_share"):
        if isinstance(replies.get(key), (int, float)):
            logged[f"{bench}/replies/{key}"] = replies[key]
    for part in ("tokens", "analysis_tokens", "final_tokens"):
        for stat in ("mean", "p95"):
            value = (replies.get(part) or {}).get(stat)
            if isinstance(value, (int, float)):
                logged[f"{bench}/replies/{part}_{stat}"] = value
    for level in result.get("levels") or []:
        for key in PERF_KEYS:
            if isinstance(level.get(key), (int, float)):
                logged[f"{bench}/concurrency_{level['parallel']}/{key}"] = level[key]
    return logged


def run_config(results: list[dict]) -> dict:
    return {
        "model": results[0].get("model"),
        "benchmarks": {r["benchmark"]: {"dataset": r.get("dataset"), "metric": r.get("metric"),
                                        "subjects": sorted(s["name"] for s in r.get("subsets") or []),
                                        "judged": r.get("judge") is not None,
                                        "answer_mode": r.get("answer_mode"),
                                        # the digest of its inputs: for the base model, its evaluation
                                        # fingerprint, the entry of the store of shared evaluations
                                        # (scripts/lib/store.sh) other experiments link to
                                        "fingerprint": r.get("inputs_digest")}
                       for r in results},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", metavar="RESULT.json")
    parser.add_argument("--project", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--mode", choices=["cloud", "local"], default="local")
    parser.add_argument("--log-dir", required=True)
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--group", default=None)
    args = parser.parse_args()

    results = []
    for path in args.results:
        with open(path, encoding="utf-8") as handle:
            results.append(json.load(handle))
    logged = {}
    for result in results:
        logged.update(result_metrics(result))
    if args.mode == "cloud" and not os.environ.get("SWANLAB_API_KEY"):
        print("error: cloud mode needs SWANLAB_API_KEY in the environment", file=sys.stderr)
        return 1

    import swanlab

    os.makedirs(args.log_dir, exist_ok=True)
    kwargs = {}
    if args.run_id:
        kwargs.update(id=args.run_id, resume="allow")
    if args.group:
        kwargs["group"] = args.group
    mode = "online" if args.mode == "cloud" else "local"
    swanlab.init(project=args.project, name=args.name, config=run_config(results), mode=mode,
                 log_dir=args.log_dir, settings=swanlab.Settings(interactive=False), **kwargs)
    swanlab.log(logged)
    swanlab.finish()
    benches = ", ".join(r["benchmark"] for r in results)
    print(f"[eval] logged {len(logged)} metrics of {args.name} ({benches}) to SwanLab ({args.mode}, project {args.project})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
