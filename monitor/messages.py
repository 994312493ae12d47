"""Alert texts: title, Markdown and HTML bodies, from template files the user can override.

Not pure: templates are read from disk on each render, so an edited override takes effect at
once without a restart.

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
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from monitor import board as boardlib
from monitor import diff as difflib
from monitor.labels import title as label_title
from monitor.text import readable
from monitor.wording import plural, severity_rank

Format = Literal["markdown", "html", "json"]
BUILTIN = Path(__file__).with_name("templates")
DIFF_LINES = 40
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    format: Format
    kind: str = "change"  # change | event | answer_change | source_alert | digest: a webhook's event header


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
    headline: str = ""  # worded from the verdict when the message is rendered
    verdict: Sequence[str] = ()

    @property
    def said(self) -> str:
        """The headline, or for a change without a verdict its detection summary."""
        return self.headline or self.summary

    @property
    def short(self) -> str:
        """What a title says: the headline, or the summary's first part."""
        return self.headline or (self.summary.split(", ")[0] if self.summary else "changed")


def md_escape(text: str) -> str:
    """Markdown-inert text: links, emphasis, headings and HTML in page text stay literal, and
    chat mentions in it (Discord's @everyone, Slack's <!channel>) notify nobody."""
    return defuse_mentions(_MD_SPECIAL.sub(r"\\\1", text.replace("\n", " ")))


# A word joiner (U+2060, invisible) after the @ or < of a mention: the text reads the same but
# is no longer the mention syntax of Discord (@everyone, @here, <@id>, <@&role>), Slack
# (<!channel>, <!here>, <!everyone>, <@U…>, @channel) or Teams/Mattermost (@all, @channel).
_MENTION = re.compile(r"(@)(?=(?:everyone|here|channel|all)\b)|(<\\?)(?=[!@#&])", re.IGNORECASE)


def defuse_mentions(text: str) -> str:
    return _MENTION.sub(lambda m: (m.group(1) or m.group(2)) + "\u2060", text)


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


def page_name(platform: str, title: str | None, source: str) -> str:
    """What to call a page after its platform: "LinkedIn Privacy Policy" under [LinkedIn] is
    "Privacy Policy"; a title that is only the platform's name gives way to the source's own
    name ("linkedin/privacy-policy" → "Privacy policy"), so no subject says "LinkedIn: LinkedIn"."""
    name = (title or "").strip()
    if not name or name.casefold() == platform.casefold():
        tail = source.rsplit("/", 1)[-1].replace("-", " ").replace("_", " ").strip()
        return (tail[:1].upper() + tail[1:]) if tail else source
    for joiner in (" ", "'s ", "’s ", ": ", " - ", " – "):
        prefix = platform + joiner
        rest = name[len(prefix):]
        if name.casefold().startswith(prefix.casefold()) and rest[:1].isupper():
            return rest
    return name


def change_title(view: ChangeView) -> str:
    """`[LinkedIn] Privacy Policy: trains AI on your data (on by default) — high`."""
    return f"[{view.platform}] {view.title}: {view.short} — {view.severity or 'unclassified'}"


def _what(view: ChangeView) -> str:
    labels = [label_title(label) for label in view.labels]
    first = (f"{view.title} changed" if view.title.casefold().startswith(view.platform.casefold())
             else f"{view.platform} changed its {view.title}")
    if view.said:
        first += f": {view.said}."
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


# The evidence a verdict word rests on, by label: quoted first, so a headline that says "shares
# your data for AI" is followed by the sharing sentence.
_VERDICT_LABELS = {
    "trains_on_user_data": ("ai_training",), "stops_training": ("ai_training",),
    "promises_no_training": ("ai_training", "third_party_ai"),
    "opt_out_added": ("opt_out",), "opt_out_removed": ("opt_out", "region_scope"),
    "shares_for_ai": ("third_party_ai",), "user_ai_rules": ("ai_training", "ai_feature_data"),
    "ai_feature_terms": ("ai_feature_data",),
}
PER_LABEL = 3  # quotes per label in a message; the rest are counted and linked


