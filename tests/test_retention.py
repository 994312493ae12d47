"""Bounded check history: after the retention period, unchanged checks are thinned to one per
source per day; failures, state changes, versions, changes and alerts are all kept."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from pytest_httpserver import HTTPServer

from tests.conftest import served

POLICY = "<html><body><main><h1>Privacy</h1><p>We use your data to run the service.</p>{}" \
         "</main></body></html>"


def _counts(db: sqlite3.Connection) -> dict[str, int]:
    return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - fixed names
            for t in ("snapshots", "changes", "deliveries", "sentences", "board_answers")}


def test_old_unchanged_checks_are_thinned_and_nothing_else_is(server: HTTPServer,
                                                              project) -> None:
    body = served(server, "/privacy", POLICY.format(""))
    project.write(f"""
        [[source]]
        name = "acme/privacy"
        platform = "Acme"
        url = "{server.url_for('/privacy')}"

        [[subscription]]
        name = "team"
        url = "json://127.0.0.1:9/hook"
    """, settings='check_retention = "30d"')
    project.cli("init")
    assert project.check()["acme/privacy"]["outcome"] == "baseline"
    body["html"] = POLICY.format("<p>We may use your content to train AI models. You can opt "
                                 "out in Settings.</p>")
    assert project.check()["acme/privacy"]["outcome"] == "changed"

    # 40 days of hourly history before those checks: unchanged, with a 3-hour outage on day 5
    # (each failure kept, and the first unchanged check after it: a state change).
    db = sqlite3.connect(project.data / "monitor.db")
    source_id, snapshot = db.execute("SELECT id, current_snapshot_id FROM sources").fetchone()
    start = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(days=40)
    rows = []
    for hour in range(40 * 24):
        at = start + timedelta(hours=hour)
        failed = 5 * 24 + 10 <= hour < 5 * 24 + 13
        rows.append((source_id, at.replace(tzinfo=None).isoformat(sep=" "), 12,
                     "failed" if failed else "unchanged", "transient" if failed else None,
                     None if failed else 200, None if failed else snapshot))
    db.executemany("INSERT INTO checks (source_id, started_at, duration_ms, outcome, "
                   "failure_kind, http_status, snapshot_id) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    before = _counts(db)
    assert before["changes"] == 1 and before["deliveries"] >= 1

    out = project.cli("db", "compact").output
    cutoff = datetime.now(UTC) - timedelta(days=30)
    old = [(day, outcome) for day, outcome in db.execute(
        "SELECT date(started_at), outcome FROM checks WHERE started_at < ? ORDER BY id",
        (cutoff.replace(tzinfo=None).isoformat(sep=" "),))]
    unchanged_per_day: dict[str, int] = {}
    for day, outcome in old:
        if outcome == "unchanged":
            unchanged_per_day[day] = unchanged_per_day.get(day, 0) + 1
    # One per day, and on the outage's day one more: the recovery after the failures.
    outage_day = (start + timedelta(hours=5 * 24 + 10)).date().isoformat()
    assert unchanged_per_day == {day: 2 if day == outage_day else 1 for day in unchanged_per_day}
    assert len(unchanged_per_day) >= 10
    assert sum(1 for _, outcome in old if outcome == "failed") == 3
    # The last 30 days are untouched: 24 a day, and the two real checks.
    recent = db.execute("SELECT count(*) FROM checks WHERE started_at >= ?",
                        (cutoff.replace(tzinfo=None).isoformat(sep=" "),)).fetchone()[0]
    assert recent >= 30 * 24 - 2
    assert _counts(db) == before  # versions, changes, alerts, the search index: all there
    total = db.execute("SELECT count(*) FROM checks").fetchone()[0]
    assert out.startswith(f"{40 * 24 + 2 - total:,} old unchanged checks thinned")
    # Idempotent: a second pass finds nothing more to drop.
    assert project.cli("db", "compact").output.startswith("0 old unchanged checks")
    status = project.cli("status").output
    assert "database:" in status and "MB" in status and "thinned to one per source per day" \
        in status
    db.close()
