"""A Markdown document of this repo as one self-contained HTML page: markdown-it-py
(CommonMark with tables, from the lock; raw HTML in the text is shown as text, never
interpreted), each local image embedded as a data: URI, the style inline. Nothing is
loaded from elsewhere when the page is opened; links to other files stay links."""

from __future__ import annotations

import base64
import html
import mimetypes
from pathlib import Path

from markdown_it import MarkdownIt

STYLE = """
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "PingFang SC",
       "Microsoft YaHei", sans-serif; font-size: 14px; line-height: 1.45; margin: 0 auto; padding: 8px 16px;
       max-width: 1240px; color: #222; }
h1 { font-size: 1.5em; margin: 0.3em 0; } h2 { font-size: 1.25em; margin: 0.9em 0 0.3em; }
h3 { font-size: 1.1em; margin: 0.8em 0 0.3em; } p, ul { margin: 0.35em 0; }
table { border-collapse: collapse; margin: 0.4em 0; }
th, td { border: 1px solid #bbb; padding: 2px 7px; vertical-align: top; }
th { background: #f1f3f5; } tr:nth-child(even) td { background: #fafafa; }
code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; font-size: 0.92em; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; } pre code { background: none; padding: 0; }
blockquote { margin: 0.4em 0; padding: 0 0.8em; color: #555; border-left: 3px solid #ccc; }
img { max-width: 100%; }
"""


def data_uri(path: Path) -> str | None:
    if not path.is_file():
        return None
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def parser() -> MarkdownIt:
    """The Markdown the repo writes: CommonMark plus tables, raw HTML off."""
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def body(text: str, base_dir: Path) -> str:
    """The document as HTML; a local image (a path relative to base_dir) becomes a data: URI."""
    md = parser()

    def image(self, tokens, idx, options, env):
        token = tokens[idx]
        source = token.attrGet("src") or ""
        if source and "://" not in source and not source.startswith("data:"):
            embedded = data_uri(base_dir / source)
            if embedded:
                token.attrSet("src", embedded)
        return self.image(tokens, idx, options, env)

    md.add_render_rule("image", image)
    return md.render(text)


def page(text: str, base_dir: Path, title: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"{body(text, base_dir)}</body>\n</html>\n")
