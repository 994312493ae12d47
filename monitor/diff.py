"""Two texts → one Diff value (hunks, word-level segments, stats) and its renderers. Pure.

Line-level diff-match-patch first (fast, and lines are our paragraphs), refined to words inside
changed blocks with semantic cleanup, so "we may use your data" → "we use your data" shows as
one removed word, not a rewritten paragraph.
"""

from __future__ import annotations

import html
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from diff_match_patch import diff_match_patch

from monitor.text import split_sentences
from monitor.wording import safe_terminal_text

Op = Literal["=", "-", "+"]
CONTEXT_LINES = 3
# Beyond this many tokens per side, word refinement is skipped: Myers is O(N·D) and a full
# rewrite of a long page would otherwise take seconds; whole lines are still exact.
MAX_WORD_TOKENS = 3_000
WORD_DIFF_BUDGET = 100_000  # (N + M) · D bound on one word diff; see word_diff
LINE_DIFF_BUDGET = 10_000_000  # (N + M) · D bound on the line diff: a few seconds; see line_diff
LINE_DIFF_SECONDS = 5.0  # diff-match-patch's own time limit, the backstop of that bound
MAX_REFINED_LINES = 2_000  # a changed block longer than this is shown as whole lines

_TOKEN_RE = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)
_WORD_RE = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Segment:
    op: Op
    text: str


@dataclass(frozen=True)
class Line:
    tag: Literal[" ", "-", "+"]
    text: str
    old_no: int | None
    new_no: int | None
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: tuple[Line, ...]

    def header(self) -> str:
        return f"@@ -{self.old_start},{self.old_count} +{self.new_start},{self.new_count} @@"


@dataclass(frozen=True)
class Stats:
    words_added: int = 0
    words_removed: int = 0
    sentences_added: int = 0
    sentences_removed: int = 0
    lines_added: int = 0
    lines_removed: int = 0

    def summary(self) -> str:
        return f"+{self.words_added} −{self.words_removed} words"


