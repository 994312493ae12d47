"""The same code on PostgreSQL: a throwaway server started by the test, on loopback."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from werkzeug import Request, Response

from monitor.config import Source
from monitor.sourcelist import sources as history_sources
from monitor.store import Store
from tests.test_notify import Hook


def test_the_pipeline_runs_on_postgresql(pg_url: str, server: HTTPServer, project) -> None:
    body = {"text": "<main><p>We use your data to run the service.</p></main>"}

    def handler(_: Request) -> Response:
        return Response(body["text"], content_type="text/html; charset=utf-8")

    server.expect_request("/p").respond_with_handler(handler)
    hook = Hook(server)
    project.write(f"""
        [[source]]
        name = "acme/privacy"
        platform = "Acme"
        url = "{server.url_for('/p')}"
        select = "main"

        [[subscription]]
        name = "hook"
        url = "{hook.url}"

        [[subscription]]
        name = "answers"
        url = "{hook.url}"
        answers = true
    """, settings=f'database_url = "{pg_url}"\nevent_window = "0s"')
    head = Store("sqlite://").head_revision()  # the newest migration, whatever its number
    assert f"revision {head}" in project.cli("init").output
    assert project.check()["acme/privacy"]["outcome"] == "baseline"
    body["text"] = ("<main><p>We use your data to run the service. We may use your posts to train "
                    "generative AI models.</p></main>")
    assert project.check()["acme/privacy"]["outcome"] == "changed"
    (change,) = project.json("changes", "--label", "ai_training", "--min-severity", "high")
    assert change["added_sentences"] == ["We may use your posts to train generative AI models."]
    assert project.cli("explain", str(change["id"])).output.count("[ai_training]") == 1
    deliveries = {d["subscription"]: d for d in project.json("deliveries")}
    assert {k: d["status"] for k, d in deliveries.items()} == {"hook": "pending", "answers": "pending"}
    assert "sent 2," in project.cli("notify", "flush").output  # events and outbox on PostgreSQL
    assert all("train generative AI models" in h["message"] for h in hook.received)
    # the board's answers were kept with the change, on PostgreSQL as on SQLite
    (board,) = json.loads(project.cli("board", "acme", "--json").output)
    (training,) = board["answers"]["training"]
    assert (training["value"], training["change_id"]) == ("yes", change["id"])
    assert any(h["title"].startswith("Acme: trains AI on your data: not stated → yes")
               for h in hook.received)
    (row,) = project.json("status")
    assert row["consecutive_failures"] == 0


def test_claims_are_exclusive_across_workers_on_postgresql(pg_url: str) -> None:
    store_a, store_b = Store(pg_url), Store(pg_url)
    try:
        store_a.upgrade()  # each test has its own empty database
        store_a.sync_sources([Source(name=f"h{i}/doc", platform="P", url=f"https://h{i}.example/")
                              for i in range(6)], 3600)
        now = datetime.now(UTC) + timedelta(days=1)
        store_a.schedule_new(now - timedelta(hours=1), random.Random(0), 3600)
        a = store_a.claim("a", now, 4, 60)
        b = store_b.claim("b", now, 10, 60)
        names_a, names_b = {c.name for c in a}, {c.name for c in b}
        assert names_a.isdisjoint(names_b)
        assert len(names_a | names_b) == 6  # every due source went to exactly one worker
        assert store_a.claim("a", now, 10, 60) == []  # all leased now
    finally:
        store_a.close()
        store_b.close()


def test_the_web_uis_connection_to_postgresql_cannot_write(pg_url: str) -> None:
    writer = Store(pg_url)
    reader = Store(pg_url, read_only=True)
    try:
        writer.upgrade()
        writer.sync_sources([Source(name="a/doc", platform="P", url="https://a.example/")], 3600)
        assert [s.name for s in history_sources(reader)] == ["a/doc"]  # it reads …
        # … and the server refuses any write
        with pytest.raises(DBAPIError, match="read-only transaction"), reader.engine.begin() as conn:
            conn.execute(text("UPDATE sources SET enabled = false"))
    finally:
        writer.close()
        reader.close()


def test_the_documented_web_role_refuses_writes_even_after_read_write_is_asked(
        pg_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/web-role.sql, run as the README says, makes a role that reads everything, also
    tables a later migration creates, and cannot write: READ ONLY is a guard the connection
    itself can lift (`SET TRANSACTION READ WRITE`), a missing privilege is not."""
    import subprocess
    import urllib.request

    from sqlalchemy import make_url

    from monitor.store import head_from_files
    from tests.conftest import serving

    root = Path(__file__).resolve().parents[1]

    writer = Store(pg_url)
    try:
        writer.upgrade()
        from alembic import command

        command.downgrade(writer.alembic_config(), "0014")  # 0015 creates a table later
        url = make_url(pg_url)
        subprocess.run(["psql", "-h", str(url.host), "-p", str(url.port), "-U", "postgres",
                        "-d", str(url.database), "-v", "ON_ERROR_STOP=1",
                        "-v", "web_password=s3cret", "-f", str(root / "deploy" / "web-role.sql")],
                       check=True, capture_output=True)
        writer.upgrade()  # a migration after the role: its new tables are readable too
        writer.sync_sources([Source(name="a/doc", platform="P", url="https://a.example/")], 3600)
    finally:
        writer.close()
    web_url = url.set(username="policy_monitor_web", password="s3cret")
    web = Store(web_url.render_as_string(hide_password=False))
    try:
        with web.engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM sources")).scalars().all() == ["a/doc"]
            assert conn.execute(text("SELECT count(*) FROM sentence_texts")).scalar() == 0
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() \
                == head_from_files()
        for attempt in ("UPDATE sources SET enabled = false",
                        "INSERT INTO sentence_texts (key, text) VALUES ('k', 't')",
                        "DELETE FROM changes", "CREATE TABLE sneaky (id int)"):
            with web.engine.connect() as conn:
                conn.execute(text("SET TRANSACTION READ WRITE"))
                with pytest.raises(DBAPIError, match="permission denied"):
                    conn.execute(text(attempt))
    finally:
        web.close()
    # serve runs on that role (POLICY_MONITOR_WEB_DATABASE_URL), while the config names the
    # writer's URL for the daemons.
    config = tmp_path / "sources.toml"
    config.write_text(f'[settings]\ndatabase_url = "{pg_url}"\n\n[[source]]\nname = "a/doc"\n'
                      'platform = "P"\nurl = "https://a.example/"\n')
    monkeypatch.setenv("POLICY_MONITOR_WEB_DATABASE_URL",
                       web_url.render_as_string(hide_password=False))
    with serving(config) as base, \
            urllib.request.urlopen(f"{base}/api/sources") as r:  # noqa: S310 - loopback
        assert [s["name"] for s in json.loads(r.read())] == ["a/doc"]


