"""The error tree. The class of an error decides what happens next (retry, back off, give up)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class MonitorError(Exception):
    """Base of every error the program expects and reports in one line."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config file, located so the user can fix it without guessing."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}"


class ConfigError(MonitorError):
    """The config is invalid. Carries every problem found, not just the first."""

    exit_code = 78  # EX_CONFIG: systemd's RestartPreventExitStatus keeps a broken config from looping

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class FailureKind(enum.StrEnum):
    """How a failed check should be treated by the scheduler."""

    TRANSIENT = "transient"  # try again next cycle: timeouts, 5xx, 429, resets
    PERMANENT = "permanent"  # the page or URL is wrong: 404, redirect loop, unsupported type
    BLOCKED = "blocked"  # we were refused: bot protection (403), URL gate
    ANOMALOUS = "anomalous"  # a 200 that looks like a block page or a partial load


class FetchError(MonitorError):
    """A fetch failed; recorded on the check, never raised out of it."""

    def __init__(
        self,
        kind: FailureKind,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.kind = kind
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        super().__init__(reason)


class BlockedURLError(FetchError):
    """The URL gate refused a URL or one of its redirect hops."""

    def __init__(self, reason: str) -> None:
        super().__init__(FailureKind.BLOCKED, reason)


class ExtractError(MonitorError):
    """The body could not be turned into text (unsupported type, empty selection)."""


class StoreError(MonitorError):
    """The database refused or is missing something the command needs."""


class NotFoundError(MonitorError):
    """A source, snapshot or change the user named does not exist."""


def unknown_source(name: str, known: Iterable[str], where: str = "") -> NotFoundError:
    """"no source named 'linkedin/privacy'; did you mean linkedin/privacy-policy?": a typo or a
    half-remembered name gets the names it was probably meant to be."""
    import difflib

    names = sorted(set(known))
    near = [n for n in names if name and (n.startswith(name) or name in n)][:5]

    def likeness(other: str) -> float:
        # Within one platform only the page part counts: "linkedin/nope" is not like
        # "linkedin/faq-mirror" because both start with "linkedin/".
        mine, theirs = name.partition("/"), other.partition("/")
        if mine[1] and theirs[1] and mine[0] == theirs[0]:
            return difflib.SequenceMatcher(None, mine[2], theirs[2]).ratio()
        return difflib.SequenceMatcher(None, name, other).ratio()

    scored = sorted(((likeness(n), n) for n in names if n not in near), reverse=True)
    near += [n for score, n in scored[:5] if score >= 0.6]
    hint = f"; did you mean {', '.join(near[:5])}?" if near else " (see `sources list`)"
    return NotFoundError(f"no source named {name!r}{where}{hint}")
