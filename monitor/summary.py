"""What a round of checks came to, in a few lines a person reads. Pure.

A machine without network fails every source with the same reason; a hundred identical
lines hide the one that matters. Failures are grouped by their cause (the reason with the
host names, addresses and numbers taken out), and a cause many sources share is one line.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from monitor.pipeline import CheckResult
from monitor.wording import plural

T = TypeVar("T")
GROUP_AT = 3  # this many sources failing the same way are one line

OUTCOMES = (("unchanged", "unchanged", "unchanged"), ("changed", "changed", "changed"),
            ("baseline", "first snapshot", "first snapshots"), ("postponed", "postponed", "postponed"),
            ("failed", "failed", "failed"))

# Why a whole machine fails, in words; the first that matches a shared cause is added to it.
EXPLANATIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"cannot resolve|name resolution|name or service not known|nodename nor servname",
                re.I), "no DNS: is this machine offline?"),
    (re.compile(r"network is unreachable|no route to host", re.I),
     "no network: is this machine offline?"),
    (re.compile(r"timed out|deadline exceeded", re.I), "a slow or filtered network?"),
    (re.compile(r"certificate|TLS", re.I), "TLS trouble: a proxy rewriting certificates, or a "
                                           "wrong clock?"),
    (re.compile(r"no Chromium found", re.I), "see the note above on installing a browser"),
)

_VARIABLE = re.compile(
    r"https?://\S+"  # URLs
    r"|\[[0-9a-f:.]+\]|\b\d{1,3}(?:\.\d{1,3}){3}\b"  # addresses
    r"|\b(?:[a-z0-9-]+\.)+[a-z]{2,}\b"  # host names
    r"|\d+(?:\.\d+)?", re.I)  # numbers: ports, sizes, seconds


def cause(reason: str) -> str:
    """The reason with what varies between sources taken out, so equal causes compare equal."""
    return _VARIABLE.sub("…", reason).strip()


def explain(reason: str) -> str | None:
    return next((text for pattern, text in EXPLANATIONS if pattern.search(reason)), None)


@dataclass(frozen=True)
class FailureGroup:
    kind: str
    reason: str  # one source's reason, as an example of the cause
    sources: tuple[str, ...]

    def line(self, lead: str = "") -> str:
        names = ", ".join(self.sources[:3]) + (", …" if len(self.sources) > 3 else "")
        hint = explain(self.reason)
        lead = lead or f"{len(self.sources)} sources failed the same way"
        return (f"{lead} ({self.kind}): {self.reason}"
                + (f" — {hint}" if hint else "") + f" [{names}]")


@dataclass(frozen=True)
class Summary:
    counts: dict[str, int]
    failed_by_kind: dict[str, int]
    groups: tuple[FailureGroup, ...]  # causes shared by GROUP_AT or more sources
    seconds: float

    @property
    def checked(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        parts = [plural(self.counts.get(key, 0), one, many) for key, one, many in OUTCOMES
                 if self.counts.get(key, 0) or key in ("unchanged", "changed", "failed")]
        if self.failed_by_kind:
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.failed_by_kind.items()))
            parts[-1] += f" ({kinds})"
        return f"checked {plural(self.checked, 'source')} in {self.seconds:.1f}s: " + ", ".join(parts)


def summarise(results: Sequence[CheckResult], seconds: float) -> Summary:
    counts = Counter(r.outcome for r in results)
    failed = [r for r in results if r.outcome == "failed"]
    by_kind = Counter(str(r.failure_kind or "unknown") for r in failed)
    folds, _ = fold(failed, lambda r: str(r.failure_kind or "unknown"), lambda r: r.detail)
    groups = tuple(FailureGroup(f.kind, f.reason, tuple(sorted(m.source for m in f.items)))
                   for f in folds)
    return Summary(dict(counts), dict(by_kind), groups, seconds)


@dataclass(frozen=True)
class Fold(Generic[T]):
    """Items that fail the same way (the web's failing sources, folded into one row)."""

    kind: str
    reason: str  # one item's reason, as an example of the cause
    items: tuple[T, ...]

    @property
    def hint(self) -> str | None:
        return explain(self.reason)


def fold(items: Iterable[T], kind: Callable[[T], str], reason: Callable[[T], str],
         at: int = GROUP_AT) -> tuple[list[Fold[T]], list[T]]:
    """Causes shared by `at` or more items, largest first, and the items left on their own."""
    by_cause: dict[tuple[str, str], list[T]] = {}
    for item in items:
        by_cause.setdefault((kind(item), cause(reason(item))), []).append(item)
    folds = [Fold(k, reason(members[0]), tuple(members))
             for (k, _), members in sorted(by_cause.items(), key=lambda kv: -len(kv[1]))
             if len(members) >= at]
    alone = [item for members in by_cause.values() if len(members) < at for item in members]
    return folds, alone


def grouped(groups: Iterable[FailureGroup]) -> set[str]:
    """The sources whose failure a group line already reports."""
    return {name for g in groups for name in g.sources}


@dataclass
class _Window:
    started: float
    example: str
    held: list[str]


class FoldedFailures:
    """The daemon's log of failed checks, folded by cause: the first source that fails a way
    is logged as it happens; others failing the same way within `every` seconds are held and
    said in one line when the window closes. Offline, 97 sources are two lines a round, not 194."""

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}

    def first(self, result: CheckResult) -> bool:
        """True when this failure is to be logged now; False when a window holds it (a
        window that closed with sources held keeps taking them until `due` says them)."""
        key = (str(result.failure_kind or "unknown"), cause(result.detail))
        now = self.clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or (not window.held and now - window.started >= self.every):
                self._windows[key] = _Window(now, result.detail, [])
                return True
            window.held.append(result.source)
            return False

    def due(self, *, everything: bool = False) -> list[str]:
        """Lines for the windows that closed (all of them with `everything`, at shutdown)."""
        now = self.clock()
        lines = []
        with self._lock:
            for key, window in list(self._windows.items()):
                if not window.held or not (everything or now - window.started >= self.every):
                    continue
                names = sorted(set(window.held))
                group = FailureGroup(key[0], window.example, tuple(names))
                lines.append(group.line(f"{plural(len(names), 'more source')} failed the "
                                        f"same way in the last {now - window.started:.0f}s"))
                del self._windows[key]
        return lines
