"""The only writer. Sessions, transactions, dedupe by hash, migrations.

SQLite runs in WAL mode with synchronous=FULL (a committed check survives power loss) and every
write transaction starts with BEGIN IMMEDIATE, so a transaction that reads before it writes
waits for the lock instead of failing with SQLITE_BUSY. PostgreSQL uses the same code.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    case,
    create_engine,
    event,
    func,
    insert,
    inspect,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from monitor import config as cfg
from monitor import schedule
from monitor.blobstore import BlobCache, DatabaseBlobStore, sha256
from monitor.errors import FailureKind, NotFoundError, StoreError, unknown_source
from monitor.models import (
    Change,
    Check,
    Delivery,
    Event,
    Host,
    Reextraction,
    Snapshot,
    SourceAlert,
    SourceRow,
    TargetHealth,
    UTCDateTime,
)
from monitor.wording import max_severity

if TYPE_CHECKING:
    from monitor.classify import Classification
    from monitor.diff import Diff
    from monitor.routing import Outgoing


def head_from_files() -> str:
    """The newest migration's revision, from the file names (`0007_target_health.py` → "0007"):
    our revisions are numbered in order, which a test holds against Alembic's own answer."""
    names = sorted(p.name for p in (alembic_dir() / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    return names[-1][:4]


ALEMBIC_DIRS = (
    Path(__file__).parent / "_alembic",  # installed wheel
    Path(__file__).parent.parent / "alembic",  # source checkout / editable install
)


# Prebuilt Core statements for the per-check hot path (state before, bookkeeping after):
# building SQLAlchemy expressions per call costs more than executing them.
_STATE = (
    select(SourceRow.id, SourceRow.etag, SourceRow.last_modified, SourceRow.fingerprint,
           SourceRow.current_snapshot_id, Snapshot.sha256, Snapshot.text_blob, Snapshot.raw_blob,
           SourceRow.generation, SourceRow.consecutive_failures, SourceRow.failing,
           SourceRow.host_id, Host.crawl_delay, SourceRow.interval_seconds, Snapshot.text_size)
    .outerjoin(Snapshot, Snapshot.id == SourceRow.current_snapshot_id)
    .outerjoin(Host, Host.id == SourceRow.host_id)
    .where(SourceRow.name == bindparam("name"))
)
_GUARD = (
    (SourceRow.id == bindparam("sid"))
    & (SourceRow.generation == bindparam("gen"))
    & (func.coalesce(SourceRow.current_snapshot_id, -1) == bindparam("snap"))
)
_PLATFORM_IF_UNCHANGED = select(SourceRow.platform).where(_GUARD)


def _guard(state: SourceState) -> dict[str, Any]:
    """The parameters of _GUARD: the source as the check read it."""
    return {"sid": state.id, "gen": state.generation, "snap": state.current_snapshot_id or -1}


_SEEN_304: dict[str, Any] = {"last_check_at": bindparam("at"), "last_outcome": "unchanged",
                             "consecutive_failures": 0}
_SEEN_200: dict[str, Any] = {**_SEEN_304, "etag": bindparam("etag"), "last_modified": bindparam("lm"),
                             "fingerprint": func.coalesce(bindparam("fp"), SourceRow.fingerprint)}
_TOUCH_304 = update(SourceRow).where(_GUARD).values(**_SEEN_304)
_TOUCH_200 = update(SourceRow).where(_GUARD).values(**_SEEN_200)
# The common case, an unchanged page whose source is not failing, also completes the check
# (next check, lease released) in the same UPDATE: one row version fewer per check. Keyed by
# (answered 304, held under a lease).
_DONE: dict[str, Any] = {"next_check_at": bindparam("next"), "lease_owner": None,
                         "lease_token": None, "lease_expires_at": None}
_TOUCH_DONE = {
    (not_modified, leased): update(SourceRow)
    .where(_GUARD & (SourceRow.lease_token == bindparam("token")) if leased else _GUARD)
    .values(**(_SEEN_304 if not_modified else _SEEN_200), **_DONE)
    for not_modified in (True, False) for leased in (True, False)
}
_INSERT_CHECK = insert(Check).returning(Check.id)
_SEEN_SNAPSHOT = update(Snapshot).where(Snapshot.id == bindparam("snap")).values(
    last_seen_at=bindparam("at"))
# The claim: ready hosts from the index on hosts.ready_at, then each one's earliest due free
# source from the index on (host, next check). PostgreSQL skips rows other processes hold.
_READY_HOSTS = (select(Host.id, Host.next_allowed_at, Host.lease_expires_at)
                .where(Host.ready_at <= bindparam("now")).order_by(Host.ready_at)
                .limit(bindparam("n")))
_DUE_SOURCE = (select(SourceRow.id, SourceRow.name, SourceRow.next_check_at)
               .where(SourceRow.host_id == bindparam("host"), SourceRow.enabled.is_(True),
                      SourceRow.next_check_at <= bindparam("now"),
                      SourceRow.lease_expires_at.is_(None)
                      | (SourceRow.lease_expires_at < bindparam("now")))
               .order_by(SourceRow.next_check_at).limit(1))
_CLAIM_SQLITE = (_READY_HOSTS, _DUE_SOURCE)
_CLAIM_LOCKING = (_READY_HOSTS.with_for_update(skip_locked=True),
                  _DUE_SOURCE.with_for_update(skip_locked=True))


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHUNK = 500  # rows per statement in bulk writes: under every backend's parameter limit


def _ready_time(dialect: str, allowed: Any = None, leased_until: Any = None) -> Any:
    """SQL for when a host can next be claimed: the latest of its earliest due enabled source,
    its polite gap and its lease (NULL when nothing of it is scheduled). The one definition of
    host readiness; `claim` reads it through the index on hosts.ready_at."""
    earliest = (select(SourceRow.next_check_at)
                .where(SourceRow.host_id == Host.id, SourceRow.enabled.is_(True),
                       SourceRow.next_check_at.is_not(None))
                .order_by(SourceRow.next_check_at).limit(1).scalar_subquery())
    greatest = func.greatest if dialect == "postgresql" else func.max
    if allowed is None:
        allowed = Host.next_allowed_at
    if leased_until is None:
        leased_until = func.coalesce(Host.lease_expires_at, literal(EPOCH, UTCDateTime()))
    return case((earliest.is_(None), None), else_=greatest(earliest, allowed, leased_until))


def refresh_hosts(conn: Connection, host_ids: Iterable[int | None]) -> None:
    """Recompute hosts.ready_at after their sources' schedule, gap or lease changed, in the
    caller's transaction (so the claim index never disagrees with what it summarises)."""
    ids = sorted({h for h in host_ids if h is not None})
    ready = _ready_time(conn.dialect.name)
    for i in range(0, len(ids), CHUNK):
        conn.execute(update(Host).where(Host.id.in_(ids[i:i + CHUNK])).values(ready_at=ready))


def host_of(url: str) -> str:
    """The politeness key of a URL: its lower-cased host name."""
    start = url.find("://") + 3 if "://" in url else 0
    ends = [i for i in (url.find("/", start), url.find("?", start), url.find("#", start)) if i >= 0]
    return _host_of_origin(url[:min(ends)] if ends else url)


@functools.lru_cache(maxsize=8192)
def _host_of_origin(origin: str) -> str:
    """Parsed once per scheme://host:port: 100,000 sources on 2,500 hosts parse 2,500 URLs."""
    return (urlsplit(origin).hostname or origin).lower()


def utcnow() -> datetime:
    return datetime.now(UTC)


def alembic_dir() -> Path:
    for candidate in ALEMBIC_DIRS:
        if (candidate / "env.py").exists():
            return candidate
    raise StoreError("alembic migrations not found next to the monitor package")


def _sqlite_engine(url: str, *, writer: bool) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (SQLAlchemy's SQLite recipe)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=FULL")
        if writer:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


class DatabaseClock:
    """The database server's time, read as the local clock plus a measured offset.

    Leases, due times and host gaps are compared across processes, so they must come from one
    clock: with PostgreSQL that is the server's (re-measured every `every` seconds, so a
    machine whose clock is seconds off or gets stepped stays polite). A SQLite file lives on
    one machine, whose clock every process already shares.
    """

    def __init__(self, store: Store, local: Callable[[], datetime] = utcnow, every: float = 10.0) -> None:
        self.store, self.local, self.every = store, local, every
        self.offset = timedelta(0)
        self._synced = -every  # monotonic time of the last measurement

    def sync(self) -> None:
        self._synced = time.monotonic()
        if self.store.is_sqlite:
            return
        before = self.local()
        server = self.store.db_time()
        after = self.local()
        self.offset = server - (before + (after - before) / 2)

    def __call__(self) -> datetime:
        if time.monotonic() - self._synced >= self.every:
            with contextlib.suppress(DatabaseError):  # keep the last offset; retry next call
                self.sync()
        return self.local() + self.offset


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


class Store:
    """Owns the engines; hands out write and read sessions."""

    def __init__(self, url: str, *, read_only: bool = False, connections: int = 8) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and read_only and parsed.database:
            # The web UI opens the file read-only at the SQLite level: it cannot write even by bug.
            ro = f"sqlite:///file:{Path(parsed.database).resolve()}?mode=ro&uri=true"
            self.read_engine = _sqlite_engine(ro, writer=False)
            self.engine = self.read_engine
        elif self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = _sqlite_engine(url, writer=True)
            self.read_engine = _sqlite_engine(url, writer=False)
        elif read_only:
            # The web UI's connections are read-only in the server itself: every transaction
            # starts READ ONLY, so it cannot write even by bug (as mode=ro on SQLite).
            self.engine = create_engine(url, pool_pre_ping=True, connect_args={
                "options": "-c default_transaction_read_only=on"})
            self.read_engine = self.engine
        else:
            # Enough pooled connections for every worker, the dispatcher and the periodic jobs
            # at once: a connection beyond the pool is opened and closed per use, and a new
            # PostgreSQL backend costs more server CPU than the check's own statements.
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=connections,
                                        max_overflow=connections)
            self.read_engine = self.engine
        self.blobs = BlobCache()
        # The file this process writes, and its identity (device, inode) once known: a file
        # deleted or replaced under a running process must stop its writes, not swallow them.
        self.file = Path(parsed.database).resolve() if self.is_sqlite and parsed.database \
            and parsed.database != ":memory:" and not read_only else None
        self._identity: tuple[int, int] | None = None
        self._gate_passed = False
        self.fatal: str | None = None  # set when writing must stop for good (the daemon exits)
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = sessionmaker(self.read_engine, expire_on_commit=False)
        # One writer at a time inside a process on SQLite, which allows one anyway: queueing
        # here is cheaper than spinning on busy_timeout. PostgreSQL takes writers in parallel,
        # and with several workers their commits' round trips and WAL flushes overlap.
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if self.is_sqlite else contextlib.nullcontext())

    @staticmethod
    def missing_file(url: str) -> Path | None:
        """The SQLite file this URL names, when it does not exist yet (None for other backends)."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or not parsed.database \
                or parsed.database == ":memory:" or parsed.database.startswith("file:"):
            return None
        path = Path(parsed.database)
        return None if path.exists() else path

    @classmethod
    def from_settings(cls, settings: cfg.Settings) -> Store:
        return cls(settings.database, connections=settings.workers + 4)

    def close(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()

    def _before_write(self) -> None:
        """The gate every write passes (SQLite): the file is the one this process opened, and
        it passed PRAGMA quick_check once — a damaged file is never written into."""
        if self.file is None:
            return
        if self.fatal:
            raise StoreError(self.fatal)
        try:
            st = os.stat(self.file)
        except FileNotFoundError:
            self.fatal = (f"the database {self.file} was deleted while this process was using "
                          "it; nothing more is written (restore it or run `policy-monitor init`)")
            raise StoreError(self.fatal) from None
        identity = (st.st_dev, st.st_ino)
        if self._identity is None:
            self._identity = identity
        elif identity != self._identity:
            self.fatal = (f"the database {self.file} was replaced by another file while this "
                          "process was using it; nothing more is written; restart to use the new one")
            raise StoreError(self.fatal)
        if not self._gate_passed:
            if not self.integrity_ok():
                self.fatal = (f"the database {self.file} failed PRAGMA quick_check: nothing is "
                              "written into a damaged file (see README, Storage, to recover it)")
                raise StoreError(self.fatal)
            self._gate_passed = True

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Around every write transaction: the gate first; a full disk or I/O error after."""
        self._before_write()
        try:
            with self._write_lock:
                yield
        except OperationalError as exc:
            if (clear := _write_error(exc)) is None:
                raise
            raise clear from exc

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: commits on success, rolls back everything on any exception."""
        with self._writing(), self._writer() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction ended by COMMIT, not by the ROLLBACK closing it would send:
        psycopg forgets every prepared statement on ROLLBACK, and then PostgreSQL parses and
        plans each of a check's statements again (about half its server CPU per check)."""
        with self.read_engine.connect() as conn:
            yield conn
            conn.commit()

    # ---- schema ------------------------------------------------------------------------

    def alembic_config(self) -> Any:
        from alembic.config import Config as AlembicConfig

        conf = AlembicConfig()
        conf.set_main_option("script_location", str(alembic_dir()))
        conf.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        conf.attributes["engine"] = self.engine
        return conf

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def upgrade(self, backup_dir: Path | None = None) -> str | None:
        """`alembic upgrade head`, backing up a non-empty SQLite database first.

        On PostgreSQL, daemons on several machines may each run `db upgrade` as they start:
        a session lock lets one migrate while the others wait and then find nothing to do.
        """
        if self.is_sqlite:
            return self._upgrade(backup_dir)
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(hashtext('policy-monitor upgrade'))"))
            conn.commit()
            try:
                return self._upgrade(backup_dir)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(hashtext('policy-monitor upgrade'))"))
                conn.commit()

    def _upgrade(self, backup_dir: Path | None) -> str | None:
        from alembic import command

        current, head = self.current_revision(), self.head_revision()
        if current == head:
            return head
        if current is not None and self.is_sqlite and backup_dir is not None:
            backup_dir.mkdir(parents=True, exist_ok=True)
            target = backup_dir / f"monitor-{current}-{utcnow():%Y%m%dT%H%M%SZ}.db"
            # VACUUM INTO copies a consistent image; a file copy of a live WAL db would not.
            raw = self.engine.raw_connection()  # outside SQLAlchemy's transaction: VACUUM needs that
            try:
                raw.driver_connection.execute("VACUUM INTO ?", (str(target),))  # type: ignore[union-attr]
            finally:
                raw.close()
        try:
            command.upgrade(self.alembic_config(), "head")
        finally:
            # Migrations switch SQLite pragmas (foreign keys) on their connection; start afresh.
            self.engine.dispose()
            if self.read_engine is not self.engine:
                self.read_engine.dispose()
        return head

    def unjudged_changes(self, after_id: int, batch: int
                         ) -> list[tuple[int, dict[str, Any], str, str]]:
        """Classified changes without a verdict (stored before verdicts existed), past
        `after_id`: (id, diff, text before, text after), oldest first."""
        with self.read() as s:
            rows = s.execute(
                select(Change.id, Change.diff, Change.from_snapshot_id, Change.to_snapshot_id)
                .where(Change.verdict.is_(None), Change.labels.is_not(None), Change.id > after_id)
                .order_by(Change.id).limit(batch)).all()
            keys: dict[int, str] = {row.id: row.text_blob for row in s.execute(
                select(Snapshot.id, Snapshot.text_blob).where(Snapshot.id.in_(
                    [r[2] for r in rows] + [r[3] for r in rows])))}
            blobs = DatabaseBlobStore(s, self.blobs)
            return [(cid, diff, blobs.get(keys[a]).decode("utf-8"), blobs.get(keys[b]).decode("utf-8"))
                    for cid, diff, a, b in rows]

    def record_verdict(self, change_id: int, verdict: dict[str, Any]) -> None:
        """Store a change's verdict, default and regions excluded (labels stay as they are)."""
        with self.write() as s:
            s.execute(update(Change).where(Change.id == change_id).values(
                verdict=verdict["verdict"], ai_default=verdict["default"],
                regions_excluded=verdict["regions_excluded"]))

    def stored_revision(self) -> str | None:
        """The schema revision the database is at, read without importing Alembic (which costs
        most of a second): what every command checks before it reads."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def require_schema(self) -> None:
        try:
            current = self.stored_revision()
        except DatabaseError as exc:  # includes OperationalError; e.g. "disk image is malformed"
            raise StoreError(f"cannot open the database {self.url}: {exc.orig}") from None
        if current is None:
            raise StoreError("the database is not initialised; run `policy-monitor init`")
        if current != head_from_files():
            raise StoreError("the database schema is out of date; run `policy-monitor db upgrade`")

    # ---- sources -----------------------------------------------------------------------

    def sync_sources(self, sources: Sequence[cfg.Source], default_interval: float | None = None) -> None:
        """Make the sources table match the config by name; never delete history.

        Writes only what differs, so a restart or SIGHUP with an unchanged config writes
        nothing, and 100,000 new sources go in as a few bulk statements. Daemons starting
        together take turns under one lock, and rows are locked source first, host second,
        like every check transaction, so a sync cannot deadlock with checks or claims.
        """
        now = utcnow()
        with self.write_conn() as conn:
            advisory_lock(conn, "sync-sources")
            existing = {r.name: r for r in conn.execute(select(*_SYNC_COLUMNS))}
            hosts: dict[str, int] = dict(conn.execute(select(Host.host, Host.id)).all())
            host_names = {src.url: host_of(src.url) for src in sources}
            missing = sorted(set(host_names.values()) - hosts.keys())
            if missing:
                _bulk_insert(conn, Host, [{"host": h, "next_allowed_at": EPOCH} for h in missing])
                hosts = dict(conn.execute(select(Host.host, Host.id)).all())
            inserts: list[dict[str, Any]] = []
            updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            touched: set[int | None] = set()
            for src in sources:
                interval = src.interval or default_interval
                values: dict[str, Any] = {
                    "platform": src.platform, "title": src.title, "url": src.url,
                    "kind": str(src.kind), "enabled": src.enabled, "in_config": True,
                    "host_id": hosts[host_names[src.url]]}
                row = existing.pop(src.name, None)
                if row is None:
                    inserts.append({**values, "name": src.name, "created_at": now, "updated_at": now,
                                    "generation": 0, "consecutive_failures": 0, "failing": False,
                                    "extraction_key": src.extraction_key(),
                                    "interval_seconds": interval})
                    touched.add(values["host_id"])
                    continue
                if interval:
                    values["interval_seconds"] = interval
                if not row.extraction_key:
                    values["extraction_key"] = src.extraction_key()
                if interval and row.interval_seconds and interval != row.interval_seconds \
                        and row.last_check_at is not None and row.next_check_at is not None:
                    # Retimed: the next check follows the new interval from the last one.
                    values["next_check_at"] = row.last_check_at + timedelta(seconds=interval)
                if any(getattr(row, k) != v for k, v in values.items()):
                    _add_update(updates, row.id, values, now)
                    touched |= {row.host_id, values["host_id"]}
            for row in existing.values():  # gone from the config: disabled, history kept
                if row.in_config or row.enabled:
                    _add_update(updates, row.id, {"in_config": False, "enabled": False}, now)
                    touched.add(row.host_id)
            _lock_rows(conn, SourceRow, [u["b_id"] for group in updates.values() for u in group])
            _lock_rows(conn, Host, touched)
            _bulk_insert(conn, SourceRow, inserts)
            for keys, group in updates.items():
                stmt = (update(SourceRow).where(SourceRow.id == bindparam("b_id"))
                        .values({k: bindparam(f"b_{k}") for k in keys}))
                for i in range(0, len(group), CHUNK):
                    conn.execute(stmt, group[i:i + CHUNK])
            refresh_hosts(conn, touched)

    def schedule_new(self, now: datetime, rng: random.Random, default_interval: float) -> int:
        """Give never-checked sources a first check spread over min(interval, 10 minutes)."""
        with self.write_conn() as conn:
            advisory_lock(conn, "sync-sources")
            rows = conn.execute(select(SourceRow.id, SourceRow.interval_seconds, SourceRow.host_id)
                                .where(SourceRow.enabled.is_(True), SourceRow.next_check_at.is_(None))
                                .order_by(SourceRow.id)).all()
            planned = [{"b_id": r.id, "b_next": schedule.first_check(
                now, r.interval_seconds or default_interval, rng)} for r in rows]
            stmt = (update(SourceRow)
                    .where(SourceRow.id == bindparam("b_id"), SourceRow.next_check_at.is_(None))
                    .values(next_check_at=bindparam("b_next")))
            for i in range(0, len(planned), CHUNK):
                conn.execute(stmt, planned[i:i + CHUNK])
            refresh_hosts(conn, (r.host_id for r in rows))
            return len(rows)

    def claim(self, owner: str, now: datetime, limit: int, lease_seconds: float) -> list[Claim]:
        return self.claim_next(owner, now, limit, lease_seconds)[0]

    def claim_next(self, owner: str, now: datetime, limit: int, lease_seconds: float
                   ) -> tuple[list[Claim], datetime | None]:
        """Take up to `limit` due sources, at most one per free host, under fresh leases.

        Reads the ready hosts from the index on hosts.ready_at and each one's earliest due
        source from the index on (host, next check): the cost grows with what is claimed, not
        with the table. One write transaction (BEGIN IMMEDIATE on SQLite; SKIP LOCKED on
        PostgreSQL, so it never waits for a row another process holds), so two processes
        never claim the same source or the same host. Also returns the earliest ready time
        left, for the dispatcher's sleep.
        """
        if limit <= 0:
            return [], None
        expires = now + timedelta(seconds=lease_seconds)
        hosts_q, source_q = _CLAIM_SQLITE if self.is_sqlite else _CLAIM_LOCKING
        claims: list[Claim] = []
        stale: list[int] = []
        with self.write_conn() as conn:
            for host_id, allowed, leased_until in conn.execute(hosts_q, {"now": now, "n": limit}):
                if allowed > now or (leased_until is not None and leased_until >= now):
                    stale.append(host_id)  # its ready time is behind what it summarises
                    continue
                row = conn.execute(source_q, {"host": host_id, "now": now}).first()
                if row is None:
                    stale.append(host_id)
                    continue
                token = uuid.uuid4().hex
                lease = {"lease_owner": owner, "lease_token": token, "lease_expires_at": expires}
                conn.execute(update(Host).where(Host.id == host_id).values(**lease, ready_at=expires))
                conn.execute(update(SourceRow).where(SourceRow.id == row[0]).values(**lease))
                claims.append(Claim(row[0], row[1], host_id, token, row[2]))
            refresh_hosts(conn, stale)
            # When to claim next (the earliest ready time, leases taken just now included),
            # read in the same transaction so the dispatcher needs no query of its own.
            next_ready = conn.execute(select(func.min(Host.ready_at))).scalar()
        return claims, next_ready

    def renew(self, claims: Sequence[Claim], expires: datetime) -> int:
        """Extend the leases of checks still running (the heartbeat): a lease can then be short,
        so a killed process's sources and hosts come back within about one lease. Returns how
        many were still held."""
        held = 0
        for claim in sorted(claims, key=lambda c: c.source_id):  # one lock order for everyone
            with self.write_conn() as conn:
                if conn.execute(update(SourceRow).where(
                        SourceRow.id == claim.source_id, SourceRow.lease_token == claim.token)
                        .values(lease_expires_at=expires)).rowcount != 1:
                    continue
                held += 1
                if claim.host_id is not None:
                    conn.execute(update(Host).where(Host.id == claim.host_id,
                                                    Host.lease_token == claim.token)
                                 .values(lease_expires_at=expires))
                    refresh_hosts(conn, [claim.host_id])
        return held

    def db_time(self) -> datetime:
        """The database server's clock (PostgreSQL), for processes on several machines."""
        with self.reading() as conn:
            value = conn.execute(text("SELECT clock_timestamp()")).scalar()
        assert isinstance(value, datetime)
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def release(self, claim: Claim) -> None:
        """Give a claimed source and its host back without checking (e.g. on shutdown)."""
        cleared = {"lease_owner": None, "lease_token": None, "lease_expires_at": None}
        with self.write_conn() as conn:
            conn.execute(update(SourceRow).where(SourceRow.id == claim.source_id,
                                                 SourceRow.lease_token == claim.token).values(**cleared))
            if claim.host_id is not None:
                conn.execute(update(Host).where(Host.id == claim.host_id,
                                                Host.lease_token == claim.token).values(**cleared))
                refresh_hosts(conn, [claim.host_id])

    def ensure_sources(self, sources: Sequence[cfg.Source], *, enabled: bool = True) -> None:
        """Create or update these sources only; others are left alone (used by `import`)."""
        now = utcnow()
        with self.write() as s:
            for src in sources:
                row = s.scalar(select(SourceRow).where(SourceRow.name == src.name))
                if row is None:
                    row = SourceRow(name=src.name, created_at=now, generation=0, in_config=False,
                                    consecutive_failures=0, extraction_key=src.extraction_key())
                    s.add(row)
                row.platform, row.title, row.url, row.kind = src.platform, src.title, src.url, src.kind
                row.enabled, row.updated_at = enabled, now
                s.flush()
                refresh_hosts(s.connection(), [row.host_id])

    def source_row(self, session: Session, name: str) -> SourceRow:
        row = session.scalar(select(SourceRow).where(SourceRow.name == name))
        if row is None:
            raise unknown_source(name, session.scalars(select(SourceRow.name)), " in the database")
        return row

    def state(self, name: str) -> SourceState:
        with self.reading() as conn:
            row = conn.execute(_STATE, {"name": name}).first()
            if row is None:
                raise unknown_source(name, conn.scalars(select(SourceRow.name)), " in the database")
        return SourceState(*row)

    def last_failure(self, state: SourceState) -> tuple[str | None, str | None]:
        """(failure kind, error) of the source's latest check, if it failed."""
        q = (select(Check.outcome, Check.failure_kind, Check.error)
             .where(Check.source_id == state.id).order_by(Check.id.desc()).limit(1))
        with self.reading() as conn:
            row = conn.execute(q).first()
        if row is None or row[0] != "failed":
            return None, None
        return row[1], row[2]

    def last_seen(self, state: SourceState, sha: str) -> datetime | None:
        """When this exact text was last current for the source, if ever (to spot flapping pages).

        That is the later of its last sighting and the moment a change replaced it: imported
        histories only record changes, so the sighting alone would make every version look old.
        """
        q = select(Snapshot.id, Snapshot.last_seen_at).where(
            Snapshot.source_id == state.id, Snapshot.generation == state.generation,
            Snapshot.sha256 == sha)
        with self.reading() as conn:
            row = conn.execute(q).first()
            if row is None:
                return None
            replaced = conn.execute(select(func.max(Change.detected_at)).where(
                Change.from_snapshot_id == row[0])).scalar()
        seen: datetime = row[1]
        return max(seen, replaced) if replaced is not None else seen

    def recent_texts(self, state: SourceState, since: datetime, limit: int = 5
                     ) -> list[tuple[str, datetime]]:
        """Earlier texts of the source that were current at some point since `since`, newest
        first, with the last time each was current (which ones a judgement reads is decided
        in monitor/judge.py)."""
        replaced = (select(Change.from_snapshot_id.label("sid"),
                           func.max(Change.detected_at).label("at"))
                    .where(Change.source_id == state.id)
                    .group_by(Change.from_snapshot_id).subquery())
        q = (select(Snapshot.text_blob, Snapshot.last_seen_at, replaced.c.at)
             .outerjoin(replaced, replaced.c.sid == Snapshot.id)
             .where(Snapshot.source_id == state.id, Snapshot.generation == state.generation,
                    Snapshot.id != (state.current_snapshot_id or -1)))
        with self.read() as s:
            rows = [(blob, max(seen, at) if at is not None else seen)
                    for blob, seen, at in s.execute(q)]
            rows = sorted((r for r in rows if r[1] >= since), key=lambda r: r[1], reverse=True)
            blobs = DatabaseBlobStore(s, self.blobs)
            return [(blobs.get(blob).decode("utf-8"), when) for blob, when in rows[:limit]]

    def text_before_partial(self, state: SourceState, lookback: int
                            ) -> tuple[str, datetime] | None:
        """The text before the latest change recorded as a partial load, among the source's
        last `lookback` changes, and when that change was seen."""
        with self.read() as s:
            for findings, from_id, at in s.execute(
                    select(Change.findings, Change.from_snapshot_id, Change.detected_at)
                    .where(Change.source_id == state.id, Change.generation == state.generation)
                    .order_by(Change.id.desc()).limit(lookback)):
                if ((findings or {}).get("anomaly") or {}).get("kind") == "partial":
                    blob = s.scalar(select(Snapshot.text_blob).where(Snapshot.id == from_id))
                    if blob is None:
                        return None
                    return DatabaseBlobStore(s, self.blobs).get(blob).decode("utf-8"), at
        return None

    def stated_dates(self, state: SourceState, read_date: Callable[[str], date | None],
                     limit: int = 100) -> list[date]:
        """The dates the source's earlier versions stated (newest `limit` versions)."""
        with self.read() as s:
            blobs = DatabaseBlobStore(s, self.blobs)
            keys = s.scalars(select(Snapshot.text_blob).where(
                Snapshot.source_id == state.id, Snapshot.generation == state.generation)
                .order_by(Snapshot.id.desc()).limit(limit)).all()
            found = (read_date(blobs.get(k).decode("utf-8")) for k in keys)
            return [d for d in found if d is not None]

    def text_of(self, blob_key: str) -> str:
        with self.read() as s:
            return DatabaseBlobStore(s, self.blobs).get(blob_key).decode("utf-8")

    def blob(self, key: str) -> bytes:
        with self.read() as s:
            return DatabaseBlobStore(s, self.blobs).get(key)

    # ---- recording checks ----------------------------------------------------------------

    def record_failure(
        self,
        state: SourceState,
        started: datetime,
        duration_ms: int,
        kind: FailureKind,
        error: str,
        http_status: int | None = None,
        done: Completion | None = None,
        fetcher: str | None = None,
    ) -> StoredCheck:
        with self.write() as s:
            row = s.get(SourceRow, state.id)
            assert row is not None
            check = Check(source_id=row.id, started_at=started, duration_ms=duration_ms,
                          outcome="failed", failure_kind=str(kind), http_status=http_status,
                          error=error[:2000], fetcher=fetcher)
            s.add(check)
            row.last_check_at, row.last_outcome = started, "failed"
            row.consecutive_failures = (row.consecutive_failures or 0) + 1
            s.flush()
            _complete(s.connection(), state, done, ok=False, at=started,
                      failures=row.consecutive_failures, error=error)
            return StoredCheck(check.id, "failed")

    @contextlib.contextmanager
    def write_conn(self) -> Iterator[Connection]:
        """A Core connection in one write transaction, for the hot paths."""
        with self._writing(), self.engine.begin() as conn:
            yield conn

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
        """One INSERT and two UPDATEs with prebuilt statements: the common case stays cheap."""
        # Each statement gets exactly its own parameters: SQLAlchemy turns an extra key that
        # names a column (etag, on both tables) into one more SET, which erased the stored
        # ETag on every 304.
        guard = {**_guard(state), "at": started}
        if http_status == 304:
            touch, params = _TOUCH_304, guard
        else:
            touch, params = _TOUCH_200, {**guard, "etag": etag, "lm": last_modified, "fp": fingerprint}
        # Completed by this same UPDATE unless the source's failing record must close too.
        completing = done if done is not None and not state.failing else None
        if completing is not None:
            touch = _TOUCH_DONE[http_status == 304, completing.token is not None]
            params = {**params, "next": completing.next_check_at, "token": completing.token}
        with self.write_conn() as conn:
            if conn.execute(touch, params).rowcount != 1:
                if completing is not None and completing.token is not None and conn.scalar(
                        select(SourceRow.lease_token).where(SourceRow.id == state.id)
                ) != completing.token:
                    raise LeaseLost(f"lost the lease on source {state.id}; discarding this check")
                raise StoreError("the source changed while it was being checked; will retry")
            check_id = conn.execute(_INSERT_CHECK, {
                "source_id": state.id, "started_at": started, "duration_ms": duration_ms,
                "outcome": "unchanged", "http_status": http_status, "bytes": size,
                "snapshot_id": state.current_snapshot_id, "fetcher": fetcher}).scalar_one()
            if state.current_snapshot_id is not None:
                conn.execute(_SEEN_SNAPSHOT, {"snap": state.current_snapshot_id, "at": started})
            _complete(conn, state, done, ok=True, at=started, failures=0,
                      source_done=completing is not None)
            return StoredCheck(check_id, "unchanged", state.current_snapshot_id)

    def record_version(
        self, state: SourceState, started: datetime, duration_ms: int, http_status: int,
        version: NewVersion, done: Completion | None = None,
    ) -> StoredCheck:
        """Snapshot, change and check in one transaction: all visible, or none. Core
        statements on one connection: the ORM's unit of work cost a changed check ~3 ms."""
        with self.write_conn() as conn:
            platform = conn.execute(_PLATFORM_IF_UNCHANGED, _guard(state)).scalar()
            if platform is None:
                raise StoreError("the source changed while it was being checked; will retry")
            blobs = DatabaseBlobStore(conn, self.blobs)
            snap_id = _upsert_snapshot(conn, blobs, state, version, started)
            if snap_id != state.current_snapshot_id and version.search_index:  # it follows the page
                from monitor.search import index_version

                previous_text = version.previous_text
                if previous_text is None and state.current_text_blob is not None:
                    previous_text = blobs.get(state.current_text_blob).decode("utf-8")
                index_version(conn, state.id, state.generation, snap_id, version.text,
                              started, state.current_snapshot_id, previous_text)
            outcome = "baseline" if state.current_snapshot_id is None else "changed"
            check_id = conn.execute(_INSERT_CHECK, {
                "source_id": state.id, "started_at": started, "duration_ms": duration_ms,
                "outcome": outcome, "http_status": http_status, "bytes": len(version.raw),
                "snapshot_id": snap_id, "fetcher": version.fetcher}).scalar_one()
            change_id = None
            values: dict[str, Any] = {}
            if state.current_snapshot_id is not None and version.diff is not None:
                change = _change_values(state.id, state.generation, state.current_snapshot_id,
                                        snap_id, version.diff, started, version.classification)
                event_id, event_start = _assign_event(conn, platform, change)
                change_id = conn.execute(insert(Change).returning(Change.id).values(
                    **change, check_id=check_id, event_id=event_id)).scalar_one()
                # Every change reaches every subscription that wants it. Changes of one event are
                # held until the event's gathering window ends, so the pages of one announcement
                # go out in one message; later ones are sent as updates (see notify.flush).
                due = max(started, event_start + version.event_window) if event_start else started
                _queue(conn, "change", change_id, version.outbox, due,
                       change_id=change_id, created=started)
                values["last_change_at"] = started
            conn.execute(update(SourceRow).where(SourceRow.id == state.id).values(
                **values, current_snapshot_id=snap_id, last_check_at=started,
                last_outcome=outcome, consecutive_failures=0, etag=version.etag,
                last_modified=version.last_modified, fingerprint=version.fingerprint))
            _complete(conn, state, done, ok=True, at=started, failures=0)
            return StoredCheck(check_id, outcome, snap_id, change_id)

    # ---- re-extraction ---------------------------------------------------------------------

    def raw_versions(self, name: str) -> list[tuple[Snapshot, bytes | None]]:
        """The current generation's snapshots in order of first sight, with their raw bodies."""
        with self.read() as s:
            row = self.source_row(s, name)
            snaps = list(s.scalars(
                select(Snapshot)
                .where(Snapshot.source_id == row.id, Snapshot.generation == row.generation)
                .order_by(Snapshot.first_seen_at, Snapshot.id)
            ))
            blobs = DatabaseBlobStore(s, self.blobs)
            return [(snap, blobs.get(snap.raw_blob) if snap.raw_blob else None) for snap in snaps]

    def replace_history(
        self,
        name: str,
        extraction_key: str,
        versions: Sequence[tuple[Snapshot, str, Diff | None, Classification | None]],
        skipped: int,
    ) -> int:
        """Write a new generation of snapshots and changes; the old one stays, superseded."""
        now = utcnow()
        with self.write() as s:
            row = self.source_row(s, name)
            old_gen, new_gen = row.generation, row.generation + 1
            blobs = DatabaseBlobStore(s, self.blobs)
            previous: Snapshot | None = None
            previous_text: str | None = None
            for old, text, diff, classification in versions:
                data = text.encode("utf-8")
                digest = sha256(data)
                snap = s.scalar(select(Snapshot).where(
                    Snapshot.source_id == row.id, Snapshot.generation == new_gen,
                    Snapshot.sha256 == digest))
                if snap is None:
                    key = blobs.put(data, base=previous.text_blob if previous else None)
                    snap = Snapshot(
                        source_id=row.id, generation=new_gen, sha256=digest, text_blob=key,
                        raw_blob=old.raw_blob, content_type=old.content_type, charset=old.charset,
                        url=old.url, text_size=len(data), raw_size=old.raw_size, etag=old.etag,
                        last_modified=old.last_modified, first_seen_at=old.first_seen_at,
                        last_seen_at=old.last_seen_at)
                    s.add(snap)
                    s.flush()
                else:
                    snap.last_seen_at = max(snap.last_seen_at, old.last_seen_at)
                if previous is None or previous.id != snap.id:
                    from monitor.search import index_version

                    index_version(s.connection(), row.id, new_gen, snap.id, text, old.first_seen_at,
                                  previous.id if previous else None, previous_text)
                    previous_text = text
                if previous is not None and diff is not None and previous.id != snap.id:
                    s.add(Change(**{**_change_values(row.id, new_gen, previous.id, snap.id, diff,
                                                     old.first_seen_at, classification),
                                    "reextracted": True}))
                previous = snap
            s.add(Reextraction(source_id=row.id, at=now, from_generation=old_gen,
                               to_generation=new_gen, extraction_key=extraction_key,
                               versions=len(versions), skipped=skipped))
            row.generation = new_gen
            row.extraction_key = extraction_key
            row.current_snapshot_id = previous.id if previous else None
            row.fingerprint = None  # the next check must extract with the new selectors
            return new_gen

    # ---- the outbox ------------------------------------------------------------------------

    def queue(self, kind: str, ref: str, outbox: Sequence[Outgoing], at: datetime,
              payload: dict[str, Any] | None = None) -> int:
        """Queue rows that belong to no change (digests, tests)."""
        with self.write_conn() as conn:
            return _queue(conn, kind, ref, outbox, at, payload=payload)

    def due_deliveries(self, now: datetime, stale_before: datetime, limit: int = 100) -> list[Delivery]:
        """Pending rows whose time has come, and rows stuck in 'sending' by a crashed sender."""
        with self.read() as s:
            return list(s.scalars(select(Delivery).where(
                ((Delivery.status == "pending") & (Delivery.next_attempt_at <= now))
                | ((Delivery.status == "sending") & (Delivery.claimed_at < stale_before)))
                .order_by(Delivery.next_attempt_at, Delivery.id).limit(limit)))

    def begin_attempt(self, delivery: Delivery, now: datetime, stale_before: datetime) -> bool:
        """Record the attempt before sending (at-least-once); False if another sender has it."""
        with self.write_conn() as conn:
            result = conn.execute(update(Delivery).where(
                Delivery.id == delivery.id,
                (Delivery.status == "pending")
                | ((Delivery.status == "sending") & (Delivery.claimed_at < stale_before)))
                .values(status="sending", claimed_at=now, attempts=Delivery.attempts + 1))
            return result.rowcount == 1

    def finish_attempt(self, delivery_id: int, now: datetime, *, ok: bool, error: str | None = None,
                       retry_at: datetime | None = None) -> None:
        values: dict[str, Any]
        if ok:
            values = {"status": "sent", "sent_at": now, "last_error": None}
        elif retry_at is not None:
            values = {"status": "pending", "next_attempt_at": retry_at, "last_error": error}
        else:
            values = {"status": "failed", "last_error": error}
        with self.write_conn() as conn:
            conn.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))

    def target_result(self, subscription: str, target: int, masked: str, now: datetime, *,
                      ok: bool, error: str | None, alert_after: timedelta) -> bool:
        """Record how a send to one target went; True when this failure opens the target's
        "alert target failing" record (its failures have lasted longer than alert_after)."""
        for attempt in range(2):  # two senders may create the row at once: the loser updates
            try:
                with self.write() as s:
                    row = s.get(TargetHealth, (subscription, target))
                    if row is None:
                        row = TargetHealth(subscription=subscription, target=target, masked=masked)
                        s.add(row)
                    row.masked, row.last_attempt_at = masked, now
                    if ok:
                        row.failing_since, row.last_error, row.alert_at = None, None, None
                        row.last_success_at = now
                        return False
                    row.last_error = error
                    row.failing_since = row.failing_since or now
                    if row.alert_at is None and now - row.failing_since >= alert_after:
                        row.alert_at = now
                        return True
                    return False
            except IntegrityError:
                if attempt:
                    raise
        return False

    def target_health(self, failing_only: bool = False) -> list[TargetHealth]:
        q = select(TargetHealth).order_by(TargetHealth.subscription, TargetHealth.target)
        if failing_only:
            q = q.where(TargetHealth.failing_since.is_not(None))
        with self.read() as s:
            return list(s.scalars(q))

    def change_events(self, change_ids: Sequence[int]) -> dict[int, int | None]:
        """The event of each change (None for changes that belong to none)."""
        if not change_ids:
            return {}
        with self.read() as s:
            rows = s.execute(select(Change.id, Change.event_id)
                             .where(Change.id.in_(list(change_ids)))).all()
            return {row.id: row.event_id for row in rows}

    def event_sent(self, event_id: int, subscription: str, target: int) -> list[int]:
        """Changes of an event already sent (or merged) to one target, in order."""
        with self.read() as s:
            return list(s.scalars(
                select(Delivery.change_id).join(Change, Change.id == Delivery.change_id)
                .where(Change.event_id == event_id, Delivery.subscription == subscription,
                       Delivery.target == target, Delivery.kind == "change",
                       Delivery.status.in_(("sent", "merged")))
                .order_by(Delivery.id)))

    def event_info(self, event_id: int) -> Event:
        with self.read() as s:
            event = s.get(Event, event_id)
            if event is None:
                raise NotFoundError(f"no event {event_id}")
            return event

    def merge_deliveries(self, ids: Sequence[int], now: datetime, note: str) -> None:
        """Mark rows whose change an earlier message of their event already told: kept, not sent."""
        with self.write_conn() as conn:
            conn.execute(update(Delivery).where(Delivery.id.in_(list(ids)))
                         .values(status="merged", sent_at=now, last_error=note))

    def retry_failed(self, ids: Sequence[int], now: datetime) -> int:
        q = update(Delivery).where(Delivery.status == "failed")
        if ids:
            q = q.where(Delivery.id.in_(ids))
        with self.write_conn() as conn:
            return conn.execute(q.values(status="pending", attempts=0, next_attempt_at=now)).rowcount

    def deliveries(self, failed_only: bool = False, limit: int = 200) -> list[Delivery]:
        q = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
        if failed_only:
            q = q.where(Delivery.status == "failed")
        with self.read() as s:
            return list(s.scalars(q))

    def source_alert(self, alert_id: int) -> tuple[SourceAlert, SourceRow]:
        with self.read() as s:
            alert = s.get(SourceAlert, alert_id)
            if alert is None:
                raise NotFoundError(f"no source alert {alert_id}")
            row = s.get(SourceRow, alert.source_id)
            assert row is not None
            return alert, row

    def changes_between(
        self, start: datetime, end: datetime
    ) -> list[tuple[int, str, str, list[str], str | None]]:
        """(change id, platform, source, labels, severity) detected in [start, end), not rebuilt."""
        with self.read() as s:
            rows = s.execute(select(Change.id, SourceRow.platform, SourceRow.name, Change.labels,
                                    Change.severity)
                             .join(SourceRow, SourceRow.id == Change.source_id)
                             .where(Change.detected_at >= start, Change.detected_at < end,
                                    Change.reextracted.is_(False))
                             .order_by(Change.detected_at)).all()
        return [(r[0], r[1], r[2], list(r[3] or []), r[4]) for r in rows]

    # ---- reading -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self.read() as s:
            return {
                name: s.scalar(select(func.count()).select_from(model)) or 0
                for name, model in (("sources", SourceRow), ("snapshots", Snapshot),
                                    ("checks", Check), ("changes", Change))
            }

    def ping(self) -> None:
        """A trivial query: is the database answering at all (the watchdog's liveness test)."""
        with self.reading() as conn:
            conn.execute(text("SELECT 1")).scalar()

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file (hourly maintenance)."""
        if self.is_sqlite:
            raw = self.engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
            finally:
                raw.close()

    def integrity_ok(self) -> bool:
        if not self.is_sqlite:
            return True
        try:
            with self.engine.connect() as conn:
                return conn.execute(text("PRAGMA quick_check")).scalar() == "ok"
        except DatabaseError:  # "file is not a database", "disk image is malformed"
            return False


def _upsert_snapshot(conn: Connection, blobs: DatabaseBlobStore, state: SourceState,
                     version: NewVersion, now: datetime) -> int:
    t = Snapshot.__table__.c
    known = conn.execute(select(t.id).where(
        t.source_id == state.id, t.generation == state.generation,
        t.sha256 == version.sha256)).scalar()
    if known is not None:  # the page went back to an earlier text: reuse that snapshot
        conn.execute(update(Snapshot).where(t.id == known).values(last_seen_at=now))
        return int(known)
    data = version.text.encode("utf-8")
    previous = version.previous_text.encode("utf-8") if version.previous_text is not None else None
    text_key = blobs.put(data, base=state.current_text_blob, base_data=previous)
    raw_key = blobs.put(version.raw, base=state.current_raw_blob)
    return int(conn.execute(insert(Snapshot).returning(t.id).values(
        source_id=state.id, generation=state.generation, sha256=version.sha256,
        text_blob=text_key, raw_blob=raw_key, content_type=version.content_type,
        charset=version.charset, url=version.url, text_size=len(data), raw_size=len(version.raw),
        etag=version.etag, last_modified=version.last_modified, first_seen_at=now,
        last_seen_at=now, fetcher=version.fetcher)).scalar_one())


EVENT_WINDOW = timedelta(hours=72)


def _change_values(
    source_id: int, generation: int, from_id: int, to_id: int, diff: Diff, at: datetime,
    classification: Classification | None = None,
) -> dict[str, Any]:
    """The columns of a change row: one place for a check's change and a re-extracted one."""
    st = diff.stats
    values: dict[str, Any] = {
        "source_id": source_id, "generation": generation, "from_snapshot_id": from_id,
        "to_snapshot_id": to_id, "detected_at": at, "reextracted": False,
        "diff": diff.to_dict(), "words_added": st.words_added, "words_removed": st.words_removed,
        "sentences_added": st.sentences_added, "sentences_removed": st.sentences_removed,
    }
    # An unclassified change leaves its JSON columns out: None would be stored as JSON null.
    if classification is not None:
        data = classification.to_dict()
        findings = {k: data[k] for k in ("evidence", "directions", "summary", "reverted_to",
                                         "anomaly")}
        if classification.skimmed:
            findings["skimmed"] = classification.skimmed
        values.update(labels=list(classification.labels), severity=classification.severity,
                      findings=findings, opt_out=data["opt_out"],
                      rules_version=classification.rules_version,
                      verdict=data["verdict"], ai_default=data["default"],
                      regions_excluded=data["regions_excluded"])
    return values


