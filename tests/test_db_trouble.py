"""Database trouble is the deployment's problem: classified once, logged once a minute, never
charged to a page, and a check the database will not record is not fetched again in a loop."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections import defaultdict
from pathlib import Path

import psycopg
import pytest
import sqlalchemy
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor import history, sourcelist
from monitor.store import Store
from monitor.store.trouble import DatabaseTrouble, classify
from tests.conftest import Daemon, wait_for
from tests.pgserver import create_database, running_postgres

FAIL_CHECKS = """
CREATE FUNCTION refuse_checks() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '53100';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_checks BEFORE INSERT ON checks FOR EACH ROW EXECUTE FUNCTION refuse_checks();
"""


def test_a_check_the_database_refuses_is_not_fetched_again_in_a_loop(
        pg_url: str, server: HTTPServer, project, daemons: list[Daemon]) -> None:
    hits: dict[str, list[float]] = defaultdict(list)
    lock = threading.Lock()

    def page(request: Request) -> Response:
        with lock:
            hits[request.path].append(time.monotonic())
        return Response(f"<main><p>Policy of {request.path}.</p></main>",
                        content_type="text/html; charset=utf-8")

    paths = [f"/p{i}" for i in range(4)]
    for path in paths:
        server.expect_request(path).respond_with_handler(page)
    project.write("".join(f"""
        [[source]]
        name = "acme/p{i}"
        platform = "Acme"
        url = "{server.url_for(path)}"
        interval = "10s"
    """ for i, path in enumerate(paths)), settings=f'''database_url = "{pg_url}"
        per_host_delay = "2s"
        jitter = "0s"
        retry_ladder = ["10s", "20s", "40s"]
        dispatch_interval = "1s"''')
    project.cli("init")
    with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute(FAIL_CHECKS)
    daemon = Daemon(project.config)
    daemons.append(daemon)
    time.sleep(30)  # every write of a check fails as a full disk would
    with lock:
        during = {p: list(t) for p, t in hits.items()}
    with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute("DROP TRIGGER refuse_checks ON checks")
    store = Store(pg_url)
    try:  # it resumes by itself: checks are recorded again, without a restart
        wait_for(lambda: any(r.last_check_at is not None for r in history.status(store)), 120)
        rows = history.status(store)
    finally:
        store.close()
    daemon.stop()
    fetched = sorted(t for times in during.values() for t in times)
    assert fetched, "the daemon fetched before it met the full disk"
    # one host: never two requests closer than per_host_delay; each page at most once while
    # a back-off step lasts (10 s, then longer), instead of hundreds of times
    assert all(b - a >= 1.9 for a, b in itertools.pairwise(fetched)), fetched
    for times in during.values():
        assert len(times) <= 3 and all(b - a >= 9.5 for a, b in itertools.pairwise(times)), during
    # the outage is a few lines, never charged to a page
    trouble = [line for line in daemon.stderr.splitlines() if "database" in line.lower()]
    assert 1 <= len(trouble) < 10, daemon.stderr[-3000:]
    assert "disk is full" in trouble[0]
    assert "internal error" not in daemon.stderr and "Traceback" not in daemon.stderr
    assert "database works again" in daemon.stderr
    assert all(r.consecutive_failures == 0 and r.last_error is None for r in rows)


def test_storage_errors_read_as_what_to_do(tmp_path: Path, pg_server: str, project) -> None:
    db = tmp_path / "ro.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.commit()
    engine = sqlalchemy.create_engine(f"sqlite:///file:{db}?mode=ro&uri=true")
    with pytest.raises(sqlalchemy.exc.DBAPIError) as failure, engine.begin() as conn:
        conn.execute(sqlalchemy.text("INSERT INTO t VALUES (1)"))
    trouble = classify(failure.value)
    assert isinstance(trouble, DatabaseTrouble) and trouble.kind == "read_only"
    # init against a PostgreSQL database that does not exist says how to create it
    missing = f"postgresql+psycopg://postgres@{pg_server}/nosuchdb"
    project.write("", settings=f'database_url = "{missing}"')
    result = project.cli("init", ok=False)
    assert result.exit_code != 0
    assert "does not exist; create it" in result.output and "createdb" in result.output
    assert "internal error" not in result.output


class Trickle:
    """A receiver that takes the request and then answers one byte every second, forever."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.drip, args=(conn,), daemon=True).start()

    def drip(self, conn) -> None:
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\n" * 1000:
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(1)


