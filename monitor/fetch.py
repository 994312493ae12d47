"""One polite HTTP GET → bytes + metadata. Never parses HTML; never lets requests guess a charset.

Every failure leaves as a FetchError whose kind (transient / permanent / blocked) tells the
scheduler what to do next.
"""

from __future__ import annotations

import contextlib
import email.utils
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Protocol
from urllib.parse import urljoin

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from monitor.config import Settings
from monitor.errors import BlockedURLError, FailureKind, FetchError
from monitor.urlgate import URLGate

MAX_REDIRECTS = 10
RETRY_AFTER_CAP = 6 * 3600.0  # a host asking for more than this just waits for the next cycle
_REDIRECTS = {301, 302, 303, 307, 308}
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CHUNK = 64 * 1024
DEADLINE = "total deadline exceeded"
RATE_GRACE = 5.0  # seconds of a body before the minimum transfer rate applies


class Exchange:
    """One fetch (all its redirects) as the reaper sees it: its deadline and open sockets."""

    def __init__(self, deadline: float, started: float) -> None:
        self.deadline = deadline
        self.started = started
        self.sockets: list[socket.socket] = []
        self.received = 0  # body bytes so far
        self.body_started: float | None = None
        self.expired: str | None = None  # why the reaper cut it off

    def abort(self, reason: str) -> None:
        self.expired = reason
        for sock in self.sockets:
            with contextlib.suppress(OSError):  # already closed: nothing left to stop
                sock.shutdown(socket.SHUT_RDWR)


class Reaper:
    """Enforces each fetch's total deadline and minimum transfer rate from outside the fetch.

    A server that trickles headers or body a byte at a time restarts the socket's read
    timeout with every byte, and a deadline checked between reads is never reached while a
    read blocks. This thread shuts the sockets of an overdue exchange down, which makes the
    blocked read return at once, whatever phase (connect, TLS, headers, body) it is in.
    """

    def __init__(self, min_rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_rate = min_rate
        self.clock = clock
        self.lock = threading.Lock()
        self.active: set[Exchange] = set()
        self.local = threading.local()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def current(self) -> Exchange | None:
        return getattr(self.local, "exchange", None)

    @contextlib.contextmanager
    def watch(self, exchange: Exchange) -> Iterator[Exchange]:
        with self.lock:
            self.active.add(exchange)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="fetch-reaper", daemon=True)
                self.thread.start()
        self.local.exchange = exchange
        try:
            yield exchange
        finally:
            self.local.exchange = None
            with self.lock:
                self.active.discard(exchange)

    def register(self, sock: socket.socket) -> None:
        exchange = self.current()
        if exchange is not None:
            exchange.sockets.append(sock)
            if exchange.expired:
                exchange.abort(exchange.expired)

    def _run(self) -> None:
        pause = 0.2
        while True:
            self.wake.wait(pause)
            now = self.clock()
            with self.lock:
                exchanges = list(self.active)
            # Wake at the next deadline, not up to a poll interval after it: a 6 s deadline
            # then costs 6.0 s, not 6.2 (the rate check still runs every 0.2 s).
            pause = min([0.2, *(ex.deadline - now for ex in exchanges if not ex.expired)])
            pause = max(pause, 0.005)
            for ex in exchanges:
                if ex.expired:
                    continue
                if now > ex.deadline:
                    ex.abort(DEADLINE)
                elif self.min_rate and ex.body_started is not None \
                        and now - ex.body_started > RATE_GRACE \
                        and ex.received / (now - ex.body_started) < self.min_rate:
                    ex.abort(f"slower than the minimum transfer rate of {self.min_rate:g} bytes/s")


