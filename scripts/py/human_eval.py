"""The blind human evaluation's files (scripts/human-eval.sh runs it; the page is human_server.py).

  human_eval.py pack --out DIR --n N --seed S --raters "r1 r2 r3" --base-url URL
                     --exp NAME RESULTS_DIR EVAL_YAML [--exp ...]
      the packet of the experiments' models (each experiment's fine-tuned model, its base model
      and the base model in each of eval.yaml's base_extra_modes): packet.json, key.json,
      raters.json, links.txt (scripts/py/lab/human.py)
  human_eval.py export --packet DIR --out DIR
      each rater's form, <rater>.csv and <rater>.json: their A/B sides, the answer columns empty
  human_eval.py import --packet DIR FILE...
      filled forms (CSV or JSON) into the ratings: every file checked first; one bad cell (unknown
      item, rater or reply, a value off the scale) and nothing is imported
  human_eval.py report --packet DIR --exp NAME RESULTS_DIR [--exp ...]
      unblinds with the key: results.json in the packet, and results/<exp>/lab-human.json (what the
      report and the thesis table read) for each experiment (scripts/py/lab/human_stats.py)

Errors: `error: ...` and `fix: ...` on stderr, exit 1, nothing written."""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_suite  # noqa: E402
from lab import human, human_stats, human_store as store  # noqa: E402
from lab.files import write_atomic, write_json_atomic  # noqa: E402


def systems_of(exp: str, results_dir: Path, eval_yaml: Path) -> list[dict]:
    if not eval_yaml.is_file():
        raise human.HumanError(f"experiment {exp} has no eval.yaml ({eval_yaml})", "evaluate it first: make evals eval-base")
    try:
        config = eval_suite.read_yaml(eval_yaml)
        benchmarks = human.reply_benchmarks(eval_yaml)
    except eval_suite.SuiteError as error:
        raise human.HumanError(error.reason, error.fix) from None
    if not benchmarks:
        raise human.HumanError(f"experiment {exp} runs no counselling-reply benchmark (dialog, dialog-judge, crisis-judge)",
                               f"add one to the benchmarks of {eval_yaml}, evaluate, then pack")
    names = [exp, f"{exp}-base"] + [f"{exp}-base@{mode}" for mode in config.get("base_extra_modes") or []]
    return [{"served": name, "experiment": exp, "results_dir": results_dir, "benchmarks": benchmarks} for name in names]


def pack(args) -> int:
    human.check_raters(args.raters.split())  # a bad setting before any file is read
    systems = [s for exp, results, eval_yaml in args.exp for s in systems_of(exp, Path(results), Path(eval_yaml))]
    missing = [s["served"] for s in systems
               if not any(human.read_replies(s["results_dir"] / s["served"] / b["name"], s["served"]) for b in s["benchmarks"])]
    if missing:
        raise human.HumanError(f"no finished counselling-reply evaluation of {', '.join(missing)}",
                               "evaluate both models first: make evals eval-base (make smoke does both)")
    packet, key = human.build(systems, args.n, args.seed, args.raters.split())
    human.write_packet(Path(args.out), packet, key, args.base_url)
    sources = ", ".join(f"{source} {count}" for source, count in key["sources"].items())
    print(f"packet: {len(packet['items'])} scenarios ({sources}), models {', '.join(key['models'])}, "
          f"raters {', '.join(packet['raters'])}")
    return 0


def export(args) -> int:
    packet = human.load_packet(Path(args.packet))
    out = Path(args.out)
    for rater in packet["raters"]:
        rows = store.export_rows(packet, rater)
        write_atomic(out / f"{rater}.csv", store.to_csv(rows))
        write_json_atomic(out / f"{rater}.json", rows)
    print(f"forms: {out}/<rater>.csv and .json for {', '.join(packet['raters'])}")
    return 0


def import_forms(args) -> int:
    packet_dir = Path(args.packet)
    packet = human.load_packet(packet_dir)
    found = []
    for name in args.files:
        path = Path(name)
        found += store.form_answers(packet, store.read_form(path), path.name)
    db = store.connect(packet_dir / human.RATINGS)
    count = store.import_answers(db, found, via="import:" + ",".join(Path(f).name for f in args.files))
    print(f"imported {count} answers from {len(args.files)} file(s)")
    return 0


def report(args) -> int:
    packet_dir = Path(args.packet)
    packet = human.load_packet(packet_dir)
    key = human.load_key(packet_dir, packet)
    if not (packet_dir / human.RATINGS).is_file():
        raise human.HumanError(f"no ratings yet in {packet_dir}", "rate first: make human-eval (or make human-import FILES=...)")
    given = store.answers(store.connect(packet_dir / human.RATINGS))
    if not given:
        raise human.HumanError(f"no ratings yet in {packet_dir / human.RATINGS}", "rate first: make human-eval")
    facts = {"packet": packet_dir.name, "generated_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
             **human_stats.results(given, packet, key)}
    # What the report's fingerprint reads (fingerprint.py recorded_digest): these numbers, whenever made.
    body = {k: v for k, v in facts.items() if k != "generated_at"}
    facts["inputs_digest"] = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    write_json_atomic(packet_dir / human.RESULTS, facts)
    for exp, results_dir in args.exp:
        write_json_atomic(Path(results_dir) / human.EXPERIMENT_RESULTS, {**facts, "experiment": exp})
    print(f"human evaluation: {facts['answers']} answers of {len(facts['raters_with_answers'])} raters on "
          f"{facts['scenarios']} scenarios -> {packet_dir / human.RESULTS}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("pack")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, default=human.DEFAULT_SEED)
    p.add_argument("--raters", required=True)
    p.add_argument("--base-url", required=True)
    p.add_argument("--exp", nargs=3, action="append", required=True, metavar=("NAME", "RESULTS_DIR", "EVAL_YAML"))
    p = commands.add_parser("export")
    p.add_argument("--packet", required=True)
    p.add_argument("--out", required=True)
    p = commands.add_parser("import")
    p.add_argument("--packet", required=True)
    p.add_argument("files", nargs="+")
    p = commands.add_parser("report")
    p.add_argument("--packet", required=True)
    p.add_argument("--exp", nargs=2, action="append", default=[], metavar=("NAME", "RESULTS_DIR"))
    args = parser.parse_args(argv)
    try:
        return {"pack": pack, "export": export, "import": import_forms, "report": report}[args.command](args)
    except human.HumanError as error:
        print(f"error: {error.reason}", file=sys.stderr)
        print(f"fix: {error.fix}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