def _grouped(view: ChangeView) -> list[tuple[str, list[dict[str, Any]], int]]:
    """(label, its strongest quotes, how many more) with the verdict's own label first."""
    first = _VERDICT_LABELS.get(view.verdict[0], ()) if view.verdict else ()
    by_label: dict[str, list[dict[str, Any]]] = {}
    for e in sorted(view.evidence, key=lambda e: -severity_rank(e.get("severity"))):
        by_label.setdefault(e["label"], []).append(e)
    order = sorted(by_label, key=lambda label: (label not in first, first.index(label)
                                                if label in first else 0,
                                                -max(severity_rank(e.get("severity"))
                                                     for e in by_label[label])))
    return [(label, by_label[label][:PER_LABEL], max(0, len(by_label[label]) - PER_LABEL))
            for label in order]


def _evidence(view: ChangeView, fmt: Format, link: str = "") -> str:
    """Quotes grouped by label, each as Before:/After: lines (the plain-text part of an e-mail
    reads them as such), "and N more" with a link to the change page when cut."""
    groups = _grouped(view)
    if fmt == "html":
        esc = html.escape
        out = []
        for label, quotes, more in groups:
            out.append(f"<p><strong>{esc(label_title(label))}</strong></p>")
            for e in quotes:
                out.append(f"<p><em>{esc(e.get('direction') or 'changed')}</em></p>")
                if e.get("old"):
                    out.append('<blockquote style="color:#b31d28">Before: '
                               f'<del>{esc(readable(e["old"]))}</del></blockquote>')
                if e.get("new"):
                    out.append('<blockquote style="color:#22863a">After: '
                               f'<ins>{esc(readable(e["new"]))}</ins></blockquote>')
            if more:
                out.append(f'<p>… and {more} more (<a href="{esc(link)}">{esc(link)}</a>)</p>'
                           if link else f"<p>… and {more} more</p>")
        return "".join(out)
    lines = []
    for label, quotes, more in groups:
        lines.append(f"**{md_escape(label_title(label))}**")
        for e in quotes:
            lines.append(f"*{md_escape(e.get('direction') or 'changed')}*")
            if e.get("old"):
                lines.append(f"> Before: {md_escape(readable(e['old']))}")
            if e.get("new"):
                lines.append(f"> After: {md_escape(readable(e['new']))}")
        if more:
            lines.append(f"… and {more} more ({link})" if link else f"… and {more} more")
        lines.append("")
    return "\n".join(lines)


def _opt_out_item(o: dict[str, Any]) -> str:
    """One way out in words: "email: privacy@x.ai (subject “Opt out”)"."""
    text = f"{o['type'].replace('_', ' ')}: {readable(o['text'])}"
    if o.get("url"):
        text += f" ({o['url']})"
    if o.get("subject"):
        text += f" (subject “{o['subject']}”)"
    if o.get("detail"):
        text += f" — {o['detail']}"
    return text


def _opt_out(view: ChangeView, fmt: Format) -> str:
    if not view.opt_out:
        return ""
    if fmt == "html":
        items = "".join(f"<li>{html.escape(_opt_out_item(o))}</li>" for o in view.opt_out)
        return f"<p><strong>How to opt out</strong></p><ul>{items}</ul>"
    return "**How to opt out**\n\n" + "\n".join(
        f"- {md_escape(_opt_out_item(o))}" for o in view.opt_out) + "\n"


def _link(base_url: str, change_id: int) -> str:
    return f"{base_url.rstrip('/')}/changes/{change_id}"


