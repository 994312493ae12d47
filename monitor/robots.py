"""robots.txt per RFC 9309, fetched through our own gated fetcher and cached for 24 hours.

Protego matches the rules (longest match wins, Allow over Disallow on a tie, `*` and `$`):
the stdlib's parser takes the first match and knows no wildcards, so `Disallow: /` before
`Allow: /legal/` refused the very pages we watch. Fetching, the cache and the status rules
(401/403 mean "unavailable", a 5xx or no answer means "disallow for now") stay ours.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from protego import Protego

from monitor.errors import FailureKind, FetchError
from monitor.fetch import Fetcher

CACHE_SECONDS = 24 * 3600  # RFC 9309 §2.4: no longer than 24 hours
RETRY_UNREACHABLE = 600.0  # an unreachable robots.txt is asked again after 10 minutes
PARSE_LIMIT = 512 * 1024  # RFC 9309 §2.5: parse at least 500 KiB


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    crawl_delay: float | None
    reason: str = ""


class RobotsCache:
    """One parsed robots.txt per origin, shared by the worker threads of a process."""

    def __init__(self, fetcher: Fetcher, user_agent: str) -> None:
        self.fetcher = fetcher
        self.agent = user_agent.split("/")[0]
        self.lock = threading.Lock()
        # origin → (expires at, parser or None when unreachable, why)
        self.entries: dict[str, tuple[float, Protego | None, str]] = {}

    def check(self, url: str) -> Verdict:
        parts = urlsplit(url)
        origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        with self.lock:
            entry = self.entries.get(origin)
        if entry is None or time.monotonic() > entry[0]:
            parser, problem = self._load(origin)
            ttl = CACHE_SECONDS if parser is not None else RETRY_UNREACHABLE
            entry = (time.monotonic() + ttl, parser, problem)
            with self.lock:
                self.entries[origin] = entry
        _, parser, problem = entry
        if parser is None:
            # §2.3.1.4: unreachable robots.txt means complete disallow, for now.
            return Verdict(False, None, f"robots.txt unreachable ({problem}); not fetching")
        delay = parser.crawl_delay(self.agent)
        allowed = parser.can_fetch(url, self.agent)
        return Verdict(allowed, float(delay) if delay is not None else None,
                       "" if allowed else "disallowed by robots.txt")

    def _load(self, origin: str) -> tuple[Protego | None, str]:
        try:
            result = self.fetcher.fetch(origin + "/robots.txt")
        except FetchError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                # §2.3.1.3: "unavailable" means everything is allowed
                return Protego.parse(""), ""
            return None, exc.reason
        return Protego.parse(result.body[:PARSE_LIMIT].decode("utf-8", errors="replace")), ""


def blocked_error(verdict: Verdict) -> FetchError:
    kind = FailureKind.BLOCKED if "disallowed" in verdict.reason else FailureKind.TRANSIENT
    return FetchError(kind, verdict.reason)
