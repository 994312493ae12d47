"""One function judges a new version of a source, whoever calls: the daemon, a one-shot
`check`, `import`/`replay` and re-extraction.

A judgement needs the text before, the new text and what the source showed earlier: texts
current within the flap window (a page that flaps back is not news), the text before its
latest partial load (lost sections may come back at any time), the dates earlier versions
stated, and when this exact text was last current. `Past` is where those facts come from:
the database on the live path and for imports (`StorePast`), memory while a history is
rebuilt before it is written (`MemoryPast`). The rules that pick from them (how far back, how
many) live here, once, so what `replay` measures is what a user receives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from monitor import schedule
from monitor.schedule import FLAP_WINDOW

if TYPE_CHECKING:
    from monitor.classify import Classification
    from monitor.diff import Diff
    from monitor.store import SourceState, Store

RECENT_VERSIONS = 5  # how many earlier texts of the window a change is read against
PARTIAL_LOOKBACK = 10  # how many changes back a partial load is remembered
STATED_VERSIONS = 100  # how many earlier versions' stated dates are compared


class Past(Protocol):
    """What a source showed before the version being judged."""

    def recent(self, since: datetime, limit: int) -> list[tuple[str, datetime]]:
        """Distinct earlier texts (not the current one) current at some time since `since`,
        newest first, each with the last time it was current."""

    def before_partial(self, lookback: int) -> tuple[str, datetime] | None:
        """The text before the latest partial load among the last `lookback` changes."""

    def stated_dates(self) -> list[date]:
        """The dates earlier versions stated."""

    def last_seen(self, digest: str) -> datetime | None:
        """When the text with this digest was last current, if it ever was."""


@dataclass(frozen=True)
class Judgement:
    """A new text judged: its diff and classification against the text before (both None for
    a first version). A collapsed text is refused before it is judged (`refusal`)."""

    diff: Diff | None = None
    classification: Classification | None = None


def refusal(previous_size: int, new_size: int, marker: str,
            last_failure: tuple[str | None, str | None]) -> str | None:
    """Why a text that collapsed is not stored (yet): a 200 whose text shrank to a fraction
    is a block page or a partial load, unless the same text came back on the next check."""
    if not schedule.looks_truncated(previous_size, new_size):
        return None
    kind, error = last_failure
    if kind == "anomalous" and error and marker in error:
        return None  # the same small text twice in a row: the page really changed
    return (f"page text shrank to {new_size} bytes from {previous_size}: probably a block page "
            f"or a partial load; kept the previous version {marker}")


def judge(old_text: str | None, text: str, digest: str, at: datetime, past: Past) -> Judgement:
    """The diff and classification of `text` (digest `digest`, seen at `at`) after `old_text`."""
    if old_text is None:
        return Judgement()
    from monitor import diff as difflib
    from monitor import reading
    from monitor.classify import classify, recent_versions

    change = difflib.compute(old_text, text)
    recent = past.recent(at - FLAP_WINDOW, RECENT_VERSIONS)
    partial = past.before_partial(PARTIAL_LOOKBACK)
    if partial is not None and partial[0] not in {t for t, _ in recent}:
        recent.append(partial)  # lost sections may come back at any time
    stated: list[date] = []
    old_date, new_date = reading.read(old_text).stated, reading.read(text).stated
    if old_date and new_date and new_date < old_date:  # rare: is it a copy seen before?
        stated = past.stated_dates()
    classification = classify(change, restores=past.last_seen(digest), at=at,
                              old_text=old_text, new_text=text,
                              recent=recent_versions(recent, stated))
    return Judgement(change, classification)


def judge_stored(store: Store, batch: int = 200) -> int:
    """Give every classified change stored before verdicts existed its verdict, default and
    regions excluded, judging it again from its two stored versions with the running
    classifier (a migration cannot import it). Labels and severity stay as recorded; run
    twice at once (two daemons upgrading), it writes the same values twice. Returns how many
    changes were judged."""
    from monitor import diff as difflib
    from monitor.classify import classify

    done, last_id = 0, 0
    while rows := store.unjudged_changes(last_id, batch):
        for change_id, diff, old, new in rows:
            last_id = change_id
            judged = classify(difflib.Diff.from_dict(diff), old_text=old, new_text=new)
            store.record_verdict(change_id, judged.verdict.to_dict())
            done += 1
    if done:  # the board is read from verdicts: its answers follow the new ones
        store.rebuild_board()
    return done


@dataclass
class StorePast:
    """A stored source's past, read from the database when a judgement asks."""

    store: Store
    state: SourceState

    def recent(self, since: datetime, limit: int) -> list[tuple[str, datetime]]:
        return self.store.recent_texts(self.state, since, limit)

    def before_partial(self, lookback: int) -> tuple[str, datetime] | None:
        for findings, blob, at in self.store.recent_changes(self.state, lookback):
            if _partial(findings.get("anomaly")):
                return (self.store.text_of(blob), at) if blob is not None else None
        return None

    def stated_dates(self) -> list[date]:
        from monitor import reading

        found = (reading.stated_date(t) for t in self.store.version_texts(self.state, STATED_VERSIONS))
        return [d for d in found if d is not None]

    def last_seen(self, digest: str) -> datetime | None:
        return self.store.last_seen(self.state, digest)


@dataclass
class MemoryPast:
    """A history being rebuilt in memory (re-extraction), told each version as it is kept."""

    # (digest, text, last time current) of every version kept, oldest first
    shown: list[tuple[str, str, datetime]] = field(default_factory=list)
    # (text before, when, number of the change) of each partial load
    partials: list[tuple[str, datetime, int]] = field(default_factory=list)
    changes: int = 0

    def keep(self, text: str, digest: str, at: datetime,
             classification: Classification | None) -> None:
        """`text` became current at `at`, replacing the latest version (a change)."""
        if self.shown:
            last_digest, last_text, _ = self.shown[-1]
            self.shown[-1] = (last_digest, last_text, at)
            self.changes += 1
            if classification is not None and _partial(classification.anomaly):
                self.partials.append((last_text, at, self.changes))
        self.shown.append((digest, text, at))

    def recent(self, since: datetime, limit: int) -> list[tuple[str, datetime]]:
        best: dict[str, tuple[str, datetime]] = {}
        current = self.shown[-1][0] if self.shown else None
        for digest, text, last in self.shown[:-1]:
            if digest != current and last >= since and (
                    digest not in best or last > best[digest][1]):
                best[digest] = (text, last)
        return sorted(best.values(), key=lambda r: r[1], reverse=True)[:limit]

    def before_partial(self, lookback: int) -> tuple[str, datetime] | None:
        if not self.partials:
            return None
        text, at, number = self.partials[-1]
        return (text, at) if self.changes - number < lookback else None

    def stated_dates(self) -> list[date]:
        from monitor import reading

        return [d for _, text, _ in self.shown[-STATED_VERSIONS:]
                if (d := reading.stated_date(text)) is not None]

    def last_seen(self, digest: str) -> datetime | None:
        times = [last for d, _, last in self.shown[:-1] if d == digest]
        return max(times) if times else None


def _partial(anomaly: dict[str, Any] | None) -> bool:
    """A change recorded as a partial load (sections lost that may come back)."""
    return (anomaly or {}).get("kind") == "partial"