def render_change(view: ChangeView, fmt: Format, base_url: str, limit: int = 30_000,
                  templates_dir: Path | None = None) -> Message:
    link = _link(base_url, view.id)
    title = change_title(view)
    if fmt == "html":
        esc = html.escape
        values = {"headline": esc(title), "what": esc(_what(view)),
                  "evidence": _evidence(view, fmt, link),
                  "opt_out": _opt_out(view, fmt), "link": esc(link), "source_url": esc(view.url),
                  "diff": esc(_unified_excerpt(view))}
        body = _load("change.html", templates_dir).safe_substitute(values)
    else:
        values = {"headline": md_escape(title), "what": md_escape(_what(view)),
                  "evidence": _evidence(view, fmt, link), "opt_out": _opt_out(view, fmt),
                  "link": link,
                  "source_url": md_escape(view.url),
                  # Inside a fenced block Markdown is inert; only a fence could escape it.
                  "diff": defuse_mentions(_unified_excerpt(view).replace("```", "ʼʼʼ"))}
        body = _load("change.md", templates_dir).safe_substitute(values)
    return Message(title, trim(body, limit), fmt)


def event_title(views: Sequence[ChangeView], platform: str, update: bool) -> str:
    """`[LinkedIn] 3 pages changed: AI training added — high`, or `[LinkedIn] Update: …`."""
    top = max(views, key=lambda v: severity_rank(v.severity))
    summary = top.short
    severity = top.severity or "unclassified"
    if update:
        return f"[{platform}] Update: {top.title}: {summary} — {severity}"
    if len(views) == 1:
        return change_title(top)
    return f"[{platform}] {len(views)} pages changed: {summary} — {severity}"  # never 1 here


def render_event(views: Sequence[ChangeView], also: Sequence[ChangeView],
                 earlier: Sequence[ChangeView], platform: str, since: datetime, fmt: Format,
                 base_url: str, limit: int = 30_000, templates_dir: Path | None = None) -> Message:
    """One message for the pages of one event: each with its own headline, evidence and way
    out; for an update, the event's earlier pages are named so the reader can place it."""
    update = bool(earlier)
    ordered = sorted(views, key=lambda v: -severity_rank(v.severity))
    title = event_title(ordered, platform, update)
    pages = sorted({v.title for v in (*earlier, *views, *also)})
    what = (f"Pages of {platform} changed together: {', '.join(t for t in (v.title for v in ordered))}."
            if not update else
            f"An update to the {platform} event first seen {since:%Y-%m-%d %H:%M} UTC, whose earlier "
            f"message{'s' if len(earlier) > 1 else ''} covered: "
            f"{', '.join(sorted({v.title for v in earlier}))}. This message brings new text.")
    esc = html.escape if fmt == "html" else md_escape
    sections = []
    for v in ordered:
        link = _link(base_url, v.id)
        head = change_title(v)
        if fmt == "html":
            sections.append(f"<h3>{esc(head)}</h3><p>{esc(_what(v))}</p>{_evidence(v, fmt, link)}"
                            f"{_opt_out(v, fmt)}<p>View this change: <a href=\"{esc(link)}\">"
                            f"{esc(link)}</a><br>Page: {esc(v.url)}</p>")
        else:
            sections.append(f"**{md_escape(head)}**\n\n{md_escape(_what(v))}\n\n"
                            f"{_evidence(v, fmt, link)}\n{_opt_out(v, fmt)}\n"
                            f"[View this change]({link}) · {md_escape(v.url)}\n")
    for v in also:
        link = _link(base_url, v.id)
        line = f"Also changed, with text an earlier page already showed: {v.title}"
        sections.append(f"<p>{esc(line)} (<a href=\"{esc(link)}\">{esc(link)}</a>)</p>"
                        if fmt == "html" else f"{md_escape(line)} ({link})\n")
    name = "event.html" if fmt == "html" else "event.md"
    body = _load(name, templates_dir).safe_substitute({
        "headline": esc(title), "what": esc(what),
        "pages": esc(", ".join(pages)), "sections": "\n".join(sections)})
    return Message(title, trim(body, limit), fmt)


