"""What a scrape of `/metrics` reports, read from the database at scrape time.

Several daemons share one database, so the database, not one process's counters, is where the
totals are: any `serve` process answers for all of them. A handful of aggregate queries, no
per-source series (100,000 sources must not become 100,000 series).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, case, func, select

from monitor.models import Change, Check, Delivery, SourceRow
from monitor.store import Store

# Check durations, in seconds: a 304 takes milliseconds, a browser page several seconds.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class Measures:
    checks: dict[tuple[str, str], int]  # (outcome, fetcher) → count
    duration_buckets: tuple[int, ...]  # cumulative counts per BUCKETS bound
    duration_count: int
    duration_sum: float  # seconds
    outbox: dict[str, int]  # delivery status → count
    sources_enabled: int
    sources_disabled: int
    sources_failing: int
    changes: int
    last_success_age: float | None  # seconds since the newest successful check of any source
    oldest_check_age: float | None  # seconds since the stalest enabled source was checked


def _age(now: datetime, at: datetime | None) -> float | None:
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (now - at).total_seconds())


def measure(store: Store, now: datetime | None = None) -> Measures:
    now = now or datetime.now(UTC)
    with store.read() as s:
        checks = {(outcome, fetcher or "http"): n for outcome, fetcher, n in s.execute(
            select(Check.outcome, Check.fetcher, func.count())
            .group_by(Check.outcome, Check.fetcher)).all()}
        row = s.execute(select(
            *(func.coalesce(func.sum(case((Check.duration_ms <= bound * 1000, 1), else_=0)), 0)
              for bound in BUCKETS),
            func.count(), func.coalesce(func.sum(Check.duration_ms), 0))).one()
        outbox = dict(s.execute(select(Delivery.status, func.count())
                                .group_by(Delivery.status)).all())
        listed = SourceRow.in_config.is_(True)
        enabled, disabled, failing, newest_ok, oldest = s.execute(select(
            func.coalesce(func.sum(case((SourceRow.enabled.is_(True), 1), else_=0)), 0),
            func.coalesce(func.sum(case((SourceRow.enabled.is_(False), 1), else_=0)), 0),
            func.coalesce(func.sum(case((and_(SourceRow.enabled.is_(True),
                                              SourceRow.failing.is_(True)), 1), else_=0)), 0),
            func.max(case((SourceRow.last_outcome != "failed", SourceRow.last_check_at))),
            func.min(case((SourceRow.enabled.is_(True), SourceRow.last_check_at))),
        ).where(listed)).one()
        changes = s.scalar(select(func.count()).select_from(Change)) or 0
    return Measures(
        checks=checks, duration_buckets=tuple(int(x) for x in row[:len(BUCKETS)]),
        duration_count=int(row[len(BUCKETS)]), duration_sum=float(row[-1]) / 1000,
        outbox={str(k): int(v) for k, v in outbox.items()}, sources_enabled=int(enabled),
        sources_disabled=int(disabled), sources_failing=int(failing), changes=int(changes),
        last_success_age=_age(now, newest_ok), oldest_check_age=_age(now, oldest))
