"""The URL gate: every non-public destination is refused, however it is spelled."""

from __future__ import annotations

import pytest

from monitor.errors import BlockedURLError
from monitor.urlgate import URLGate, address_allowed


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "::1", "fc00::1", "fe80::1", "::ffff:127.0.0.1", "224.0.0.1", "::",
])
def test_reserved_addresses_are_refused(address: str) -> None:
    assert not address_allowed(address, allow_private=False)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_pass(address: str) -> None:
    assert address_allowed(address, allow_private=False)


@pytest.mark.parametrize("url", [
    "http://2130706433/", "http://0x7f000001/", "http://0177.0.0.1/", "http://127.1/",
    "http://localhost/", "http://[::1]:8080/",
])
def test_alternative_spellings_of_loopback_are_refused(url: str) -> None:
    with pytest.raises(BlockedURLError, match="non-public address"):
        URLGate().check(url)


def test_a_name_with_one_private_record_is_refused() -> None:
    gate = URLGate(resolver=lambda host, port: ["93.184.216.34", "10.1.2.3"])
    with pytest.raises(BlockedURLError, match=r"10\.1\.2\.3"):
        gate.check("https://mixed.example/")


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "file:/etc/passwd", "file:etc/passwd", "FILE:///x", "ftp://a.example/",
    "gopher://a.example/", "data:text/html,x", "javascript:alert(1)", "view-source:http://a.example/",
    "http://a.example\\@127.0.0.1/", "http:///nohost",
])
def test_scheme_and_shape_allowlist(url: str) -> None:
    gate = URLGate(resolver=lambda host, port: ["93.184.216.34"])
    with pytest.raises(BlockedURLError):
        gate.check(url)


def test_private_addresses_can_be_allowed_explicitly() -> None:
    URLGate(allow_private=True).check("http://127.0.0.1:9/")
