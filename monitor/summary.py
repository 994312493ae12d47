"""What a round of checks came to, in a few lines a person reads. Pure.

A machine without network fails every source with the same reason; a hundred identical
lines hide the one that matters. Failures are grouped by their cause (the reason with the
host names, addresses and numbers taken out), and a cause many sources share is one line.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.pipeline import CheckResult
from monitor.wording import plural

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

    def line(self) -> str:
        names = ", ".join(self.sources[:3]) + (", …" if len(self.sources) > 3 else "")
        hint = explain(self.reason)
        return (f"{len(self.sources)} sources failed the same way ({self.kind}): {self.reason}"
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
    by_cause: dict[tuple[str, str], list[CheckResult]] = {}
    for r in failed:
        by_cause.setdefault((str(r.failure_kind or "unknown"), cause(r.detail)), []).append(r)
    groups = tuple(FailureGroup(kind, members[0].detail, tuple(sorted(m.source for m in members)))
                   for (kind, _), members in sorted(by_cause.items(), key=lambda kv: -len(kv[1]))
                   if len(members) >= GROUP_AT)
    return Summary(dict(counts), dict(by_kind), groups, seconds)


def grouped(groups: Iterable[FailureGroup]) -> set[str]:
    """The sources whose failure a group line already reports."""
    return {name for g in groups for name in g.sources}