class PageFetcher(Protocol):
    """What a check needs of a fetcher: the HTTP one here, the rendering one in browser.py."""

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
              headers: Mapping[str, str] | None = None, locale: str | None = None,
              select: tuple[str, ...] = ()) -> FetchResult: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class FetchResult:
    """What the server answered. `body` is empty for a 304."""

    url: str
    status: int
    body: bytes
    content_type: str
    charset: str | None
    etag: str | None
    last_modified: str | None
    elapsed: float
    redirects: tuple[str, ...] = ()

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """RFC 9110 §10.2.3: delta-seconds or an HTTP-date; garbage counts as absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return min(max(when.timestamp() - now, 0.0), RETRY_AFTER_CAP)


def split_content_type(header: str | None) -> tuple[str, str | None]:
    """'text/html; charset=UTF-8' → ('text/html', 'utf-8')."""
    if not header:
        return "", None
    parts = [p.strip() for p in header.split(";")]
    media = parts[0].lower()
    charset = None
    for param in parts[1:]:
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip():
            charset = val.strip().strip("\"'").lower()
    return media, charset


def _gated(base: type[HTTPConnection], gate: URLGate,
           reaper: Reaper | None = None) -> type[HTTPConnection]:
    """A connection class that checks the address it actually connected to.

    The gate resolves names before fetching, but the socket resolves them again: a DNS answer
    that changes in between (rebinding) would reach loopback. Checking the peer right after
    connect, before any request byte is sent, closes that gap (CVE-2026-27696).
    """

    class Gated(base):  # type: ignore[valid-type,misc]
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            if reaper is not None:
                reaper.register(sock)  # before TLS: a trickled handshake is cut off too
            return sock

        def request(self, *args: Any, **kwargs: Any) -> None:
            sock = getattr(self, "sock", None)
            if reaper is not None and sock is not None:
                reaper.register(sock)  # a kept-alive connection joins this fetch's watch too
            super().request(*args, **kwargs)

        def connect(self) -> None:
            super().connect()
            sock = getattr(self, "sock", None)
            if sock is None:
                return
            try:
                gate.check_addresses(str(self.host), [str(sock.getpeername()[0])])
            except BlockedURLError:
                self.close()
                raise

    return Gated


class GatedAdapter(HTTPAdapter):
    """requests' adapter with connection pools whose connections pass the URL gate."""

    def __init__(self, gate: URLGate, reaper: Reaper | None = None, **kwargs: Any) -> None:
        self.gate = gate
        self.reaper = reaper
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http_cls = type("GatedHTTPPool", (HTTPConnectionPool,),
                        {"ConnectionCls": _gated(HTTPConnection, self.gate, self.reaper)})
        https_cls = type("GatedHTTPSPool", (HTTPSConnectionPool,),
                         {"ConnectionCls": _gated(HTTPSConnection, self.gate, self.reaper)})
        self.poolmanager.pool_classes_by_scheme = {"http": http_cls, "https": https_cls}
        self.poolmanager.key_fn_by_scheme = dict(self.poolmanager.key_fn_by_scheme)


