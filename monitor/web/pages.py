"""The HTML pages: dashboard, source, change, version, comparison, search and event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from monitor import history, sourcelist
from monitor.labels import LABELS
from monitor.store.trouble import noted
from monitor.summary import fold
from monitor.web import difftext
from monitor.web.deps import ID_CURSOR, MAX_ID, PAGE, Id, StoreDep, next_page, relative, render
from monitor.web.svg import timeline_svg
from monitor.web.text import render as render_text

router = APIRouter(include_in_schema=False)
FOLD_PLATFORMS_AT = 30  # more sources than this: each platform's table opens on demand
DASHBOARD_SOURCES = 300  # more than this: the dashboard lists platforms, /sources the pages
FAILING_SHOWN = 200  # failing sources listed on the dashboard; the rest in /sources?failing=1
SOURCES_PAGE = 200


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard(store: StoreDep, request: Request, period: str = Query("1y", alias="range",
                                                    pattern="^(30d|1y|all)$")) -> HTMLResponse:
    """The same size at ten sources or a million: the database counts, and the page lists
    each source only while they are few (DASHBOARD_SOURCES), the failing ones up to
    FAILING_SHOWN, and otherwise each platform with a link to its pages in /sources."""
    days = 30
    now = datetime.now(UTC)
    since = {"30d": now - timedelta(days=30), "1y": now - timedelta(days=365)}.get(period)
    marks = history.timeline(store, since)
    start = since or (marks[0].detected_at if marks else now - timedelta(days=365))
    totals = sourcelist.totals(store)
    rows: list[sourcelist.SourceSummary] = []
    if totals.sources <= DASHBOARD_SOURCES:
        rows = sourcelist.page(store, limit=DASHBOARD_SOURCES,
                               severity_since=now - timedelta(days=days)).rows
    platforms: dict[str, list[sourcelist.SourceSummary]] = {}
    for r in rows:
        platforms.setdefault(r.platform, []).append(r)
    failing = sourcelist.page(store, limit=FAILING_SHOWN,
                              where=sourcelist.SourceFilter(failing=True)).rows
    # 97 sources offline are one row with the cause, the sources on demand, not a wall
    folds, alone = fold(failing, lambda r: r.last_failure_kind or "unknown",
                        lambda r: r.last_error or "")
    return render(request, "dashboard.html", totals=totals, platforms=platforms, days=days,
                failing=failing, folds=folds, alone=alone,
                folded_platforms=len(rows) > FOLD_PLATFORMS_AT,
                dead_targets=[t for t in store.target_health(failing_only=True) if t.alert_at],
                db_trouble=noted(request.app.state.settings.data_dir),
                recent=history.changes(store, limit=PAGE, with_sentences=False),
                high=history.changes(store, limit=10, min_severity="high",
                                     with_sentences=False),
                period=period, periods=(("30d", "30 days"), ("1y", "1 year"), ("all", "all")),
                chart=Markup(timeline_svg(marks, start, now)))  # noqa: S704


@router.get("/sources", response_class=HTMLResponse, include_in_schema=False)
def sources_page(store: StoreDep, request: Request,
                 platform: str | None = Query(None, max_length=200),
                 failing: bool = False,
                 after: str | None = Query(None, pattern=ID_CURSOR)) -> HTMLResponse:
    """Every source, SOURCES_PAGE at a time, by platform and name."""
    found = sourcelist.page(store, after=after, limit=SOURCES_PAGE,
                            where=sourcelist.SourceFilter(platform or None, failing),
                            severity_since=datetime.now(UTC) - timedelta(days=30))
    first = relative(request.url.remove_query_params("after")) if after else None
    return render(request, "sources.html", found=found, platform=platform or "",
                  failing=failing, next_url=next_page(request, found.next), first_url=first)


@router.get("/sources/{name:path}", response_class=HTMLResponse, include_in_schema=False)
def source_page(store: StoreDep, request: Request, name: str,
                page_no: int = Query(1, alias="page", ge=1, le=MAX_ID),
                label: str | None = None) -> HTMLResponse:
    with store.read() as s:
        row = store.source_row(s, name)
        source = {"name": row.name, "platform": row.platform, "title": row.title,
                  "kind": row.kind, "url": row.url}
    versions = everything = list(reversed(history.versions(store, name)))
    changes = {c.id: c for c in history.changes(store, source=name, with_sentences=False)}
    if label:
        versions = [v for v in versions if v.change_id in changes
                    and label in (changes[v.change_id].labels or [])]
    start = (page_no - 1) * PAGE
    return render(request, "source.html", source=source, versions=versions[start:start + PAGE],
                more=len(versions) > start + PAGE, page=page_no, changes=changes,
                label=label, labels=LABELS, checks=history.checks(store, name, limit=PAGE),
                pickable=everything,
                failure=sourcelist.failure(store, name))


@router.get("/changes/{change_id}", response_class=HTMLResponse, include_in_schema=False)
def change_page(store: StoreDep, request: Request, change_id: Id, view: str = "inline") -> HTMLResponse:
    d = history.change_detail(store, change_id)
    prev, nxt = history.neighbours(store, change_id)
    rendered = difftext.side_by_side(d.diff) if view == "side" else difftext.inline(d.diff)
    return render(request, "change.html", d=d, prev=prev, next=nxt, view=view,
                diff_html=rendered)


@router.get("/versions/{snapshot_id}", response_class=HTMLResponse, include_in_schema=False)
def version_page(store: StoreDep, request: Request, snapshot_id: Id) -> HTMLResponse:
    snap, text = history.snapshot(store, snapshot_id)
    with store.read() as s:
        from monitor.models import SourceRow

        row = s.get(SourceRow, snap.source_id)
        source = row.name if row else "?"
    return render(request, "version.html", snap=snap, text=text, source=source,
                formatted=render_text(text))


@router.get("/versions/{snapshot_id}/raw", include_in_schema=False)
def raw_page(store: StoreDep, snapshot_id: Id) -> Response:
    snap, body = history.raw(store, snapshot_id)
    # Never rendered: text/plain, nosniff, and a download.
    return Response(body, media_type="text/plain; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="version-{snap.id}.txt"'})


@router.get("/compare/{name:path}", response_class=HTMLResponse, include_in_schema=False)
def compare_page(store: StoreDep, request: Request, name: str,
                 from_id: int = Query(alias="from", ge=1, le=MAX_ID),
                 to_id: int = Query(alias="to", ge=1, le=MAX_ID)) -> HTMLResponse:
    a, b, d = history.diff_between(store, name, from_id, to_id)
    return render(request, "compare.html", source=name, a=a, b=b, stats=d.stats,
                pickable=list(reversed(history.versions(store, name))),
                diff_html=difftext.inline(d))


@router.get("/search", response_class=HTMLResponse, include_in_schema=False)
def search_page(store: StoreDep, request: Request, q: str = Query("", max_length=500),
                after: str | None = Query(None, max_length=200)) -> HTMLResponse:
    try:
        found = history.search(store, q, after=after) if q else None
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return render(request, "search.html", q=q, found=found,
                  more=next_page(request, found.next if found is not None else None))


@router.get("/events/{event_id}", response_class=HTMLResponse, include_in_schema=False)
def event_page(store: StoreDep, request: Request, event_id: Id) -> HTMLResponse:
    return render(request, "event.html", ev=history.event(store, event_id))
