"""The store a one-shot `check` opens on a SQLite file: unchanged pages without SQLAlchemy.

Importing SQLAlchemy and the models costs a one-shot `check` about a third of a second, more
than checking a dozen unchanged pages. Most checks find nothing new, and what they read and
write is a handful of statements. `LiteStore` runs exactly those through the sqlite3 module:

- the SQL is what the store's own statements compile to (monitor/store/compiled.py, written by
  monitor/store/precompile.py; a test fails when they differ), with SQLAlchemy's own forms of
  datetimes and booleans;
- the same transaction discipline: BEGIN IMMEDIATE for writes, the same pragmas, the same
  file gate (gate.py) before the first write, the same DatabaseTrouble for a full disk;
- everything else (a new version, a failure, a failing record that closes, a leased check, a
  config to sync) goes to the full `Store`, opened on first need. One writer for each of
  those rows, so a one-shot check that finds a change writes what the daemon would.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor import config as cfg
from monitor.errors import StoreError
from monitor.schedule import host_of
from monitor.store.compiled import STATEMENTS
from monitor.store.gate import FileGate
from monitor.store.schema import require_revision
from monitor.store.trouble import classify
from monitor.store.values import Completion, SourceState, StoredCheck, guard_params, synced_values

if TYPE_CHECKING:
    from monitor.store import Store

_PREFIX = "sqlite:///"


def sqlite_file(url: str) -> Path | None:
    """The file of a plain SQLite URL (`sqlite:///data/monitor.db`); None for anything this
    store leaves to SQLAlchemy: other backends, drivers, URL options, memory, escapes."""
    rest = url[len(_PREFIX):] if url.startswith(_PREFIX) else ""
    if not rest or any(c in rest for c in "?%#") or rest == ":memory:" or rest.startswith("file:"):
        return None
    return Path(rest)


@dataclass(frozen=True)
class _Statement:
    sql: str
    defaults: Mapping[str, Any]
    dates: tuple[str, ...]
    columns: tuple[str | None, ...]
    names: tuple[str, ...]


_SQL = {name: _Statement(s["sql"], s["defaults"], tuple(s["dates"]), tuple(s["columns"]),
                         tuple(s["names"])) for name, s in STATEMENTS.items()}


def _to_sqlite(value: datetime | None) -> str | None:
    """A datetime as SQLAlchemy's SQLite DATETIME stores it (models.UTCDateTime: UTC, no zone)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
    v = value.astimezone(UTC)
    return (f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}"
            f".{v.microsecond:06d}")


def _from_sqlite(kind: str | None, value: Any) -> Any:
    if value is None or kind is None:
        return value
    if kind == "bool":
        return bool(value)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)  # "datetime"


@contextlib.contextmanager
def _troubled() -> Iterator[None]:
    """As database._troubled: the database's state is one DatabaseTrouble, a bug passes through."""
    try:
        yield
    except sqlite3.Error as exc:
        if (trouble := classify(exc)) is None:
            raise
        raise trouble from exc


def _unopened(url: str, exc: sqlite3.DatabaseError) -> StoreError:
    """Database.require_schema's words for a file that cannot be read at all."""
    return classify(exc) or StoreError(f"cannot open the database {url}: {exc}")


