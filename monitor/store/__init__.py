"""The only writer: one `Store` facade over the database, built from one class per concern.

- `database`: engines, transactions (`write`, `write_conn`, `read`, `reading`) and the
  schema (migrations, revision checks, integrity gate). Every other part writes through it.
- `leases`: the watch list in the database, the claim, leases and host gaps.
- `recording`: a check's outcome (failure, unchanged, new version with its change and
  alerts) in one transaction, and re-extracted histories.
- `outbox`: deliveries, events and target health.
- `reading`: the past of a source that a judgement or a command asks for.
- `answers`: the AI data-use board's answers, kept with each change and read at any date.

SQLite runs in WAL mode with synchronous=FULL (a committed check survives power loss) and every
write transaction starts with BEGIN IMMEDIATE, so a transaction that reads before it writes
waits for the lock instead of failing with SQLITE_BUSY. PostgreSQL uses the same code. The
store holds no classification knowledge: what a judgement picks from the past is decided in
monitor/judge.py.
"""

from __future__ import annotations

from monitor.store.answers import Answers
from monitor.store.database import Database, alembic_dir, head_from_files, utcnow
from monitor.store.leases import DatabaseClock, Leases, host_of, refresh_hosts
from monitor.store.outbox import Outbox
from monitor.store.reading import Reader
from monitor.store.recording import Recorder
from monitor.store.values import (
    Claim,
    Completion,
    LeaseLost,
    NewVersion,
    SourceState,
    StoredCheck,
)

__all__ = ["Claim", "Completion", "DatabaseClock", "LeaseLost", "NewVersion", "SourceState",
           "Store", "StoredCheck", "alembic_dir", "head_from_files", "host_of", "refresh_hosts",
           "utcnow"]


class Store(Leases, Recorder, Outbox, Reader, Answers, Database):
    """The database of one deployment: each concern's methods, one set of engines and one
    transaction discipline (`Database`) under all of them."""
