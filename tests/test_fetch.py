"""Fetcher details that a page can exploit or that politeness depends on."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.config import Settings
from monitor.errors import BlockedURLError, FailureKind, FetchError
from monitor.fetch import Fetcher, parse_retry_after
from monitor.urlgate import URLGate


def test_dns_rebinding_is_caught_at_connect_time(server: HTTPServer) -> None:
    """The name 'resolves' to a public address when checked but the socket lands on loopback."""
    server.expect_request("/p").respond_with_data("<p>internal</p>", content_type="text/html")
    gate = URLGate(allow_private=False, resolver=lambda host, port: ["93.184.216.34"])
    fetcher = Fetcher(Settings(), gate=gate)
    with pytest.raises(BlockedURLError, match=r"non-public address 127\.0\.0\.1"):
        fetcher.fetch(server.url_for("/p"))


class _TestServerIsPublic(URLGate):
    """Treats the loopback test server as if it were a public site; everything else as usual."""

    def check_addresses(self, host: str, addresses: list[str]) -> None:
        super().check_addresses(host, [a for a in addresses if a != "127.0.0.1"] or ["93.184.216.34"])


def test_redirect_to_a_private_address_is_refused_without_following(server: HTTPServer) -> None:
    server.expect_request("/r").respond_with_response(
        Response(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    gate = _TestServerIsPublic(allow_private=False)
    with pytest.raises(BlockedURLError, match=r"169\.254\.169\.254"):
        Fetcher(Settings(), gate=gate).fetch(server.url_for("/r"))
    assert len(server.log) == 1


def test_total_deadline_stops_a_trickling_body(server: HTTPServer) -> None:
    def trickle(_: Request) -> Response:
        def gen():
            for _ in range(50):
                time.sleep(0.1)
                yield b"<p>x</p>"
        return Response(gen(), content_type="text/html")

    server.expect_request("/t").respond_with_handler(trickle)
    settings = Settings(allow_private_addresses=True, read_timeout=1.0, total_timeout=1.0)
    start = time.monotonic()
    with pytest.raises(FetchError) as info:
        Fetcher(settings).fetch(server.url_for("/t"))
    assert info.value.kind is FailureKind.TRANSIENT
    assert "deadline" in info.value.reason
    assert time.monotonic() - start < 2.5


def test_429_carries_retry_after(server: HTTPServer) -> None:
    server.expect_request("/busy").respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "120"}))
    with pytest.raises(FetchError) as info:
        Fetcher(Settings(allow_private_addresses=True)).fetch(server.url_for("/busy"))
    assert info.value.kind is FailureKind.TRANSIENT
    assert info.value.retry_after == 120


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    in_90s = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(in_90s, now=now.timestamp()) == 90
    assert parse_retry_after("86400") == 6 * 3600  # capped: wait for the next cycle instead
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_charset_is_left_to_extraction(server: HTTPServer) -> None:
    server.expect_request("/c").respond_with_data("Café".encode("cp1252"),
                                                  content_type="text/html; charset=Windows-1252")
    result = Fetcher(Settings(allow_private_addresses=True)).fetch(server.url_for("/c"))
    assert result.body == "Café".encode("cp1252")  # bytes, never requests' guess
    assert (result.content_type, result.charset) == ("text/html", "windows-1252")