def test_checks_reuse_prepared_statements_on_postgresql(pg_url: str, server: HTTPServer) -> None:
    """A daemon's server CPU per check halves when PostgreSQL does not parse and plan every
    statement again: reads must end without the ROLLBACK that makes psycopg drop them all."""
    from monitor.pipeline import check_source

    server.expect_request("/p").respond_with_data("<main><p>Unchanged text.</p></main>",
                                                  content_type="text/html")
    store = Store(pg_url, connections=1)
    try:
        store.upgrade()
        source = Source(name="acme/privacy", platform="Acme", url=server.url_for("/p"))
        store.sync_sources([source])
        from monitor.config import Settings
        from monitor.fetch import Fetcher
        from monitor.fetchers import Fetchers

        fetcher = Fetchers(Fetcher(Settings(allow_private_addresses=True, per_host_delay=0)))
        outcomes = [check_source(store, fetcher, source).outcome for _ in range(8)]
        assert outcomes[0] == "baseline" and set(outcomes[1:]) == {"unchanged"}
        with store.engine.connect() as conn:
            prepared = conn.execute(text(
                "SELECT statement FROM pg_prepared_statements")).scalars().all()
            conn.commit()
        # The check's own reads and writes, run 7 times on the one pooled connection.
        assert any("FROM sources" in s and "etag" in s for s in prepared), prepared
        assert any(s.startswith("INSERT INTO checks") for s in prepared), prepared
    finally:
        store.close()
