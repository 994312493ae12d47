"""A stored version as formatted text: headings, lists, tables and links, never live markup.

Versions are stored as Markdown-like text (extraction writes headings, lists and tables that
way). markdown-it renders CommonMark plus tables with raw HTML off, so a `<script>` in a policy
is shown as text; its link validator refuses javascript:, vbscript:, file: and data: targets;
images stay as text (no request leaves the reader's browser for a watched site), and every
link is marked nofollow/noopener/noreferrer.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table")
    md.disable("image")

    def link_open(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
        return str(renderer.renderToken(tokens, idx, options, env))

    md.add_render_rule("link_open", link_open)
    return md


_ROW = re.compile(r"^\|.*\|\s*$")
_DELIMITER = re.compile(r"^\|(?:\s*:?-{3,}:?\s*\|)+\s*$")


def _with_table_heads(text: str) -> str:
    """Extraction writes a table as `| a | b |` rows, one per line; Markdown wants the first
    row followed by a `|---|---|` line. Add it where it is missing."""
    lines = text.split("\n")
    out: list[str] = []
    for i, line in enumerate(lines):
        out.append(line)
        starts = _ROW.match(line) and not (i and _ROW.match(lines[i - 1]))
        if starts and not (i + 1 < len(lines) and _DELIMITER.match(lines[i + 1])):
            cells = line.strip().strip("|").count("|") + 1
            out.append("|" + "---|" * cells)
    return "\n".join(out)


def render(text: str) -> Markup:
    return Markup(_renderer().render(_with_table_heads(text)))  # noqa: S704 - html off, links checked
