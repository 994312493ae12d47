"""The rendering fetcher with real Chromium against pages on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.browser import BrowserFetcher, descendants, find_chromium
from monitor.config import Settings
from monitor.errors import BlockedURLError, FailureKind, FetchError
from monitor.urlgate import URLGate
from tests.conftest import Daemon, wait_for

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="no Chromium on this machine")

POLICY = "We may use your posts to train generative AI models."
SCRIPTED = ("<html><body><main id='policy'><p>Loading…</p></main><script>"
            "setTimeout(() => { document.getElementById('policy').innerHTML = "
            f"'<h1>Privacy Policy</h1><p>{POLICY}</p>'; }}, 300);</script></body></html>")


class Other:
    """Another server on loopback, with a log of what reached it."""

    def __init__(self) -> None:
        self.log: list[str] = []
        log = self.log

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                log.append(self.path)
                if self.path.startswith("/slow"):
                    time.sleep(8)
                body = b"<html><body><main>secret</main></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # The slow page's late write to a closed socket is expected; keep it off stderr.
        self.server.handle_error = lambda *args: None  # type: ignore[method-assign]
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def other() -> Iterator[Other]:
    o = Other()
    yield o
    o.close()


class OnlyThisSite(URLGate):
    """The test site on loopback counts as public; every other address is judged as usual."""

    def __init__(self, port: int) -> None:
        super().__init__(allow_private=False)
        self.port = port

    def addresses(self, url: str) -> tuple[str, int, list[str]]:
        parts = urlsplit(url)
        if parts.hostname == "127.0.0.1" and parts.port == self.port:
            return "127.0.0.1", self.port, ["127.0.0.1"]
        return super().addresses(url)

    def check_peer(self, host: str, port: int, address: str) -> None:
        if not (address == "127.0.0.1" and port == self.port):
            super().check_peer(host, port, address)


@pytest.fixture
def settings() -> Settings:
    return Settings(allow_private_addresses=True, total_timeout=4.0, connect_timeout=2.0,
                    read_timeout=2.0)


def test_script_inserted_text_is_rendered(server: HTTPServer, settings: Settings) -> None:
    server.expect_request("/a").respond_with_data(SCRIPTED, content_type="text/html")
    browser = BrowserFetcher(settings)
    try:
        result = browser.fetch(server.url_for("/a"), select=("main",))
    finally:
        browser.close()
    assert result.status == 200 and result.content_type == "text/html"
    assert POLICY in result.body.decode()


def test_subrequests_to_private_addresses_and_files_never_leave(server: HTTPServer,
                                                                 other: Other) -> None:
    page = (f"<html><body><main><p>{POLICY}</p></main><script>"
            "fetch('http://169.254.169.254/latest/meta-data/').catch(() => {});"
            f"fetch('http://127.0.0.1:{other.port}/internal').catch(() => {{}});"
            "fetch('file:///etc/passwd').catch(() => {});"
            f"new Image().src = 'http://127.0.0.1:{other.port}/pixel';</script></body></html>")
    server.expect_request("/c").respond_with_data(page, content_type="text/html")
    port = urlsplit(server.url_for("/")).port
    assert port is not None
    browser = BrowserFetcher(Settings(total_timeout=5.0), gate=OnlyThisSite(port))
    try:
        result = browser.fetch(server.url_for("/c"), select=("main",))
        refused = [url for url, _ in browser.refusals]
    finally:
        browser.close()
    # (a frame sent to a refused address fails the whole check: see the navigation tests)
    assert POLICY in result.body.decode()
    assert other.log == []  # nothing reached the other loopback server
    assert any("169.254.169.254" in url for url in refused)
    assert any(str(other.port) in url for url in refused)


def test_a_redirect_to_a_private_address_is_refused(server: HTTPServer, other: Other) -> None:
    server.expect_request("/r").respond_with_response(Response(
        status=302, headers={"Location": f"http://127.0.0.1:{other.port}/admin"}))
    port = urlsplit(server.url_for("/")).port
    assert port is not None
    browser = BrowserFetcher(Settings(total_timeout=5.0), gate=OnlyThisSite(port))
    try:
        with pytest.raises(BlockedURLError):
            browser.fetch(server.url_for("/r"))
    finally:
        browser.close()
    assert other.log == []


def test_a_page_that_never_loads_fails_at_the_deadline(settings: Settings, other: Other) -> None:
    browser = BrowserFetcher(settings)
    started = time.monotonic()
    try:
        with pytest.raises(FetchError) as failure:
            browser.fetch(f"http://127.0.0.1:{other.port}/slow")
        # The browser is still usable afterwards.
        assert b"secret" in browser.fetch(f"http://127.0.0.1:{other.port}/ok").body
    finally:
        browser.close()
    assert failure.value.kind is FailureKind.TRANSIENT
    assert "did not finish loading" in failure.value.reason
    assert time.monotonic() - started < settings.total_timeout + 15


def test_a_server_cannot_pose_as_the_url_gate(server: HTTPServer, settings: Settings) -> None:
    """A page's own 403 carrying look-alike headers is the site's refusal, not the gate's."""
    server.expect_request("/spoof").respond_with_response(Response(
        "no", status=403, headers={"X-Policy-Monitor-Blocked": "private address",
                                   "X-Policy-Monitor-Error": "the page did not finish loading"}))
    browser = BrowserFetcher(settings)
    try:
        with pytest.raises(FetchError) as failure:
            browser.fetch(server.url_for("/spoof"))
    finally:
        browser.close()
    assert not isinstance(failure.value, BlockedURLError)
    assert failure.value.status == 403