def _assign_event(conn: Connection, platform: str, change: dict[str, Any]
                  ) -> tuple[int | None, datetime | None]:
    """Join the platform's event within 72 hours of this change, or start one.

    One announcement (policy, FAQ and help article updated together) becomes one event with
    the highest severity of its changes. Cosmetic and unclassified changes join none. Returns
    the event and when it started: its alerts are gathered from then on, never dropped.
    """
    severity = change.get("severity")
    if severity in (None, "none"):
        return None, None
    # Several processes may record changes of one platform at once: without the lock both
    # could start an event, or both add one to `changes` and lose one (PostgreSQL; SQLite's
    # BEGIN IMMEDIATE already lets one writer in at a time).
    advisory_lock(conn, f"event:{platform}")
    at: datetime = change["detected_at"]
    e = Event.__table__.c
    event = conn.execute(
        select(e.id, e.first_at, e.last_at, e.severity, e.labels, e.changes)
        .where(e.platform == platform, e.last_at >= at - EVENT_WINDOW,
               e.first_at <= at + EVENT_WINDOW)
        .order_by(e.last_at.desc()).limit(1)).first()
    labels = set(change.get("labels") or [])
    if event is None:
        event_id = conn.execute(insert(Event).returning(e.id).values(
            platform=platform, first_at=at, last_at=at, severity=severity,
            labels=sorted(labels), changes=1)).scalar_one()
        return event_id, at
    first_at = min(event.first_at, at)
    conn.execute(update(Event).where(e.id == event.id).values(
        first_at=first_at, last_at=max(event.last_at, at),
        severity=max_severity([event.severity, severity]),
        labels=sorted(set(event.labels or []) | labels), changes=(event.changes or 0) + 1))
    return event.id, first_at


