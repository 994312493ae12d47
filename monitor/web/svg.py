"""The dashboard's timeline chart as server-side SVG: no JavaScript, every label escaped.

One row per platform, one mark per change at its date, coloured by severity; hovering a mark
shows the page and its headline, and clicking it opens the change.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timedelta

from monitor.history import TimelineMark

ROW = 24
LEFT = 140
WIDTH = 1000  # viewBox units; the chart scales to the page's width
COLOURS = {"high": "#b31d28", "medium": "#d97706", "low": "#8b949e"}
RADIUS = {"high": 5.5, "medium": 4.5, "low": 3.5}


def _ticks(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """Axis labels: weeks over a month, months over a year or two, years beyond."""
    span = end - start
    out: list[tuple[datetime, str]] = []
    if span <= timedelta(days=45):
        t = start.replace(hour=0, minute=0, second=0, microsecond=0)
        while t <= end:
            out.append((t, t.strftime("%m-%d")))
            t += timedelta(days=7)
    elif span <= timedelta(days=800):
        y, m = start.year, start.month
        while (t := start.replace(year=y, month=m, day=1, hour=0, minute=0, second=0,
                                  microsecond=0)) <= end:
            if t >= start:
                out.append((t, t.strftime("%Y-%m") if m == 1 or not out else t.strftime("%b")))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    else:
        for y in range(start.year + 1, end.year + 1):
            out.append((start.replace(year=y, month=1, day=1, hour=0, minute=0, second=0,
                                      microsecond=0), str(y)))
    return out


def timeline_svg(marks: Sequence[TimelineMark], start: datetime, end: datetime) -> str:
    if not marks:
        return '<p class="muted">No changes in this period.</p>'
    start = min(start, marks[0].detected_at)
    platforms = sorted({m.platform for m in marks})
    height = ROW * len(platforms) + 34
    span = max((end - start).total_seconds(), 1.0)

    def x(at: datetime) -> float:
        return LEFT + (WIDTH - LEFT - 12) * (at - start).total_seconds() / span

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
             f'class="timeline" role="img" aria-label="Changes per platform over time">']
    for row, platform in enumerate(platforms):
        y = 16 + row * ROW
        parts.append(f'<text x="4" y="{y + 4}">{html.escape(platform)}</text>'
                     f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - 8}" y2="{y}" stroke="#e1e4e8"/>')
    for at, label in _ticks(start, end):
        parts.append(f'<line x1="{x(at):.1f}" y1="6" x2="{x(at):.1f}" y2="{height - 20}" '
                     f'stroke="#f0f2f4"/><text x="{x(at):.1f}" y="{height - 6}">'
                     f"{html.escape(label)}</text>")
    rows = {p: i for i, p in enumerate(platforms)}
    for m in sorted(marks, key=lambda m: RADIUS.get(m.severity or "", 3)):  # high on top
        severity = m.severity or "low"
        tip = (f"{m.platform} · {m.page} · {m.detected_at:%Y-%m-%d}: "
               f"{m.headline or 'changed'} ({severity})")
        parts.append(f'<a href="/changes/{m.change_id}"><circle cx="{x(m.detected_at):.1f}" '
                     f'cy="{16 + rows[m.platform] * ROW}" r="{RADIUS.get(severity, 3.5)}" '
                     f'fill="{COLOURS.get(severity, "#8b949e")}" fill-opacity="0.85" '
                     f'class="sev-mark-{html.escape(severity)}"><title>{html.escape(tip)}</title>'
                     "</circle></a>")
    parts.append("</svg>")
    return "".join(parts)
