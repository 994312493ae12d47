"""The single answer to "may we fetch this URL?", asked for the first URL and every redirect hop.

Threat model: whoever edits sources.toml is trusted, but pages are not: a redirect or a DNS
answer chosen by a page's host must not reach loopback, the LAN or cloud metadata
(changedetection.io CVE-2026-27696, GHSA-gwph-fp79-379w, CVE-2024-51483).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from monitor.errors import BlockedURLError

Resolver = Callable[[str, int], list[str]]
ALLOWED_SCHEMES = ("http", "https")


def system_resolver(host: str, port: int) -> list[str]:
    """All addresses a host resolves to; a name is refused if any one of them is refused."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def address_allowed(address: str, allow_private: bool) -> bool:
    """Public unicast only, unless private addresses are explicitly allowed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback in disguise
    if ip.is_multicast or ip.is_unspecified:
        return False
    # `is_global` (not `is_private`) also refuses CGNAT 100.64/10 (GHSA-gwph-fp79-379w).
    return allow_private or ip.is_global


class URLGate:
    """Checks scheme, host and resolved addresses of one URL."""

    def __init__(self, allow_private: bool = False, resolver: Resolver = system_resolver) -> None:
        self.allow_private = allow_private
        self.resolver = resolver

    def check(self, url: str) -> None:
        """Raise BlockedURLError unless the URL may be fetched."""
        self.addresses(url)

    def addresses(self, url: str) -> tuple[str, int, list[str]]:
        """(host, port, checked addresses) of a URL that may be fetched; connect to these, not
        to a fresh lookup of the name (DNS rebinding). Raises BlockedURLError otherwise."""
        if "\\" in url or any(ord(c) < 33 for c in url):
            raise BlockedURLError(f"refused URL with a backslash or control character: {url!r}")
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise BlockedURLError(f"refused {scheme or 'scheme-less'} URL (only http and https)")
        host = parts.hostname
        if not host:
            raise BlockedURLError(f"refused URL without a host: {url!r}")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise BlockedURLError(f"refused URL with an invalid port: {url!r}") from None
        try:
            addresses = self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            # Not a refusal: DNS failures are usually transient. The caller classifies.
            raise ConnectionError(f"cannot resolve {host}: {exc}") from exc
        self.check_addresses(host, addresses)
        return host, port, addresses

    def check_peer(self, host: str, port: int, address: str) -> None:
        """The address a connection actually reached (after connect, before any request byte)."""
        self.check_addresses(host, [address])

    def check_addresses(self, host: str, addresses: list[str]) -> None:
        if not addresses:
            raise ConnectionError(f"cannot resolve {host}: no addresses")
        for address in addresses:
            if not address_allowed(address, self.allow_private):
                raise BlockedURLError(
                    f"refused {host}: it resolves to the non-public address {address} "
                    "(set allow_private_addresses = true to watch internal pages)"
                )
