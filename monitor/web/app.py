"""The web UI and JSON API: read-only, server-rendered, no inline script, strict CSP.

All page text is untrusted: Jinja2 autoescapes it, diffs are built from escaped fragments,
links found in pages are shown as text, and raw pages are only ever served as text/plain
attachments (changedetection.io GHSA-cgj8-g98g-4p9x).
"""

from __future__ import annotations

import base64
import hmac
import html
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as FastAPIPath
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from feedgen.feed import FeedGenerator
from markupsafe import Markup
from pydantic import BaseModel
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from monitor import config as cfg
from monitor import diff as difflib
from monitor import history
from monitor.classify import LABELS
from monitor.errors import NotFoundError
from monitor.store import Store
from monitor.web.svg import timeline_svg
from monitor.web.text import render as render_text
from monitor.wording import iso as _iso
from monitor.wording import plain_text

log = logging.getLogger("monitor.web")
HERE = Path(__file__).parent
PAGE = 50
# Database ids are signed 64-bit: a larger number must be a 422, not an overflow and a 500
# (found by schemathesis).
MAX_ID = 2**63 - 1  # ids and page numbers past a 64-bit integer are 422, not an OverflowError
Id = Annotated[int, FastAPIPath(ge=1, le=MAX_ID)]
# Characters XML 1.0 forbids: a watched page can contain them, an Atom feed must not.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    return _XML_INVALID.sub("\ufffd", text)
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


class SourceOut(BaseModel):
    name: str
    platform: str
    kind: str
    url: str
    enabled: bool
    last_check_at: str | None
    last_outcome: str | None
    last_change_at: str | None
    consecutive_failures: int
    versions: int
    last_failure_kind: str | None = None  # transient | permanent | blocked | anomalous
    last_error: str | None = None  # why the latest check failed (None when it worked)
    failing_since: str | None = None  # the first failed check of the current run of failures


class VersionOut(BaseModel):
    snapshot_id: int
    seen_at: str
    sha256: str
    size: int
    change_id: int | None
    words_added: int
    words_removed: int
    fetcher: str | None = None  # http | browser: what produced this version


class ChangeOut(BaseModel):
    id: int
    source: str
    platform: str
    detected_at: str
    from_snapshot_id: int
    to_snapshot_id: int
    words_added: int
    words_removed: int
    labels: list[str]
    severity: str | None
    summary: str | None
    event_id: int | None
    headline: str  # worded from the verdict when read
    verdict: list[str] | None  # what happened, most important first; null: not judged yet
    default: str | None  # on | off | n/a: whether the AI use applies unless the user acts
    regions_excluded: list[str] | None


class ChangeDetailOut(ChangeOut):
    evidence: list[dict[str, Any]]
    opt_out: list[dict[str, Any]]
    directions: dict[str, str]


class DiffOut(BaseModel):
    change_id: int
    unified: str
    hunks: list[dict[str, Any]]
    stats: dict[str, int]


class SearchHitOut(BaseModel):
    source: str
    platform: str
    present: bool  # the page's current version says it
    sentence: str
    first_seen_at: str  # when a matching sentence first appeared on the page
    first_snapshot_id: int
    removed_at: str | None  # when it went, if the page no longer says it
    last_snapshot_id: int | None  # the last version that had it
    sentences: int


class ErrorOut(BaseModel):
    detail: str


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "Not found"}}


class SecurityHeaders(BaseHTTPMiddleware):
    """CSP and friends on every response; authentication for every route when configured."""

    def __init__(self, app: Any, token: str | None) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if self.token and not self._authorised(request):
            response: Response = PlainTextResponse("authentication required", status_code=401,
                                                   headers={"WWW-Authenticate": 'Basic realm="policy-monitor"'})
        else:
            try:
                response = await call_next(request)
            except Exception:  # answered here, so even an unforeseen error carries the headers
                log.exception("%s %s failed", request.method, request.url.path)
                response = PlainTextResponse("internal error", status_code=500)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        assert self.token is not None
        if header.startswith("Bearer "):
            return hmac.compare_digest(header[7:].strip(), self.token)
        if header.startswith("Basic "):
            try:
                _, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return hmac.compare_digest(password, self.token)
        return False


