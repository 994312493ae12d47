"""Several daemons on one PostgreSQL: started together, with identical pages, with a clock
that is off, killed, and stopped cleanly. Real `policy-monitor run` processes, real loopback
servers on several addresses (each address is one host to the politeness rules), and the
throwaway PostgreSQL. Every assertion is read from the origin servers' own request log."""

from __future__ import annotations

import glob
import itertools
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from tests.conftest import Daemon, wait_for


class Hosts:
    """Policy pages on 127.0.0.1 … 127.0.0.N, logging (time, host, path) of every request."""

    def __init__(self, count: int, delay: float = 0.05) -> None:
        self.delay = delay
        self.log: list[tuple[float, str, str]] = []
        self.lock = threading.Lock()
        self.text = "We process your data to run the service."
        self.servers: list[ThreadingHTTPServer] = []
        hosts = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                host = self.server.server_address[0]
                with hosts.lock:
                    hosts.log.append((time.monotonic(), str(host), self.path))
                    text = hosts.text  # the text as of the request's arrival
                time.sleep(hosts.delay)
                body = f"<html><body><main><p>{text}</p></main></body></html>".encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # a killed daemon's connection: nothing to answer
                    pass

        for h in range(1, count + 1):
            srv = ThreadingHTTPServer((f"127.0.0.{h}", 0), Handler)
            srv.daemon_threads = True
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            self.servers.append(srv)

    def sources(self, per_host: int) -> str:
        return "".join(f"""
            [[source]]
            name = "h{h}/p{p}"
            platform = "Local"
            url = "http://{srv.server_address[0]}:{srv.server_address[1]}/p{p}"
        """ for h, srv in enumerate(self.servers, 1) for p in range(per_host))

    def requests(self, since: float = 0.0) -> list[tuple[float, str, str]]:
        with self.lock:
            return [r for r in self.log if r[0] >= since]

    def close(self) -> None:
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()


@pytest.fixture
def hosts() -> Iterator[list[Hosts]]:
    made: list[Hosts] = []
    yield made
    for h in made:
        h.close()


def settings(pg_url: str, **extra: str) -> str:
    values = {"database_url": f'"{pg_url}"', "interval": '"2s"', "jitter": '"0s"',
              "per_host_delay": '"0.5s"', "dispatch_interval": '"0.2s"', "lease_duration": '"3s"',
              "shutdown_timeout": '"5s"', "workers": "3", "event_window": '"0s"'}
    values.update({k: v if v.isdigit() else f'"{v}"' for k, v in extra.items()})
    return "\n".join(f"{k} = {v}" for k, v in values.items())


def double_checks(log: list[tuple[float, str, str]], interval: float) -> list[str]:
    """Requests for one page closer together than its interval: a source checked twice."""
    found = []
    for (host, path), group in itertools.groupby(sorted(log, key=lambda r: (r[1], r[2], r[0])),
                                                 key=lambda r: (r[1], r[2])):
        times = [t for t, _, _ in group]
        found += [f"{host}{path}" for a, b in itertools.pairwise(times) if b - a < interval - 0.1]
    return found


def gap_violations(log: list[tuple[float, str, str]], gap: float) -> list[str]:
    """Requests to one host closer together than the per-host delay."""
    found = []
    for host, group in itertools.groupby(sorted(log, key=lambda r: (r[1], r[0])), key=lambda r: r[1]):
        times = [t for t, _, _ in group]
        found += [host for a, b in itertools.pairwise(times) if b - a < gap - 0.05]
    return found


def leases_held(pg_url: str) -> int:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(
                "SELECT (SELECT count(*) FROM sources WHERE lease_token IS NOT NULL)"
                " + (SELECT count(*) FROM hosts WHERE lease_token IS NOT NULL)")).scalar_one()
    finally:
        engine.dispose()


def failed_checks(pg_url: str) -> list[str]:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(
                "SELECT error FROM checks WHERE outcome = 'failed'")).scalars())
    finally:
        engine.dispose()


def stop_all(daemons: list[Daemon]) -> str:
    """SIGTERM every daemon; each must exit 0. Returns their stderr together."""
    for d in daemons:
        d.proc.send_signal(signal.SIGTERM)
    for d in daemons:
        _, d.stderr = d.proc.communicate(timeout=30)
        assert d.proc.returncode == 0, d.stderr[-3000:]
    return "".join(d.stderr for d in daemons)


def test_three_daemons_started_together_share_the_work_and_stop_cleanly(
        pg_url: str, project, hosts: list[Hosts], daemons: list[Daemon]) -> None:
    origin = Hosts(4)
    hosts.append(origin)
    project.write(origin.sources(2), settings=settings(pg_url))
    project.cli("init")
    # More sources than `init` saw: all three daemons insert them at once on start.
    project.write(origin.sources(6), settings=settings(pg_url))
    started = time.monotonic()
    group = [Daemon(project.config) for _ in range(3)]
    daemons.extend(group)
    wait_for(lambda: {p for _, h, p in origin.requests()} >= {f"/p{i}" for i in range(6)}
             and len(origin.requests()) >= 30, timeout=40)
    errors = stop_all(group)
    log = origin.requests(started)
    assert "deadlock" not in errors and "Traceback" not in errors, errors[-3000:]
    assert "cannot schedule new futures" not in errors
    assert double_checks(log, interval=2) == []
    assert gap_violations(log, gap=0.5) == []
    assert len({(h, p) for _, h, p in log}) == 24  # every source, each by one process at a time
    assert leases_held(pg_url) == 0  # a clean stop leaves nothing leased
    assert failed_checks(pg_url) == []