def render_answers(news: boardlib.AnswerNews, page: str, fmt: Format, base_url: str,
                   limit: int = 30_000, templates_dir: Path | None = None) -> Message:
    """An answers subscription's message: which of a platform's board answers moved, each
    with the sentence that says so, then the whole board as it now stands."""
    title = news.headline()
    link, board = _link(base_url, news.change_id), base_url.rstrip('/') + boardlib.path(news.platform)
    what = (f"{news.platform}'s answers on the AI data-use board changed with {page} "
            f"({news.at:%Y-%m-%d %H:%M} UTC).")
    moved = []
    for m in news.moves:
        line = f"{boardlib.QUESTION_WORDS[m.question]}: {' or '.join(m.old)} → {' or '.join(m.new)}"
        quotes = [a.quote for a in news.answers.get(m.question, ()) if a.quote]
        moved.append((line, quotes[:2]))
    now = [(boardlib.QUESTION_WORDS[q], boardlib.said(q, found)) for q, found in news.answers.items()
           if found and q in boardlib.STATES]
    if fmt == "html":
        esc = html.escape
        moves = "".join(f"<p><strong>{esc(line)}</strong></p>" + "".join(
            f'<blockquote style="color:#22863a">{esc(readable(q))}</blockquote>' for q in quotes)
            for line, quotes in moved)
        rows = "".join(f"<li>{esc(q)}: {esc(v)}</li>" for q, v in now) or "<li>nothing stated</li>"
        values = {"headline": esc(title), "what": esc(what), "moves": moves,
                  "board": f"<ul>{rows}</ul>", "link": esc(link), "platform": esc(news.platform),
                  "board_link": esc(board)}
        body = _load("answer.html", templates_dir).safe_substitute(values)
    else:
        moves = "\n".join(f"**{md_escape(line)}**\n\n" + "".join(
            f"> {md_escape(readable(q))}\n" for q in quotes) for line, quotes in moved)
        rows = "\n".join(f"- {md_escape(q)}: {md_escape(v)}" for q, v in now) or "- nothing stated"
        values = {"headline": md_escape(title), "what": md_escape(what), "moves": moves,
                  "board": rows, "link": link, "platform": md_escape(news.platform),
                  "board_link": board}
        body = _load("answer.md", templates_dir).safe_substitute(values)
    return Message(title, trim(body, limit), fmt, kind="answer_change")


def render_source_alert(kind: str, platform: str, source: str, failures: int, error: str | None,
                        fmt: Format, templates_dir: Path | None = None) -> Message:
    if kind == "failing":
        title = f"[{platform}] {source}: source failing"
        what = (f"{source} has failed {plural(failures, 'check')} in a row"
                + (f"; last error: {error}" if error else "") + ". Checks continue with back-off.")
    else:
        title = f"[{platform}] {source}: source recovered"
        what = f"{source} works again after {plural(failures, 'failed check')}."
    esc = html.escape if fmt == "html" else md_escape
    name = "alert.html" if fmt == "html" else "alert.md"
    body = _load(name, templates_dir).safe_substitute({"headline": esc(title), "what": esc(what)})
    return Message(title, body, fmt)


def render_digest(views: Sequence[ChangeView], period: str, fmt: Format, base_url: str,
                  limit: int = 30_000, templates_dir: Path | None = None) -> Message:
    """One message for many changes, grouped by platform, most severe first."""
    title = f"Policy changes, {period}: {plural(len(views), 'change')}"
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
                          f"{html.escape(v.said)}</li>" for v in items)
            sections.append(f"<h3>{html.escape(platform)}</h3><ul>{lis}</ul>")
        else:
            lis = "\n".join(f"- **{md_escape(v.severity or '-')}** [{md_escape(v.title)}]"
                            f"({link}{v.id}): {md_escape(v.said)}" for v in items)
            sections.append(f"**{md_escape(platform)}**\n\n{lis}\n")
    esc = html.escape if fmt == "html" else md_escape
    name = "digest.html" if fmt == "html" else "digest.md"
    body = _load(name, templates_dir).safe_substitute(
        {"headline": esc(title), "sections": "\n".join(sections)})
    return Message(title, trim(body, limit), fmt)
