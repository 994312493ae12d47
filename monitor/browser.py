"""The rendering fetcher: headless Chromium through Playwright, behind the same `fetch()` and the
same URL gate as `fetch.Fetcher`, returning the same `FetchResult` (body = the rendered DOM).

Every request the browser makes — the navigation, each redirect hop, every script, XHR and
WebSocket — leaves through a small forward proxy of ours that asks the URL gate first and
connects to the address the gate checked (never to a second DNS answer), then checks the
connected peer. Playwright's own request routing does not see redirect hops, and Chromium
resolves names itself; a proxy is the one place that sees everything (the class of SSRF
advisories changedetection.io had through its browser). Loopback is proxied too
(`--proxy-bypass-list=<-loopback>`), so 127.0.0.1 and 169.254.169.254 are refused unless
`allow_private_addresses = true`. Non-http(s) requests (file:, chrome:) are aborted in routing.

One Chromium process serves all checks from one background thread with its own asyncio loop;
each check gets a fresh context (no cookies between sources); at most `browser_pages` pages
render at once. The browser is relaunched after `browser_restart_after` checks or a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import select as select_module
import shutil
import socket
import socketserver
import threading
import time
from collections import deque
from collections.abc import Awaitable, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from monitor.config import Settings
from monitor.errors import BlockedURLError, FailureKind, FetchError
from monitor.fetch import FetchResult, status_error
from monitor.urlgate import URLGate

log = logging.getLogger("monitor.browser")

# The proxy's own answers carry these headers; a per-process token in their names keeps a page's
# server from sending a look-alike that would be read as the proxy's verdict.
_TOKEN = secrets.token_hex(4)
BLOCKED_HEADER = f"X-Policy-Monitor-Blocked-{_TOKEN}"
PROXY_ERROR_HEADER = f"X-Policy-Monitor-Error-{_TOKEN}"
BLOCKED_TYPES = frozenset({"image", "media", "font"})
NETWORK_IDLE_CAP = 10.0  # seconds to wait for scripts to settle after the first paint
INSTALL_HINT = ("no Chromium found for browser sources: install Debian's "
                "(apt-get install chromium-headless-shell) or Playwright's own (python -m "
                "playwright install chromium), or set browser_executable in [settings]")
# Best first: the headless shells, then the full browsers.
PLAYWRIGHT_BUILDS = ("chromium_headless_shell-*/chrome-*/*headless*shell",
                     "chromium-*/chrome-linux*/chrome")
SYSTEM_BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
CHROMIUM_ARGS = (
    "--headless=new", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic", "--disable-dev-shm-usage", "--mute-audio",
    # No phone-home: crash reports, metrics, safe-browsing and certificate lists, domain
    # reliability beacons, default apps, DNS prefetch and preconnect (Chromium's own lookups,
    # outside the gate), hyperlink auditing pings, field trials.
    "--disable-breakpad", "--disable-crash-reporter", "--metrics-recording-only",
    "--disable-client-side-phishing-detection", "--safebrowsing-disable-auto-update",
    "--disable-domain-reliability", "--disable-default-apps", "--dns-prefetch-disable",
    "--no-pings", "--disable-field-trial-config", "--no-service-autorun",
    "--disable-search-engine-choice-screen", "--disable-background-timer-throttling",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    # Memory: a few renderer processes shared by all contexts (each context still has its own
    # cookies and storage), no per-site processes, no features a policy page does not need.
    "--renderer-process-limit=2", "--disable-site-isolation-trials", "--disable-extensions",
    "--disable-features=site-per-process,IsolateOrigins,Translate,MediaRouter,"
    "OptimizationHints,BackForwardCache,AutofillServerCommunication,DialMediaRouteProvider,"
    "CertificateTransparencyComponentUpdater,OptimizationGuideModelDownloading,"
    "OptimizationHintsFetching,NetworkPrediction,InterestFeedContentSuggestions,"
    "DnsOverHttps,AsyncDns",
    "--js-flags=--max-old-space-size=256", "--blink-settings=imagesEnabled=false",
    "--in-process-gpu", "--disable-software-rasterizer", "--disk-cache-size=1",
    "--aggressive-cache-discard", "--disable-back-forward-cache",
    "--enable-features=NetworkServiceInProcess2", "--use-gl=disabled",
)


def find_chromium(configured: Path | None = None) -> str | None:
    """The browser to drive: the configured one, else Playwright's own if installed, else one on
    PATH. Never downloads one. The headless shell comes first wherever both are present: it is
    the build Playwright itself uses for headless work, and it renders the same pages in about a
    quarter of the browser CPU and two thirds of the memory of the full browser."""
    if configured is not None:
        return str(configured) if configured.exists() else None
    # Where `python -m playwright install chromium` puts its builds (read without starting
    # Playwright's driver, which takes half a second).
    root = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or Path.home() / ".cache" / "ms-playwright")
    for pattern in PLAYWRIGHT_BUILDS:
        builds = sorted(root.glob(pattern), reverse=True)
        if builds:
            return str(builds[0])
    for name in SYSTEM_BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


# ---- the gating proxy --------------------------------------------------------------------------


class _ProxyHandler(socketserver.BaseRequestHandler):
    server: GateProxy

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(self.server.timeout_seconds)
        try:
            head = _read_head(sock)
        except (OSError, ValueError):
            return
        if head is None:
            return
        request_line, header_lines, rest = head
        try:
            method, target, version = request_line.split(" ", 2)
        except ValueError:
            return
        url = f"https://{target}/" if method == "CONNECT" else target
        try:
            host, port, addresses = self.server.gate.addresses(url)
            upstream = socket.create_connection((addresses[0], port),
                                                timeout=self.server.timeout_seconds)
            self.server.gate.check_peer(host, port, str(upstream.getpeername()[0]))
        except BlockedURLError as exc:
            self.server.refused(url, str(exc))
            _reply(sock, 403, str(exc))
            return
        except (OSError, ConnectionError, ValueError) as exc:
            _reply(sock, 502, f"cannot connect: {exc}")
            return
        with upstream:
            if method == "CONNECT":
                sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
            else:
                parts = urlsplit(target)
                path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                kept = [h for h in header_lines if h.split(":", 1)[0].strip().lower()
                        not in ("proxy-connection", "proxy-authorization", "connection", "keep-alive")]
                # One request per connection: the next one may be for another host, and must be
                # asked about again.
                upstream.sendall(f"{method} {path} {version}\r\n".encode("latin-1")
                                 + "".join(f"{h}\r\n" for h in kept).encode("latin-1")
                                 + b"Connection: close\r\n\r\n" + rest)
            if not _relay(sock, upstream, self.server.timeout_seconds) and method != "CONNECT":
                _reply(sock, 504, "the page did not finish loading: the server sent nothing for "
                             f"{self.server.timeout_seconds:g}s")


def _read_head(sock: socket.socket) -> tuple[str, list[str], bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 256 * 1024:
            raise ValueError("request head too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return lines[0], [ln for ln in lines[1:] if ln], rest


def _reply(sock: socket.socket, status: int, reason: str) -> None:
    body = reason.encode("utf-8", "replace")
    text = {403: "Forbidden", 502: "Bad Gateway", 504: "Gateway Timeout"}[status]
    safe = reason.replace("\r", " ").replace("\n", " ")[:300]
    head = (f"HTTP/1.1 {status} {text}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n{BLOCKED_HEADER if status == 403 else PROXY_ERROR_HEADER}: "
            f"{safe}\r\nConnection: close\r\n\r\n")
    with contextlib.suppress(OSError):
        sock.sendall(head.encode("utf-8", "replace") + body)


def _relay(a: socket.socket, b: socket.socket, idle: float) -> bool:
    """Copy bytes both ways until either side closes or nothing moves for `idle` seconds; whether
    `b` (the server) sent anything."""
    sockets = [a, b]
    answered = False
    while True:
        readable, _, _ = select_module.select(sockets, [], [], idle)
        if not readable:
            return answered
        for s in readable:
            try:
                data = s.recv(65536)
            except OSError:
                return answered
            if not data:
                return answered
            answered = answered or s is b
            other = b if s is a else a
            try:
                other.sendall(data)
            except OSError:
                return answered


class GateProxy(socketserver.ThreadingTCPServer):
    """A loopback forward proxy that lets a request through only if the URL gate allows it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, gate: URLGate, timeout_seconds: float) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.gate = gate
        self.timeout_seconds = timeout_seconds
        self.refusals: deque[tuple[str, str]] = deque(maxlen=200)  # (url, reason), latest last
        self._thread = threading.Thread(target=self.serve_forever, name="browser-proxy",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def refused(self, url: str, reason: str) -> None:
        log.info("browser request refused by the URL gate: %s (%s)", url, reason)
        self.refusals.append((url, reason))

    def close(self) -> None:
        self.shutdown()
        self.server_close()


# ---- the fetcher ---------------------------------------------------------------------------------


class BrowserFetcher:
    """Renders pages in one shared Chromium; thread-safe; `fetch` mirrors `fetch.Fetcher.fetch`."""

    kind = "browser"

    def __init__(self, settings: Settings, gate: URLGate | None = None,
                 executable: str | None = None) -> None:
        self.settings = settings
        self.gate = gate or URLGate(settings.allow_private_addresses)
        self.executable = executable if executable is not None else find_chromium(
            settings.browser_executable)
        self.checks = 0
        self.launches = 0
        self._proxy: GateProxy | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._playwright: Any = None
        self._browser: Any = None
        self._semaphore: asyncio.Semaphore | None = None
        self._launch_lock: asyncio.Lock | None = None
        self._since_launch = 0

    @property
    def available(self) -> bool:
        return self.executable is not None

    @property
    def refusals(self) -> list[tuple[str, str]]:
        return list(self._proxy.refusals) if self._proxy else []

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._proxy = GateProxy(self.gate, max(self.settings.connect_timeout,
                                                       self.settings.read_timeout))
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="browser", daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
              headers: Mapping[str, str] | None = None, locale: str | None = None,
              select: tuple[str, ...] = ()) -> FetchResult:
        """Render the URL and return its DOM. Conditional GET does not apply (etag and
        last_modified are ignored): the check's fingerprint fast path carries that cost."""
        del etag, last_modified
        if not self.available:
            raise FetchError(FailureKind.PERMANENT, INSTALL_HINT)
        try:
            self.gate.check(url)
        except ConnectionError as exc:
            raise FetchError(FailureKind.TRANSIENT, str(exc)) from None
        loop = self._start()
        future = asyncio.run_coroutine_threadsafe(
            self._render(url, dict(headers or {}), locale, select), loop)
        try:
            return future.result(timeout=self.settings.total_timeout + 30)
        except FutureTimeout:
            future.cancel()
            raise FetchError(FailureKind.TRANSIENT, "the browser did not answer; it will be "
                                                    "restarted") from None

    async def _ready(self) -> Any:
        """The running browser, launched or relaunched as needed (after N checks or a crash)."""
        assert self._launch_lock is not None
        async with self._launch_lock:
            restart = self.settings.browser_restart_after
            if self._browser is not None and (not self._browser.is_connected()
                                              or (restart and self._since_launch >= restart)
                                              or self._over_memory_cap()):
                await self._close_browser()
            if self._browser is None:
                from playwright.async_api import async_playwright

                if self._playwright is None:
                    # Playwright's driver is a Node.js process; its heap grows with every page it
                    # has seen. A cap keeps it small; the browser restart after N checks renews it.
                    os.environ.setdefault("NODE_OPTIONS", "--max-old-space-size=48 --max-semi-space-size=1")
                    self._playwright = await async_playwright().start()
                assert self._proxy is not None
                self._browser = await self._playwright.chromium.launch(
                    executable_path=self.executable, headless=True,
                    args=[*CHROMIUM_ARGS, "--proxy-bypass-list=<-loopback>"],
                    proxy={"server": self._proxy.url},
                    handle_sigint=False, handle_sigterm=False, handle_sighup=False)
                self._since_launch = 0
                self.launches += 1
            self._since_launch += 1
            return self._browser

    def _over_memory_cap(self) -> bool:
        """Every tenth check: is the browser's resident memory above browser_memory_cap?"""
        cap = self.settings.browser_memory_cap
        if not cap or self._since_launch % 10:
            return False
        used = browser_memory(self.executable or "")
        if used > cap * 2**20:
            log.info("browser uses %d MB (cap %d MB); restarting it", used // 2**20, cap)
            return True
        return False

    async def _close_browser(self) -> None:
        browser, self._browser = self._browser, None
        if browser is not None:
            with contextlib.suppress(Exception):
                await browser.close()

    async def _render(self, url: str, headers: dict[str, str], locale: str | None,
                      select: tuple[str, ...]) -> FetchResult:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(max(1, self.settings.browser_pages))
            self._launch_lock = asyncio.Lock()
        async with self._semaphore:
            start = time.monotonic()
            try:
                browser = await self._ready()
            except Exception as exc:  # a browser that will not start is the machine's problem
                raise FetchError(FailureKind.PERMANENT,
                                 f"cannot start the browser {self.executable}: {_first_line(exc)}"
                                 ) from None
            self.checks += 1
            headers.pop("User-Agent", None)
            # Chromium's own identity plus ours: sites see a browser, and who runs it.
            agent = (f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     f"Chrome/{browser.version} Safari/537.36 {self.settings.user_agent}")
            try:
                context = await browser.new_context(
                    user_agent=agent, locale=locale or None,
                    extra_http_headers=headers, service_workers="block", accept_downloads=False)
            except Exception as exc:  # the browser died between checks
                await self._close_browser()
                raise FetchError(FailureKind.TRANSIENT, f"the browser failed: {_first_line(exc)}; "
                                                        "it will be restarted") from None
            refused: list[str] = []  # documents (of any frame) the gate refused to load
            try:
                await context.route("**/*", _route)
                page = await context.new_page()
                halt = asyncio.Event()  # set by the first refused navigation: stop waiting
                page.on("response", lambda response: _watch_navigation(response, refused, halt))
                return await asyncio.wait_for(self._load(page, url, select, start, refused, halt),
                                              timeout=self.settings.total_timeout)
            except FetchError:
                raise
            except Exception as exc:
                if refused:  # e.g. the content was read while the refused navigation replaced it
                    raise BlockedURLError(
                        f"the page navigated to a refused address: {refused[0]}") from None
                if "download is starting" in str(exc).lower():
                    raise FetchError(FailureKind.PERMANENT,
                                     "the URL serves a file, not a page") from None
                # asyncio's deadline, or Playwright's own TimeoutError from page.goto
                if type(exc).__name__ == "TimeoutError":
                    raise FetchError(FailureKind.TRANSIENT,
                                     f"the page did not finish loading within "
                                     f"{self.settings.total_timeout:g}s") from None
                if not browser.is_connected():
                    await self._close_browser()
                raise FetchError(FailureKind.TRANSIENT, f"rendering failed: {_first_line(exc)}"
                                 ) from None
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(context.close(), timeout=10)

    async def _load(self, page: Any, url: str, select: tuple[str, ...], start: float,
                    refused: list[str], halt: asyncio.Event) -> FetchResult:
        total = self.settings.total_timeout
        response = await page.goto(url, wait_until="domcontentloaded", timeout=total * 1000)
        if response is None:
            raise FetchError(FailureKind.PERMANENT, "the browser got no response")
        status = response.status
        headers = await response.all_headers()
        if status == 403 and BLOCKED_HEADER.lower() in headers:
            raise BlockedURLError(headers[BLOCKED_HEADER.lower()])
        if PROXY_ERROR_HEADER.lower() in headers:  # the server never answered, or cannot be reached
            raise FetchError(FailureKind.TRANSIENT, headers[PROXY_ERROR_HEADER.lower()])
        if status >= 400:
            raise status_error(status, response.status_text, headers.get("retry-after"))
        remaining = max(0.5, total - (time.monotonic() - start))
        # A page that keeps polling is still a page; no match is reported by extraction.
        await _unless(halt, page.wait_for_load_state(
            "networkidle", timeout=min(remaining, NETWORK_IDLE_CAP) * 1000))
        if select and not halt.is_set():
            remaining = max(0.5, total - (time.monotonic() - start))
            await _unless(halt, page.wait_for_function(
                "sel => { const e = document.querySelector(sel); "
                "return !!e && e.innerText.trim().length > 0; }",
                arg=", ".join(select), timeout=min(remaining, NETWORK_IDLE_CAP) * 1000))
        html = await page.content()
        if refused:  # the page sent itself (or a frame) where the gate said no
            raise BlockedURLError(f"the page navigated to a refused address: {refused[0]}")
        final = page.url  # where the main document ended, after any script or meta navigation
        if urlsplit(final).scheme.lower() not in ("http", "https"):
            raise FetchError(FailureKind.TRANSIENT,
                             f"the page navigated away to {final[:200]} instead of a web page")
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.gate.check, final)
        except BlockedURLError as exc:
            raise BlockedURLError(f"the page navigated to {final[:200]}: {exc.reason}") from None
        body = html.encode("utf-8")
        if len(body) > self.settings.max_bytes:
            raise FetchError(FailureKind.PERMANENT,
                             f"body too large: more than {self.settings.max_bytes} bytes",
                             status=status)
        chain = []
        request = response.request.redirected_from
        while request is not None:
            chain.append(request.url)
            request = request.redirected_from
        # The address that was checked (after the server's redirects), never where a script
        # sent the page afterwards.
        return FetchResult(response.url, status, body, "text/html", "utf-8", None, None,
                           time.monotonic() - start, tuple(reversed(chain)))

    def close(self) -> None:
        """Close the browser, Playwright and the proxy (the daemon's shutdown calls this)."""
        loop = self._loop
        if loop is None:
            return

        async def stop() -> None:
            await self._close_browser()
            if self._playwright is not None:
                with contextlib.suppress(Exception):
                    await self._playwright.stop()
                self._playwright = None

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._proxy is not None:
            self._proxy.close()
        self._loop = None