def test_identical_pages_checked_by_several_daemons_store_one_text_without_failing(
        pg_url: str, project, hosts: list[Hosts], daemons: list[Daemon]) -> None:
    origin = Hosts(6, delay=0.2)  # slow answers: the daemons' commits of one text coincide
    hosts.append(origin)
    project.write(origin.sources(2), settings=settings(pg_url, workers="6", per_host_delay="0s"))
    project.cli("init")
    group = [Daemon(project.config) for _ in range(2)]
    daemons.extend(group)
    wait_for(lambda: len({(h, p) for _, h, p in origin.requests()}) == 12, timeout=40)
    with origin.lock:
        origin.text = "We process your data to run the service and to train AI models."
        mark = time.monotonic()
    wait_for(lambda: len({(h, p) for t, h, p in origin.requests() if t > mark}) == 12,
             timeout=40)
    time.sleep(1)
    errors = stop_all(group)
    assert "IntegrityError" not in errors, errors[-3000:]
    assert failed_checks(pg_url) == []
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            changes = conn.execute(sa.text("SELECT count(*) FROM changes")).scalar_one()
            counted = conn.execute(sa.text("SELECT coalesce(sum(changes), 0) FROM events")).scalar_one()
    finally:
        engine.dispose()
    assert changes == 12  # every page's change recorded …
    assert counted == changes  # … and counted once in its event, none lost between processes


def faketime_env(offset: str) -> dict[str, str]:
    found = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    if not found:
        pytest.fail("libfaketime is missing; `make test` installs Debian's faketime")
    # Monotonic time stays real: Python's timed waits hang when libfaketime shifts it.
    return {"LD_PRELOAD": found[0], "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def test_a_daemon_whose_clock_is_ahead_stays_polite(
        pg_url: str, project, hosts: list[Hosts], daemons: list[Daemon]) -> None:
    origin = Hosts(3)
    hosts.append(origin)
    project.write(origin.sources(4), settings=settings(pg_url, per_host_delay="1s"))
    project.cli("init")
    started = time.monotonic()
    ahead = Daemon(project.config, env=faketime_env("+3s"))
    on_time = Daemon(project.config)
    daemons.extend([ahead, on_time])
    time.sleep(12)
    stop_all([ahead, on_time])
    log = origin.requests(started)
    assert len(log) >= 15
    assert gap_violations(log, gap=1.0) == []  # its leases and host gaps are the database's time
    assert double_checks(log, interval=2) == []  # and it does not take sources before they are due
    taken = [d.stderr.count("(lag=") for d in (ahead, on_time)]
    assert taken[1] > 0 and taken[0] <= 0.85 * sum(taken)  # it does not grab the work early


def leased_sources(pg_url: str) -> set[tuple[str, str]]:
    """(host, path) of the sources under a lease right now."""
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            urls = conn.execute(sa.text("SELECT url FROM sources WHERE lease_token IS NOT NULL"))
            return {(u.split("//")[1].split(":")[0], "/" + u.rsplit("/", 1)[1]) for u in urls.scalars()}
    finally:
        engine.dispose()


def test_a_killed_daemons_sources_are_taken_over_within_a_lease(
        pg_url: str, project, hosts: list[Hosts], daemons: list[Daemon]) -> None:
    origin = Hosts(4, delay=1.5)  # slow pages: the killed process dies holding leases
    hosts.append(origin)
    project.write(origin.sources(1), settings=settings(pg_url, interval="4s", workers="4"))
    project.cli("init")
    victim = Daemon(project.config)
    daemons.append(victim)
    wait_for(lambda: len(origin.requests()) >= 2 and bool(leased_sources(pg_url)), timeout=30)
    victim.proc.kill()
    victim.proc.wait()
    killed = time.monotonic()
    # Read after the kill: a dead process's leases can no longer change, so this is all of
    # them, including any it claimed a moment before it died.
    held = leased_sources(pg_url)
    assert held
    survivor = Daemon(project.config)
    daemons.append(survivor)
    # What the victim held comes back once its 3 s lease lapses, not after minutes.
    wait_for(lambda: held <= {(h, p) for _, h, p in origin.requests(killed)}, timeout=30)
    assert time.monotonic() - killed < 30
    stop_all([survivor])
    assert leases_held(pg_url) == 0


def test_a_stop_with_checks_still_running_releases_their_leases(
        pg_url: str, project, hosts: list[Hosts], daemons: list[Daemon]) -> None:
    origin = Hosts(3, delay=6.0)  # checks outlive the shutdown timeout
    hosts.append(origin)
    project.write(origin.sources(1), settings=settings(pg_url, shutdown_timeout="1s",
                                                       total_timeout="10s", read_timeout="8s"))
    project.cli("init")
    d = Daemon(project.config)
    daemons.append(d)
    wait_for(lambda: len(origin.requests()) == 3, timeout=30)
    assert leases_held(pg_url) == 6  # three sources and their three hosts
    assert d.stop(signal.SIGTERM, timeout=20) == 0
    assert "cannot schedule new futures" not in d.stderr and "Traceback" not in d.stderr
    assert leases_held(pg_url) == 0  # given back at once: another daemon can take them now