def test_no_browser_is_a_permanent_failure_naming_both_installs(settings: Settings) -> None:
    browser = BrowserFetcher(settings, executable=None)
    browser.executable = None
    with pytest.raises(FetchError) as failure:
        browser.fetch("http://127.0.0.1:9/")
    assert failure.value.kind is FailureKind.PERMANENT
    assert "apt-get install chromium" in failure.value.reason
    assert "playwright install chromium" in failure.value.reason


def test_check_fetchers_http_browser_and_auto(server: HTTPServer, project) -> None:
    state = {"stamp": 0}

    def walled(request: Request) -> Response:
        if "Mozilla" not in request.headers.get("User-Agent", ""):
            return Response("Access denied", status=403)
        return Response(SCRIPTED, content_type="text/html")

    def stamped(_: Request) -> Response:
        state["stamp"] += 1
        return Response(f"<html><body><main><p>{POLICY}</p></main><footer id='t'></footer>"
                        f"<script>document.getElementById('t').textContent = "
                        f"'rendered at ' + Date.now() + ' #{state['stamp']}';</script></body></html>",
                        content_type="text/html")

    server.expect_request("/a").respond_with_data(SCRIPTED, content_type="text/html")
    server.expect_request("/b").respond_with_handler(walled)
    server.expect_request("/e").respond_with_handler(stamped)
    sources = "".join(f"""
        [[source]]
        name = "{name}"
        platform = "Acme"
        url = "{server.url_for(path)}"
        select = "main"
        fetcher = "{fetcher}"
    """ for name, path, fetcher in (("acme/static", "/a", "http"), ("acme/rendered", "/a", "browser"),
                                    ("acme/walled", "/b", "auto"), ("acme/stamped", "/e", "browser")))
    project.write(sources, settings='total_timeout = "8s"')
    project.cli("init")
    first = project.check()
    assert first["acme/rendered"]["outcome"] == "baseline"
    assert first["acme/rendered"]["fetcher"] == "browser"
    assert first["acme/walled"]["outcome"] == "baseline"
    assert first["acme/walled"]["fetcher"] == "browser"  # escalated after the 403
    assert first["acme/static"]["fetcher"] == "http"
    static = first["acme/static"]
    if static["outcome"] == "baseline":  # the static HTML is only the application shell
        assert POLICY not in project.cli("show", str(static["snapshot_id"])).output
    else:
        assert static["outcome"] == "failed"
    for name in ("acme/rendered", "acme/walled"):
        assert POLICY in project.cli("show", str(first[name]["snapshot_id"])).output
    second = project.check("acme/stamped")
    assert second["acme/stamped"]["outcome"] == "unchanged"  # a timestamp outside `select`
    versions = project.json("history", "acme/walled")
    assert versions[0]["fetcher"] == "browser"