_SYNC_COLUMNS = (SourceRow.id, SourceRow.name, SourceRow.platform, SourceRow.title, SourceRow.url,
                 SourceRow.kind, SourceRow.enabled, SourceRow.in_config, SourceRow.extraction_key,
                 SourceRow.interval_seconds, SourceRow.host_id, SourceRow.last_check_at,
                 SourceRow.next_check_at)


def _write_error(exc: OperationalError) -> StoreError | None:
    """A full disk or an I/O error is one clear line and a check not recorded (retried later),
    not a traceback; other operational errors (deadlocks, busy) pass through unchanged (None)."""
    message = str(exc.orig)
    if any(k in message.lower() for k in ("full", "disk i/o", "no space", "read-only")):
        return StoreError(f"cannot write to the database: {message}; nothing was recorded")
    return None


def _bulk_insert(conn: Connection, model: type[SourceRow] | type[Host],
                 rows: list[dict[str, Any]]) -> None:
    """Insert many rows in the caller's transaction: COPY on PostgreSQL (100,000 sources in
    about a second; parameterised INSERTs spend most of their time building the statement),
    executemany on SQLite (whose driver loops in C)."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(model), rows)
        return
    columns = list(rows[0])
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(
            f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _add_update(updates: dict[tuple[str, ...], list[dict[str, Any]]], row_id: int,
                values: dict[str, Any], now: datetime) -> None:
    """Group row updates by the columns they set, for one executemany per group."""
    values = {**values, "updated_at": now}
    updates.setdefault(tuple(sorted(values)), []).append(
        {"b_id": row_id, **{f"b_{k}": v for k, v in values.items()}})


def _lock_rows(conn: Connection, model: type[SourceRow] | type[Host], ids: Iterable[int | None]) -> None:
    """Lock rows in id order before changing them (PostgreSQL), so writers that touch several
    rows never wait on each other in a circle."""
    if conn.dialect.name != "postgresql":
        return
    wanted = sorted({i for i in ids if i is not None})
    for i in range(0, len(wanted), CHUNK):
        conn.execute(select(model.id).where(model.id.in_(wanted[i:i + CHUNK]))
                     .order_by(model.id).with_for_update())


def advisory_lock(conn: Connection, name: str) -> None:
    """Hold a PostgreSQL transaction lock named `name` until commit; SQLite needs none (one
    writer at a time)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": name})