class Fetcher:
    """Holds one pooled session; safe to share between threads for independent requests."""

    def __init__(
        self,
        settings: Settings,
        gate: URLGate | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.gate = gate or URLGate(settings.allow_private_addresses)
        self.clock = clock
        self.session = requests.Session()
        self.session.trust_env = False  # a stray HTTP(S)_PROXY must not reroute around the gate
        self.session.max_redirects = MAX_REDIRECTS
        self.reaper = Reaper(settings.min_transfer_rate, clock)
        adapter = GatedAdapter(self.gate, self.reaper, pool_connections=32, pool_maxsize=32,
                               max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: Mapping[str, str] | None = None,
        locale: str | None = None,
        select: tuple[str, ...] = (),  # only the browser waits for it
    ) -> FetchResult:
        """GET the URL, following at most 10 redirects, each one re-checked by the gate."""
        del select
        start = self.clock()
        deadline = start + self.settings.total_timeout
        request_headers = {
            "User-Agent": self.settings.user_agent,
            "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,text/markdown;q=0.9,*/*;q=0.1",
            "Accept-Encoding": "gzip, deflate",
        }
        if locale:
            request_headers["Accept-Language"] = locale
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        request_headers.update(headers or {})

        with self.reaper.watch(Exchange(deadline, start)) as exchange:
            try:
                result = self._exchange(url, request_headers, start, deadline)
                if exchange.expired:  # a cut-off can look like a short but complete answer
                    raise self._cut_off(exchange, start)
                return result
            except FetchError:
                if exchange.expired:
                    raise self._cut_off(exchange, start) from None
                raise
            except Exception:
                if exchange.expired:  # whatever the aborted read raised, this is why
                    raise self._cut_off(exchange, start) from None
                raise

    def _cut_off(self, exchange: Exchange, start: float) -> FetchError:
        got = f"{exchange.received} bytes of body" if exchange.received else "no body"
        detail = f"{got} in {self.clock() - start:.1f}s"
        if exchange.expired == DEADLINE:
            detail = f"{self.settings.total_timeout:g}s allowed; {detail}"
        return FetchError(FailureKind.TRANSIENT, f"{exchange.expired} ({detail})")

    def _exchange(self, url: str, request_headers: dict[str, str], start: float,
                  deadline: float) -> FetchResult:
        hops: list[str] = []
        current = url
        while True:
            self._gate(current)
            response = self._get(current, request_headers, deadline)
            try:
                if response.status_code in _REDIRECTS and response.headers.get("Location"):
                    nxt = urljoin(current, response.headers["Location"])
                    if nxt in hops or nxt == current or len(hops) >= MAX_REDIRECTS:
                        raise FetchError(
                            FailureKind.PERMANENT,
                            f"redirect loop or more than {MAX_REDIRECTS} redirects (last: {nxt})",
                            status=response.status_code,
                        )
                    hops.append(current)
                    current = nxt
                    continue
                return self._finish(response, current, tuple(hops), start, deadline)
            finally:
                response.close()

    def _gate(self, url: str) -> None:
        try:
            self.gate.check(url)
        except ConnectionError as exc:
            raise FetchError(FailureKind.TRANSIENT, str(exc)) from None

    def _get(self, url: str, headers: Mapping[str, str], deadline: float) -> requests.Response:
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise FetchError(FailureKind.TRANSIENT, "total deadline exceeded")
        timeout = (
            min(self.settings.connect_timeout, remaining),
            min(self.settings.read_timeout, remaining),
        )
        try:
            return self.session.get(
                url, headers=dict(headers), timeout=timeout, stream=True, allow_redirects=False
            )
        except requests.exceptions.Timeout:
            raise FetchError(FailureKind.TRANSIENT, f"timed out after {timeout[1]:g}s") from None
        except requests.exceptions.SSLError as exc:
            raise FetchError(FailureKind.PERMANENT, f"TLS error: {_short(exc)}") from None
        except requests.exceptions.ConnectionError as exc:
            raise FetchError(FailureKind.TRANSIENT, f"connection failed: {_short(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise FetchError(FailureKind.PERMANENT, f"request failed: {_short(exc)}") from None

    def _finish(
        self,
        response: requests.Response,
        url: str,
        hops: tuple[str, ...],
        start: float,
        deadline: float,
    ) -> FetchResult:
        status = response.status_code
        media, charset = split_content_type(response.headers.get("Content-Type"))
        etag = response.headers.get("ETag")
        last_modified = response.headers.get("Last-Modified")
        if status == 304:
            return FetchResult(url, 304, b"", media, charset, etag, last_modified,
                               self.clock() - start, hops)
        if status >= 400 or status < 200 or status in _REDIRECTS:
            raise self._status_error(response)
        body = self._read_body(response, deadline)
        return FetchResult(url, status, body, media, charset, etag, last_modified,
                           self.clock() - start, hops)

    def _status_error(self, response: requests.Response) -> FetchError:
        return status_error(response.status_code, response.reason, response.headers.get("Retry-After"))

    def _read_body(self, response: requests.Response, deadline: float) -> bytes:
        """Stream the decoded body under a byte cap and a total deadline (also stops gzip bombs)."""
        limit = self.settings.max_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit and "Content-Encoding" not in response.headers:
            raise FetchError(
                FailureKind.PERMANENT,
                f"body too large: {int(declared)} bytes declared, limit is {limit}",
                status=response.status_code,
            )
        chunks: list[bytes] = []
        size = 0
        exchange = self.reaper.current()
        if exchange is not None:
            exchange.body_started = self.clock()
        try:
            # read1 returns what has arrived (at most a chunk) instead of waiting for a whole
            # chunk, so the byte count the reaper judges the transfer rate by is current.
            while chunk := response.raw.read1(_CHUNK, decode_content=True):
                size += len(chunk)
                if exchange is not None:
                    exchange.received = size
                if size > limit:
                    raise FetchError(
                        FailureKind.PERMANENT,
                        f"body too large: more than {limit} bytes",
                        status=response.status_code,
                    )
                if self.clock() > deadline:  # noticed between reads, before the reaper did
                    if exchange is not None:
                        exchange.abort(DEADLINE)
                    raise FetchError(FailureKind.TRANSIENT, DEADLINE)
                chunks.append(chunk)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise FetchError(
                FailureKind.TRANSIENT, f"body incomplete: {_short(exc)}", status=response.status_code
            ) from None
        return b"".join(chunks)


def status_error(status: int, reason_text: str | None, retry_after_header: str | None) -> FetchError:
    """The failure an HTTP status means, for the HTTP and the browser fetcher alike."""
    reason = f"HTTP {status} {reason_text or ''}".strip()
    retry_after = parse_retry_after(retry_after_header)
    if status in _TRANSIENT_STATUS:
        kind = FailureKind.TRANSIENT
    elif status in (401, 403, 451):
        kind = FailureKind.BLOCKED
        if status == 403:
            reason += " (probably bot protection)"
    else:
        kind = FailureKind.PERMANENT
    if status in _REDIRECTS:
        reason = f"HTTP {status} redirect without a Location header"
    return FetchError(kind, reason, status=status, retry_after=retry_after)


def _short(exc: BaseException) -> str:
    """The innermost useful message of a requests/urllib3 exception, one line."""
    text = str(exc)
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.strip("()'\" ").splitlines()[0][:300] if text else type(exc).__name__
