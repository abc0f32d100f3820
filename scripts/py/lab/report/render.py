"""The report's words: Jinja2 templates (report/*.zh.md, their shared report/macros.zh.md)
rendered over a program's facts with the filters that format its numbers, and the HTML page of
a rendered report (scripts/py/mdhtml.py). Used by make report, compare, table and pilot: a
program computes a dict of facts, and render_or_exit turns it into text or a clear error."""
from __future__ import annotations

import sys
import traceback
import unicodedata
from pathlib import Path

import jinja2

import mdhtml
from lab import REPO_ROOT
from lab.report.evaluations import benchmark_labels

REPORT_TEMPLATES = REPO_ROOT / "report"  # macros.zh.md, appendix.zh.md, the default templates
UNFILLED_MARKERS = ("[待补充]", "[待评测]", "[待对比]", "[待分析]")


class TemplateProblem(Exception):
    """A template that cannot be rendered over the facts given: where, and what is wrong."""


def github_slug(text: str) -> str:
    """The anchor GitHub (and GitLab) give a Markdown heading: lower case, punctuation
    removed, spaces as hyphens."""
    kept = "".join(ch for ch in str(text).strip().lower()
                   if ch in " -_" or unicodedata.category(ch)[0] in "LMN")
    return kept.replace(" ", "-")


def _hms(seconds):
    seconds = int(round(float(seconds)))
    hours, rest = divmod(seconds, 3600)
    return hours, rest // 60, rest % 60


def _p_value(p) -> str:
    return "<0.001" if p < 0.001 else f"={p:.3f}"


def template_environment(template_dir: Path, labels: dict | None = None) -> jinja2.Environment:
    """The templates' Jinja2 environment. Templates are found beside the one rendered, then in
    report/ (the shared macros.zh.md). `benchmark_labels` (the suite's labels, by default this
    repository's configs/benchmarks.yaml) is a global, so macros.zh.md's label sees it."""
    search = list(dict.fromkeys([str(template_dir), str(REPORT_TEMPLATES)]))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(search), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.globals["benchmark_labels"] = labels if labels is not None else benchmark_labels(None)
    env.filters.update({
        "num": lambda value, digits=4: f"{float(value):.{digits}f}",
        "signed": lambda value, digits=4: f"{float(value):+.{digits}f}",
        "pct": lambda score: f"{score * 100:.2f}%",
        "points": lambda diff: f"{diff * 100:+.2f}",
        "pval": _p_value,
        "slug": github_slug,
        "thousands": lambda value: f"{int(value):,}",
        "hms": _hms,
        "cell": lambda text: str(text).replace("|", "\\|").replace("\n", " "),
        "compact": lambda value: f"{value:g}" if isinstance(value, float) else str(value),
    })
    return env


def render(template_path: Path, facts: dict, filters: dict | None = None) -> str:
    """TEMPLATE_PATH rendered over FACTS (and the program's own FILTERS, if any); raises
    TemplateProblem naming the template's line, a fact it uses that is not given, or a
    placeholder left in the text."""
    template_path = Path(template_path)
    try:
        env = template_environment(template_path.parent, facts.get("benchmark_labels"))
        env.filters.update(filters or {})
        text = env.get_template(template_path.name).render(**facts)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateProblem(f"{error.filename or template_path}:{error.lineno}: template error: {error.message}")
    except jinja2.TemplateNotFound as error:
        raise TemplateProblem(f"{template_path}: no template {error.name} (looked beside it and in {REPORT_TEMPLATES})")
    except jinja2.UndefinedError as error:
        raise TemplateProblem(f"{template_path}: {error.message} (the facts given: {', '.join(sorted(facts))})")
    except (TypeError, ValueError) as error:
        # The innermost template frame: the template, or a macro of macros.zh.md it called.
        frame = next((f for f in reversed(traceback.extract_tb(error.__traceback__))
                      if f.filename.endswith((".md", ".tex"))), None)
        where = f"{frame.filename}:{frame.lineno}" if frame else f"{template_path}:?"
        raise TemplateProblem(f"{where}: {error} (a filter got a missing value: test it with `is none` first)")
    for marker in UNFILLED_MARKERS:
        if marker in text:
            raise TemplateProblem(f"the rendered text still contains {marker}; remove it from {template_path}")
    return text


def message_prefix(tool: str) -> str:
    """How a program's messages start: `report:`, or a step's bracketed name as is (`[pilot]`)."""
    return tool if tool.startswith("[") else f"{tool}:"


def render_or_exit(template: Path, facts: dict, tool: str, fix: str, filters: dict | None = None) -> str:
    """render(), or the problem and its fix on stderr and exit status 2 (SystemExit(2))."""
    try:
        return render(template, facts, filters)
    except TemplateProblem as problem:
        print(f"{message_prefix(tool)} error: {problem}", file=sys.stderr)
        print(f"{message_prefix(tool)} fix: {fix}", file=sys.stderr)
        raise SystemExit(2)


def html_page(text: str, base_dir: Path, title: str) -> str:
    """A rendered Markdown report as one self-contained HTML page (images beside it embedded)."""
    return mdhtml.page(text, base_dir, title)