def _complete(
    conn: Connection, state: SourceState, done: Completion | None, *, ok: bool, at: datetime,
    failures: int, error: str | None = None, source_done: bool = False,
) -> None:
    """Schedule the next check, free the host after its polite gap, release the lease, and
    open or close the source's failing record — in the check's own transaction.

    With a lease token, a worker that lost its lease (it expired and another took over)
    raises LeaseLost here, so its whole transaction rolls back and it writes nothing.
    `source_done`: the caller's own UPDATE already scheduled the source and released its
    lease (an unchanged page of a source that is not failing); only the host is left.
    """
    if done is None:
        return
    if source_done:
        _release_host(conn, state, done)
        return
    guard = SourceRow.id == state.id
    if done.token is not None:
        guard = guard & (SourceRow.lease_token == done.token)
    values: dict[str, Any] = {"next_check_at": done.next_check_at, "lease_owner": None,
                              "lease_token": None, "lease_expires_at": None}
    opened = not ok and failures >= done.failure_threshold and not state.failing
    closed = ok and state.failing
    if opened or closed:
        values["failing"] = opened
    if conn.execute(update(SourceRow).where(guard).values(**values)).rowcount != 1:
        raise LeaseLost(f"lost the lease on source {state.id}; discarding this check")
    _release_host(conn, state, done)
    if opened or closed:
        alert_id = conn.execute(insert(SourceAlert).values(
            source_id=state.id, kind="failing" if opened else "recovered", at=at,
            failures=failures if opened else state.consecutive_failures,
            error=(error or "")[:2000] if opened else None).returning(SourceAlert.id)).scalar_one()
        _queue(conn, "alert", alert_id, done.alert_outbox, at, source_alert_id=alert_id)


