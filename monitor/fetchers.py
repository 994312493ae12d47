"""Which fetcher gets a page: a registry from a source's `fetcher` kind to the function that
fetches it, and one builder, so the daemon and a one-shot `check` fetch alike.

`http` asks over HTTP with the stored validators; `browser` renders in Chromium; `auto` is a
fetcher of its own that asks over HTTP and renders once when the answer looks like an
application shell or a bot wall. Adding a kind is one function and one registry entry (and
its name in config.FETCHERS, which a test holds equal to this registry).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitor.errors import ExtractError, FailureKind, FetchError
from monitor.extract import extract
from monitor.fetch import Fetcher, FetchResult, PageFetcher
from monitor.robots import RobotsCache

if TYPE_CHECKING:
    from monitor.config import Settings, Source
    from monitor.store import SourceState

log = logging.getLogger("monitor.fetchers")

RENDERING = frozenset({"browser", "auto"})  # the kinds that may need a browser
AUTO_ESCALATE_STATUS = frozenset({403, 406, 429, 999})  # what bot protection answers a script


@dataclass(frozen=True)
class Fetched:
    """A page as fetched: the answer, which fetcher produced it, and its text when the fetcher
    already extracted it (`auto` reads the text to decide whether to render)."""

    result: FetchResult
    used: str
    text: str | None = None


class Fetchers:
    """The fetchers of one process: HTTP always, the browser when a source may need one, and
    the robots.txt cache when robots are respected."""

    def __init__(self, http: PageFetcher, *, browser: PageFetcher | None = None,
                 robots: RobotsCache | None = None, default: str = "http",
                 later: Callable[[], PageFetcher | None] | None = None) -> None:
        self.http, self.browser, self.robots, self.default = http, browser, robots, default
        self.later = later  # makes the browser at the first page that needs it
        self.lock = threading.Lock()

    @classmethod
    def build(cls, settings: Settings, sources: Iterable[Source] | None,
              warn: Callable[[str], None] = log.warning) -> Fetchers:
        """The one place fetchers are made (the CLI's `check` and the daemon both call it).
        `sources=None`: the list is not known here (the daemon's is in the database), so the
        browser is made, and its absence reported, when a source first needs it."""
        http = Fetcher(settings)
        robots = RobotsCache(http, settings.user_agent) if settings.respect_robots else None

        def browser() -> PageFetcher | None:
            # Imported here: most lists need no browser, and its module costs start-up time.
            from monitor.browser import INSTALL_HINT, BrowserFetcher

            made = BrowserFetcher(settings)  # cheap: Chromium starts at the first page
            if not made.available:
                warn(f"{INSTALL_HINT}; sources that need a browser will fail")
            return made

        if sources is None:
            return cls(http, robots=robots, default=settings.fetcher, later=browser)
        rendering = any((s.fetcher or settings.fetcher) in RENDERING for s in sources)
        return cls(http, browser=browser() if rendering else None, robots=robots,
                   default=settings.fetcher)

    def kind(self, source: Source) -> str:
        return source.fetcher or self.default

    def fetch(self, source: Source, state: SourceState) -> Fetched:
        return FETCHERS[self.kind(source)](self, source, state)

    def render(self, source: Source) -> FetchResult:
        if self.browser is None and self.later is not None:
            with self.lock:
                if self.later is not None:
                    self.browser, self.later = self.later(), None
        if self.browser is None:
            from monitor.browser import INSTALL_HINT

            raise FetchError(FailureKind.PERMANENT, INSTALL_HINT)
        return self.browser.fetch(source.url, headers=dict(source.headers), locale=source.locale,
                                  select=source.select)

    def close(self) -> None:
        self.http.close()
        if self.browser is not None:
            self.browser.close()


def _http(fetchers: Fetchers, source: Source, state: SourceState) -> Fetched:
    known = state.current_snapshot_id is not None
    return Fetched(fetchers.http.fetch(
        source.url, headers=dict(source.headers), locale=source.locale,
        etag=state.etag if known else None,
        last_modified=state.last_modified if known else None), "http")


def _browser(fetchers: Fetchers, source: Source, state: SourceState) -> Fetched:
    return Fetched(fetchers.render(source), "browser")


def _auto(fetchers: Fetchers, source: Source, state: SourceState) -> Fetched:
    """HTTP first; render once when the answer is a bot-protection status, a selection that
    matches nothing, or text empty or much shorter than the last version's."""
    try:
        fetched = _http(fetchers, source, state)
    except FetchError as exc:
        if exc.status in AUTO_ESCALATE_STATUS:
            log.info("source=%s http answered %s; rendering in the browser", source.name, exc.status)
            return _browser(fetchers, source, state)
        raise
    result = fetched.result
    if result.not_modified:
        return fetched
    try:
        text = extract(result.body, result.content_type, result.charset, source, result.url)
    except ExtractError as exc:
        log.info("source=%s static page: %s; rendering in the browser", source.name, exc)
        return _browser(fetchers, source, state)
    previous = state.current_text_size or 0
    if not text.strip() or (previous and len(text.encode("utf-8")) < previous // 2):
        log.info("source=%s static text is empty or much shorter; rendering", source.name)
        return _browser(fetchers, source, state)
    return Fetched(result, "http", text)


FETCHERS: dict[str, Callable[[Fetchers, Source, SourceState], Fetched]] = {
    "http": _http,
    "browser": _browser,
    "auto": _auto,
}