def highlight(sentence: str | None, phrases: list[str] | None) -> Markup:
    """Escape first, then mark the matched phrases: page text can never become markup."""
    text = html.escape(plain_text(sentence or ""))
    for phrase in sorted(set(phrases or []), key=len, reverse=True):
        escaped = html.escape(phrase)
        if escaped:
            text = re.sub(re.escape(escaped), lambda m: f"<mark>{m.group(0)}</mark>", text, count=1)
    return Markup(text)  # noqa: S704 - built from escaped text above


def create_app(config: cfg.Config, store: Store | None = None) -> FastAPI:
    store = store or Store(config.settings.database, read_only=True)
    settings = config.settings
    # No Swagger UI: it needs inline and CDN scripts, which the CSP (and offline hosts) refuse.
    app = FastAPI(title="Policy Monitor API", version="1", docs_url=None, redoc_url=None,
                  description="Read-only access to watched sources, their versions and changes.")
    app.add_middleware(SecurityHeaders, token=settings.web_token)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.autoescape = True  # every extension, not only .html (GHSA-pwgc-w4x9-gw67)
    templates.env.globals["highlight"] = highlight
    templates.env.filters["plain"] = plain_text  # Markdown marks out of quoted page text

    def page(request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=code)

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc)}, status_code=404)
        return page(request, "error.html", 404, status="Not found", message=str(exc))

    # ---- pages ----------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard(request: Request, period: str = Query("1y", alias="range",
                                                        pattern="^(30d|1y|all)$")) -> HTMLResponse:
        days = 30
        now = datetime.now(UTC)
        since = {"30d": now - timedelta(days=30), "1y": now - timedelta(days=365)}.get(period)
        marks = history.timeline(store, since)
        start = since or (marks[0].detected_at if marks else now - timedelta(days=365))
        rows = history.dashboard(store, datetime.now(UTC) - timedelta(days=days))
        platforms: dict[str, list[history.DashboardRow]] = {}
        for r in rows:
            platforms.setdefault(r.platform, []).append(r)
        return page(request, "dashboard.html", rows=rows, platforms=platforms, days=days,
                    failing=[r for r in rows if r.failing or r.last_outcome == "failed"],
                    dead_targets=[t for t in store.target_health(failing_only=True) if t.alert_at],
                    recent=history.changes(store, limit=PAGE, with_sentences=False),
                    high=history.changes(store, limit=10, min_severity="high",
                                         with_sentences=False),
                    period=period, periods=(("30d", "30 days"), ("1y", "1 year"), ("all", "all")),
                    chart=Markup(timeline_svg(marks, start, now)))  # noqa: S704

    @app.get("/sources/{name:path}", response_class=HTMLResponse, include_in_schema=False)
    def source_page(request: Request, name: str,
                    page_no: int = Query(1, alias="page", ge=1, le=MAX_ID),
                    label: str | None = None) -> HTMLResponse:
        with store.read() as s:
            row = store.source_row(s, name)
            source = {"name": row.name, "platform": row.platform, "title": row.title,
                      "kind": row.kind, "url": row.url}
        versions = list(reversed(history.versions(store, name)))
        changes = {c.id: c for c in history.changes(store, source=name, with_sentences=False)}
        if label:
            versions = [v for v in versions if v.change_id in changes
                        and label in (changes[v.change_id].labels or [])]
        start = (page_no - 1) * PAGE
        return page(request, "source.html", source=source, versions=versions[start:start + PAGE],
                    more=len(versions) > start + PAGE, page=page_no, changes=changes,
                    label=label, labels=LABELS, checks=history.checks(store, name, limit=PAGE),
                    failure=history.failure(store, name))

    @app.get("/changes/{change_id}", response_class=HTMLResponse, include_in_schema=False)
    def change_page(request: Request, change_id: Id, view: str = "inline") -> HTMLResponse:
        d = history.change_detail(store, change_id)
        prev, nxt = history.neighbours(store, change_id)
        rendered = (difflib.side_by_side_html(d.diff) if view == "side"
                    else difflib.inline_html(d.diff))
        return page(request, "change.html", d=d, prev=prev, next=nxt, view=view,
                    diff_html=Markup(rendered))  # noqa: S704 - diff.py escapes page text

    @app.get("/versions/{snapshot_id}", response_class=HTMLResponse, include_in_schema=False)
    def version_page(request: Request, snapshot_id: Id) -> HTMLResponse:
        snap, text = history.snapshot(store, snapshot_id)
        with store.read() as s:
            from monitor.models import SourceRow

            row = s.get(SourceRow, snap.source_id)
            source = row.name if row else "?"
        return page(request, "version.html", snap=snap, text=text, source=source,
                    formatted=render_text(text))

    @app.get("/versions/{snapshot_id}/raw", include_in_schema=False)
    def raw_page(snapshot_id: Id) -> Response:
        snap, body = history.raw(store, snapshot_id)
        # Never rendered: text/plain, nosniff, and a download.
        return Response(body, media_type="text/plain; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="version-{snap.id}.txt"'})

    @app.get("/compare/{name:path}", response_class=HTMLResponse, include_in_schema=False)
    def compare_page(request: Request, name: str, from_id: int = Query(alias="from", ge=1, le=MAX_ID),
                     to_id: int = Query(alias="to", ge=1, le=MAX_ID)) -> HTMLResponse:
        a, b, d = history.diff_between(store, name, from_id, to_id)
        return page(request, "compare.html", source=name, a=a, b=b, stats=d.stats,
                    diff_html=Markup(difflib.inline_html(d)))  # noqa: S704

    @app.get("/search", response_class=HTMLResponse, include_in_schema=False)
    def search_page(request: Request, q: str = Query("", max_length=500)) -> HTMLResponse:
        return page(request, "search.html", q=q, hits=history.search(store, q) if q else [])

    @app.get("/events/{event_id}", response_class=HTMLResponse, include_in_schema=False)
    def event_page(request: Request, event_id: Id) -> HTMLResponse:
        return page(request, "event.html", ev=history.event(store, event_id))

    # ---- feeds ----------------------------------------------------------------------------

    def feed(request: Request, title: str, self_path: str, items: list[history.ChangeSummary]) -> Response:
        base = settings.base_url.rstrip("/")
        fg = FeedGenerator()
        fg.id(xml_text(base + self_path))
        fg.title(xml_text(title))
        fg.author({"name": "Policy Monitor"})
        fg.link(href=xml_text(base + self_path), rel="self")
        fg.link(href=base + "/", rel="alternate")
        fg.updated(items[0].detected_at if items else datetime(2020, 1, 1, tzinfo=UTC))
        for c in reversed(items):
            entry = fg.add_entry()
            entry.id(f"{base}/changes/{c.id}")
            entry.title(xml_text(f"[{c.platform}] {c.source}: {c.headline} — "
                                 f"{c.severity or '-'}"))
            entry.link(href=f"{base}/changes/{c.id}")
            entry.updated(c.detected_at)
            for label in c.labels or []:
                entry.category(term=xml_text(label))
            added = " ".join(c.added_sentences[:5])
            entry.summary(xml_text(f"{c.headline} Added: {added}".strip()), type="text")
        return Response(fg.atom_str(pretty=True), media_type="application/atom+xml")

    @app.get("/feeds/changes.atom", include_in_schema=False)
    def feed_all(request: Request) -> Response:
        return feed(request, "Policy Monitor: all changes", "/feeds/changes.atom",
                    history.changes(store, limit=PAGE))

    @app.get("/feeds/label/{label}.atom", include_in_schema=False)
    def feed_label(request: Request, label: str) -> Response:
        if label not in LABELS:
            raise HTTPException(404, "unknown label")
        return feed(request, f"Policy Monitor: {label} changes", f"/feeds/label/{label}.atom",
                    history.changes(store, labels=[label], limit=PAGE))

    @app.get("/feeds/platform/{platform}.atom", include_in_schema=False)
    def feed_platform(request: Request, platform: str) -> Response:
        items = [c for c in history.changes(store, limit=1000) if c.platform == platform][:PAGE]
        return feed(request, f"Policy Monitor: {platform}", f"/feeds/platform/{quote(platform)}.atom",
                    items)

    # ---- JSON API -------------------------------------------------------------------------

    @app.get("/api/sources", response_model=list[SourceOut], tags=["sources"])
    def api_sources() -> list[SourceOut]:
        return [SourceOut(**s.to_dict()) for s in history.sources(store)]

    @app.get("/api/sources/{name:path}/versions", response_model=list[VersionOut], tags=["sources"],
             responses=NOT_FOUND)
    def api_versions(name: str) -> list[VersionOut]:
        return [VersionOut(**{k: v for k, v in ver.to_dict().items() if k in VersionOut.model_fields})
                for ver in history.versions(store, name)]

    @app.get("/api/search", response_model=list[SearchHitOut], tags=["search"])
    def api_search(q: str = Query(..., min_length=1, max_length=500),
                   limit: int = Query(50, ge=1, le=500)) -> list[SearchHitOut]:
        """Pages that say (or said) every word of q: whether they say it now, when it first
        appeared, and when it was removed."""
        return [SearchHitOut(**h.to_dict()) for h in history.search(store, q, limit)]

    @app.get("/api/changes", response_model=list[ChangeOut], tags=["changes"], responses=NOT_FOUND)
    def api_changes(source: str | None = None, label: str | None = None,
                    min_severity: str | None = Query(None, pattern="^(none|low|medium|high)$"),
                    limit: int = Query(PAGE, ge=1, le=500)) -> list[ChangeOut]:
        rows = history.changes(store, source=source, labels=[label] if label else (),
                               min_severity=min_severity, limit=limit, with_sentences=False)
        return [_change_out(c) for c in rows]

    @app.get("/api/changes/{change_id}", response_model=ChangeDetailOut, tags=["changes"], responses=NOT_FOUND)
    def api_change(change_id: Id) -> ChangeDetailOut:
        d = history.change_detail(store, change_id)
        return ChangeDetailOut(
            id=d.id, source=d.source, platform=d.platform, detected_at=_iso(d.detected_at) or "",
            from_snapshot_id=d.from_snapshot_id, to_snapshot_id=d.to_snapshot_id,
            words_added=d.diff.stats.words_added, words_removed=d.diff.stats.words_removed,
            labels=d.labels, severity=d.severity, summary=d.summary, event_id=d.event_id,
            headline=d.headline, verdict=d.verdict, default=d.default,
            regions_excluded=d.regions_excluded,
            evidence=d.evidence, opt_out=d.opt_out, directions=d.directions)

    @app.get("/api/changes/{change_id}/diff", response_model=DiffOut, tags=["changes"], responses=NOT_FOUND)
    def api_diff(change_id: Id) -> DiffOut:
        d = history.change_detail(store, change_id)
        data = d.diff.to_dict()
        return DiffOut(change_id=d.id, unified=difflib.unified(d.diff), hunks=data["hunks"],
                       stats=data["stats"])

    return app


def _change_out(c: history.ChangeSummary) -> ChangeOut:
    return ChangeOut(id=c.id, source=c.source, platform=c.platform,
                     detected_at=_iso(c.detected_at) or "", from_snapshot_id=c.from_snapshot_id,
                     to_snapshot_id=c.to_snapshot_id, words_added=c.words_added,
                     words_removed=c.words_removed, labels=c.labels or [], severity=c.severity,
                     summary=c.summary, event_id=c.event_id, headline=c.headline,
                     verdict=c.verdict, default=c.default, regions_excluded=c.regions_excluded)
