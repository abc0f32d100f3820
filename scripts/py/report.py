"""Renders report/<EXP>.md, its appendix report/<EXP>.appendix.md (every command and the
step log), report/<EXP>.html (the report as one self-contained page), the two PNG charts
and report/<EXP>.manifest.json from the run's own files. Called by scripts/report.sh,
which passes the facts only the shell knows (git state, GPUs, core count) as arguments.

The command only: the facts (numbers, tables as rows, paths, commands, states, the paired
tests of scripts/py/paired.py) are computed by lab/report/facts.py and evaluations.py, the
charts drawn by lab/report/charts.py; every word of the report is in its Jinja2 templates
(report/template.zh.md, report/appendix.zh.md, their shared report/macros.zh.md), rendered by
lab/report/render.py: editing a sentence there changes the report.

Exit status: 0 with a report (missing parts are marked 未运行), 2 when a file is
not JSON (the message names file and line) or the template is broken."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import runparse as rp  # noqa: E402
from lab.files import write_atomic, write_json_atomic  # noqa: E402
from lab.report.charts import plot_accuracy, plot_loss  # noqa: E402
from lab.report.evaluations import CHOICE_SECTIONS  # noqa: E402
from lab.report.facts import Report, ReportInputs  # noqa: E402
from lab.report.render import REPORT_TEMPLATES, html_page, render_or_exit  # noqa: E402

TEMPLATE_FIX = "correct the template (Jinja2: {{ fact }}, {% if %}, {% for %}), then rerun make report"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo-root", default=str(Path(__file__).resolve().parents[2]))
    for name in ("exp", "run-dir", "export-dir", "results-dir", "steps", "config", "lock-file",
                 "template", "out-dir"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--eval-config", default="", help="the experiment's eval.yaml: which benchmarks to show")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--gpu-setting", default="cpu")
    parser.add_argument("--gpus", default="", help="GPU model names, one a line (nvidia-smi)")
    parser.add_argument("--cpu-cores", default=str(os.cpu_count()))
    parser.add_argument("--git-commit", default="unknown")
    parser.add_argument("--git-dirty", default="0")
    parser.add_argument("--deploy-venv", default="")
    parser.add_argument("--env-file", default="", help="the env file's path (its name only; values are never read)")
    parser.add_argument("--current-inputs", default="", help="the current inputs' fingerprints (.state/<EXP>/inputs)")
    parser.add_argument("--inputs-digest", default="", help="the digest of what this report reads (its fingerprint)")
    parser.add_argument("--appendix-template", default="",
                        help="the appendix's template (default: appendix.zh.md beside --template, else report/'s)")
    args = parser.parse_args(argv)
    appendix_template = Path(args.appendix_template or Path(args.template).parent / "appendix.zh.md")
    if not appendix_template.is_file() and not args.appendix_template:
        appendix_template = REPORT_TEMPLATES / "appendix.zh.md"

    try:
        report = Report(ReportInputs.from_namespace(args))
        facts = report.facts()
    except rp.ParseError as error:
        print(f"report: error: {error}", file=sys.stderr)
        print("report: fix: repair or move that file away, then rerun make report", file=sys.stderr)
        return 2
    text = render_or_exit(Path(args.template), facts, "report", TEMPLATE_FIX)
    appendix = render_or_exit(appendix_template, facts, "report", TEMPLATE_FIX)

    out = Path(args.out_dir)
    plot_loss(report.run, out / f"{args.exp}-loss.png")
    plot_accuracy([b for b in report.benchmarks if b["section"] in CHOICE_SECTIONS], args.exp,
                  out / f"{args.exp}-accuracy.png")
    manifest = report.manifest(facts)
    write_json_atomic(out / f"{args.exp}.manifest.json", manifest)
    write_atomic(out / facts["appendix_name"], appendix)
    write_atomic(out / facts["html_name"], html_page(text, out, f"{args.exp} 实验报告"))
    write_atomic(out / f"{args.exp}.md", text)
    for item in manifest["missing"]:
        if item["kind"] == "cut_off":
            print(f"report: flagged: {item['benchmark']} ({item['side']}): {item['cut_off']} of {item['asked']} replies "
                  f"cut off at max_tokens {item['max_tokens']}; fix: max_tokens {item['fix']['max_tokens']}"
                  + (f", session length {item['fix']['session_len']}" if item["fix"].get("session_len") else ""),
                  file=sys.stderr)
            continue
        print("report: missing: " + ", ".join(f"{k}={v}" for k, v in item.items() if v is not None), file=sys.stderr)
    print(out / f"{args.exp}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