def _release_host(conn: Connection, state: SourceState, done: Completion) -> None:
    """The host's polite gap starts now, and its lease (if this check's) is released."""
    if state.host_id is None:
        return
    host_guard = Host.id == state.host_id
    if done.token is not None:
        host_guard = host_guard & (Host.lease_token == done.token)
    allowed = literal(done.host_next_allowed_at, UTCDateTime())
    conn.execute(update(Host).where(host_guard).values(
        next_allowed_at=done.host_next_allowed_at, lease_owner=None, lease_token=None,
        lease_expires_at=None,
        # the ready time with the values this statement sets (SET reads the old ones)
        ready_at=_ready_time(conn.dialect.name, allowed=allowed,
                             leased_until=literal(EPOCH, UTCDateTime()))))


def _queue(conn: Connection, kind: str, ref: int | str, outbox: Sequence[Outgoing], at: datetime,
           *, change_id: int | None = None, source_alert_id: int | None = None,
           payload: dict[str, Any] | None = None, created: datetime | None = None) -> int:
    """Write outbox rows, due at `at`, in the caller's transaction; a repeated dedupe key is
    skipped."""
    queued = 0
    for out in outbox:
        key = f"{kind}:{ref}:{out.subscription}:{out.target}"
        exists = conn.execute(select(Delivery.id).where(Delivery.dedupe_key == key)).first()
        if exists:
            continue
        conn.execute(insert(Delivery).values(
            kind=kind, change_id=change_id, source_alert_id=source_alert_id,
            subscription=out.subscription, target=out.target, dedupe_key=key, status="pending",
            attempts=0, next_attempt_at=at, created_at=created or at, payload=payload))
        queued += 1
    return queued
