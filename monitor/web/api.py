"""The read-only JSON API, described by the app's OpenAPI document."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from monitor import diff as difflib
from monitor import history, sourcelist
from monitor.web.deps import ID_CURSOR, PAGE, Id, StoreDep
from monitor.wording import iso as _iso


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


router = APIRouter()
LIST_PAGE = 500  # a list's default page: about 200 KB of sources
MAX_LIST_PAGE = 1000


def paged(request: Request, response: Response, total: int, cursor: str | None) -> None:
    """Every list says its exact total (`X-Total-Count`) and links its next page
    (`Link: <…>; rel="next"`, absent on the last page)."""
    response.headers["X-Total-Count"] = str(total)
    if cursor is not None:
        url = request.url.include_query_params(after=cursor)
        response.headers["Link"] = f'<{url}>; rel="next"'


@router.get("/api/sources", response_model=list[SourceOut], tags=["sources"])
def api_sources(store: StoreDep, request: Request, response: Response,
                platform: str | None = Query(None, max_length=200),
                failing: bool = False,
                limit: int = Query(LIST_PAGE, ge=1, le=MAX_LIST_PAGE),
                after: str | None = Query(None, pattern=ID_CURSOR)
                ) -> list[SourceOut]:
    """Sources by platform and name, a page at a time (`after` is the `Link` header's).
    `failing=true`: only those whose latest check failed or whose failure alert is open."""
    found = sourcelist.page(store, after=after, limit=limit,
                            where=sourcelist.SourceFilter(platform, failing))
    paged(request, response, found.total, found.next)
    return [SourceOut(**s.to_dict()) for s in found.rows]


@router.get("/api/sources/{name:path}/versions", response_model=list[VersionOut], tags=["sources"],
         responses=NOT_FOUND)
def api_versions(store: StoreDep, request: Request, response: Response, name: str,
                 limit: int = Query(LIST_PAGE, ge=1, le=MAX_LIST_PAGE),
                 after: str | None = Query(None, pattern=ID_CURSOR)
                 ) -> list[VersionOut]:
    """The source's versions, oldest first, a page at a time (`after`: a snapshot id)."""
    every = history.versions(store, name)
    start = 0
    if after is not None:
        start = next((i + 1 for i, v in enumerate(every) if v.snapshot_id == int(after)),
                     len(every))
    chosen = every[start:start + limit]
    more = start + limit < len(every)
    paged(request, response, len(every), str(chosen[-1].snapshot_id) if more else None)
    return [VersionOut(**{k: v for k, v in ver.to_dict().items() if k in VersionOut.model_fields})
            for ver in chosen]


@router.get("/api/search", response_model=list[SearchHitOut], tags=["search"])
def api_search(store: StoreDep, request: Request, response: Response,
               q: str = Query(..., min_length=1, max_length=500),
               limit: int = Query(50, ge=1, le=500),
               after: str | None = Query(None, max_length=40, pattern=history.SEARCH_CURSOR)
               ) -> list[SearchHitOut]:
    """Pages that say (or said) every word of q: whether they say it now, when it first
    appeared, and when it was removed. `X-Total-Count` is the exact number of matching
    pages (`X-Count-Now` of them say it now); `Link: <…>; rel="next"` is the next page."""
    found = history.search(store, q, limit, after)  # (the pattern admits only cursors)
    paged(request, response, found.total, found.next)
    response.headers["X-Count-Now"] = str(found.now)
    return [SearchHitOut(**h.to_dict()) for h in found.hits]


@router.get("/api/changes", response_model=list[ChangeOut], tags=["changes"], responses=NOT_FOUND)
def api_changes(store: StoreDep, request: Request, response: Response,
                source: str | None = None, label: str | None = None,
                min_severity: str | None = Query(None, pattern="^(none|low|medium|high)$"),
                limit: int = Query(PAGE, ge=1, le=500),
                after: str | None = Query(None, pattern=ID_CURSOR)
                ) -> list[ChangeOut]:
    """Changes newest first, a page at a time (`after`: the `Link` header's change id)."""
    labels = [label] if label else []
    rows = history.changes(store, source=source, labels=labels, min_severity=min_severity,
                           limit=limit + 1, with_sentences=False,
                           after=int(after) if after is not None else None)
    total = history.count_changes(store, source=source, labels=labels, min_severity=min_severity)
    paged(request, response, total, str(rows[limit - 1].id) if len(rows) > limit else None)
    return [_change_out(c) for c in rows[:limit]]


@router.get("/api/changes/{change_id}", response_model=ChangeDetailOut, tags=["changes"], responses=NOT_FOUND)
def api_change(store: StoreDep, change_id: Id) -> ChangeDetailOut:
    d = history.change_detail(store, change_id)
    return ChangeDetailOut(
        id=d.id, source=d.source, platform=d.platform, detected_at=_iso(d.detected_at) or "",
        from_snapshot_id=d.from_snapshot_id, to_snapshot_id=d.to_snapshot_id,
        words_added=d.diff.stats.words_added, words_removed=d.diff.stats.words_removed,
        labels=d.labels, severity=d.severity, summary=d.summary, event_id=d.event_id,
        headline=d.headline, verdict=d.verdict, default=d.default,
        regions_excluded=d.regions_excluded,
        evidence=d.evidence, opt_out=d.opt_out, directions=d.directions)


@router.get("/api/changes/{change_id}/diff", response_model=DiffOut, tags=["changes"], responses=NOT_FOUND)
def api_diff(store: StoreDep, change_id: Id) -> DiffOut:
    d = history.change_detail(store, change_id)
    data = d.diff.to_dict()
    return DiffOut(change_id=d.id, unified=difflib.unified(d.diff), hunks=data["hunks"],
                   stats=data["stats"])


def _change_out(c: history.ChangeSummary) -> ChangeOut:
    return ChangeOut(id=c.id, source=c.source, platform=c.platform,
                     detected_at=_iso(c.detected_at) or "", from_snapshot_id=c.from_snapshot_id,
                     to_snapshot_id=c.to_snapshot_id, words_added=c.words_added,
                     words_removed=c.words_removed, labels=c.labels or [], severity=c.severity,
                     summary=c.summary, event_id=c.event_id, headline=c.headline,
                     verdict=c.verdict, default=c.default, regions_excluded=c.regions_excluded)
