"""Engines, transactions and the schema: what every other part of the store writes through.

One writer at a time per SQLite file (BEGIN IMMEDIATE, a process-wide lock), a gate before
every write (the file is the one opened, and it passed quick_check), full-disk errors as
one clear line, and migrations with a backup first."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from monitor import config as cfg
from monitor.blobstore import BlobCache, DatabaseBlobStore
from monitor.errors import StoreError, unknown_source
from monitor.models import (
    Change,
    Snapshot,
    SourceRow,
)
from monitor.store.gate import FileGate
from monitor.store.schema import alembic_dir, require_revision
from monitor.store.trouble import classify

if TYPE_CHECKING:
    pass



def utcnow() -> datetime:
    return datetime.now(UTC)


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


@contextlib.contextmanager
def _troubled() -> Iterator[None]:
    """A database that is down, full, read-only, timing out or missing is one clear
    DatabaseTrouble (a check not recorded, retried later), never a traceback charged to a
    page; other driver errors (constraints, deadlocks) pass through unchanged."""
    try:
        yield
    except DBAPIError as exc:
        if (trouble := classify(exc)) is None:
            raise
        raise trouble from exc


def advisory_lock(conn: Connection, name: str) -> None:
    """Hold a PostgreSQL transaction lock named `name` until commit; SQLite needs none (one
    writer at a time)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": name})


CHUNK = 500  # rows per statement in bulk writes: under every backend's parameter limit


def _index_stored_versions(conn: Connection) -> None:
    """Fill the sentence index (empty after migration 0008) from the stored versions, each
    page's in the order it showed them: the splitting is live code, which a migration must
    not import, so `upgrade` runs it right after migrating past 0008."""
    from monitor.search import index_version

    pages = conn.execute(select(Snapshot.source_id, Snapshot.generation).distinct()
                         .order_by(Snapshot.source_id, Snapshot.generation)).all()
    for source_id, generation in pages:
        blobs = DatabaseBlobStore(conn)  # one page's versions held at a time
        snaps = {row.id: row for row in conn.execute(
            select(Snapshot.id, Snapshot.text_blob, Snapshot.first_seen_at)
            .where(Snapshot.source_id == source_id, Snapshot.generation == generation)
            .order_by(Snapshot.first_seen_at, Snapshot.id))}
        changes = conn.execute(
            select(Change.from_snapshot_id, Change.to_snapshot_id, Change.detected_at)
            .where(Change.source_id == source_id, Change.generation == generation)
            .order_by(Change.detected_at, Change.id)).all()
        first = changes[0].from_snapshot_id if changes else next(iter(snaps))
        previous, previous_text = first, blobs.get(snaps[first].text_blob).decode("utf-8")
        index_version(conn, source_id, generation, first, previous_text,
                      snaps[first].first_seen_at, None, None)
        for change in changes:
            if change.to_snapshot_id == previous or change.to_snapshot_id not in snaps:
                continue
            current_text = blobs.get(snaps[change.to_snapshot_id].text_blob).decode("utf-8")
            index_version(conn, source_id, generation, change.to_snapshot_id, current_text,
                          change.detected_at, previous, previous_text)
            previous, previous_text = change.to_snapshot_id, current_text


class Database:
    """Owns the engines and the transaction discipline every concern of the store uses."""

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
        self.gate = FileGate(self.file, self.integrity_ok)
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
    def from_settings(cls, settings: cfg.Settings) -> Self:
        return cls(settings.database, connections=settings.workers + 4)

    def close(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()

    @property
    def fatal(self) -> str | None:
        """Set when writing must stop for good (the daemon exits)."""
        return self.gate.fatal

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Around every write transaction: the gate first; a full disk or I/O error after."""
        self.gate.check()
        with _troubled(), self._write_lock:
            yield

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: commits on success, rolls back everything on any exception."""
        with self._writing(), self._writer() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with _troubled(), self._reader() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction ended by COMMIT, not by the ROLLBACK closing it would send:
        psycopg forgets every prepared statement on ROLLBACK, and then PostgreSQL parses and
        plans each of a check's statements again (about half its server CPU per check)."""
        with _troubled(), self.read_engine.connect() as conn:
            yield conn
            conn.commit()

    @contextlib.contextmanager
    def write_conn(self) -> Iterator[Connection]:
        """A Core connection in one write transaction, for the hot paths."""
        with self._writing(), self.engine.begin() as conn:
            yield conn

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
        with _troubled():
            return self._upgrade_locked(backup_dir)

    def _upgrade_locked(self, backup_dir: Path | None) -> str | None:
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
            if current is not None and current < "0008":  # 0008 made the index, empty
                with self.engine.begin() as conn:
                    _index_stored_versions(conn)
            if current is not None and current < "0013":  # 0013 made the board's table, empty
                from monitor.store.answers import rebuild_all

                with self.engine.begin() as conn:
                    rebuild_all(conn)
        finally:
            # Migrations switch SQLite pragmas (foreign keys) on their connection; start afresh.
            self.engine.dispose()
            if self.read_engine is not self.engine:
                self.read_engine.dispose()
        return head

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
            raise classify(exc) or StoreError(
                f"cannot open the database {self.url}: {exc.orig}") from None
        require_revision(current)

    def db_time(self) -> datetime:
        """The database server's clock (PostgreSQL), for processes on several machines."""
        with self.reading() as conn:
            value = conn.execute(text("SELECT clock_timestamp()")).scalar()
        assert isinstance(value, datetime)
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def ping(self) -> None:
        """A trivial query: is the database answering at all (the watchdog's liveness test)."""
        with self.reading() as conn:
            conn.execute(text("SELECT 1")).scalar()

    def analyze(self, *tables: str) -> None:
        """Refresh the planner's statistics after a bulk write (PostgreSQL). A table that grew
        from empty to 100,000 rows in one import still looks empty to the planner, and a
        statement prepared then keeps a sequential scan: 0.7 s for a 500-name lookup."""
        if self.is_sqlite:
            return
        with self.engine.connect() as conn:
            conn.execute(text(f"ANALYZE {', '.join(tables)}"))
            conn.commit()

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file (hourly maintenance)."""
        if self.is_sqlite:
            raw = self.engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
            finally:
                raw.close()

    def size_bytes(self) -> int | None:
        """What the database takes on disk (SQLite: the file and its WAL), for `status`."""
        if self.is_sqlite:
            if self.file is None:
                return None
            return sum(p.stat().st_size for p in (self.file, self.file.with_name(
                self.file.name + "-wal")) if p.exists())
        with self.reading() as conn:
            value = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
        return int(value) if value is not None else None

    def integrity_ok(self) -> bool:
        if not self.is_sqlite:
            return True
        try:
            with self.engine.connect() as conn:
                return conn.execute(text("PRAGMA quick_check")).scalar() == "ok"
        except DatabaseError:  # "file is not a database", "disk image is malformed"
            return False

    def source_row(self, session: Session, name: str) -> SourceRow:
        row = session.scalar(select(SourceRow).where(SourceRow.name == name))
        if row is None:
            raise unknown_source(name, session.scalars(select(SourceRow.name)), " in the database")
        return row