def browser_memory(executable: str) -> int:
    """Resident bytes of this process's Chromium processes (proportional set size, so pages
    they share count once), read from /proc; 0 where /proc is not there."""
    total = 0
    for pid in descendants(os.getpid()):
        with contextlib.suppress(OSError, ValueError, StopIteration, IndexError):
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
            if "chrom" not in Path(argv0).name and Path(argv0).name != Path(executable).name:
                continue  # the wrapper script execs the real binary under another path
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            pss = next(line for line in rollup.splitlines() if line.startswith("Pss:"))
            total += int(pss.split()[1]) * 1024
    return total


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, grandchildren…), from /proc; [] where there is none."""
    parents: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = (entry / "stat").read_text()
                    parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [p for p, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


async def _route(route: Any) -> None:
    """Before the proxy: no local schemes, and no images, media or fonts (text is what we keep)."""
    request = route.request
    scheme = urlsplit(request.url).scheme.lower()
    if scheme not in ("http", "https") or request.resource_type in BLOCKED_TYPES:
        await route.abort("blockedbyclient")
        return
    await route.continue_()


def _watch_navigation(response: Any, refused: list[str], halt: asyncio.Event) -> None:
    """Note a document the gating proxy refused: a navigation of any frame (script `location`,
    meta refresh, a submitted form, a frame's src) answered with the gate's own refusal."""
    with contextlib.suppress(Exception):  # a response of a page being torn down
        request = response.request
        if request.is_navigation_request() and response.status == 403 \
                and BLOCKED_HEADER.lower() in response.headers:
            refused.append(request.url)
            halt.set()


async def _unless(halt: asyncio.Event, waiting: Awaitable[Any]) -> None:
    """Wait for `waiting` (its failure or timeout is an answer too) unless `halt` is set first:
    a page that sent itself to a refused address is failed at once, not after the settling
    waits run out on the refusal page (10 s each)."""
    task = asyncio.ensure_future(waiting)
    stop = asyncio.ensure_future(halt.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stop):
            pending.cancel()
        with contextlib.suppress(BaseException):  # retrieved, so never "never retrieved"
            await task


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
