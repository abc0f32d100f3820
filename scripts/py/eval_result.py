"""Checks one EvalScope report and records it as the evaluation's result.

  eval_result.py --report REPORT.json --benchmark B --model SERVED --config CONFIG
                 --out RESULT.json [--expected-num N] [--subject S ...] [--judged]
                 [--inputs-digest D] [--seconds S] [--replies-dir DIR --max-tokens N
                 [--cut-off-limit SHARE] [--tokenizer DIR] [--scorer emollm]] [--contamination FILE]
  eval_result.py --perf --report PERF_DIR --parallel P... --number N... (and the above)

Accepted (exit 0): an accuracy in [0, 1], N questions scored when N is given, and
every listed subject present. RESULT.json is then written atomically:
  {inputs_digest, benchmark, dataset, model, metric, score, num, metrics: {label: score},
   subsets: [{name, score, num}], categories: [{name, score, num}], judge, eval_seconds, report}
(the primary metric's label, score, subjects and categories; every metric of the report by
label; with --aggregate subject-mean the score is the mean of the subjects' accuracies),
and with --replies-dir (EvalScope's work dir) what a reader needs to trust the score:
  replies: {asked, final, cut_off, no_answer, cut_off_share, max_tokens, tokens,
            analysis_tokens, final_tokens, longest_prompt, fix}
(final: replies with a final channel; cut_off: ended by max_tokens; no_answer: nothing
to score in the final channel; tokens: generated tokens, mean/p95/max; the analysis and
final parts apart when a tokenizer tells them apart; fix: when more than cut-off-limit of
the replies were cut off, the max_tokens and session length that would fit them).
With --scorer emollm the replies are scored again as EmoLLM scores them (scripts/py/lab/counselling.py:
BLEU-1..4 and ROUGE-1/2/L F on jieba words; the score ROUGE-L F; each reply's scores in
lab-scores.jsonl for the paired tests; EvalScope's own metrics kept as evalscope_metrics), and
--scorer cpsycoune reads the judge's four CPsyCoun dimensions (--turns: the case of each row),
averages them per dialogue and over the dialogues (metrics), the score their normalised mean;
--contamination adds the test set's overlap with the training set (scripts/py/contamination.py)
as `contamination`.
With --arena (make arena), each --pair NAME DIR TUNED_RESULT BASE_RESULT is one general_arena run
(DIR: its work dir) on NAME's replies of both models (their lab-eval.json, whose inputs digests are
recorded): per pair and over all pairs, the fine-tuned model's wins, ties and losses against the
base, each prompt's two orders reduced as EvalScope reduces them (the same result in both orders,
else a tie), the prompts without a usable verdict, EvalScope's win_rate (Bradley-Terry, strong
verdicts weighted 3) with its bootstrap bounds, and the simple win rate (wins + ties/2)/n with a
seeded bootstrap 95% interval over the prompts; the score is the simple win rate over all pairs.
With --perf, --report is an `evalscope perf` output folder and the result holds one
entry per concurrency level (throughput, TTFT, latency p50/p99) instead of a score.
Rejected (exit 1): the reason and the fix go to stderr, RESULT.json is not
written, and a rejection record goes to lab-eval-rejected.json beside it, so the
report shows the evaluation as rejected, never as a score.

scripts/eval.sh runs it after each EvalScope run, and so does the runbook: the
report and SwanLab read only these results.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
from pathlib import Path

from lab.files import write_json_atomic
from runparse import message_text

REJECTED_NAME = "lab-eval-rejected.json"


class Rejected(Exception):
    def __init__(self, reason: str, fix: str):
        super().__init__(reason)
        self.reason, self.fix = reason, fix


def subsets_of(metric: dict) -> list[dict]:
    return [{"name": s.get("name"), "score": s.get("score"), "num": s.get("num")}
            for category in metric.get("categories") or []
            for s in (category or {}).get("subsets") or [] if not s.get("is_aggregate")]


def categories_of(metric: dict) -> list[dict]:
    """Each category of the metric (SafetyBench: its seven, e.g. Mental Health): its score over
    its questions (the question-weighted mean of its subsets) and count."""
    found = []
    for category in metric.get("categories") or []:
        name = (category or {}).get("name")
        name = "/".join(name) if isinstance(name, list) else name
        parts = [s for s in category.get("subsets") or [] if not s.get("is_aggregate")
                 and isinstance(s.get("num"), int) and is_score(s.get("score"))]
        num = sum(s["num"] for s in parts)
        found.append({"name": name, "num": num,
                      "score": sum(s["score"] * s["num"] for s in parts) / num if num else None})
    return found


def subject_mean(subsets: list[dict]) -> float | None:
    """The mean of the per-subject accuracies (CPsyExam's MCQA/MRQA), not the mean over questions."""
    scores = [s["score"] for s in subsets if is_score(s.get("score"))]
    return sum(scores) / len(scores) if scores else None


DIMENSION_ORDER = ("ngram", "variant", "statistic")


def metric_label(metric: dict) -> str:
    """'accuracy', 'bleu-4', 'rouge-1-f1', 'rouge-l-recall': the metric's name and dimensions."""
    identity = metric.get("identity") or {}
    name = metric.get("name") or identity.get("name") or "score"
    dims = identity.get("dimensions") or {}
    keys = [k for k in DIMENSION_ORDER if k in dims] + sorted(k for k in dims if k not in DIMENSION_ORDER)
    return "-".join([str(name).lower()] + [str(dims[k]).lower() for k in keys])


def primary_metric(report: dict, metrics: list[dict]) -> dict:
    """The report's primary metric (general_qa has thirteen; its first is BLEU-1), else the first."""
    wanted = report.get("primary_metric_identity")
    for metric in metrics:
        if wanted and metric.get("identity") == wanted:
            return metric
    return metrics[0]


def judge_facts(report: dict) -> dict | None:
    summary = report.get("judge_summary")
    if not isinstance(summary, dict):
        return None
    return {k: summary.get(k) for k in ("status", "scored", "coverage", "valid_observations", "failures")}


def read_jsonl(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.glob("*/*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            rows.extend(json.loads(line) for line in handle if line.strip())
    return rows


def spread(values: list[float]) -> dict | None:
    """Mean, 95th percentile (nearest rank) and maximum; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return {"mean": round(sum(ordered) / len(ordered), 1), "p95": ordered[rank - 1], "max": ordered[-1]}


def session_fix(max_tokens: int, longest_prompt: int | None) -> dict:
    """Room for the cut-off replies: twice the max_tokens, and the session that needs."""
    wanted = 2 * max_tokens
    return {"max_tokens": wanted, "session_len": (longest_prompt or 0) + wanted if longest_prompt else None}


def reply_facts(work_dir: Path, max_tokens: int, cut_off_limit: float, tokenizer=None) -> dict | None:
    """How the replies ended and what of them was scored, from EvalScope's predictions and reviews."""
    predictions = read_jsonl(work_dir / "predictions")
    if not predictions:
        return None
    extracted = [((r.get("sample_score") or {}).get("score") or {}).get("extracted_prediction")
                 for r in read_jsonl(work_dir / "reviews")]
    final = cut_off = 0
    tokens, analysis_tokens, final_tokens, prompts = [], [], [], []
    for row in predictions:
        output = row.get("model_output") or {}
        choice = (output.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        harmony = (message.get("metadata") or {}).get("harmony")
        text = harmony.get("final") if harmony else message_text(message)
        final += bool((text or "").strip())
        cut_off += choice.get("stop_reason") == "max_tokens"
        usage = output.get("usage") or {}
        if usage.get("output_tokens") is not None:
            tokens.append(usage["output_tokens"])
            if tokenizer is not None and harmony:
                # Re-tokenising the decoded text can give a few tokens more than were generated.
                final_count = min(usage["output_tokens"], len(tokenizer.encode(text or "", add_special_tokens=False).ids))
                final_tokens.append(final_count)
                analysis_tokens.append(max(0, usage["output_tokens"] - final_count))
        if usage.get("input_tokens") is not None:
            prompts.append(usage["input_tokens"])
    asked = len(predictions)
    share = cut_off / asked
    facts = {"asked": asked, "final": final, "cut_off": cut_off,
             "no_answer": sum(1 for e in extracted if not str(e or "").strip()) if extracted else asked - final,
             "cut_off_share": round(share, 4), "cut_off_limit": cut_off_limit, "max_tokens": max_tokens,
             "tokens": spread(tokens), "analysis_tokens": spread(analysis_tokens),
             "final_tokens": spread(final_tokens), "longest_prompt": max(prompts) if prompts else None,
             "fix": None}
    if share > cut_off_limit:
        facts["fix"] = session_fix(max_tokens, facts["longest_prompt"])
    return facts


def load_tokenizer(folder: str | None):
    """The served model's tokenizer (tokenizer.json), to count the final channel's tokens."""
    if not folder or not (Path(folder) / "tokenizer.json").is_file():
        return None
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))


def is_score(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value <= 1


def check(report_path: Path, args) -> dict:
    """The result of an accepted report; raises Rejected naming what is wrong."""
    rerun = "read the log above; rerunning make resumes from the cached predictions"
    if not report_path.is_file():
        raise Rejected(f"evalscope wrote no report ({args.report_shown}); no questions were scored?",
                       f"check the subjects and local_path in {args.config} and the log above")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        metrics = report["metrics"]
        assert isinstance(metrics, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise Rejected(f"{args.report_shown} is not an EvalScope report with metrics", rerun) from None
    judge = judge_facts(report)
    if args.judged:
        judge = {**(judge or {}), "model": args.judge_model, "placeholder": args.judge_placeholder}
    result = {"inputs_digest": args.inputs_digest, "benchmark": args.benchmark,
              "dataset": report.get("dataset_name"), "model": args.model, "eval_seconds": args.seconds,
              "report": args.report_shown, "judge": judge}
    if not metrics:
        # A judge whose every reply failed to parse leaves no score: recorded as such.
        if args.judged:
            return with_cpsycoune_scores({**with_replies(result, args), "metric": None, "score": None, "num": 0,
                                          "metrics": {}, "subsets": []}, args)
        raise Rejected(f"{args.report_shown} is not an EvalScope report with metrics", rerun)
    primary = primary_metric(report, metrics)
    score, num = primary.get("score"), primary.get("num")
    if not is_score(score):
        raise Rejected(f"{args.report_shown} has no score in [0, 1] (score {score!r})", rerun)
    if args.expected_num is not None and num != args.expected_num:
        raise Rejected(f"scored {num} questions, expected {args.expected_num}", rerun)
    subsets = subsets_of(primary)
    names = {s["name"] for s in subsets}
    for subject in args.subject:
        if subject not in names:
            raise Rejected(f"subject '{subject}' has no results in {args.report_shown}",
                           f"check that {report.get('dataset_name') or 'the dataset'} has subject '{subject}' ({args.config})")
    accepted = {**with_contamination(with_replies(result, args), args), "metric": metric_label(primary), "score": score, "num": num,
                "metrics": {metric_label(m): m.get("score") for m in metrics if is_score(m.get("score"))},
                "subsets": subsets, "categories": categories_of(primary)}
    if args.scorer == "emollm":
        accepted = with_emollm_scores(accepted, args)
    accepted = with_cpsycoune_scores(accepted, args)
    if args.aggregate == "subject-mean":
        # The benchmark's own definition: each subject weighs the same, whatever its size.
        mean = subject_mean(subsets)
        if mean is None:
            raise Rejected(f"{args.report_shown} has no per-subject scores to average", rerun)
        accepted["metrics"][f"{accepted['metric']}-question-mean"] = score
        accepted.update(metric=f"{accepted['metric']}-subject-mean", score=mean)
    return accepted


def with_emollm_scores(accepted: dict, args) -> dict:
    """The replies scored as EmoLLM scores them (scripts/py/lab/counselling.py): its BLEU-1..4 and
    ROUGE-1/2/L F are the metrics, ROUGE-L F the score; EvalScope's own are kept apart."""
    from lab.counselling import EMOLLM_PRIMARY, EMOLLM_SOURCE, rescore_emollm

    scored = rescore_emollm(Path(args.replies_dir), accepted.get("dataset") or "general_qa")
    if not scored["num"]:
        raise Rejected(f"no scored replies in {args.replies_dir}/reviews to score as EmoLLM does",
                       "read the log above; rerunning make resumes from the cached predictions")
    return {**accepted, "metric": EMOLLM_PRIMARY, "score": scored["metrics"][EMOLLM_PRIMARY], "num": scored["num"],
            "metrics": scored["metrics"], "evalscope_metrics": accepted["metrics"], "subsets": scored["subsets"],
            "scorer": {"name": "emollm", "source": EMOLLM_SOURCE}}


def with_cpsycoune_scores(result: dict, args) -> dict:
    """CPsyCounE's four dimensions from the judge's replies (scripts/py/lab/counselling.py), averaged
    per dialogue, then over the dialogues: the metrics; the score is their mean, each divided by its
    maximum (0-1). No valid verdict: no score, as for any judged benchmark."""
    if args.scorer != "cpsycoune":
        return result
    from lab.counselling import rescore_cpsycoune

    try:
        cases = json.loads(Path(args.turns).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        raise Rejected(f"the cases of the turns are not listed ({args.turns})",
                       "fetch the set again: remove its folder, make fetches it") from None
    scored = rescore_cpsycoune(Path(args.replies_dir), cases, result.get("dataset") or "general_qa")
    judge = {**(result.get("judge") or {}), "dimensions_scored": scored["num"], "asked": scored["asked"]}
    if not scored["num"]:
        return {**result, "judge": judge, "metric": None, "score": None, "num": 0, "metrics": {}}
    from lab.counselling import CPSYCOUNE_DIMENSIONS, normalised

    return {**result, "judge": judge, "metric": "cpsycoune-normalised", "score": normalised(scored["metrics"]),
            "num": scored["num"], "extra": {"dialogues": scored["dialogues"]}, "metrics": scored["metrics"],
            "dimension_ranges": CPSYCOUNE_DIMENSIONS, "evalscope_metrics": result.get("metrics") or {},
            "scorer": {"name": "cpsycoune", "source": "CAS-SIAT-XinHai/CPsyCoun Code/Turn_Based_Dialogue_Evaluation.ipynb"}}


def with_contamination(result: dict, args) -> dict:
    """The test set's overlap with the training set (scripts/py/contamination.py), beside the score."""
    if not args.contamination:
        return result
    try:
        record = json.loads(Path(args.contamination).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise Rejected(f"the overlap with the training set was not measured ({args.contamination})",
                       "rerun make: the evaluation measures it before scoring") from None
    return {**result, "contamination": record}


def with_replies(result: dict, args) -> dict:
    if not args.replies_dir:
        return result
    facts = reply_facts(Path(args.replies_dir), args.max_tokens, args.cut_off_limit, load_tokenizer(args.tokenizer))
    return {**result, "answer_mode": args.answer_mode, "replies": facts}


PERCENTILE_KEYS = {"latency_s": "Latency (s)", "ttft_ms": "TTFT (ms)"}


def check_perf(perf_dir: Path, args) -> dict:
    """The serving-speed result of an `evalscope perf` run: one entry per concurrency level."""
    levels = []
    for parallel, number in zip(args.parallel, args.number):
        level_dir = perf_dir / f"parallel_{parallel}_number_{number}"
        try:
            summary = json.loads((level_dir / "benchmark_summary.json").read_text(encoding="utf-8"))
            percentiles = json.loads((level_dir / "benchmark_percentile.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise Rejected(f"evalscope perf wrote no summary for concurrency {parallel} ({level_dir})",
                           "read the log above; rerun make to measure again") from None
        ok, failed = summary.get("Success Requests"), summary.get("Failed Requests")
        tokens = summary.get("Avg Output Tokens") or 0
        # A reply without tokens counts as a success in evalscope perf: not a measurement.
        if ok != number or failed or tokens <= 0:
            raise Rejected(f"concurrency {parallel}: {ok} of {number} requests answered with tokens "
                           f"({failed} failed, {tokens} output tokens on average)",
                           "read the server log; rerun make to measure again")
        by_percentile = {row.get("Percentiles"): row for row in percentiles if isinstance(row, dict)}
        level = {"parallel": parallel, "number": number,
                 "output_tok_s": summary.get("Output Throughput (tok/s)"),
                 "requests_s": summary.get("Req Throughput (req/s)"),
                 "avg_ttft_ms": summary.get("Avg TTFT (ms)"), "avg_latency_s": summary.get("Avg Latency (s)"),
                 "avg_output_tokens": tokens}
        for key, column in PERCENTILE_KEYS.items():
            for label, name in (("p50", "50%"), ("p99", "99%")):
                level[f"{key}_{label}"] = (by_percentile.get(name) or {}).get(column)
        levels.append(level)
    return {"inputs_digest": args.inputs_digest, "benchmark": args.benchmark, "kind": "perf", "model": args.model,
            "metric": None, "score": None, "num": sum(args.number), "metrics": {}, "subsets": [],
            "levels": levels, "eval_seconds": args.seconds, "report": args.report_shown}


ARENA_OUTCOMES = {"win": "wins", "tie": "ties", "loss": "losses"}


def battle_outcome(battle: dict | None, model: str) -> tuple[str, bool] | None:
    """The fine-tuned model's result on one prompt from its games (both orders), reduced as
    general_arena reduces them, and whether the two orders disagreed; None: no usable verdict."""
    results = []
    for game in (battle or {}).get("games") or []:
        judgment = game.get("judgment") or ""
        if judgment == "A=B":
            results.append("tie")
        elif judgment[:1] in ("A", "B"):
            winner = game.get("model_a") if judgment.startswith("A") else game.get("model_b")
            results.append("win" if winner == model else "loss")
    if not results:
        return None
    return (results[0] if len(set(results)) == 1 else "tie"), len(set(results)) > 1


def simple_win_rate(points: list[float], resamples: int = 10_000, seed: int = 20261205) -> dict:
    """(wins + ties/2)/n with a percentile bootstrap 95% interval over the prompts (seeded)."""
    if not points:
        return {"rate": None, "lower": None, "upper": None}
    import numpy as np

    values = np.asarray(points)
    means = np.random.default_rng(seed).choice(values, size=(resamples, len(values))).mean(axis=1)
    return {"rate": float(values.mean()), "lower": float(np.percentile(means, 2.5)),
            "upper": float(np.percentile(means, 97.5))}


def arena_counts(outcomes: list[tuple[str, bool] | None]) -> dict:
    usable = [o for o in outcomes if o is not None]
    counts = {plural: sum(1 for o, _ in usable if o == outcome) for outcome, plural in ARENA_OUTCOMES.items()}
    points = [{"win": 1.0, "tie": 0.5, "loss": 0.0}[o] for o, _ in usable]
    return {**counts, "unusable": len(outcomes) - len(usable), "n": len(usable), "asked": len(outcomes),
            "order_disagreements": sum(1 for _, flipped in usable if flipped), "simple": simple_win_rate(points)}


def evalscope_win_rate(report: dict) -> dict:
    """general_arena's win_rate of the fine-tuned model against the baseline, and its bounds."""
    keys = {"win_rate": "rate", "win_rate_lower": "lower", "win_rate_upper": "upper"}
    found = dict.fromkeys(keys.values())
    for metric in report.get("metrics") or []:
        name = (metric.get("identity") or {}).get("name") or str(metric.get("name") or "").split(":")[0]
        if name in keys and is_score(metric.get("score")):
            found[keys[name]] = metric["score"]
    return found


def arena_pair(name: str, folder: Path, tuned_result: Path, base_result: Path, args) -> tuple[dict, list]:
    """One paired benchmark's general_arena run: its counts and win rates, and its outcomes."""
    rerun = "read the log above; rerunning make arena judges the pairs again"
    for side, path in (("fine-tuned", tuned_result), ("base", base_result)):
        if not path.is_file():
            raise Rejected(f"{name}: the {side} model's evaluation is not finished ({path})",
                           "run make evals and make eval-base first (make arena needs both)")
    report_path = folder / "reports" / args.benchmark / "general_arena.json"
    reviews = sorted((folder / "reviews" / args.benchmark).glob("general_arena_*.jsonl"))
    if not reviews:
        raise Rejected(f"{name}: general_arena wrote no reviews in {folder}", rerun)
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise Rejected(f"{name}: general_arena wrote no report ({report_path})", rerun) from None
    outcomes = []
    for path in reviews:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    score = (json.loads(line).get("sample_score") or {}).get("score") or {}
                    outcomes.append(battle_outcome((score.get("metadata") or {}).get("battle_result"), args.model))
    digest = {side: (json.loads(path.read_text(encoding="utf-8")) or {}).get("inputs_digest")
              for side, path in (("tuned", tuned_result), ("base", base_result))}
    return {"name": name, **arena_counts(outcomes), "evalscope": evalscope_win_rate(report),
            "judge": judge_facts(report), "replies_digests": digest}, outcomes


def check_arena(args) -> dict:
    pairs, outcomes = [], []
    for name, folder, tuned_result, base_result in args.pair:
        pair, found = arena_pair(name, Path(folder), Path(tuned_result), Path(base_result), args)
        pairs.append(pair)
        outcomes += found
    totals = arena_counts(outcomes)
    metrics = {}
    for prefix, counts in [("", totals)] + [(f"{pair['name']}/", pair) for pair in pairs]:
        for key in ("wins", "ties", "losses", "unusable", "n"):
            metrics[f"{prefix}{key}"] = counts[key]
        for name, rates in (("win_rate", counts.get("evalscope") or {}), ("simple_win_rate", counts["simple"])):
            for key, value in rates.items():
                if value is not None:  # none without a usable verdict: nothing to log
                    metrics[f"{prefix}{name}" + ("" if key == "rate" else f"_{key}")] = value
    return {"inputs_digest": args.inputs_digest, "benchmark": args.benchmark, "kind": "arena", "dataset": "general_arena",
            "model": args.model, "baseline": args.baseline, "metric": "simple-win-rate" if totals["n"] else None,
            "score": totals["simple"]["rate"], "num": totals["asked"], "metrics": metrics, "subsets": [],
            "judge": {"model": args.judge_model, "placeholder": args.judge_placeholder,
                      "scored": totals["n"], "asked": totals["asked"]},
            "extra": {"baseline": args.baseline, "pairs": pairs, "totals": totals},
            "eval_seconds": args.seconds, "report": None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", default="", help="EvalScope's reports/<model>/<dataset>.json")
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--model", required=True, help="the served model name that was scored")
    parser.add_argument("--config", required=True, help="the evaluation config, for the messages")
    parser.add_argument("--out", required=True, help="where the accepted result goes (lab-eval.json)")
    parser.add_argument("--expected-num", type=int, help="questions the run must have scored")
    parser.add_argument("--subject", action="append", default=[], help="a subject that must have results")
    parser.add_argument("--inputs-digest", default=None, help="the evaluation's fingerprint")
    parser.add_argument("--seconds", type=float, default=None, help="wall time of the EvalScope run")
    parser.add_argument("--judged", action="store_true", help="an LLM judge scored it: no valid verdict is no score")
    parser.add_argument("--judge-model", default=None, help="the judge's model name (served: the model itself)")
    parser.add_argument("--judge-placeholder", action="store_true", help="the judge only exercises the path")
    parser.add_argument("--replies-dir", default=None, help="EvalScope's work dir: count how the replies ended")
    parser.add_argument("--max-tokens", type=int, default=None, help="the max_tokens the replies were given")
    parser.add_argument("--answer-mode", default=None, help="eval.yaml's answer_mode, recorded with the result")
    parser.add_argument("--cut-off-limit", type=float, default=0.02,
                        help="share of cut-off replies above which the result names a fix (default 0.02)")
    parser.add_argument("--tokenizer", default=None, help="the served model's folder, to count final-channel tokens")
    parser.add_argument("--aggregate", choices=["subject-mean"], default=None,
                        help="subject-mean: the score is the mean of the per-subject accuracies")
    parser.add_argument("--scorer", choices=["emollm", "cpsycoune"], default=None,
                        help="emollm: score the replies with EmoLLM's BLEU/ROUGE; cpsycoune: the judge's four "
                             "CPsyCoun dimensions per dialogue (both need --replies-dir)")
    parser.add_argument("--turns", default=None, help="cpsycoune: the set's turns.json (the case of each row)")
    parser.add_argument("--contamination", default=None, help="the overlap record to show beside the score")
    parser.add_argument("--perf", action="store_true", help="--report is an `evalscope perf` output folder")
    parser.add_argument("--parallel", type=int, nargs="*", default=[], help="perf: the concurrency levels")
    parser.add_argument("--number", type=int, nargs="*", default=[], help="perf: the requests at each level")
    parser.add_argument("--arena", action="store_true", help="make arena: the fine-tuned model against the base")
    parser.add_argument("--pair", nargs=4, action="append", default=[], metavar=("NAME", "DIR", "TUNED", "BASE"),
                        help="arena: a paired benchmark, its general_arena work dir and both models' lab-eval.json")
    parser.add_argument("--baseline", default=None, help="arena: the base model's served name")
    args = parser.parse_args(argv)
    if not args.arena and not args.report:
        parser.error("--report is required (but with --arena)")
    if args.arena and not args.pair:
        parser.error("--arena needs at least one --pair")

    report_path, out = Path(args.report), Path(args.out)
    root = str(Path.cwd()) + os.sep
    args.report_shown = args.report[len(root):] if args.report.startswith(root) else args.report
    rejected_path = out.parent / REJECTED_NAME
    try:
        result = check_arena(args) if args.arena else check_perf(report_path, args) if args.perf else check(report_path, args)
    except Rejected as rejected:
        write_json_atomic(rejected_path, {
            "inputs_digest": args.inputs_digest, "benchmark": args.benchmark, "model": args.model,
            "reason": rejected.reason, "at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")},
            indent=None)
        print(f"[eval] error: {args.benchmark}: {rejected.reason}", file=sys.stderr)
        print(f"[eval] fix: {rejected.fix}", file=sys.stderr)
        return 1
    if rejected_path.exists():
        rejected_path.unlink()
    write_json_atomic(out, result, indent=None)
    seconds = f" in {args.seconds:g}s" if args.seconds is not None else ""
    if args.perf:
        best = max(result["levels"], key=lambda level: level["output_tok_s"] or 0)
        outcome = f"{best['output_tok_s']:g} output tok/s at concurrency {best['parallel']}"
    elif args.arena:
        totals = result["extra"]["totals"]
        outcome = (f"{totals['wins']} wins, {totals['ties']} ties, {totals['losses']} losses against {args.baseline}, "
                   f"{totals['unusable']} without a usable verdict" +
                   (f"; win rate {result['score']:.3f}" if result["score"] is not None else ""))
    elif result["score"] is None:
        outcome = f"no judged score ({(result.get('judge') or {}).get('failures') or 'no valid verdict'})"
    else:
        outcome = f"{result['metric']} {result['score']:g} on {result['num']} questions"
    print(f"[eval] {args.benchmark} on {args.model}: {outcome}{seconds}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