def test_the_daemon_survives_a_killed_browser(server: HTTPServer, project, daemons) -> None:
    server.expect_request("/a").respond_with_data(SCRIPTED, content_type="text/html")
    project.write(f"""
        [[source]]
        name = "acme/rendered"
        platform = "Acme"
        url = "{server.url_for('/a')}"
        select = "main"
        fetcher = "browser"
        interval = "2s"
    """, settings='jitter = "0s"\ntotal_timeout = "8s"')
    project.cli("init")
    daemon = Daemon(project.config)
    daemons.append(daemon)
    db = project.data / "monitor.db"

    def browser_checks() -> list[tuple[str, str | None]]:
        if not db.exists():
            return []
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT outcome, fetcher FROM checks ORDER BY id").fetchall()

    wait_for(lambda: any(o != "failed" for o, _ in browser_checks()), timeout=40)
    chromium = [p for p in descendants(daemon.proc.pid)
                if "chrom" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
    assert chromium, "the daemon runs a browser"
    for pid in chromium:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    before = len(browser_checks())
    wait_for(lambda: [o for o, _ in browser_checks()[before:]].count("unchanged") >= 1, timeout=60)
    assert daemon.proc.poll() is None  # still running
    assert all(f == "browser" for _, f in browser_checks())  # every check was recorded
    assert daemon.stop() == 0


def test_the_browser_is_relaunched_past_its_memory_cap(server: HTTPServer) -> None:
    server.expect_request("/a").respond_with_data(SCRIPTED, content_type="text/html")
    browser = BrowserFetcher(Settings(allow_private_addresses=True, total_timeout=8.0,
                                      browser_memory_cap=1, browser_restart_after=0))
    try:
        for _ in range(12):
            assert POLICY in browser.fetch(server.url_for("/a"), select=("main",)).body.decode()
    finally:
        browser.close()
    assert browser.launches == 2  # a 1 MB cap is passed at the tenth page: one relaunch


def _navigations(port: int) -> dict[str, str]:
    """Pages that send themselves to the other loopback server after they load."""
    target = f"http://127.0.0.1:{port}/admin"
    body = f"<main><p>{POLICY}</p></main>"
    return {
        "script": f"<html><body>{body}<script>setTimeout(() => {{ location.href = '{target}'; }},"
                  " 100);</script></body></html>",
        "meta refresh": f"<html><head><meta http-equiv='refresh' content='0; url={target}'></head>"
                        f"<body>{body}</body></html>",
        "form": f"<html><body>{body}<form id='f' method='post' action='{target}'>"
                "<input name='a' value='1'></form><script>document.getElementById('f')"
                ".submit();</script></body></html>",
        "frame": f"<html><body>{body}<iframe src='{target}'></iframe></body></html>",
    }


@pytest.mark.parametrize("how", ["script", "meta refresh", "form", "frame"])
def test_a_navigation_to_a_refused_address_fails_blocked_and_stores_nothing(
        server: HTTPServer, other: Other, tmp_path: Path, how: str) -> None:
    """First check and after a real version: the gate's refusal page is never stored."""
    from monitor import config as cfg
    from monitor.fetch import Fetcher
    from monitor.fetchers import Fetchers
    from monitor.pipeline import check_source
    from monitor.store import Store

    page = {"html": f"<html><body><main><p>{POLICY}</p></main></body></html>"}
    server.expect_request("/p").respond_with_handler(
        lambda _: Response(page["html"], content_type="text/html"))
    port = urlsplit(server.url_for("/")).port
    assert port is not None
    settings = Settings(total_timeout=8.0, connect_timeout=2.0, read_timeout=4.0,
                        data_dir=tmp_path)
    browser = BrowserFetcher(settings, gate=OnlyThisSite(port))
    fetchers = Fetchers(Fetcher(settings), browser=browser, default="browser")
    source = cfg.Source(name="acme/nav", platform="Acme", url=server.url_for("/p"),
                        fetcher="browser", select=("main",))
    store = Store(settings.database)
    try:
        store.upgrade()
        store.sync_sources([source], 3600)
        hostile = _navigations(other.port)[how]
        page["html"] = hostile
        began = time.monotonic()
        first = check_source(store, fetchers, source)
        assert (first.outcome, first.failure_kind) == ("failed", FailureKind.BLOCKED), first
        # Failed as soon as the refusal came back, not when the settling waits ran out on the
        # refusal page (the rest of the 8 s deadline).
        assert time.monotonic() - began < 6
        assert f"127.0.0.1:{other.port}/admin" in first.detail
        assert store.state("acme/nav").current_snapshot_id is None  # no baseline of a refusal
        page["html"] = f"<html><body><main><p>{POLICY}</p></main></body></html>"
        real = check_source(store, fetchers, source)
        assert real.outcome == "baseline"
        page["html"] = hostile
        again = check_source(store, fetchers, source)
        assert (again.outcome, again.failure_kind) == ("failed", FailureKind.BLOCKED), again
        state = store.state("acme/nav")
        assert state.current_snapshot_id == real.snapshot_id  # no "another document" change
        with store.read() as s:
            from monitor.models import Change, Snapshot

            assert s.query(Change).count() == 0
            (snap,) = s.query(Snapshot).all()
            assert snap.url == server.url_for("/p")  # the address that was checked
    finally:
        fetchers.close()
        store.close()
    assert other.log == []  # nothing reached the refused server


def test_a_download_is_a_permanent_failure(server: HTTPServer, settings: Settings) -> None:
    server.expect_request("/file").respond_with_data(
        b"%PDF-1.4 not a page", content_type="application/octet-stream",
        headers={"Content-Disposition": "attachment; filename=policy.pdf"})
    browser = BrowserFetcher(settings)
    try:
        with pytest.raises(FetchError) as failure:
            browser.fetch(server.url_for("/file"))
    finally:
        browser.close()
    assert failure.value.kind is FailureKind.PERMANENT
    assert "serves a file, not a page" in failure.value.reason
