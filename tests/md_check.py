"""Checks that a Markdown document the repo writes renders as meant, parsed with markdown-it-py
(the parser of the HTML report, scripts/py/mdhtml.py): every table's rows have the header's
number of cells (markdown-it pads or drops cells silently, so they are counted in the source
the GFM way), every line that looks like a table row is in a table, no template syntax or
unfilled marker is left, no cell says None or nan, and, given the document's folder, every
local link and image points at a file there and every #anchor into a Markdown file at one
of its headings (GitHub's anchors).

  python tests/md_check.py FILE...    prints each problem as FILE:LINE: what; exit 1 if any
From Python: problems(text, base_dir=None) -> ["line N: what", ...]."""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote

from markdown_it import MarkdownIt

TEMPLATE_SYNTAX = ("{{", "{%", "%}")  # also in code: no command has them
TEMPLATE_SYNTAX_OUTSIDE_CODE = ("{#", "#}")  # a shell's ${#x} may
UNFILLED = ("[待补充]", "[待评测]", "[待对比]", "[待分析]")
EMPTY_VALUES = ("None", "nan", "NaN", "undefined")


def parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def cells(line: str) -> list[str]:
    """A table row's cells as GFM splits them: on pipes not escaped, outer pipes dropped."""
    row = line.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row)]


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, only letters, marks, numbers, spaces, - and _; spaces as -."""
    kept = "".join(ch for ch in text.strip().lower() if ch in " -_" or unicodedata.category(ch)[0] in "LMN")
    return kept.replace(" ", "-")


def headings(tokens) -> list[str]:
    return [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]


def code_lines(tokens) -> set[int]:
    lines = set()
    for token in tokens:
        if token.type in ("fence", "code_block") and token.map:
            lines.update(range(*token.map))
    return lines


def table_problems(tokens, lines: list[str]) -> tuple[list[str], set[int]]:
    problems, covered = [], set()
    for token in tokens:
        if token.type != "table_open" or not token.map:
            continue
        start, end = token.map
        covered.update(range(start, end))
        width = len(cells(lines[start]))
        for number in range(start, end):
            found = cells(lines[number])
            if len(found) != width:
                problems.append(f"line {number + 1}: {len(found)} cells, the header has {width}")
            bad = [c for c in found if c in EMPTY_VALUES]
            if bad:
                problems.append(f"line {number + 1}: a cell says {bad[0]}")
    return problems, covered


def link_problems(tokens, base_dir: Path) -> list[str]:
    problems = []
    for token in tokens:
        for child in token.children or []:
            target = child.attrGet("href") if child.type == "link_open" else (
                child.attrGet("src") if child.type == "image" else None)
            if not target or re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path, _, anchor = unquote(target).partition("#")
            where = f"line {token.map[0] + 1}" if token.map else "?"
            file = base_dir / path
            if not file.is_file():
                problems.append(f"{where}: links to {path}, which is not there")
            elif anchor and file.suffix == ".md":
                if anchor not in {slug(h) for h in headings(parser().parse(file.read_text(encoding="utf-8")))}:
                    problems.append(f"{where}: {path} has no heading with the anchor #{anchor}")
    return problems


def problems(text: str, base_dir: Path | None = None) -> list[str]:
    tokens = parser().parse(text)
    lines = text.split("\n")
    found, in_tables = table_problems(tokens, lines)
    code = code_lines(tokens)
    for number, line in enumerate(lines):
        for marker in TEMPLATE_SYNTAX + UNFILLED + (() if number in code else TEMPLATE_SYNTAX_OUTSIDE_CODE):
            if marker in line:
                found.append(f"line {number + 1}: {marker} left in the text")
        if line.lstrip().startswith("|") and number not in in_tables and number not in code:
            found.append(f"line {number + 1}: a table row outside any table (it does not render)")
    if base_dir is not None:
        found += link_problems(tokens, base_dir)
    return found


def main(argv: list[str]) -> int:
    status = 0
    for name in argv:
        path = Path(name)
        for problem in problems(path.read_text(encoding="utf-8"), path.parent):
            print(f"{name}:{problem.removeprefix('line ')}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
