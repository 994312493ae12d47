"""When to check next, and when a host may be asked again. Pure: clock and randomness injected.

One place for every timing decision, so the daemon, the one-shot `check` and the tests agree.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

FIRST_SPREAD_CAP = 600.0  # never-checked or long-overdue sources start within 10 minutes
BACKOFF_CAP = 8  # a failing source waits at most 8 intervals


RETRY_LADDER = (60.0, 300.0, 900.0, 3600.0)  # transient failures retry after 1 min, 5, 15, 1 h
LADDER_JITTER = 0.2  # a ladder step is spread by up to a fifth of itself


@dataclass(frozen=True)
class Policy:
    interval: float
    jitter: float
    per_host_delay: float
    retry_ladder: tuple[float, ...] = RETRY_LADDER


def backoff_factor(consecutive_failures: int) -> int:
    """1 for a healthy source, then 2, 4, 8 intervals after 2, 3, 4+ failures in a row."""
    if consecutive_failures <= 1:
        return 1
    return int(min(2 ** (consecutive_failures - 1), BACKOFF_CAP))


def next_check(
    finished: datetime, interval: float, jitter: float, consecutive_failures: int,
    rng: random.Random, *, transient: bool = False, ladder: tuple[float, ...] = (),
) -> datetime:
    """End of the last check + a delay + random jitter.

    A transient failure (no network, DNS, timeout, 5xx, 429) says nothing about the page, so it
    climbs a short ladder of retries that does not depend on the interval, then falls back to
    the interval: a laptop offline for a minute at start-up is watching again minutes later,
    not a day later. Other failures (the page is gone, we are refused) back off by multiples
    of the interval, since asking again soon would not help and would not be polite.
    """
    if transient and consecutive_failures and ladder:
        step = consecutive_failures - 1
        delay = min(ladder[step], interval) if step < len(ladder) else interval
        spread = min(max(jitter, 0.0), delay * LADDER_JITTER)
    else:
        delay = interval * backoff_factor(consecutive_failures)
        spread = max(jitter, 0.0)
    return finished + timedelta(seconds=delay + rng.uniform(0, spread))


def first_check(now: datetime, interval: float, rng: random.Random) -> datetime:
    """Spread sources that were never checked (or are overdue at start) over a short window.

    At most one interval and at most 10 minutes, so a restart after three days down checks
    every source once, soon, without a burst at the same second.
    """
    return now + timedelta(seconds=rng.uniform(0, min(interval, FIRST_SPREAD_CAP)))


def host_next_allowed(
    finished: datetime, per_host_delay: float, crawl_delay: float | None,
    retry_after: float | None,
) -> datetime:
    """The earliest time the host may be asked again: politeness, Crawl-delay, Retry-After."""
    gap = max(per_host_delay, crawl_delay or 0.0, retry_after or 0.0)
    return finished + timedelta(seconds=gap)


ONE_SHOT_MAX_WAIT = 120.0  # a one-shot `check` waits this long at most for a host's turn


def one_shot_wait(now: datetime, allowed: datetime | None) -> float | None:
    """Seconds a one-shot `check` waits before asking a host (0 when its turn has come), or
    None when the host asked for a longer rest than anyone would wait at a terminal (a
    Retry-After of an hour): that source is left for later, not checked impolitely."""
    if allowed is None or allowed <= now:
        return 0.0
    gap = (allowed - now).total_seconds()
    return gap if gap <= ONE_SHOT_MAX_WAIT else None


SHRINK_RATIO = 0.2  # a new text under 20% of the previous one is suspect (reliability.md F10)
TINY_TEXT = 200  # …and so is one under 200 characters replacing a real page


# A text current within this window that comes back is not news (a page that flaps).
FLAP_WINDOW = timedelta(days=30)


def looks_truncated(previous_size: int, new_size: int) -> bool:
    """A 200 response whose text collapsed: a captcha, a block page or a page that half-loaded.

    Such a text is not stored as a version (it would alert "everything was removed") unless
    the same text comes back on the next check, which makes it real.
    """
    if previous_size < 1000:
        return False
    return new_size < previous_size * SHRINK_RATIO or new_size < TINY_TEXT


def host_of(url: str) -> str:
    """The politeness key of a URL: its lower-cased host name."""
    start = url.find("://") + 3 if "://" in url else 0
    ends = [i for i in (url.find("/", start), url.find("?", start), url.find("#", start)) if i >= 0]
    return _host_of_origin(url[:min(ends)] if ends else url)


@functools.lru_cache(maxsize=8192)
def _host_of_origin(origin: str) -> str:
    """Parsed once per scheme://host:port: 100,000 sources on 2,500 hosts parse 2,500 URLs."""
    return (urlsplit(origin).hostname or origin).lower()
