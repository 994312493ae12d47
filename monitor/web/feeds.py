"""Atom feeds of changes: all, per label, per platform. Page text is made XML-safe first."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from feedgen.feed import FeedGenerator

from monitor import board, history
from monitor.errors import NotFoundError
from monitor.labels import LABELS
from monitor.text import readable
from monitor.web.deps import PAGE, StoreDep

router = APIRouter(include_in_schema=False)
# With the charset said: a browser shows a feed served without it as Latin-1 ("â€”" for "—").
ATOM = "application/atom+xml; charset=utf-8"
# Characters XML 1.0 forbids: a watched page can contain them, an Atom feed must not.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    return _XML_INVALID.sub("\ufffd", text)


def evidence_summary(c: history.ChangeSummary, quotes: int = 3) -> str:
    """What a feed reader shows of a change: its headline, the sentences that earned its labels
    and the ways out, as plain text; a change with no evidence says its size, never raw
    Markdown diff lines ("[Effective …](…)", "| |")."""
    lines = [c.headline]
    said: set[str] = set()
    for e in c.evidence:
        sentence = readable(str(e.get("new") or e.get("old") or "")).strip()
        if sentence and sentence not in said and len(said) < quotes:
            said.add(sentence)  # one sentence may carry several labels: quoted once
            verb = {"removed": "Removed", "added": "Added"}.get(str(e.get("direction")), "Now")
            lines.append(f"{verb}: “{sentence}”")
    for way in (c.opt_out or [])[:3]:
        url = way.get("url")
        lines.append(f"Way out: {readable(str(way.get('text', ''))).strip()}"
                     + (f" ({url})" if url else ""))
    if len(lines) == 1:
        lines.append(f"+{c.words_added} −{c.words_removed} words; "
                     f"{c.sentences_added} sentences added, {c.sentences_removed} removed.")
    return "\n".join(lines)


def _generator(request: Request, title: str, self_path: str, alternate: str,
               updated: datetime | None) -> tuple[FeedGenerator, str]:
    """A feed's head (and the base URL its entries link to): one for every feed we serve."""
    base = request.app.state.settings.base_url.rstrip("/")
    fg = FeedGenerator()
    fg.id(xml_text(base + self_path))
    fg.title(xml_text(title))
    fg.author({"name": "Policy Monitor"})
    fg.link(href=xml_text(base + self_path), rel="self")
    fg.link(href=base + alternate, rel="alternate")
    fg.updated(updated or datetime(2020, 1, 1, tzinfo=UTC))
    return fg, base


def feed(request: Request, title: str, self_path: str, items: list[history.ChangeSummary]) -> Response:
    fg, base = _generator(request, title, self_path, "/",
                          items[0].detected_at if items else None)
    for c in reversed(items):
        entry = fg.add_entry()
        entry.id(f"{base}/changes/{c.id}")
        entry.title(xml_text(f"[{c.platform}] {c.source}: {c.headline} — "
                             f"{c.severity or '-'}"))
        entry.link(href=f"{base}/changes/{c.id}")
        entry.updated(c.detected_at)
        for label in c.labels or []:
            entry.category(term=xml_text(label))
        entry.summary(xml_text(evidence_summary(c)), type="text")
    return Response(fg.atom_str(pretty=True), media_type=ATOM)


def board_feed(request: Request, title: str, self_path: str,
               items: list[board.AnswerNews]) -> Response:
    """One entry per change that moved a platform's board answers, with the sentences that
    say so: what an answers subscription is told, for a feed reader."""
    fg, base = _generator(request, title, self_path, "/board", items[0].at if items else None)
    for news in reversed(items):
        entry = fg.add_entry()
        entry.id(f"{base}/changes/{news.change_id}#answers")
        entry.title(xml_text(news.headline()))
        entry.link(href=f"{base}/changes/{news.change_id}")
        entry.updated(news.at)
        lines = [f"{news.platform}, {news.source}:"]
        for m in news.moves:
            lines.append(f"{board.QUESTION_WORDS[m.question]}: {' or '.join(m.old)} → "
                         f"{' or '.join(m.new)}.")
            lines += [f"“{readable(a.quote)}” ({a.source})"
                      for a in news.answers.get(m.question, ()) if a.quote][:2]
        entry.summary(xml_text("\n".join(lines)), type="text")
    return Response(fg.atom_str(pretty=True), media_type=ATOM)


@router.api_route("/feeds/board.atom", methods=["GET", "HEAD"], include_in_schema=False)
def feed_board(store: StoreDep, request: Request) -> Response:
    return board_feed(request, "Policy Monitor: AI data-use board", "/feeds/board.atom",
                      history.board_news(store, limit=PAGE))


@router.api_route("/feeds/board/{platform}.atom", methods=["GET", "HEAD"], include_in_schema=False)
def feed_board_platform(store: StoreDep, request: Request, platform: str) -> Response:
    try:
        items = history.board_news(store, platform, limit=PAGE)
    except NotFoundError:
        raise HTTPException(404, "no such platform") from None
    return board_feed(request, f"Policy Monitor: {platform} AI data-use board",
                      f"/feeds/board/{quote(platform)}.atom", items)


@router.api_route("/feeds/changes.atom", methods=["GET", "HEAD"], include_in_schema=False)
def feed_all(store: StoreDep, request: Request) -> Response:
    return feed(request, "Policy Monitor: all changes", "/feeds/changes.atom",
                history.changes(store, limit=PAGE, include_reextracted=False))


@router.api_route("/feeds/label/{label}.atom", methods=["GET", "HEAD"], include_in_schema=False)
def feed_label(store: StoreDep, request: Request, label: str) -> Response:
    if label not in LABELS:
        raise HTTPException(404, "unknown label")
    return feed(request, f"Policy Monitor: {label} changes", f"/feeds/label/{label}.atom",
                history.changes(store, labels=[label], limit=PAGE, include_reextracted=False))


@router.api_route("/feeds/platform/{platform}.atom", methods=["GET", "HEAD"], include_in_schema=False)
def feed_platform(store: StoreDep, request: Request, platform: str) -> Response:
    items = [c for c in history.changes(store, limit=1000, include_reextracted=False)
             if c.platform == platform][:PAGE]
    return feed(request, f"Policy Monitor: {platform}", f"/feeds/platform/{quote(platform)}.atom",
                items)
