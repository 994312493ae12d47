"""Words shared by every command: the label and severity vocabulary, counts with nouns, and
page text made plain for reading. Pure and cheap to import: the CLI builds its options from
it before it knows which heavy module a command needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

SEVERITIES = ("none", "low", "medium", "high")


# What each verdict word tells a reader (monitor/verdict.py holds the vocabulary and its order).
VERDICT_WORDS = {
    "trains_on_user_data": "trains AI on your data",
    "stops_training": "stops training AI on your data",
    "promises_no_training": "promises not to train AI on your data",
    "opt_out_added": "new way to opt out of AI use",
    "opt_out_removed": "AI opt-out removed or restricted",
    "shares_for_ai": "shares your data for AI",
    "user_ai_rules": "new rules for your use of AI",
    "ai_feature_terms": "AI feature terms changed",
    "no_change": "no change in what it says about AI",
}


def headline(verdict: Sequence[str] | None, default: str | None,
             regions_excluded: Sequence[str] | None, summary: str | None) -> str:
    """The headline of a change, worded from its verdict when it is shown (never frozen at
    detection): "trains AI on your data (on by default; not in EEA, UK)". A change judged
    before verdicts existed, or with nothing about AI, keeps its detection summary."""
    words = [w for w in (verdict or ()) if w in VERDICT_WORDS]
    if not words or words == ["no_change"]:
        return summary or "changed"  # nothing about AI changed: what the detection saw
    text = VERDICT_WORDS[words[0]]
    extra = []
    if default == "on" and words[0] in _DEFAULT_MATTERS:
        extra.append("on by default")
    elif default == "off" and words[0] in _DEFAULT_MATTERS:
        extra.append("only if you opt in")
    if regions_excluded:
        extra.append("not in " + ", ".join(regions_excluded))
    if extra:
        text += f" ({'; '.join(extra)})"
    if len(words) > 1:
        text += f"; also {VERDICT_WORDS[words[1]]}"
    return text


_DEFAULT_MATTERS = ("trains_on_user_data", "shares_for_ai", "opt_out_added", "opt_out_removed")


def severity_rank(severity: str | None) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def max_severity(values: Iterable[str | None]) -> str:
    best = "none"
    for value in values:
        if value is not None and severity_rank(value) > severity_rank(best):
            best = value
    return best


def iso(value: datetime | None) -> str | None:
    """`2026-12-01T20:50:58Z`: how every JSON form (CLI, API, webhook) writes a UTC time."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def plural(n: int, one: str, many: str | None = None) -> str:
    """`1 page`, `3 pages`: a count with its noun agreeing."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


_CLASSES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bHTTP (\d{3})\b|error=(\d{3})\b|\b(\d{3}) (?:error|response)", re.I), "HTTP {}"),
    (re.compile(r"timed? ?out|timeout", re.I), "timeout"),
    (re.compile(r"connection|connect|refused|resolve|unreachable", re.I), "connection error"),
    (re.compile(r"auth|login|credential|password|token", re.I), "authentication error"),
)


def duration_words(seconds: float) -> str:
    """A duration as a setting would spell it: "30d", "6h", "90s"."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def error_class(error: str | None) -> str:
    """`HTTP 503`, `timeout`, `connection error`…: what kind of failure, in two words."""
    if not error:
        return ""
    head = error.split(":", 1)[0]
    if head in {"timeout", "connection error", "authentication error"}:
        return head
    for pattern, label in _CLASSES:
        found = pattern.search(error)
        if found:
            code = next((g for g in found.groups() if g), "") if found.groups() else ""
            return label.format(code) if "{}" in label else label
    return "error"


# Control characters in page text would drive the terminal (clear it, retitle it, write the
# clipboard with OSC 52); every CLI output of page text shows them as U+FFFD instead.
# Newline and tab stay.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe_terminal_text(text: str) -> str:
    return _CONTROL_RE.sub("\ufffd", text)
