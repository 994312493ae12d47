"""Alert texts: title, Markdown and HTML bodies, from template files the user can override. Pure.

Page text is data, never code: every value is escaped for its format (HTML entities, Markdown
punctuation) and filled in with `string.Template`, whose single pass never evaluates what it
inserts, so `{{ 7*7 }}`, `$link` or `<script>` in a policy stays literal text (the class of
bug behind changedetection.io CVE-2024-32651 and Uptime Kuma GHSA-vffh-c9pq-4crh).
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from monitor import diff as difflib
from monitor.classify import severity_rank

Format = Literal["markdown", "html"]
BUILTIN = Path(__file__).with_name("templates")
DIFF_LINES = 40
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")
_LABEL_NAMES = {
    "ai_training": "AI training", "ai_feature_data": "AI feature data", "opt_out": "opt-out",
    "default_on": "on by default", "region_scope": "regional scope",
    "third_party_ai": "AI data sharing", "retroactivity": "data already used",
    "cosmetic": "cosmetic",
}


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    format: Format


@dataclass(frozen=True)
class ChangeView:
    """What an alert needs to know about a change (built from history.ChangeDetail)."""

    id: int
    platform: str
    title: str
    url: str
    kind: str
    labels: Sequence[str]
    severity: str | None
    summary: str
    evidence: Sequence[dict[str, Any]]
    opt_out: Sequence[dict[str, Any]]
    diff: difflib.Diff


def md_escape(text: str) -> str:
    """Markdown-inert text: links, emphasis, headings and HTML in page text stay literal."""
    return _MD_SPECIAL.sub(r"\\\1", text.replace("\n", " "))


def _load(name: str, templates_dir: Path | None) -> string.Template:
    for folder in (templates_dir, BUILTIN):
        if folder is not None and (folder / name).is_file():
            return string.Template((folder / name).read_text(encoding="utf-8"))
    raise FileNotFoundError(name)


def trim(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a line, saying how much was left out."""
    if len(text) <= limit:
        return text
    lines = text.split("\n")
    kept: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > limit - 40:
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept) + f"\n… {len(lines) - len(kept)} more lines"


def change_title(view: ChangeView) -> str:
    """`[LinkedIn] Privacy Policy: AI training added — high`."""
    summary = view.summary.split(", ")[0] if view.summary else "changed"
    return f"[{view.platform}] {view.title}: {summary} — {view.severity or 'unclassified'}"


def _what(view: ChangeView) -> str:
    labels = [_LABEL_NAMES.get(label, label) for label in view.labels]
    first = f"{view.platform} changed its {view.title}"
    if view.summary:
        first += f": {view.summary}."
    else:
        first += "."
    second = (f"Labels: {', '.join(labels)}; severity {view.severity}."
              if labels else f"Severity {view.severity or 'unclassified'}.")
    return f"{first} {second}"


def _unified_excerpt(view: ChangeView) -> str:
    text = difflib.unified(view.diff, "before", "after").rstrip("\n")
    lines = text.split("\n")
    if len(lines) > DIFF_LINES:
        lines = [*lines[:DIFF_LINES], f"… {len(lines) - DIFF_LINES} more lines"]
    return "\n".join(lines)


