"""Which subscriptions want which alert. Pure: the same answer in the pipeline and in digests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.config import Mode, Subscription
from monitor.wording import severity_rank


@dataclass(frozen=True)
class Outgoing:
    """One outbox row to write: an alert for one target URL of one subscription."""

    subscription: str
    target: int


def wants_change(sub: Subscription, platform: str, source: str, labels: Sequence[str],
                 severity: str | None) -> bool:
    """Filters: platforms and sources (any of), labels (any of), minimum severity, cosmetic.
    An answers subscription hears of board answers instead (`wants_answers`)."""
    if sub.answers:
        return False
    if sub.platforms and platform.lower() not in {p.lower() for p in sub.platforms}:
        return False
    if sub.sources and source not in sub.sources:
        return False
    if "cosmetic" in labels or severity in (None, "none"):
        return sub.include_cosmetic and not sub.labels
    if sub.labels and not set(sub.labels) & set(labels):
        return False
    return severity_rank(severity) >= severity_rank(sub.min_severity)


def wants_source_alert(sub: Subscription, platform: str, source: str) -> bool:
    """Failing/recovered records go to subscriptions that watch the source without a label filter
    (or that ask for them with `source_failures = true`)."""
    if sub.platforms and platform.lower() not in {p.lower() for p in sub.platforms}:
        return False
    if sub.sources and source not in sub.sources:
        return False
    if sub.source_failures is not None:
        return sub.source_failures
    return not sub.labels and not sub.answers


def wants_answers(sub: Subscription, platform: str, source: str) -> bool:
    """An answers subscription for this platform (or source): told when the change moves the
    platform's board answers."""
    if not sub.answers:
        return False
    if sub.platforms and platform.lower() not in {p.lower() for p in sub.platforms}:
        return False
    return not sub.sources or source in sub.sources


def instant_outbox(subs: Iterable[Subscription], platform: str, source: str,
                   labels: Sequence[str], severity: str | None) -> tuple[Outgoing, ...]:
    return tuple(Outgoing(sub.name, i) for sub in subs
                 if sub.mode is Mode.INSTANT and wants_change(sub, platform, source, labels, severity)
                 for i in range(len(sub.url)))


def answer_outbox(subs: Iterable[Subscription], platform: str, source: str) -> tuple[Outgoing, ...]:
    return tuple(Outgoing(sub.name, i) for sub in subs if wants_answers(sub, platform, source)
                 for i in range(len(sub.url)))


def alert_outbox(subs: Iterable[Subscription], platform: str, source: str) -> tuple[Outgoing, ...]:
    return tuple(Outgoing(sub.name, i) for sub in subs
                 if sub.mode is Mode.INSTANT and wants_source_alert(sub, platform, source)
                 for i in range(len(sub.url)))
