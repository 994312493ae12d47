"""Database trouble, classified once: unavailable, read-only, full, timing out, missing.

A database error is the deployment's problem, never a page's: it is turned into one
`DatabaseTrouble` (a StoreError, so a check that meets it records nothing and is tried again
later) with a line that says what to do, and it is logged through `TroubleLog`: the first
occurrence, then one summary a minute while it lasts, then one line when it is over, instead
of a traceback per attempt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from monitor.errors import StoreError

log = logging.getLogger("monitor.store")

# What each kind means for the user, and what to do about it.
ADVICE = {
    "unavailable": "the database does not answer; checks pause and resume by themselves when "
                   "it is back",
    "missing": "the database does not exist; create it (PostgreSQL: createdb NAME, or CREATE "
               "DATABASE NAME as its owner) and run `policy-monitor init`",
    "read_only": "the database refuses writes (read-only); nothing is recorded until it accepts "
                 "them again (a standby, a read-only file or mount, default_transaction_read_only)",
    "full": "the database's disk is full; free space or grow the volume; nothing is recorded "
            "until it can write again",
    "io": "the database's disk failed to read or write; check the volume; nothing is recorded "
          "until it works again",
    "timeout": "a database statement took longer than the server allows (statement_timeout or "
               "a lock wait); the check is tried again later",
}
# SQLSTATE classes and codes (PostgreSQL), then words in the message (SQLite, drivers).
_CODES = (("08", "unavailable"), ("57P01", "unavailable"), ("57P02", "unavailable"),
          ("57P03", "unavailable"), ("3D000", "missing"), ("25006", "read_only"),
          ("53", "full"), ("57014", "timeout"), ("55P03", "timeout"), ("58", "io"))
_WORDS = (
    (re.compile(r"database \S+ does not exist|unable to open database file", re.I), "missing"),
    (re.compile(r"connection refused|could not connect|server closed the connection|"
                r"terminating connection|connection (?:is )?closed|connection timeout expired|"
                r"the database system is (?:starting up|shutting down|in recovery mode)|"
                r"could not translate host name|no route to host|network is unreachable|"
                r"consuming input failed|SSL SYSCALL error", re.I), "unavailable"),
    (re.compile(r"read-only|readonly", re.I), "read_only"),
    (re.compile(r"disk is full|database or disk is full|no space left|disk full|"
                r"could not extend file", re.I), "full"),
    (re.compile(r"disk i/o error|input/output error", re.I), "io"),
    (re.compile(r"statement timeout|canceling statement|lock timeout", re.I), "timeout"),
)


class DatabaseTrouble(StoreError):
    """The database, not the page, is the problem: one kind, one line, what to do."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(f"{ADVICE[kind]} ({detail})")


def classify(exc: BaseException) -> DatabaseTrouble | None:
    """The trouble a driver error means, or None for one that is not the database's state
    (a constraint, a bug in a query): those pass through unchanged."""
    orig = getattr(exc, "orig", None) or exc
    code = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    message = str(orig).strip()
    detail = (message.splitlines() or [type(orig).__name__])[0][:200]
    if code:
        for prefix, kind in _CODES:
            if code.startswith(prefix):
                return DatabaseTrouble(kind, detail)
    for pattern, kind in _WORDS:
        if pattern.search(message):
            return DatabaseTrouble(kind, detail)
    return None


@dataclass(frozen=True)
class Outage:
    """The trouble the process is in: what, since when, how many failures it has met."""

    kind: str
    message: str
    since: float  # time.monotonic()
    wall: float  # time.time(), for status
    failures: int


class TroubleLog:
    """First occurrence, a summary a minute, one line when it is over: a database down for
    twenty minutes is about twenty lines in the log, not thousands of tracebacks."""

    def __init__(self, logger: logging.Logger = log, every: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.every, self.clock = logger, every, clock
        # The daemon's note beside the database (data_dir), for `status` and the dashboard,
        # which may not be able to read the database itself: written when trouble starts,
        # removed when it is over.
        self.marker: Path | None = None
        self._lock = threading.Lock()
        self._outage: Outage | None = None
        self._last_line = 0.0
        self._since_line = 0

    @property
    def outage(self) -> Outage | None:
        return self._outage

    def report(self, trouble: DatabaseTrouble) -> None:
        with self._lock:
            now = self.clock()
            current = self._outage
            if current is None or current.kind != trouble.kind:
                self._outage = Outage(trouble.kind, str(trouble), now, time.time(), 1)
                self._last_line, self._since_line = now, 0
                self.logger.error("database trouble: %s", trouble)
                self._note({"kind": trouble.kind, "message": str(trouble), "pid": os.getpid(),
                            "since": datetime.now(UTC).isoformat(timespec="seconds")})
                return
            self._outage = Outage(current.kind, str(trouble), current.since, current.wall,
                                  current.failures + 1)
            self._since_line += 1
            if now - self._last_line >= self.every:
                self.logger.error("database trouble continues for %.0fs: %d failed attempts in "
                                  "the last %.0fs; %s", now - current.since, self._since_line,
                                  now - self._last_line, trouble)
                self._last_line, self._since_line = now, 0

    def recovered(self) -> None:
        with self._lock:
            current = self._outage
            if current is None:
                return
            self._outage = None
            self._note(None)
            self.logger.warning("database works again after %.0fs of trouble (%s, %d failed "
                                "attempts)", self.clock() - current.since, current.kind,
                                current.failures)


    def _note(self, state: dict[str, object] | None) -> None:
        if self.marker is None:
            return
        with contextlib.suppress(OSError):  # a note, never a reason to fail
            if state is None:
                self.marker.unlink(missing_ok=True)
            else:
                tmp = self.marker.with_suffix(".tmp")
                tmp.write_text(json.dumps(state), encoding="utf-8")
                tmp.replace(self.marker)


MARKER = "database-trouble.json"  # in data_dir


def noted(data_dir: Path) -> dict[str, object] | None:
    """The trouble a daemon using this data directory is in, if it says so (and still runs)."""
    try:
        state = json.loads((data_dir / MARKER).read_text(encoding="utf-8"))
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if isinstance(state, dict) else None


TROUBLE = TroubleLog()  # the process's one log of database trouble