def render_change(view: ChangeView, fmt: Format, base_url: str, limit: int = 30_000,
                  templates_dir: Path | None = None) -> Message:
    link = f"{base_url.rstrip('/')}/changes/{view.id}"
    title = change_title(view)
    evidence = sorted(view.evidence, key=lambda e: -severity_rank(e.get("severity")))[:5]
    if fmt == "html":
        esc = html.escape
        ev = "".join(
            f"<p><em>{esc(_LABEL_NAMES.get(e['label'], e['label']))} ({esc(e['direction'])})</em></p>"
            + (f'<blockquote style="color:#b31d28"><del>{esc(e["old"])}</del></blockquote>'
               if e.get("old") else "")
            + (f'<blockquote style="color:#22863a"><ins>{esc(e["new"])}</ins></blockquote>'
               if e.get("new") else "")
            for e in evidence)
        opt = ""
        if view.opt_out:
            items = "".join(
                f"<li>{esc(o['type'].replace('_', ' '))}: {esc(o['text'])}"
                + (f" ({esc(o['url'])})" if o.get("url") else "") + "</li>"
                for o in view.opt_out)
            opt = f"<p><strong>How to opt out</strong></p><ul>{items}</ul>"
        values = {"headline": esc(title), "what": esc(_what(view)), "evidence": ev,
                  "opt_out": opt, "link": esc(link), "source_url": esc(view.url),
                  "diff": esc(_unified_excerpt(view))}
        body = _load("change.html", templates_dir).safe_substitute(values)
    else:
        ev_lines = []
        for e in evidence:
            ev_lines.append(f"*{md_escape(_LABEL_NAMES.get(e['label'], e['label']))} "
                            f"({md_escape(e['direction'])})*")
            if e.get("old"):
                ev_lines.append(f"> − {md_escape(e['old'])}")
            if e.get("new"):
                ev_lines.append(f"> \\+ {md_escape(e['new'])}")
            ev_lines.append("")
        opt = ""
        if view.opt_out:
            opt = "**How to opt out**\n\n" + "\n".join(
                f"- {md_escape(o['type'].replace('_', ' '))}: {md_escape(o['text'])}"
                + (f" ({md_escape(o['url'])})" if o.get("url") else "") for o in view.opt_out) + "\n"
        values = {"headline": md_escape(title), "what": md_escape(_what(view)),
                  "evidence": "\n".join(ev_lines), "opt_out": opt, "link": link,
                  "source_url": md_escape(view.url),
                  # Inside a fenced block Markdown is inert; only a fence could escape it.
                  "diff": _unified_excerpt(view).replace("```", "ʼʼʼ")}
        body = _load("change.md", templates_dir).safe_substitute(values)
    return Message(title, trim(body, limit), fmt)


def render_source_alert(kind: str, platform: str, source: str, failures: int, error: str | None,
                        fmt: Format, templates_dir: Path | None = None) -> Message:
    if kind == "failing":
        title = f"[{platform}] {source}: source failing"
        what = (f"{source} has failed {failures} checks in a row"
                + (f"; last error: {error}" if error else "") + ". Checks continue with back-off.")
    else:
        title = f"[{platform}] {source}: source recovered"
        what = f"{source} works again after {failures} failed checks."
    esc = html.escape if fmt == "html" else md_escape
    name = "alert.html" if fmt == "html" else "alert.md"
    body = _load(name, templates_dir).safe_substitute({"headline": esc(title), "what": esc(what)})
    return Message(title, body, fmt)


def render_digest(views: Sequence[ChangeView], period: str, fmt: Format, base_url: str,
                  limit: int = 30_000, templates_dir: Path | None = None) -> Message:
    """One message for many changes, grouped by platform, most severe first."""
    title = f"Policy changes, {period}: {len(views)} change{'s' if len(views) != 1 else ''}"
    by_platform: dict[str, list[ChangeView]] = {}
    for v in views:
        by_platform.setdefault(v.platform, []).append(v)
    sections = []
    for platform in sorted(by_platform, key=lambda p: (-max(severity_rank(v.severity)
                                                             for v in by_platform[p]), p)):
        items = sorted(by_platform[platform], key=lambda v: -severity_rank(v.severity))
        link = base_url.rstrip("/") + "/changes/"
        if fmt == "html":
            lis = "".join(f'<li><strong>{html.escape(v.severity or "-")}</strong> '
                          f'<a href="{html.escape(link)}{v.id}">{html.escape(v.title)}</a>: '
                          f"{html.escape(v.summary)}</li>" for v in items)
            sections.append(f"<h3>{html.escape(platform)}</h3><ul>{lis}</ul>")
        else:
            lis = "\n".join(f"- **{md_escape(v.severity or '-')}** [{md_escape(v.title)}]"
                            f"({link}{v.id}): {md_escape(v.summary)}" for v in items)
            sections.append(f"**{md_escape(platform)}**\n\n{lis}\n")
    esc = html.escape if fmt == "html" else md_escape
    name = "digest.html" if fmt == "html" else "digest.md"
    body = _load(name, templates_dir).safe_substitute(
        {"headline": esc(title), "sections": "\n".join(sections)})
    return Message(title, trim(body, limit), fmt)