@dataclass(frozen=True)
class Diff:
    hunks: tuple[Hunk, ...]
    stats: Stats
    added_sentences: tuple[str, ...]
    removed_sentences: tuple[str, ...]
    simplified: bool = False  # the line diff hit its budget: changed middles are whole blocks

    @property
    def changed(self) -> bool:
        return bool(self.hunks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "simplified": self.simplified,
            "stats": asdict(self.stats),
            "added_sentences": list(self.added_sentences),
            "removed_sentences": list(self.removed_sentences),
            "hunks": [
                {
                    "old_start": h.old_start, "old_count": h.old_count,
                    "new_start": h.new_start, "new_count": h.new_count,
                    "lines": [
                        {"tag": ln.tag, "text": ln.text, "old_no": ln.old_no, "new_no": ln.new_no,
                         "segments": [[s.op, s.text] for s in ln.segments]}
                        for ln in h.lines
                    ],
                }
                for h in self.hunks
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diff:
        hunks = tuple(
            Hunk(h["old_start"], h["old_count"], h["new_start"], h["new_count"], tuple(
                Line(ln["tag"], ln["text"], ln["old_no"], ln["new_no"],
                     tuple(Segment(op, text) for op, text in ln["segments"]))
                for ln in h["lines"]))
            for h in data["hunks"]
        )
        return cls(hunks, Stats(**data["stats"]), tuple(data["added_sentences"]),
                   tuple(data["removed_sentences"]), bool(data.get("simplified", False)))


def _dmp() -> diff_match_patch:
    dmp = diff_match_patch()
    dmp.Diff_Timeout = 0  # deterministic: the same texts always give the same diff
    return dmp


def _tokens_to_chars(a: str, b: str) -> tuple[str, str, list[str]]:
    """diff-match-patch's line-mode trick applied to word tokens (its wiki's 'word mode')."""
    table: list[str] = [""]
    index: dict[str, int] = {}

    def encode(text: str) -> str:
        out = []
        for tok in _TOKEN_RE.findall(text):
            if tok not in index:
                index[tok] = len(table)
                table.append(tok)
            out.append(chr(index[tok]))
        return "".join(out)

    return encode(a), encode(b), table


def word_diff(old: str, new: str) -> list[tuple[int, str]]:
    """Token-level diff of two short texts with semantic cleanup; ops as in diff-match-patch."""
    dmp = _dmp()
    a, b, table = _tokens_to_chars(old, new)
    if len(a) > MAX_WORD_TOKENS or len(b) > MAX_WORD_TOKENS:
        return [(-1, old), (1, new)]
    # Myers' bisection costs about (N + M) · D steps. D is at least the tokens one side has and
    # the other lacks; a rewrite (large D, or most words differing) gains nothing from
    # word-level marks, so it is shown as whole lines instead of taking seconds. Deterministic,
    # unlike a time limit.
    ca, cb = Counter(a), Counter(b)
    least_edits = sum((ca - cb).values()) + sum((cb - ca).values())
    size = len(a) + len(b)
    if least_edits * size > WORD_DIFF_BUDGET or least_edits > size // 2:
        return [(-1, old), (1, new)]  # more than half the words differ: it is a rewrite
    diffs = dmp.diff_main(a, b, False)
    dmp.diff_cleanupSemantic(diffs)
    return [(op, "".join(table[ord(c)] for c in chars)) for op, chars in diffs]


def _refine(removed: list[str], added: list[str]) -> list[tuple[int, str]]:
    """Word diff of a changed block; a large block is refined line by line when it lines up."""
    old, new = "\n".join(removed), "\n".join(added)
    if len(old) + len(new) < 8 * MAX_WORD_TOKENS or len(removed) != len(added):
        return word_diff(old, new)
    ops: list[tuple[int, str]] = []
    for i, (a, b) in enumerate(zip(removed, added, strict=True)):
        if i:
            ops.append((0, "\n"))
        ops.extend(word_diff(a, b))
    return ops


def _split_side(ops: list[tuple[int, str]], keep: int) -> list[list[Segment]]:
    """Per-line segments of one side (old: keep=-1, new: keep=1) of a word diff."""
    lines: list[list[Segment]] = [[]]
    tag: Op = "-" if keep == -1 else "+"
    for op, text in ops:
        if op not in (0, keep):
            continue
        parts = text.split("\n")
        for i, part in enumerate(parts):
            if i:
                lines.append([])
            if part:
                lines[-1].append(Segment("=" if op == 0 else tag, part))
    return lines


def line_diff(old: str, new: str) -> tuple[list[tuple[int, str]], bool]:
    """Line-level diff ops, and whether it had to be simplified to stay within its budget.

    Myers' algorithm costs about (N + M) · D steps: a page of 7,000 lines rewritten line by
    line took minutes. When even the fewest possible edits (lines one side has and the other
    lacks) put it over LINE_DIFF_BUDGET, the changed middle is shown as one removed and one
    added block, deterministically; otherwise diff-match-patch runs with a time limit as a
    backstop (moved blocks can make D larger than that estimate), and a diff that reached it
    is marked simplified too.
    """
    dmp = _dmp()
    a, b, table = dmp.diff_linesToChars(old, new)
    head = dmp.diff_commonPrefix(a, b)
    tail = dmp.diff_commonSuffix(a[head:], b[head:])
    mid_a, mid_b = a[head:len(a) - tail], b[head:len(b) - tail]
    ca, cb = Counter(mid_a), Counter(mid_b)
    least_edits = sum((ca - cb).values()) + sum((cb - ca).values())
    simplified = least_edits * (len(mid_a) + len(mid_b)) > LINE_DIFF_BUDGET
    if simplified:
        diffs = [(op, chars) for op, chars in ((0, a[:head]), (-1, mid_a), (1, mid_b),
                                               (0, a[len(a) - tail:])) if chars]
    else:
        dmp.Diff_Timeout = LINE_DIFF_SECONDS
        started = time.monotonic()
        diffs = dmp.diff_main(a, b, False)
        simplified = time.monotonic() - started >= LINE_DIFF_SECONDS
    dmp.diff_charsToLines(diffs, table)
    return diffs, simplified


def _blocks(diffs: list[tuple[int, str]]) -> Iterator[tuple[list[str], list[str], list[str]]]:
    """(equal lines, removed lines, added lines) runs of a line-level diff."""
    equal: list[str] = []
    removed: list[str] = []
    added: list[str] = []
    for op, text in diffs:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if op == 0:
            if removed or added:
                yield equal, removed, added
                equal, removed, added = [], [], []
            equal.extend(lines)
        elif op == -1:
            removed.extend(lines)
        else:
            added.extend(lines)
    yield equal, removed, added


def compute(old: str, new: str, context: int = CONTEXT_LINES) -> Diff:
    """The diff between two normalised texts."""
    if not old.endswith("\n"):
        old += "\n"
    if not new.endswith("\n"):
        new += "\n"
    if old == new:
        return Diff((), Stats(), (), ())
    lines: list[Line] = []
    old_no = new_no = 0
    words_added = words_removed = 0
    diffs, simplified = line_diff(old, new)
    for equal, removed, added in _blocks(diffs):
        for text in equal:
            old_no += 1
            new_no += 1
            lines.append(Line(" ", text, old_no, new_no))
        if removed and added and not simplified and len(removed) + len(added) <= MAX_REFINED_LINES:
            ops = _refine(removed, added)
            words_removed += sum(len(_WORD_RE.findall(t)) for op, t in ops if op == -1)
            words_added += sum(len(_WORD_RE.findall(t)) for op, t in ops if op == 1)
            old_segs = _split_side(ops, -1)
            new_segs = _split_side(ops, 1)
        else:
            words_removed += sum(len(_WORD_RE.findall(t)) for t in removed)
            words_added += sum(len(_WORD_RE.findall(t)) for t in added)
            old_segs = [[Segment("-", t)] if t else [] for t in removed]
            new_segs = [[Segment("+", t)] if t else [] for t in added]
        for i, text in enumerate(removed):
            old_no += 1
            segs = old_segs[i] if i < len(old_segs) else [Segment("-", text)]
            lines.append(Line("-", text, old_no, None, tuple(segs)))
        for i, text in enumerate(added):
            new_no += 1
            segs = new_segs[i] if i < len(new_segs) else [Segment("+", text)]
            lines.append(Line("+", text, None, new_no, tuple(segs)))

    old_sentences = Counter(split_sentences(old))
    new_sentences = Counter(split_sentences(new))
    added_s = tuple((new_sentences - old_sentences).elements())
    removed_s = tuple((old_sentences - new_sentences).elements())
    stats = Stats(
        words_added=words_added,
        words_removed=words_removed,
        sentences_added=len(added_s),
        sentences_removed=len(removed_s),
        lines_added=sum(1 for ln in lines if ln.tag == "+"),
        lines_removed=sum(1 for ln in lines if ln.tag == "-"),
    )
    return Diff(_hunks(lines, context), stats, added_s, removed_s, simplified)


def _hunks(lines: list[Line], context: int) -> tuple[Hunk, ...]:
    changed = [i for i, ln in enumerate(lines) if ln.tag != " "]
    if not changed:
        return ()
    groups: list[tuple[int, int]] = []
    start, end = changed[0], changed[0]
    for i in changed[1:]:
        if i - end > 2 * context:
            groups.append((start, end))
            start = i
        end = i
    groups.append((start, end))
    hunks = []
    for start, end in groups:
        lo, hi = max(0, start - context), min(len(lines), end + context + 1)
        part = tuple(lines[lo:hi])
        old_lines = [ln for ln in part if ln.tag != "+"]
        new_lines = [ln for ln in part if ln.tag != "-"]
        old_start = next((ln.old_no for ln in old_lines if ln.old_no), None)
        new_start = next((ln.new_no for ln in new_lines if ln.new_no), None)
        if old_start is None:  # pure insertion: unified diff names the line before it
            old_start = next((ln.old_no for ln in reversed(lines[:lo]) if ln.old_no), 0)
        if new_start is None:
            new_start = next((ln.new_no for ln in reversed(lines[:lo]) if ln.new_no), 0)
        hunks.append(Hunk(old_start, len(old_lines), new_start, len(new_lines), part))
    return tuple(hunks)


# ---- renderers ------------------------------------------------------------------------------


def unified(diff: Diff, from_label: str = "old", to_label: str = "new") -> str:
    """Plain unified diff, for terminals and e-mail."""
    if not diff.hunks:
        return ""
    out = [f"--- {from_label}", f"+++ {to_label}"]
    for hunk in diff.hunks:
        out.append(hunk.header())
        out.extend(f"{ln.tag}{ln.text}" for ln in hunk.lines)
    return "\n".join(out) + "\n"


# ANSI styles for the terminal: changed words stand out on their line's colour.
_STYLE = {"header": "\x1b[1m", "hunk": "\x1b[36m", "-": "\x1b[31m", "+": "\x1b[32m",
          "-word": "\x1b[1;97;41m", "+word": "\x1b[1;30;42m", " ": ""}
_RESET = "\x1b[0m"
_PIECE_RE = re.compile(r"\s+|\S+")


def _wrap(pieces: list[tuple[str, str]], prefix: str, width: int | None,
          color: bool) -> list[str]:
    """Lay (text, style) pieces out in lines of at most `width` visible characters, each
    starting with `prefix` (the -/+ tag, so every wrapped line still says which side it is)."""
    lines: list[str] = []
    current: list[tuple[str, str]] = []
    used = len(prefix)
    room = (width - len(prefix)) if width else None

    def emit() -> None:
        nonlocal current, used
        while current and current[-1][0].isspace():  # no line ends with the space it broke at
            current.pop()
        runs: list[tuple[str, str]] = []
        for text, style in current:  # one colour code per run of one style, not per word
            if runs and runs[-1][1] == style:
                runs[-1] = (runs[-1][0] + text, style)
            else:
                runs.append((text, style))
        lines.append(prefix + "".join(_paint(text, style, color) for text, style in runs))
        current, used = [], len(prefix)

    for text, style in pieces:
        for token in _PIECE_RE.findall(safe_terminal_text(text)):
            while room and len(token) > room:  # a word longer than the line: cut it
                if used > len(prefix):
                    emit()
                head, token = token[:room], token[room:]
                current.append((head, style))
                emit()
            if room and used + len(token) > (width or 0) and used > len(prefix):
                emit()
                if token.isspace():
                    continue  # no line starts with the space it broke at
            current.append((token, style))
            used += len(token)
    if current or not lines:
        emit()
    return lines


def _paint(text: str, style: str, color: bool) -> str:
    code = _STYLE.get(style, "") if color else ""
    return f"{code}{text}{_RESET}" if code else text


def terminal(diff: Diff, from_label: str = "old", to_label: str = "new", *,
             width: int | None = None, color: bool = False) -> str:
    """The unified diff for a person at a terminal: lines wrapped at `width`, and with `color`
    the changed words highlighted inside their red or green line. Page text cannot send
    control sequences to the terminal."""
    if not diff.hunks:
        return ""
    out = [_paint(safe_terminal_text(f"--- {from_label}"), "header", color),
           _paint(safe_terminal_text(f"+++ {to_label}"), "header", color)]
    for hunk in diff.hunks:
        out.append(_paint(hunk.header(), "hunk", color))
        for ln in hunk.lines:
            pieces: list[tuple[str, str]]
            if ln.tag == " " or not ln.segments:
                pieces = [(ln.text, ln.tag)]
            else:
                pieces = [(seg.text, ln.tag + "word" if seg.op == ln.tag else ln.tag)
                          for seg in ln.segments]
            prefix = _paint(ln.tag, ln.tag, color) if color else ln.tag
            wrapped = _wrap(pieces, ln.tag, width, color)
            out.extend(prefix + line[1:] for line in wrapped)
    return "\n".join(out) + "\n"


def _segments_html(line: Line) -> str:
    if not line.segments:
        return html.escape(line.text)
    out = []
    for seg in line.segments:
        text = html.escape(seg.text)
        if seg.op == "+":
            out.append(f"<ins>{text}</ins>")
        elif seg.op == "-":
            out.append(f"<del>{text}</del>")
        else:
            out.append(text)
    return "".join(out)


def inline_html(diff: Diff) -> str:
    """One column: removed and added lines in order, changed words marked. Page text escaped."""
    out = ['<div class="diff diff-inline">']
    for hunk in diff.hunks:
        out.append(f'<div class="hunk"><div class="hunk-header">{html.escape(hunk.header())}</div>')
        for ln in hunk.lines:
            cls = {" ": "ctx", "-": "del", "+": "add"}[ln.tag]
            out.append(f'<div class="line {cls}">{_segments_html(ln)}</div>')
        out.append("</div>")
    out.append("</div>")
    return "\n".join(out)


def side_by_side_html(diff: Diff) -> str:
    """Two columns: old on the left, new on the right, changed lines paired in order."""
    out = ['<table class="diff diff-side"><tbody>']
    for hunk in diff.hunks:
        out.append(f'<tr class="hunk-header"><td colspan="2">{html.escape(hunk.header())}</td></tr>')
        pending_old: list[Line] = []
        pending_new: list[Line] = []
        for ln in (*hunk.lines, None):
            if ln is not None and ln.tag == "-":
                pending_old.append(ln)
                continue
            if ln is not None and ln.tag == "+":
                pending_new.append(ln)
                continue
            out.extend(_paired_rows(pending_old, pending_new))
            pending_old, pending_new = [], []
            if ln is not None:
                text = html.escape(ln.text)
                out.append(f'<tr class="ctx"><td>{text}</td><td>{text}</td></tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def _paired_rows(old: list[Line], new: list[Line]) -> list[str]:
    rows = []
    for i in range(max(len(old), len(new))):
        left = f'<td class="del">{_segments_html(old[i])}</td>' if i < len(old) else '<td class="empty"></td>'
        right = f'<td class="add">{_segments_html(new[i])}</td>' if i < len(new) else '<td class="empty"></td>'
        rows.append(f"<tr>{left}{right}</tr>")
    return rows
