"""A database with a large watch list, written fast through the real store: the sources by
`sync_sources` (as `init` writes them), a week of hourly checks for the first sources, a
failing run for every 97th source (some of them sharing one cause) and a change on a few
pages. Shared by the web scale test and `bench/web_latency.py --sources-only`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update

from monitor import config as cfg
from monitor.models import Check, SourceRow
from monitor.store import Store

PLATFORMS = 400


def source(i: int) -> cfg.Source:
    return cfg.Source(name=f"site{i % PLATFORMS}/page{i}", platform=f"Site {i % PLATFORMS}",
                      title=f"Privacy policy {i}", url=f"http://127.0.0.1:9/s{i % PLATFORMS}/p{i}")


def fill(store: Store, n: int, *, now: datetime | None = None, checked: int = 2000) -> None:
    now = now or datetime.now(UTC)
    store.sync_sources([source(i) for i in range(n)], 3600)
    with store.write_conn() as conn:
        ids = [r[0] for r in conn.execute(SourceRow.__table__.select()
                                          .with_only_columns(SourceRow.id).order_by(SourceRow.id))]
        rows = []
        for k, sid in enumerate(ids[:checked]):
            for h in range(168):
                rows.append({"source_id": sid, "started_at": now - timedelta(hours=168 - h),
                             "duration_ms": 40, "outcome": "unchanged", "failure_kind": None,
                             "http_status": 200, "bytes": 9000, "error": None,
                             "snapshot_id": None, "fetcher": "http"})
            if k % 97 == 0:
                rows.append({"source_id": sid, "started_at": now, "duration_ms": 10000,
                             "outcome": "failed", "failure_kind": "transient", "http_status": None,
                             "bytes": None, "error": f"timed out after 10s ({k})",
                             "snapshot_id": None, "fetcher": "http"})
        conn.execute(insert(Check), rows)
        failing = ids[::97]
        conn.execute(update(SourceRow).where(SourceRow.id.in_(failing))
                     .values(failing=True, last_outcome="failed", consecutive_failures=3))
        conn.execute(update(SourceRow).where(SourceRow.id.not_in(failing))
                     .values(last_outcome="unchanged", last_check_at=now))
