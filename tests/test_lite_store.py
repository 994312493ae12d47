"""A one-shot `check` of unchanged pages on SQLite runs without SQLAlchemy (monitor/store/lite.py)
and must write exactly what the store writes: same SQL, same rows, same errors."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.store import Completion, Store
from monitor.store.lite import LiteStore, sqlite_file

ROOT = Path(__file__).resolve().parents[1]


def test_the_compiled_statements_are_what_the_store_compiles_today() -> None:
    from monitor.store import precompile

    assert precompile.TARGET.read_text() == precompile.render(), (
        "the store's statements changed: run `python -m monitor.store.precompile`")


def test_only_plain_sqlite_files_take_the_light_path(tmp_path: Path) -> None:
    assert sqlite_file(f"sqlite:///{tmp_path}/m.db") == tmp_path / "m.db"
    assert sqlite_file("sqlite:///data/monitor.db") == Path("data/monitor.db")
    for url in ("postgresql://u@127.0.0.1/db", "sqlite://", "sqlite:///:memory:",
                "sqlite:///file:m.db?mode=ro&uri=true", "sqlite+pysqlite:///m.db",
                "sqlite:///a%20b.db"):
        assert sqlite_file(url) is None, url


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall()  # noqa: S608
                for t in tables if not t.startswith("sentence_fts")}
    finally:
        conn.close()


def _copy(src: Path, dst: Path) -> Path:
    """A consistent copy, the WAL included (the backup API, as `db backup` takes it)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()
    return dst


@pytest.mark.parametrize("answer", ["304", "200 same page", "200 new validators"])
def test_an_unchanged_check_writes_the_same_rows_either_way(
        server: HTTPServer, project, page, tmp_path: Path, answer: str) -> None:
    server.expect_request("/p").respond_with_data(
        page("<p>We use your data to run the service.</p>"), content_type="text/html",
        headers={"ETag": '"v1"'})
    project.write(f"""
        [[source]]
        name = "site/p"
        platform = "Site"
        url = "{server.url_for('/p')}"

        [[source]]
        name = "site/other"
        platform = "Site"
        url = "{server.url_for('/other')}"
        enabled = false
    """)
    project.cli("init")
    assert project.check("site/p")["site/p"]["outcome"] == "baseline"
    db = project.data / "monitor.db"
    full_db, lite_db = _copy(db, tmp_path / "full.db"), _copy(db, tmp_path / "lite.db")
    full = Store(f"sqlite:///{full_db}")
    lite = LiteStore(f"sqlite:///{lite_db}", lite_db)
    try:
        # What a check reads is the same whichever store answers.
        state = full.state("site/p")
        assert lite.state("site/p") == state
        assert lite.host_allowed_at("127.0.0.1") == full.host_allowed_at("127.0.0.1")
        assert lite.host_allowed_at("nowhere.invalid") is None
        assert lite.listed_sources() == full.listed_sources()
        started = datetime(2026, 12, 8, 1, 2, 3, 42, tzinfo=UTC)  # microseconds are zero-padded
        done = Completion(started + timedelta(hours=6, microseconds=7),
                          started + timedelta(seconds=5))
        status, etag, fp = {"304": (304, None, None),
                            "200 same page": (200, '"v1"', state.fingerprint),
                            "200 new validators": (200, '"v2"', "f" * 64)}[answer]
        args = (started, 12, status, None if status == 304 else 4096, etag,
                "Tue, 08 Dec 2026 00:00:00 GMT" if etag == '"v2"' else None, fp)
        ours = lite.record_unchanged(state, *args, done=done, fetcher="http")
        theirs = full.record_unchanged(state, *args, done=done, fetcher="http")
        assert ours == theirs
        assert lite._full is None  # the light path did it all itself
    finally:
        full.close()
        lite.close()
    assert _dump(lite_db) == _dump(full_db)


def test_a_page_that_moved_on_under_the_check_is_refused_by_both(project, server: HTTPServer,
                                                                  page, tmp_path: Path) -> None:
    server.expect_request("/p").respond_with_data(page("<p>One.</p>"), content_type="text/html")
    project.write(f"""
        [[source]]
        name = "site/p"
        platform = "Site"
        url = "{server.url_for('/p')}"
    """)
    project.cli("init")
    project.check()
    db = project.data / "monitor.db"
    lite = LiteStore(f"sqlite:///{db}", db)
    try:
        stale = lite.state("site/p")
        project.cli("check")  # another process records a check meanwhile: still the same version
        server.clear()
        server.expect_request("/p").respond_with_data(page("<p>Two.</p>"), content_type="text/html")
        project.cli("check")  # ...and now a new one
        before = _dump(db)
        now = datetime.now(UTC)
        from monitor.errors import StoreError

        with pytest.raises(StoreError, match="changed while it was being checked"):
            lite.record_unchanged(stale, now, 1, 304, 0, None, None, None,
                                  done=Completion(now, now), fetcher="http")
        assert _dump(db) == before  # nothing half-written
    finally:
        lite.close()


def _cli(config: Path, *args: str, importtime: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "monitor",
         "--config", str(config), *args],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_one_shot_check_loads_sqlalchemy_only_when_a_page_needs_it(server: HTTPServer,
                                                                     project, page) -> None:
    body = {"html": page("<p>We use your data to run the service.</p>"), "status": 200}

    def answer(request: Request) -> Response:
        return Response(body["html"], status=body["status"], content_type="text/html")

    server.expect_request("/p").respond_with_handler(answer)

    def sources(title: str) -> None:
        project.write(f"""
            [[source]]
            name = "site/p"
            platform = "Site"
            title = "{title}"
            url = "{server.url_for('/p')}"
        """, settings="failure_threshold = 1")

    def check() -> tuple[str, bool]:
        run = _cli(project.config, "check", importtime=True)
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stdout, "sqlalchemy" in run.stderr

    sources("Privacy")
    project.cli("init")
    out, loaded = check()
    assert "first snapshot" in out and loaded  # a new version: the full store writes it

    out, loaded = check()
    assert "1 unchanged" in out and not loaded
    listed = {s["name"]: s for s in project.json("sources", "list")}
    assert listed["site/p"]["last_outcome"] == "unchanged"

    sources("Privacy Policy")  # an edited sources.toml is synced by the full store
    out, loaded = check()
    assert "1 unchanged" in out and loaded
    assert {s["name"]: s for s in project.json("sources", "list")}["site/p"]["title"] \
        == "Privacy Policy"
    out, loaded = check()
    assert "1 unchanged" in out and not loaded  # in step again

    body["status"] = 500  # a failure opens the failing record (full store)...
    out, loaded = check()
    assert "1 failed" in out and loaded
    body["status"] = 200  # ...and the unchanged page that closes it is the full store's too
    out, loaded = check()
    assert "1 unchanged" in out and loaded
    with sqlite3.connect(project.data / "monitor.db") as conn:
        kinds = [r[0] for r in conn.execute("SELECT kind FROM source_alerts ORDER BY id")]
    conn.close()
    assert kinds == ["failing", "recovered"]
    out, loaded = check()
    assert "1 unchanged" in out and not loaded

    body["html"] = page("<p>We may use your posts to train generative AI models.</p>")
    out, loaded = check()
    assert "changed" in out and loaded
