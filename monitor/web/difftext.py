"""A diff as a reader sees the page: formatted text with the changed words marked.

Stored versions are Markdown-like text, and a diff of them shown as source is a wall of
`[label](url)`, `**`, `| |` and whole unchanged table rows. Here each line is shown formatted
(headings, list markers, table cells, bold, links by their label) while every changed
character keeps its mark: the line is scanned once into characters, each carrying the diff's
mark, and tags; marks are opened and closed inside each run of text, so they never cross a
tag. Unchanged lines are context, not content: a run of them keeps the line next to each
change and folds the rest into "… 40 unchanged rows …"; long unchanged stretches of a line are
cut to their ends. Every piece of page text is escaped; the only markup is ours.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from monitor.diff import Diff, Hunk, Line
from monitor.extract import clean_link

CONTEXT_KEEP = 1  # unchanged lines kept next to each change; the rest of a run is folded
CONTEXT_CHARS = 280  # an unchanged line longer than this shows its start only
CHANGED_LINE_KEEP = 160  # in a changed line, unchanged text this far from a mark is cut

_INLINE = re.compile(r"""
    (?P<esc>\\[!-/:-@\[-`{-~])
  | (?P<br><br\s*/?>)
  | (?P<bold>\*\*|__)
  | (?P<em>(?<![\w\\])_(?=\S)|(?<=\S)_(?!\w))
  | (?P<link>\[(?P<label>(?:[^\[\]\\]|\\.)*)\]\((?P<url>[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)\))
""", re.X)
_HEADING = re.compile(r"^\s*(#{1,6})\s+")
_ITEM = re.compile(r"^(\s*)([-*+•]|\d{1,3}[.)])\s+")
_RULE = re.compile(r"^\s*(?:[=\-_*]\s*){3,}$")
_DELIMITER_ROW = re.compile(r"^\s*\|(?:\s*:?-{3,}:?\s*\|)+\s*$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


@dataclass
class _Out:
    """Characters with their marks, and tags, in order: what one line displays."""

    # (mark, char) with mark in "=+-"; ("tag", html) opens or closes an element; ("void",
    # html) stands alone (a line break) and goes with the text around it when that is cut.
    items: list[tuple[str, str]]

    def char(self, mark: str, ch: str) -> None:
        self.items.append((mark, ch))

    def tag(self, markup: str) -> None:
        self.items.append(("tag", markup))

    def void(self, markup: str) -> None:
        if not self.items or self.items[-1] != ("void", markup):  # <br><br> reads as one
            self.items.append(("void", markup))


def _marks(line: Line) -> str:
    """One mark per character of the line: '=' unchanged, '+'/'-' changed, '^' unchanged but
    where the other side changed (the first character after a cut between two segments)."""
    if not line.segments:
        return "=" * len(line.text)
    out: list[str] = []
    for seg in line.segments:
        mark = "=" if seg.op == "=" else seg.op
        if out and mark == "=" and out[-1][-1:] in ("=", "^") and seg.text:
            out.append("^" + "=" * (len(seg.text) - 1))
        else:
            out.append(mark * len(seg.text))
    return "".join(out)


def _inline(text: str, marks: str, start: int, end: int, out: _Out) -> None:
    """Bold, links, escapes and <br> of text[start:end], each character keeping its mark."""
    bold = em = False
    pos = start
    for m in _INLINE.finditer(text, start, end):
        for i in range(pos, m.start()):
            out.char(marks[i], text[i])
        pos = m.end()
        if m.group("esc"):
            out.char(marks[m.start() + 1], text[m.start() + 1])
        elif m.group("br"):
            # A break inside a table cell: a mark, not a new line, so a cell of many short
            # paragraphs does not stretch the diff.
            out.void('<span class="md-br" title="line break"> ¶ </span>')
        elif m.group("bold"):
            out.tag("</strong>" if bold else "<strong>")
            bold = not bold
        elif m.group("em"):
            out.tag("</em>" if em else "<em>")
            em = not em
        else:
            url = m.group("url")
            href = clean_link(url, "https://invalid.example/") if url else None
            moved = any(c not in "=^" for c in marks[m.start("url"):m.end("url")])
            cls = ' class="link-changed" title="the link’s address changed"' if moved else ""
            if moved:  # the label is what shows: it carries the change ("~", unmarked)
                a, b = m.start("label"), m.end("label")
                marks = marks[:a] + marks[a:b].replace("=", "~") + marks[b:]
            if href and not href.startswith("https://invalid.example/"):
                out.tag(f'<a href="{html.escape(href)}" rel="nofollow noopener noreferrer"{cls}>')
                _inline(text, marks, m.start("label"), m.end("label"), out)
                out.tag("</a>")
            else:
                _inline(text, marks, m.start("label"), m.end("label"), out)
    for i in range(pos, end):
        out.char(marks[i], text[i])
    if em:
        out.tag("</em>")
    if bold:
        out.tag("</strong>")


def _format(line: Line) -> _Out:
    """The line's block (heading, list item, table row, rule or paragraph), formatted."""
    text, marks, out = line.text, _marks(line), _Out([])
    if _RULE.match(text) or _DELIMITER_ROW.match(text):
        out.tag('<span class="md-rule"></span>')
        return out
    stripped = text.strip()
    if stripped.startswith("|") and stripped.endswith("|") and len(stripped) > 1:
        first, last = text.index("|"), text.rindex("|")
        bounds = [first, *(m.start() for m in _CELL_SPLIT.finditer(text, first + 1, last)), last]
        for a, b in itertools.pairwise(bounds):
            out.tag('<span class="md-cell">')
            _inline(text, marks, a + 1, b, out)
            out.tag("</span>")
        return out
    heading = _HEADING.match(text)
    if heading:
        out.tag(f'<span class="md-h md-h{len(heading.group(1))}">')
        _inline(text, marks, heading.end(), len(text), out)
        out.tag("</span>")
        return out
    item = _ITEM.match(text)
    if item:
        depth = min(4, len(item.group(1)) // 2)
        marker = "•" if item.group(2) in "-*+•" else item.group(2)
        out.tag(f'<span class="md-item md-depth{depth}"><span class="md-marker">'
                f"{html.escape(marker)}</span> ")
        _inline(text, marks, item.end(), len(text), out)
        out.tag("</span>")
        return out
    _inline(text, marks, 0, len(text), out)
    return out


def _cut(items: list[tuple[str, str]], keep: int, *, changed: bool) -> list[tuple[str, str]]:
    """Long unchanged stretches shortened: in a changed line, to `keep` characters on each
    side of a mark; in an unchanged one, to its first `keep` characters. Tags always stay, so
    the markup stays balanced."""
    chars = [i for i, (mark, _) in enumerate(items) if mark not in ("tag", "void")]
    near: set[int]
    if changed:
        near = set()
        marked = [n for n, i in enumerate(chars) if items[i][0] != "="]
        for n in marked:
            near.update(range(max(0, n - keep), min(len(chars), n + keep + 1)))
        if not marked:
            return items
    else:
        if len(chars) <= keep + 40:
            return items
        near = set(range(keep))
    out: list[tuple[str, str]] = []
    dropped = 0
    for n, i in enumerate(chars):
        prev = chars[n - 1] if n else -1
        out.extend(items[j] for j in range(prev + 1, i)  # the tags before this character
                   if items[j][0] == "tag" or n in near)
        if n in near:
            if dropped:
                out.append(("tag", _elided(dropped)))
                dropped = 0
            out.append(items[i])
        else:
            dropped += 1
    out.extend(items[j] for j in range((chars[-1] + 1) if chars else 0, len(items)))
    if dropped:
        out.append(("tag", _elided(dropped)))
    return out


def _elided(n: int) -> str:
    return f'<span class="elided" title="{n:,} unchanged characters not shown">…</span>'


def _html(items: Sequence[tuple[str, str]]) -> str:
    """Characters grouped by mark into <ins>/<del>, each run closed before any tag."""
    parts: list[str] = []
    run: list[str] = []
    run_mark = "="

    def close() -> None:
        if run:
            body = html.escape("".join(run))
            parts.append({"+": f"<ins>{body}</ins>", "-": f"<del>{body}</del>"}.get(run_mark, body))
            run.clear()

    for mark, value in items:
        if mark in ("tag", "void"):
            close()
            parts.append(value)
        else:
            mark = "=" if mark == "^" else mark
            if mark != run_mark:
                close()
                run_mark = mark
            run.append(value)
    close()
    return "".join(parts)


def render_line(line: Line) -> str:
    items = _format(line).items
    if line.tag == " ":
        items = _cut(items, CONTEXT_CHARS, changed=False)
    elif line.segments:
        items = _cut(items, CHANGED_LINE_KEEP, changed=True)
    return _html(items)


def _reading(line: Line) -> str:
    return "".join(ch for mark, ch in _format(line).items if mark not in ("tag", "void"))


def _pairs(group: list[Line]) -> Iterator[tuple[Line | None, Line | None, bool]]:
    """A changed group's removed and added lines paired in order, and whether a pair reads
    the same (only a link's address changed): then it is one row, not two."""
    old = [ln for ln in group if ln.tag == "-"]
    new = [ln for ln in group if ln.tag == "+"]
    for k in range(max(len(old), len(new))):
        a = old[k] if k < len(old) else None
        b = new[k] if k < len(new) else None
        yield a, b, a is not None and b is not None and _reading(a) == _reading(b)


_RELINKED = '<span class="side">link changed</span> '


# ---- lines to rows: unchanged runs folded ----

@dataclass(frozen=True)
class _Fold:
    count: int
    rows: bool  # all table rows: "rows", else "lines"

    def label(self) -> str:
        noun = ("row" if self.rows else "line") + ("" if self.count == 1 else "s")
        return f"… {self.count:,} unchanged {noun} …"


def _visible(lines: Sequence[Line]) -> list[Line]:
    return [ln for ln in lines if ln.text.strip()]  # a blank line shows nothing formatted


def _hunk_rows(hunk: Hunk) -> Iterator[Line | _Fold | list[Line]]:
    """Context lines (a run folded past CONTEXT_KEEP next to each change) and groups of
    changed lines, in order."""
    lines = _visible(hunk.lines)
    i = 0
    while i < len(lines):
        if lines[i].tag != " ":
            j = i
            while j < len(lines) and lines[j].tag != " ":
                j += 1
            yield lines[i:j]
            i = j
            continue
        j = i
        while j < len(lines) and lines[j].tag == " ":
            j += 1
        run = lines[i:j]
        before = CONTEXT_KEEP if i > 0 else 0  # after a change above
        after = CONTEXT_KEEP if j < len(lines) else 0  # before a change below
        if len(run) <= before + after + 1:
            yield from run
        else:
            yield from run[:before]
            folded = run[before:len(run) - after]
            yield _Fold(len(folded), all(_is_row(ln) for ln in folded))
            yield from run[len(run) - after:]
        i = j


def _between(previous: Hunk | None, hunk: Hunk) -> _Fold | None:
    """The unchanged lines no hunk shows; rows of a table when the lines either side are."""
    start = previous.old_start + previous.old_count if previous else 1
    gap = hunk.old_start - start
    edges = [*(previous.lines[-1:] if previous else ()), *hunk.lines[:1]]
    return _Fold(gap, all(_is_row(ln) for ln in edges)) if gap > 0 else None


def _is_row(line: Line) -> bool:
    return line.text.lstrip().startswith("|")


def _rows(diff: Diff) -> list[Line | _Fold | list[Line]]:
    """Every hunk's rows, with what lies between hunks as folds; folds next to each other
    are one."""
    rows: list[Line | _Fold | list[Line]] = []
    previous: Hunk | None = None
    for hunk in diff.hunks:
        gap = _between(previous, hunk)
        for row in ([gap] if gap else []) + list(_hunk_rows(hunk)):
            if isinstance(row, _Fold) and rows and isinstance(rows[-1], _Fold):
                rows[-1] = _Fold(rows[-1].count + row.count, rows[-1].rows and row.rows)
            else:
                rows.append(row)
        previous = hunk
    return rows


def _fold_html(fold: _Fold, columns: int) -> str:
    if columns == 1:
        return f'<div class="fold">{html.escape(fold.label())}</div>'
    return f'<tr class="fold"><td colspan="2">{html.escape(fold.label())}</td></tr>'


def inline(diff: Diff) -> Markup:
    """One column: removed and added lines in order, formatted, changed words marked."""
    out = ['<div class="diff diff-inline formatted">']
    for row in _rows(diff):
        if isinstance(row, _Fold):
            out.append(_fold_html(row, 1))
            continue
        if isinstance(row, Line):
            out.append(f'<div class="line ctx">{render_line(row)}</div>')
            continue
        same = [(a, b) for a, b, alike in _pairs(row) if alike]
        skip = {id(a) for a, _ in same}
        relinked = {id(b) for _, b in same}
        for ln in row:
            if id(ln) in relinked:
                out.append(f'<div class="line relink">{_RELINKED}{render_line(ln)}</div>')
            elif id(ln) not in skip:
                cls = "del" if ln.tag == "-" else "add"
                out.append(f'<div class="line {cls}">{render_line(ln)}</div>')
    out.append("</div>")
    return Markup("\n".join(out))  # noqa: S704 - every page character is escaped in _html


def side_by_side(diff: Diff) -> Markup:
    """Old on the left, new on the right, changed lines paired in order; a line with no
    counterpart, and unchanged context, spans both columns (it reads the same on both)."""
    out = ['<table class="diff diff-side formatted"><tbody>']
    for row in _rows(diff):
        if isinstance(row, _Fold):
            out.append(_fold_html(row, 2))
        elif isinstance(row, Line):
            out.append(f'<tr class="ctx"><td colspan="2">{render_line(row)}</td></tr>')
        else:
            for a, b, alike in _pairs(row):
                if alike and b is not None:
                    out.append(f'<tr class="only relink"><td colspan="2">{_RELINKED}'
                               f'{render_line(b)}</td></tr>')
                elif a is not None and b is not None:
                    out.append(f'<tr><td class="del">{render_line(a)}</td>'
                               f'<td class="add">{render_line(b)}</td></tr>')
                else:
                    only = a if a is not None else b
                    assert only is not None
                    cls, side = ("del", "removed") if only.tag == "-" else ("add", "added")
                    out.append(f'<tr class="only"><td colspan="2" class="{cls}">'
                               f'<span class="side">{side}</span> {render_line(only)}</td></tr>')
    out.append("</tbody></table>")
    return Markup("\n".join(out))  # noqa: S704 - every page character is escaped in _html
