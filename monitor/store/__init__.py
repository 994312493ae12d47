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

import importlib
from typing import TYPE_CHECKING, Any

from monitor.schedule import host_of
from monitor.store.values import (
    Claim,
    Completion,
    LeaseLost,
    NewVersion,
    SourceState,
    StoredCheck,
)

if TYPE_CHECKING:
    from monitor.store.database import utcnow
    from monitor.store.facade import Store
    from monitor.store.leases import DatabaseClock, refresh_hosts
    from monitor.store.schema import alembic_dir, head_from_files

# SQLAlchemy and the models cost a third of a second to import: a one-shot `check` of
# unchanged pages never loads them (monitor/store/lite.py), so the facade and the helpers
# that need them are imported on first use.
_LAZY = {"Store": "facade", "alembic_dir": "schema", "head_from_files": "schema",
         "utcnow": "database", "DatabaseClock": "leases", "refresh_hosts": "leases"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"monitor.store.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


__all__ = ["Claim", "Completion", "DatabaseClock", "LeaseLost", "NewVersion", "SourceState",
           "Store", "StoredCheck", "alembic_dir", "head_from_files", "host_of", "refresh_hosts",
           "utcnow"]