class LiteStore:
    """Answers what a one-shot check of unchanged pages asks; any other attribute is the full
    `Store`'s (see the module docstring), so callers hold it as a `Store`."""

    is_sqlite = True

    def __init__(self, url: str, path: Path, *, connections: int = 8) -> None:
        self.url = url
        self.connections = connections
        self._conn = sqlite3.connect(path, timeout=30, isolation_level=None,
                                     check_same_thread=False)
        try:  # database._sqlite_engine's pragmas, so both ways of writing behave alike
            for pragma in ("busy_timeout=30000", "foreign_keys=ON", "synchronous=FULL",
                           "journal_mode=WAL"):
                self._conn.execute(f"PRAGMA {pragma}")
        except sqlite3.DatabaseError as exc:  # "file is not a database": as require_schema says it
            self._conn.close()
            raise _unopened(url, exc) from None
        self._lock = threading.Lock()  # one connection, shared by the check's threads
        self.gate = FileGate(path.resolve(), self.integrity_ok)
        self._full: Store | None = None
        self._full_lock = threading.Lock()

    # -- the full store, for everything else ------------------------------------------------

    @property
    def full(self) -> Store:
        with self._full_lock:
            if self._full is None:
                from monitor.store import Store

                store = Store(self.url, connections=self.connections)
                store.gate = self.gate  # one file identity and one quick_check per process
                self._full = store
            return self._full

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.full, name)

    @property
    def fatal(self) -> str | None:
        return self.gate.fatal

    def close(self) -> None:
        self._conn.close()
        if self._full is not None:
            self._full.close()

    # -- running the compiled statements ----------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Cursor]:
        if write:
            self.gate.check()
        with _troubled(), self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.rollback()
                raise
            finally:
                cur.close()

    @staticmethod
    def _execute(cur: sqlite3.Cursor, name: str, params: Mapping[str, Any]) -> sqlite3.Cursor:
        st = _SQL[name]
        bound = {**st.defaults, **params}
        for key in st.dates:
            bound[key] = _to_sqlite(bound[key])
        return cur.execute(st.sql, bound)

    @classmethod
    def _rows(cls, cur: sqlite3.Cursor, name: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        kinds = _SQL[name].columns
        return [tuple(_from_sqlite(k, v) for k, v in zip(kinds, row, strict=True))
                for row in cls._execute(cur, name, params)]

    def integrity_ok(self) -> bool:
        try:
            with self._lock:
                return bool(self._conn.execute("PRAGMA quick_check").fetchone()[0] == "ok")
        except sqlite3.DatabaseError:
            return False

    # -- what a one-shot check asks -----------------------------------------------------------

    def require_schema(self) -> None:
        try:
            with self._lock:
                has_table = self._conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
                ).fetchone()
                current = self._conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] \
                    if has_table else None
        except sqlite3.DatabaseError as exc:  # "file is not a database", "disk image is malformed"
            raise _unopened(self.url, exc) from None
        require_revision(current)

    def sync_sources(self, sources: Sequence[cfg.Source], default_interval: float | None = None,
                     watchlist: str = "config", *, retire: bool = True) -> None:
        """Nothing to write when the rows already say what `sources` says (the common case);
        otherwise the full store's sync, which writes only what differs. The write gate
        first either way, as the sync's write transaction passes it: a damaged file is named
        as such before anything reads it."""
        self.gate.check()
        if retire and self._in_step(sources, default_interval, watchlist):
            return
        self.full.sync_sources(sources, default_interval, watchlist, retire=retire)

    def _in_step(self, sources: Sequence[cfg.Source], default_interval: float | None,
                 watchlist: str) -> bool:
        with self._transaction(write=False) as cur:
            names = _SQL["list_rows"].names
            rows = {r["name"]: r for r in (dict(zip(names, row, strict=True))
                                           for row in self._rows(cur, "list_rows",
                                                                 {"watchlist": watchlist}))}
        wanted = set()
        for src in sources:
            wanted.add(src.name)
            row = rows.get(src.name)
            if row is None or row["host"] != host_of(src.url) or any(
                    row[k] != v for k, v in synced_values(src, watchlist, default_interval).items()):
                return False
        # A source gone from the list is retired by a sync (disabled, history kept).
        return not any(name not in wanted and (row["in_config"] or row["enabled"])
                       for name, row in rows.items())

    def listed_sources(self, exclude: str = "config") -> list[cfg.Source]:
        with self._transaction(write=False) as cur:
            specs = [row[0] for row in self._rows(cur, "listed", {"exclude": exclude})]
        return [cfg.Source.from_spec(spec) for spec in specs if spec is not None]

    def state(self, name: str) -> SourceState:
        with self._transaction(write=False) as cur:
            rows = self._rows(cur, "state", {"name": name})
        if not rows:
            return self.full.state(name)  # which names the nearest sources in its error
        return SourceState(*rows[0])

    def host_allowed_at(self, host: str) -> datetime | None:
        with self._transaction(write=False) as cur:
            rows = self._rows(cur, "host_allowed", {"name": host})
        return rows[0][0] if rows else None

    def record_unchanged(
        self,
        state: SourceState,
        started: datetime,
        duration_ms: int,
        http_status: int,
        size: int | None,
        etag: str | None,
        last_modified: str | None,
        fingerprint: str | None,
        done: Completion | None = None,
        fetcher: str | None = None,
    ) -> StoredCheck:
        """recording.record_unchanged's common case: a source that is not failing, checked
        without a lease. A failing record to close or a lease to check is the full store's."""
        if done is None or state.failing or done.token is not None:
            return self.full.record_unchanged(state, started, duration_ms, http_status, size, etag,
                                              last_modified, fingerprint, done, fetcher)
        params: dict[str, Any] = {**guard_params(state), "at": started, "next": done.next_check_at}
        if http_status == 304:
            touch = "touch_done_304"
        else:
            touch = "touch_done_200"
            params.update(etag=etag, lm=last_modified, fp=fingerprint)
        with self._transaction(write=True) as cur:
            if self._execute(cur, touch, params).rowcount != 1:
                raise StoreError("the source changed while it was being checked; will retry")
            check_id = self._execute(cur, "insert_check", {
                "source_id": state.id, "started_at": started, "duration_ms": duration_ms,
                "outcome": "unchanged", "http_status": http_status, "bytes": size,
                "snapshot_id": state.current_snapshot_id, "fetcher": fetcher}).fetchone()[0]
            if state.current_snapshot_id is not None:
                self._execute(cur, "seen_snapshot", {"snap": state.current_snapshot_id,
                                                     "at": started})
            if state.host_id is not None:
                self._execute(cur, "release_host", {"hid": state.host_id,
                                                    "gap_until": done.host_next_allowed_at})
        return StoredCheck(check_id, "unchanged", state.current_snapshot_id)
