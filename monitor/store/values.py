"""The values the store hands out and takes in: frozen, so a check holds facts, not rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor.errors import StoreError

if TYPE_CHECKING:
    from monitor import config as cfg
    from monitor.classify import Classification
    from monitor.diff import Diff
    from monitor.routing import Outgoing



@dataclass(frozen=True)
class SourceState:
    """What a check needs to know about a source before fetching it."""

    id: int
    etag: str | None
    last_modified: str | None
    fingerprint: str | None
    current_snapshot_id: int | None
    current_sha256: str | None
    current_text_blob: str | None
    current_raw_blob: str | None
    generation: int
    consecutive_failures: int = 0
    failing: bool = False
    host_id: int | None = None
    crawl_delay: float | None = None
    interval: float | None = None
    current_text_size: int | None = None  # bytes of the current version's text
    extraction_key: str | None = None  # how the stored history was read (extract.reading_key)


class LeaseLost(StoreError):
    """Another worker took over this source: this check must write nothing."""


@dataclass(frozen=True)
class Claim:
    """A source handed to this worker, with the token that must guard its commit."""

    source_id: int
    name: str
    host_id: int | None
    token: str
    due_at: datetime | None = None  # when it was planned to start: claim time minus this is lag
    spec: str | None = None  # the source's settings (config.Source.spec), read with the claim


@dataclass(frozen=True)
class Completion:
    """Scheduling side effects committed with a check: next check, host gap, lease release."""

    next_check_at: datetime
    host_next_allowed_at: datetime
    token: str | None = None  # None for a one-shot `check` that holds no lease
    failure_threshold: int = 3
    alert_outbox: tuple[Outgoing, ...] = ()  # who hears about "failing"/"recovered"


@dataclass(frozen=True)
class NewVersion:
    """A new text of a page, ready to store with its diff against the current one."""

    text: str
    sha256: str
    raw: bytes
    content_type: str
    charset: str | None
    url: str
    etag: str | None
    last_modified: str | None
    fingerprint: str
    diff: Diff | None
    classification: Classification | None = None
    outbox: tuple[Outgoing, ...] = ()  # instant alerts to queue with the change
    answer_outbox: tuple[Outgoing, ...] = ()  # answers subscriptions: told when the board moves
    event_window: timedelta = timedelta(0)  # an event's first alert waits this long for siblings
    fetcher: str = "http"  # which fetcher produced it: http or browser
    previous_text: str | None = None  # the current text it replaces, when the caller has it
    search_index: bool = True  # False only where the database is thrown away (replay)


@dataclass(frozen=True)
class StoredCheck:
    check_id: int
    outcome: str
    snapshot_id: int | None = None
    change_id: int | None = None


def synced_values(src: cfg.Source, watchlist: str, default_interval: float | None
                  ) -> dict[str, Any]:
    """The columns a sync keeps equal to a source's settings, besides its host (the interval
    only when one is set: a row keeps the one it has otherwise): one place for the sync that
    writes them and the one-shot check that finds them in step."""
    values: dict[str, Any] = {
        "platform": src.platform, "title": src.title, "url": src.url, "kind": str(src.kind),
        "enabled": src.enabled, "in_config": True, "spec": src.spec(), "watchlist": watchlist}
    if interval := src.interval or default_interval:
        values["interval_seconds"] = interval
    return values


def guard_params(state: SourceState) -> dict[str, Any]:
    """The parameters of recording._GUARD: the source as the check read it (the generation and
    current version a check's write requires to be unchanged)."""
    return {"sid": state.id, "gen": state.generation, "snap": state.current_snapshot_id or -1}