def test_a_trickling_receiver_delays_no_other_and_no_shutdown(
        server: HTTPServer, project, daemons: list[Daemon]) -> None:
    from tests.test_notify import Hook

    trickle = Trickle()
    hook = Hook(server)
    body = {"text": "<main><p>We use your data to run the service.</p></main>"}
    server.expect_request("/p").respond_with_handler(
        lambda _: Response(body["text"], content_type="text/html; charset=utf-8"))
    project.write(f"""
        [[source]]
        name = "acme/privacy"
        platform = "Acme"
        url = "{server.url_for('/p')}"

        [[subscription]]
        name = "slow-first"
        url = ["json://127.0.0.1:{trickle.port}/hook"]

        [[subscription]]
        name = "healthy"
        url = "{hook.url}"
    """, settings='''event_window = "0s"
        notify_interval = "2s"
        delivery_timeout = "8s"
        shutdown_timeout = "5s"''')
    project.cli("init")
    project.check()
    body["text"] += "<p>We may use your posts to train generative AI models.</p>"
    project.check()
    daemon = Daemon(project.config)
    daemons.append(daemon)
    started = time.monotonic()
    wait_for(lambda: len(hook.received) == 1, 2 + 5)  # within notify_interval + 5 s
    wait_for(lambda: trickle.connections >= 1, 10)
    time.sleep(1)  # the trickling send is under way
    stopping = time.monotonic()
    daemon.stop(timeout=30)
    assert time.monotonic() - stopping < 5 + 5, "SIGTERM exits within shutdown_timeout + 5 s"
    assert time.monotonic() - started < 30
    slow = [d for d in project.json("deliveries") if d["subscription"] == "slow-first"]
    assert slow and all(d["status"] != "sent" for d in slow)  # still in the outbox


def test_postgresql_stopped_for_two_minutes_under_run(
        server: HTTPServer, project, daemons: list[Daemon]) -> None:
    """The outage reads as a few lines, the daemon comes back by itself, and no page pays."""
    fetched = {"count": 0}

    def page(request: Request) -> Response:
        fetched["count"] += 1
        return Response(f"<main><p>Policy of {request.path}.</p></main>",
                        content_type="text/html; charset=utf-8")

    paths = [f"/p{i}" for i in range(3)]
    for path in paths:
        server.expect_request(path).respond_with_handler(page)
    with running_postgres() as pg:
        url = create_database(pg.address, "outage")
        project.write("".join(f"""
            [[source]]
            name = "acme/p{i}"
            platform = "Acme"
            url = "{server.url_for(path)}"
            interval = "5s"
        """ for i, path in enumerate(paths)), settings=f'''database_url = "{url}"
            per_host_delay = "1s"
            jitter = "0s"
            dispatch_interval = "1s"''')
        project.cli("init")
        daemon = Daemon(project.config)
        daemons.append(daemon)

        def checks() -> int:
            store = Store(url)
            try:
                return sum(r.checks for r in sourcelist.sources(store))
            finally:
                store.close()

        wait_for(lambda: checks() >= 3, 30)
        pg.stop()
        time.sleep(120)
        pg.start()
        before = checks()
        wait_for(lambda: checks() >= before + 3, 120)  # it resumes without a restart
        store = Store(url)
        try:
            rows = history.status(store)
        finally:
            store.close()
        daemon.stop()
    lines = daemon.stderr.splitlines()
    outage = [line for line in lines if "database" in line.lower()]
    assert 1 <= len(outage) < 10, daemon.stderr[-3000:]
    assert "Traceback" not in daemon.stderr and "internal error" not in daemon.stderr
    assert "database works again" in daemon.stderr
    assert all(r.consecutive_failures == 0 and r.last_error is None for r in rows), rows
