"""The watch list, read a page at a time: for the dashboard, /sources, the API and the CLI.

At a million sources nothing may load the whole list. The database sorts, counts and groups;
a page reads its own rows and counts versions, checks and failures for those rows only. Pages
are keyset pages: `after` is the id of the last row shown, so a page costs the same wherever
it is, and a source added meanwhile is neither shown twice nor skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, or_, select, tuple_
from sqlalchemy.orm import Session

from monitor.models import Change, Check, Snapshot, SourceRow
from monitor.store import Store
from monitor.wording import iso as _iso
from monitor.wording import severity_rank

SHOWN_PLATFORMS = 200  # the dashboard's platform table; more are reached through /sources
_BATCH = 1000  # rows per page when something does want every source (the CLI's `sources`)


@dataclass(frozen=True)
class Failure:
    """Why a source is failing now: the latest failed check's class and reason, and the start
    of the run of failures it belongs to."""

    kind: str | None
    reason: str | None
    since: datetime | None


NO_FAILURE = Failure(None, None, None)


@dataclass(frozen=True)
class SourceSummary:
    name: str
    platform: str
    kind: str
    url: str
    enabled: bool
    in_config: bool
    last_check_at: datetime | None
    last_outcome: str | None
    last_change_at: datetime | None
    consecutive_failures: int
    versions: int
    checks: int
    last_failure_kind: str | None = None
    last_error: str | None = None
    failing_since: datetime | None = None
    title: str | None = None
    failing: bool = False  # an alert about its failures is open
    id: int = 0  # the keyset cursor of the page that ends with it
    recent_severity: str | None = None  # the most severe change since the page's severity_since

    @property
    def broken(self) -> bool:
        """Shown as failing: its alert is open or its latest check failed."""
        return self.failing or self.last_outcome == "failed"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["id"], d["recent_severity"]
        for key in ("last_check_at", "last_change_at", "failing_since"):
            d[key] = _iso(d[key])
        return d


@dataclass(frozen=True)
class SourceFilter:
    """Which sources a list shows; the same filter gives the page and its total."""

    platform: str | None = None
    failing: bool = False  # only sources whose alert is open or whose latest check failed

    def clauses(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.platform is not None:
            out.append(SourceRow.platform == self.platform)
        if self.failing:
            out.append(_broken())
        return out


@dataclass(frozen=True)
class SourcePage:
    """One page of the list in (platform, name) order, the exact number of sources the
    filter matches, and the cursor of the next page (None on the last)."""

    rows: list[SourceSummary]
    total: int
    next: str | None


@dataclass(frozen=True)
class PlatformCount:
    platform: str
    pages: int
    failing: int


@dataclass(frozen=True)
class Totals:
    """The dashboard's summary, counted by the database: sources, platforms, failing ones, and
    the first SHOWN_PLATFORMS platforms by name with their counts."""

    sources: int
    platforms: int
    failing: int
    by_platform: list[PlatformCount]


def _broken() -> ColumnElement[bool]:
    """Shown as failing (SourceSummary.broken, in SQL): alert open or latest check failed."""
    return or_(SourceRow.failing.is_(True), SourceRow.last_outcome == "failed")


def version_counts(s: Session, ids: Sequence[int] | None = None) -> dict[int, int]:
    """Versions per source id, in each source's current extraction generation (only those of
    `ids` when given)."""
    q = (select(Snapshot.source_id, func.count()).join(
        SourceRow, (SourceRow.id == Snapshot.source_id)
        & (SourceRow.generation == Snapshot.generation)))
    if ids is not None:
        q = q.where(Snapshot.source_id.in_(ids))
    return dict(s.execute(q.group_by(Snapshot.source_id)).all())


def failures_of(s: Session, ids: Sequence[int] | None = None) -> dict[int, Failure]:
    """Per source whose latest check failed (among `ids` when given). Two grouped queries,
    whatever the number of sources."""
    ok = select(Check.source_id, func.max(Check.id).label("ok_id")).where(Check.outcome != "failed")
    failed = [Check.outcome == "failed"]
    if ids is not None:
        ok = ok.where(Check.source_id.in_(ids))
        failed.append(Check.source_id.in_(ids))
    last_ok = ok.group_by(Check.source_id).subquery()
    run = (select(Check.source_id, func.min(Check.started_at), func.max(Check.id))
           .outerjoin(last_ok, last_ok.c.source_id == Check.source_id)
           .where(*failed, or_(last_ok.c.ok_id.is_(None), Check.id > last_ok.c.ok_id))
           .group_by(Check.source_id))
    spans = {source_id: (since, last_id) for source_id, since, last_id in s.execute(run)}
    latest = {r.id: r for r in s.execute(select(Check.id, Check.failure_kind, Check.error)
                                         .where(Check.id.in_([v[1] for v in spans.values()])))}
    return {source_id: Failure(latest[last_id].failure_kind, latest[last_id].error, since)
            for source_id, (since, last_id) in spans.items() if last_id in latest}


def failure(store: Store, name: str) -> Failure | None:
    """Why this source is failing now, or None when its latest check worked."""
    with store.read() as s:
        row = store.source_row(s, name)
        return failures_of(s, [row.id]).get(row.id)


def _severities(s: Session, ids: Sequence[int], since: datetime) -> dict[int, str]:
    """The most severe change of each of `ids` since `since`."""
    out: dict[int, str] = {}
    for source_id, severity in s.execute(
            select(Change.source_id, Change.severity)
            .where(Change.source_id.in_(ids), Change.detected_at >= since)):
        if severity is not None and severity_rank(severity) > severity_rank(out.get(source_id)):
            out[source_id] = severity
    return out


def page(store: Store, *, after: str | None = None, limit: int = 100,
         where: SourceFilter = SourceFilter(), severity_since: datetime | None = None
         ) -> SourcePage:
    """One keyset page of sources (with `severity_since`, each row's most severe change since
    then). A cursor whose source is gone gives an empty last page."""
    clauses = where.clauses()
    with store.read() as s:
        total = s.scalar(select(func.count()).select_from(SourceRow).where(*clauses)) or 0
        q = select(SourceRow).where(*clauses)
        if after is not None:
            anchor = s.execute(select(SourceRow.platform, SourceRow.name)
                               .where(SourceRow.id == int(after))).first()
            if anchor is None:
                return SourcePage([], total, None)
            q = q.where(tuple_(SourceRow.platform, SourceRow.name)
                        > tuple_(literal(anchor.platform), literal(anchor.name)))
        rows = s.scalars(q.order_by(SourceRow.platform, SourceRow.name).limit(limit + 1)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        ids = [r.id for r in rows]
        versions = version_counts(s, ids)
        checks = dict(s.execute(select(Check.source_id, func.count())
                                .where(Check.source_id.in_(ids)).group_by(Check.source_id)).all())
        failures = failures_of(s, ids)
        recent = _severities(s, ids, severity_since) if severity_since is not None else {}
        out = [SourceSummary(
            name=r.name, platform=r.platform, kind=r.kind, url=r.url, enabled=r.enabled,
            in_config=r.in_config, last_check_at=r.last_check_at, last_outcome=r.last_outcome,
            last_change_at=r.last_change_at, consecutive_failures=r.consecutive_failures,
            versions=versions.get(r.id, 0), checks=checks.get(r.id, 0),
            last_failure_kind=failures.get(r.id, NO_FAILURE).kind,
            last_error=failures.get(r.id, NO_FAILURE).reason,
            failing_since=failures.get(r.id, NO_FAILURE).since,
            title=r.title, failing=r.failing, id=r.id, recent_severity=recent.get(r.id))
            for r in rows]
    return SourcePage(out, total, str(rows[-1].id) if more else None)


def every(store: Store, where: SourceFilter = SourceFilter()) -> Iterator[SourceSummary]:
    """Every source, read page by page (memory stays one page whatever the list's length)."""
    after: str | None = None
    while True:
        found = page(store, after=after, limit=_BATCH, where=where)
        yield from found.rows
        if found.next is None:
            return
        after = found.next


def sources(store: Store) -> list[SourceSummary]:
    """Every source, for callers that want a list (the CLI's `sources`, export)."""
    return list(every(store))


def totals(store: Store, shown: int = SHOWN_PLATFORMS) -> Totals:
    """The dashboard's counts, grouped by the database."""
    broken = case((_broken(), 1), else_=0)
    with store.read() as s:
        by_platform = [PlatformCount(p, pages, bad) for p, pages, bad in s.execute(
            select(SourceRow.platform, func.count(), func.coalesce(func.sum(broken), 0))
            .group_by(SourceRow.platform).order_by(SourceRow.platform).limit(shown + 1))]
        if len(by_platform) <= shown:  # every platform is here: their sums are the totals
            return Totals(sum(p.pages for p in by_platform), len(by_platform),
                          sum(p.failing for p in by_platform), by_platform)
        n, failing, platforms = s.execute(select(
            func.count(), func.coalesce(func.sum(broken), 0),
            func.count(func.distinct(SourceRow.platform))).select_from(SourceRow)).one()
    return Totals(int(n), int(platforms), int(failing), by_platform[:shown])
