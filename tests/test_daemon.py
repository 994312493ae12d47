"""The daemon as a real subprocess against a real loopback server, with short intervals."""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import socket
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.conftest import Daemon, wait_for

FAST = """
interval = "1s"
jitter = "0s"
per_host_delay = "0.4s"
dispatch_interval = "0.2s"
shutdown_timeout = "5s"
failure_threshold = 3
"""


class Recorder:
    """Serves pages and records, server-side, when each request started and overlapped."""

    def __init__(self, server: HTTPServer, delay: float = 0.05) -> None:
        self.server = server
        self.delay = delay
        self.log: list[tuple[float, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.bodies: dict[str, str] = {}
        self.status: dict[str, int] = {}

    def serve(self, path: str, body: str) -> None:
        self.bodies[path] = body

        def handler(request: Request) -> Response:
            with self.lock:
                self.log.append((time.monotonic(), request.path))
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                time.sleep(self.delay)
                status = self.status.get(path, 200)
                return Response(self.bodies[path], status=status, content_type="text/html")
            finally:
                with self.lock:
                    self.in_flight -= 1

        self.server.expect_request(path).respond_with_handler(handler)

    def times(self, path: str | None = None) -> list[float]:
        with self.lock:
            return [t for t, p in self.log if path is None or p == path]


def page(text: str) -> str:
    return f"<html><body><main><p>{text}</p></main></body></html>"


def sources(server: HTTPServer, paths: list[str]) -> str:
    return "".join(f"""
        [[source]]
        name = "local{p}"
        platform = "Local"
        url = "{server.url_for(p)}"
    """ for p in paths)


def db_rows(project, sql: str) -> list[tuple]:
    conn = sqlite3.connect(project.data / "monitor.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_checks_every_source_politely_picks_up_changes_and_stops_cleanly(
    server: HTTPServer, project, daemons
) -> None:
    rec = Recorder(server)
    paths = ["/a", "/b", "/c"]
    for p in paths:
        rec.serve(p, page(f"Policy {p}."))
    project.write(sources(server, paths), settings=FAST)
    project.cli("init")
    d = Daemon(project.config)
    daemons.append(d)
    wait_for(lambda: all(len(rec.times(p)) >= 2 for p in paths))
    rec.bodies["/b"] = page("Policy /b. We now train AI models on your posts.")
    wait_for(lambda: db_rows(project, "SELECT count(*) FROM changes")[0][0] >= 1)
    assert d.stop() == 0
    assert "stopped cleanly" in d.stderr

    # Politeness, from the server's own clock: one request at a time on this host, spaced.
    assert rec.max_in_flight == 1
    starts = rec.times()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.4 - 0.05, gaps
    # Every source was checked, and the change was labelled.
    assert {p for _, p in rec.log} == set(paths)
    (labels,) = db_rows(project, "SELECT labels FROM changes")
    assert "ai_training" in labels[0]
    # No partial rows: every check points at an existing snapshot or none; leases released.
    assert db_rows(project, "PRAGMA integrity_check") == [("ok",)]
    assert db_rows(project, "SELECT count(*) FROM checks c LEFT JOIN snapshots s ON "
                            "s.id = c.snapshot_id WHERE c.snapshot_id IS NOT NULL AND s.id IS NULL") == [(0,)]
    assert db_rows(project, "SELECT count(*) FROM sources WHERE lease_token IS NOT NULL") == [(0,)]
    assert "source=" not in d.stderr or "Traceback" not in d.stderr


def test_notify_socket_gets_ready_status_watchdog_and_stopping(
    server: HTTPServer, project, daemons, tmp_path: Path
) -> None:
    rec = Recorder(server)
    rec.serve("/a", page("A."))
    project.write(sources(server, ["/a"]), settings=FAST)
    project.cli("init")
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(0.2)
    messages: list[tuple[float, str]] = []
    d = Daemon(project.config, env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"})
    daemons.append(d)
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            messages.append((time.monotonic(), sock.recv(4096).decode()))
    assert d.stop() == 0
    try:
        while True:
            messages.append((time.monotonic(), sock.recv(4096).decode()))
    except TimeoutError:
        pass
    sock.close()
    texts = [m for _, m in messages]
    assert sum("READY=1" in t for t in texts) == 1
    assert any(t.startswith("STATUS=") or "\nSTATUS=" in t for t in texts)
    assert any("1 source, 0 failing" in t for t in texts)
    pings = [t for t, m in messages if m == "WATCHDOG=1"]
    assert len(pings) >= 5
    assert max(b - a for a, b in itertools.pairwise(pings)) <= 0.75
    assert texts[-1] == "STOPPING=1"


def test_sighup_reloads_sources_and_keeps_old_config_when_broken(
    server: HTTPServer, project, daemons
) -> None:
    rec = Recorder(server)
    rec.serve("/a", page("A."))
    rec.serve("/new", page("New."))
    project.write(sources(server, ["/a"]), settings=FAST)
    project.cli("init")
    d = Daemon(project.config)
    daemons.append(d)
    wait_for(lambda: len(rec.times("/a")) >= 1)
    good = project.config.read_text()
    project.config.write_text(good + '\n[[source]]\nname = "broken"\nurl = "file:///etc/passwd"\n')
    d.proc.send_signal(signal.SIGHUP)
    seen = len(rec.times("/a"))
    wait_for(lambda: len(rec.times("/a")) >= seen + 2)  # still running on the old config
    project.write(sources(server, ["/a", "/new"]), settings=FAST)
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(rec.times("/new")) >= 1)
    assert d.stop() == 0
    assert "reload refused, keeping the old config" in d.stderr
    assert "only http and https" in d.stderr


def test_restart_resumes_without_refetching_recent_checks(server: HTTPServer, project, daemons) -> None:
    rec = Recorder(server)
    rec.serve("/a", page("A."))
    rec.serve("/b", page("B."))
    project.write(sources(server, ["/a", "/b"]), settings=FAST.replace('interval = "1s"',
                                                                       'interval = "1h"'))
    project.cli("init")
    project.cli("check")  # both checked a moment ago; stored next check: in an hour
    count = len(rec.log)
    assert count == 2
    first = Daemon(project.config)
    daemons.append(first)
    time.sleep(2)
    assert first.stop() == 0
    second = Daemon(project.config)
    daemons.append(second)
    time.sleep(3)
    assert second.stop() == 0
    assert len(rec.log) == count  # both were checked moments ago: nothing is due


def test_two_daemons_share_the_work_without_double_checks(server: HTTPServer, project, daemons) -> None:
    rec = Recorder(server, delay=0.1)
    paths = [f"/p{i}" for i in range(4)]
    for p in paths:
        rec.serve(p, page(p))
    project.write(sources(server, paths), settings=FAST.replace('interval = "1s"', 'interval = "2s"'))
    project.cli("init")
    a, b = Daemon(project.config), Daemon(project.config)
    daemons.extend([a, b])
    time.sleep(7)
    assert a.stop() == 0
    assert b.stop() == 0
    assert rec.max_in_flight == 1  # one request in flight for the host, across both
    starts = rec.times()
    assert min(y - x for x, y in itertools.pairwise(starts)) >= 0.4 - 0.05
    for p in paths:
        t = rec.times(p)
        # Each check of a source is at least its interval after the previous one.
        assert all(y - x >= 2 - 0.1 for x, y in itertools.pairwise(t)), (p, t)
    owners = {line.split("owner=")[1].split()[0] for line in (a.stderr + b.stderr).splitlines()
              if "owner=" in line}
    assert len(owners) == 2


def test_a_failing_source_backs_off_alerts_once_and_recovers(server: HTTPServer, project, daemons) -> None:
    rec = Recorder(server)
    rec.serve("/ok", page("Fine."))
    rec.serve("/bad", page("Bad."))
    project.write(sources(server, ["/ok", "/bad"]),
                  settings=FAST.replace('per_host_delay = "0.4s"', 'per_host_delay = "0.1s"'))
    project.cli("init")
    d = Daemon(project.config)
    daemons.append(d)
    wait_for(lambda: len(rec.times("/bad")) >= 1)
    rec.status["/bad"] = 404  # permanent: backs off by intervals (transient ones climb the ladder)
    start = time.monotonic()
    time.sleep(9)
    bad = [t for t in rec.times("/bad") if t >= start]
    ok = [t for t in rec.times("/ok") if t >= start]
    assert len(ok) >= 6
    assert len(bad) <= len(ok) // 2  # backed off: 1, 2, 4, 8 intervals
    rec.status["/bad"] = 200
    wait_for(lambda: db_rows(project, "SELECT count(*) FROM source_alerts WHERE kind='recovered'")[0][0] == 1,
             timeout=30)
    assert d.stop() == 0
    alerts = db_rows(project, "SELECT kind FROM source_alerts ORDER BY id")
    assert alerts == [("failing",), ("recovered",)]
    result = project.cli("status", "--json")
    rows = {r["name"]: r for r in __import__("json").loads(result.output)}
    assert rows["local/bad"]["consecutive_failures"] == 0
    assert rows["local/bad"]["failing"] is False


def test_a_network_failure_at_start_is_retried_within_the_ladder(server: HTTPServer, project,
                                                                  daemons) -> None:
    """Offline at start-up: a six-hour source is checked again on the short ladder, not hours
    later, while a page that is gone keeps the long backoff."""
    rec = Recorder(server)
    rec.serve("/flaky", page("Policy text."))
    rec.serve("/gone", page("Gone."))
    rec.status["/flaky"] = 503
    rec.status["/gone"] = 404
    with socket.socket() as probe:  # a port nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    project.write(sources(server, ["/flaky", "/gone"]) + f"""
        [[source]]
        name = "local/offline"
        platform = "Local"
        url = "http://127.0.0.1:{closed}/policy"
        """, settings="""
        interval = "6h"
        jitter = "0s"
        retry_ladder = ["1s", "2s"]
        dispatch_interval = "0.2s"
        shutdown_timeout = "5s"
        """)
    project.cli("init")
    project.cli("check")  # the first check fails: what a laptop without network sees
    d = Daemon(project.config)
    daemons.append(d)
    wait_for(lambda: len(rec.times("/flaky")) >= 2, timeout=10)
    rec.status["/flaky"] = 200
    wait_for(lambda: db_rows(project, "SELECT last_outcome FROM sources WHERE name='local/flaky'")
             == [("baseline",)], timeout=10)
    # still refused: retried on the ladder (1 s, 2 s) although its interval is 6 h
    wait_for(lambda: db_rows(project, "SELECT consecutive_failures FROM sources "
                                      "WHERE name='local/offline'")[0][0] >= 3, timeout=10)
    assert d.stop() == 0
    listed = project.cli("status", "--json", ok=False)
    assert listed.exit_code == 1  # sources past failure_threshold: status says so
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    now = datetime.now(UTC)

    def hours_ahead(name: str) -> float:
        at = datetime.fromisoformat(rows[name]["next_check_at"])
        return (at.replace(tzinfo=at.tzinfo or UTC) - now).total_seconds() / 3600

    assert 5.5 < hours_ahead("local/flaky") <= 6  # healthy again: back on its interval
    assert hours_ahead("local/offline") > 5.5  # past the ladder: back to the interval
    assert hours_ahead("local/gone") > 5.5  # a page that is gone is not retried soon
    assert len(rec.times("/gone")) == 1


def test_failures_sharing_a_cause_are_folded_in_the_log(project, daemons) -> None:
    """Offline, every source fails the same way: the log says it in a few lines, not one line
    per source per round."""
    from tests.conftest import free_port

    port = free_port()  # nothing listens: every check is refused the same way
    project.write("".join(f"""
        [[source]]
        name = "site/p{i}"
        platform = "Site"
        url = "http://127.0.0.{i + 1}:{port}/p"
        interval = "2s"
    """ for i in range(12)), settings='''jitter = "0s"
        retry_ladder = ["2s"]
        failure_threshold = 100''')
    project.cli("init")
    daemon = Daemon(project.config)
    daemons.append(daemon)
    time.sleep(9)  # several retry rounds of 12 failures each
    daemon.stop()
    from monitor import history
    from monitor.store import Store

    store = Store(project.db_url)
    try:
        failures = sum(r.consecutive_failures for r in history.status(store))
    finally:
        store.close()
    assert failures >= 24  # at least two rounds of every source
    lines = [line for line in daemon.stderr.splitlines() if "failed" in line]
    assert lines and len(lines) <= 6, daemon.stderr[-3000:]
    assert any("more sources failed the same way" in line and "site/p" in line for line in lines)


def test_folded_failures_say_each_cause_once_a_minute() -> None:
    from monitor.errors import FailureKind
    from monitor.pipeline import CheckResult
    from monitor.summary import FoldedFailures

    now = [0.0]
    folded = FoldedFailures(every=60, clock=lambda: now[0])

    def fail(name: str, reason: str) -> bool:
        return folded.first(CheckResult(name, "failed", reason,
                                        failure_kind=FailureKind.TRANSIENT))

    assert fail("a/1", "cannot resolve www.a.com: Name or service not known")
    assert not fail("b/1", "cannot resolve www.b.com: Name or service not known")
    assert fail("c/1", "HTTP 503 from c.com")  # another cause is its own line
    assert folded.due() == []  # the window is still open
    now[0] = 61
    [line] = folded.due()
    assert line.startswith("1 more source failed the same way in the last 61s (transient): "
                           "cannot resolve www.a.com")
    assert "no DNS" in line and "[b/1]" in line
    assert fail("a/1", "cannot resolve www.a.com: Name or service not known")  # a new window
