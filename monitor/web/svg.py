"""The dashboard's timeline chart as server-side SVG: no JavaScript, every label escaped."""

from __future__ import annotations

import html
from collections.abc import Sequence

ROW = 26
LEFT = 150
COL = 18


def timeline_svg(points: Sequence[tuple[str, str, int]]) -> str:
    """One row per platform, one column per month, a dot sized by the number of changes."""
    if not points:
        return '<p class="muted">No changes yet.</p>'
    platforms = sorted({p for p, _, _ in points})
    months = sorted({m for _, m, _ in points})
    # Fill the gaps so the x axis is real time, not just months with changes.
    first_y, first_m = (int(x) for x in months[0].split("-"))
    last_y, last_m = (int(x) for x in months[-1].split("-"))
    axis = []
    y, m = first_y, first_m
    while (y, m) <= (last_y, last_m):
        axis.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    index = {month: i for i, month in enumerate(axis)}
    width = LEFT + COL * len(axis) + 20
    height = ROW * len(platforms) + 40
    top = max(n for _, _, n in points)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="Changes per platform per month">']
    for row, platform in enumerate(platforms):
        y_pos = 20 + row * ROW
        parts.append(f'<text x="4" y="{y_pos + 4}">{html.escape(platform)}</text>')
        parts.append(f'<line x1="{LEFT}" y1="{y_pos}" x2="{width - 10}" y2="{y_pos}" '
                     'stroke="#e1e4e8"/>')
    for p, month, n in points:
        x = LEFT + COL * index[month] + COL / 2
        y_pos = 20 + platforms.index(p) * ROW
        r = 3 + 7 * (n / top)
        parts.append(f'<circle cx="{x:.0f}" cy="{y_pos}" r="{r:.1f}" fill="#0a3d62" '
                     f'fill-opacity="0.7"><title>{html.escape(p)} {month}: {n} '
                     f'change{"s" if n != 1 else ""}</title></circle>')
    for i, month in enumerate(axis):
        if month.endswith("-01") or i == 0:
            x = LEFT + COL * i
            parts.append(f'<text x="{x}" y="{height - 6}">{month[:4]}</text>')
    parts.append("</svg>")
    return "".join(parts)
