"""The watch list in the database and who checks what when: sync, the claim, leases and
host gaps. Host readiness has one definition (`_ready_time`), kept in `hosts.ready_at` in
the same transaction as whatever changes it."""

from __future__ import annotations

import contextlib
import functools
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import DatabaseError

from monitor import config as cfg
from monitor import schedule
from monitor.errors import ConfigError, ConfigProblem
from monitor.models import (
    Host,
    SourceAlert,
    SourceRow,
    UTCDateTime,
)
from monitor.schedule import host_of

if TYPE_CHECKING:
    pass
from monitor.store.database import CHUNK, Database, advisory_lock, utcnow
from monitor.store.outbox import queue_outbox
from monitor.store.values import Claim, Completion, LeaseLost, SourceState, synced_values

# The claim: ready hosts from the index on hosts.ready_at, then each one's earliest due free
# source from the index on (host, next check). PostgreSQL skips rows other processes hold.
_READY_HOSTS = (select(Host.id, Host.next_allowed_at, Host.lease_expires_at)
                .where(Host.ready_at <= bindparam("now")).order_by(Host.ready_at)
                .limit(bindparam("n")))


_DUE_SOURCE = (select(SourceRow.id, SourceRow.name, SourceRow.next_check_at, SourceRow.spec)
               .where(SourceRow.host_id == bindparam("host"), SourceRow.enabled.is_(True),
                      SourceRow.next_check_at <= bindparam("now"),
                      SourceRow.lease_expires_at.is_(None)
                      | (SourceRow.lease_expires_at < bindparam("now")))
               .order_by(SourceRow.next_check_at).limit(1))


# A one-shot check asks it before each page: built once, like the claim's statements.
_HOST_ALLOWED = select(Host.next_allowed_at).where(Host.host == bindparam("name"))


_CLAIM_SQLITE = (_READY_HOSTS, _DUE_SOURCE)


_CLAIM_LOCKING = (_READY_HOSTS.with_for_update(skip_locked=True),
                  _DUE_SOURCE.with_for_update(skip_locked=True))


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


_LISTED = (select(SourceRow.spec)
           .where(SourceRow.enabled.is_(True), SourceRow.watchlist != bindparam("exclude"),
                  SourceRow.spec.is_not(None))
           .order_by(SourceRow.platform, SourceRow.name))


class DatabaseClock:
    """The database server's time, read as the local clock plus a measured offset.

    Leases, due times and host gaps are compared across processes, so they must come from one
    clock: with PostgreSQL that is the server's (re-measured every `every` seconds, so a
    machine whose clock is seconds off or gets stepped stays polite). A SQLite file lives on
    one machine, whose clock every process already shares.
    """

    def __init__(self, store: Database, local: Callable[[], datetime] = utcnow, every: float = 10.0) -> None:
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


_SYNC_COLUMNS = (SourceRow.id, SourceRow.name, SourceRow.platform, SourceRow.title, SourceRow.url,
                 SourceRow.kind, SourceRow.enabled, SourceRow.in_config, SourceRow.extraction_key,
                 SourceRow.interval_seconds, SourceRow.host_id, SourceRow.last_check_at,
                 SourceRow.next_check_at, SourceRow.spec, SourceRow.watchlist)


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


def _host_ids(conn: Connection, names: Sequence[str]) -> dict[str, int]:
    """The ids of these host names that have a row, looked up CHUNK at a time."""
    found: dict[str, int] = {}
    for i in range(0, len(names), CHUNK):
        found.update(conn.execute(select(Host.host, Host.id)
                                  .where(Host.host.in_(names[i:i + CHUNK]))).all())
    return found


def _retire(conn: Connection, watchlist: str, kept: set[str],
            updates: dict[tuple[str, ...], list[dict[str, Any]]], touched: set[int | None],
            now: datetime) -> None:
    """Plan disabling the sources of `watchlist` not in `kept`: gone from their list, their
    history kept (the caller writes `updates`)."""
    for row in conn.execute(select(SourceRow.id, SourceRow.name, SourceRow.host_id)
                            .where(SourceRow.watchlist == watchlist,
                                   SourceRow.in_config | SourceRow.enabled)):
        if row.name not in kept:
            _add_update(updates, row.id, {"in_config": False, "enabled": False}, now)
            touched.add(row.host_id)


def _lock_rows(conn: Connection, model: type[SourceRow] | type[Host], ids: Iterable[int | None]) -> None:
    """Lock rows in id order before changing them (PostgreSQL), so writers that touch several
    rows never wait on each other in a circle."""
    if conn.dialect.name != "postgresql":
        return
    wanted = sorted({i for i in ids if i is not None})
    for i in range(0, len(wanted), CHUNK):
        conn.execute(select(model.id).where(model.id.in_(wanted[i:i + CHUNK]))
                     .order_by(model.id).with_for_update())


def complete_check(
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
    opened = not ok and failures >= done.failure_threshold and not state.failing
    closed = ok and state.failing
    statement = _complete_statement(done.token is not None, opened if opened or closed else None)
    if conn.execute(statement, {"sid": state.id, "ltoken": done.token,
                                "next": done.next_check_at}).rowcount != 1:
        raise LeaseLost(f"lost the lease on source {state.id}; discarding this check")
    _release_host(conn, state, done)
    if opened or closed:
        alert_id = conn.execute(insert(SourceAlert).values(
            source_id=state.id, kind="failing" if opened else "recovered", at=at,
            failures=failures if opened else state.consecutive_failures,
            error=(error or "")[:2000] if opened else None).returning(SourceAlert.id)).scalar_one()
        queue_outbox(conn, "alert", alert_id, done.alert_outbox, at, source_alert_id=alert_id)


@functools.cache
def _complete_statement(leased: bool, failing: bool | None) -> Any:
    """The source's side of completing a check, built once per (leased, failing set to)."""
    guard = SourceRow.id == bindparam("sid")
    if leased:
        guard = guard & (SourceRow.lease_token == bindparam("ltoken"))
    values: dict[str, Any] = {"next_check_at": bindparam("next"), "lease_owner": None,
                              "lease_token": None, "lease_expires_at": None}
    if failing is not None:
        values["failing"] = failing
    return update(SourceRow).where(guard).values(**values)


@functools.cache
def _release_statement(dialect: str, leased: bool) -> Any:
    """Built once per (dialect, leased): every check ends with it, and building the UPDATE
    with its ready-time subquery cost more than running it (a quarter of an unchanged check's
    CPU)."""
    host_guard = Host.id == bindparam("hid")
    if leased:
        host_guard = host_guard & (Host.lease_token == bindparam("ltoken"))
    allowed = bindparam("gap_until", type_=UTCDateTime())
    return update(Host).where(host_guard).values(
        next_allowed_at=allowed, lease_owner=None, lease_token=None, lease_expires_at=None,
        # the ready time with the values this statement sets (SET reads the old ones)
        ready_at=_ready_time(dialect, allowed=allowed, leased_until=literal(EPOCH, UTCDateTime())))


def _release_host(conn: Connection, state: SourceState, done: Completion) -> None:
    """The host's polite gap starts now, and its lease (if this check's) is released."""
    if state.host_id is None:
        return
    conn.execute(_release_statement(conn.dialect.name, done.token is not None),
                 {"hid": state.host_id, "ltoken": done.token,
                  "gap_until": done.host_next_allowed_at})


class Leases(Database):
    """Scheduling rows: the claim hands each worker at most one source per free host."""

    def sync_sources(self, sources: Sequence[cfg.Source], default_interval: float | None = None,
                     watchlist: str = "config", *, retire: bool = True) -> None:
        """Make the rows of one watch list match `sources` by name; never delete history.

        `watchlist` is "config" for sources.toml or an imported list's name: syncing one list
        never touches another's rows, and a name another list holds is refused. With `retire`,
        the list's sources that `sources` does not name are disabled (history kept); an import
        writes its batches without it and retires once at the end (`retire_sources`).

        Writes only what differs, so a restart or SIGHUP with an unchanged config writes
        nothing, and 100,000 new sources go in as a few bulk statements. Rows are looked up by
        the names given, so a batch costs the same however long the other lists are. Daemons
        starting together take turns under one lock, and rows are locked source first, host
        second, like every check transaction, so a sync cannot deadlock with checks or claims.
        """
        from monitor import extract  # here: read commands never load lxml
        now = utcnow()
        with self.write_conn() as conn:
            advisory_lock(conn, "sync-sources")
            names = [src.name for src in sources]
            existing: dict[str, Any] = {}
            for i in range(0, len(names), CHUNK):
                existing.update((r.name, r) for r in conn.execute(
                    select(*_SYNC_COLUMNS).where(SourceRow.name.in_(names[i:i + CHUNK]))))
            # A name another list still has is refused; one it dropped (or an imported
            # history's) moves to this list with its history: sources.toml to a CSV is
            # "remove them, sync, import".
            taken = sorted((r.name, r.watchlist) for r in existing.values()
                           if r.watchlist != watchlist and r.in_config)
            if taken:
                raise ConfigError([ConfigProblem(
                    watchlist, None, f"source[{name}].name",
                    f"already in the watch list {other!r}: names are unique across lists "
                    "(rename it, or remove it from that list first)") for name, other in taken[:20]])
            host_names = {src.url: host_of(src.url) for src in sources}
            wanted = sorted(set(host_names.values()))
            hosts = _host_ids(conn, wanted)
            missing = [h for h in wanted if h not in hosts]
            if missing:
                _bulk_insert(conn, Host, [{"host": h, "next_allowed_at": EPOCH} for h in missing])
                hosts.update(_host_ids(conn, missing))
            inserts: list[dict[str, Any]] = []
            updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            touched: set[int | None] = set()
            for src in sources:
                interval = src.interval or default_interval
                values = {**synced_values(src, watchlist, default_interval),
                          "host_id": hosts[host_names[src.url]]}
                row = existing.pop(src.name, None)
                if row is None:
                    inserts.append({**values, "name": src.name, "created_at": now, "updated_at": now,
                                    "generation": 0, "consecutive_failures": 0, "failing": False,
                                    "extraction_key": extract.reading_key(src),
                                    "interval_seconds": interval})
                    touched.add(values["host_id"])
                    continue
                if interval and row.interval_seconds and interval != row.interval_seconds \
                        and row.last_check_at is not None and row.next_check_at is not None:
                    # Retimed: the next check follows the new interval from the last one.
                    values["next_check_at"] = row.last_check_at + timedelta(seconds=interval)
                if any(getattr(row, k) != v for k, v in values.items()):
                    _add_update(updates, row.id, values, now)
                    touched |= {row.host_id, values["host_id"]}
            if retire:
                _retire(conn, watchlist, set(names), updates, touched, now)
            self._write_sync(conn, inserts, updates, touched)

    def import_sources(self, sources: Iterable[cfg.Source], default_interval: float,
                       watchlist: str, batch: int = 5000) -> tuple[int, int]:
        """Write a whole list a batch at a time (one transaction each, so memory is one batch
        and the names), then disable the list's sources it no longer names. Returns (written,
        retired). A batch that fails leaves the batches before it written: importing the same
        file again finishes the job, since a sync writes only what differs."""
        kept: set[str] = set()
        chunk: list[cfg.Source] = []
        analyzed = batch  # statistics refreshed each time the list has doubled

        def write() -> None:
            nonlocal analyzed
            self.sync_sources(chunk, default_interval, watchlist, retire=False)
            kept.update(s.name for s in chunk)
            if len(kept) >= analyzed:
                self.analyze("sources", "hosts")
                analyzed *= 2

        for src in sources:
            chunk.append(src)
            if len(chunk) >= batch:
                write()
                chunk = []
        if chunk:
            write()
        self.analyze("sources", "hosts")
        return len(kept), self.retire_sources(watchlist, kept)

    def listed_sources(self, exclude: str = "config") -> list[cfg.Source]:
        """The enabled sources of every list but `exclude`, from their stored settings (the
        one-shot `check` runs them with sources.toml's)."""
        with self.reading() as conn:
            return [cfg.Source.from_spec(spec) for spec in conn.scalars(
                _LISTED, {"exclude": exclude}) if spec is not None]

    def source_spec(self, name: str) -> cfg.Source | None:
        """A source of any list by name, from its stored settings."""
        with self.read() as s:
            spec = s.scalar(select(SourceRow.spec).where(SourceRow.name == name))
        return cfg.Source.from_spec(spec) if spec else None

    def retire_sources(self, watchlist: str, kept: set[str]) -> int:
        """Disable the sources of `watchlist` that are not in `kept` (history kept): the end of
        an import, whose batches were written without retiring. Returns how many."""
        now = utcnow()
        with self.write_conn() as conn:
            advisory_lock(conn, "sync-sources")
            updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            touched: set[int | None] = set()
            _retire(conn, watchlist, kept, updates, touched, now)
            self._write_sync(conn, [], updates, touched)
            return sum(len(group) for group in updates.values())

    @staticmethod
    def _write_sync(conn: Connection, inserts: list[dict[str, Any]],
                    updates: dict[tuple[str, ...], list[dict[str, Any]]],
                    touched: set[int | None]) -> None:
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
                claims.append(Claim(row[0], row[1], host_id, token, row[2], row[3]))
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

    def release(self, claim: Claim, *, next_check_at: datetime | None = None,
                host_allowed_at: datetime | None = None) -> None:
        """Give a claimed source and its host back without recording a check (e.g. on
        shutdown); with times, the source waits until `next_check_at` and the host until
        `host_allowed_at` (a page fetched whose check the database would not record)."""
        cleared: dict[str, Any] = {"lease_owner": None, "lease_token": None,
                                   "lease_expires_at": None}
        with self.write_conn() as conn:
            conn.execute(update(SourceRow).where(SourceRow.id == claim.source_id,
                                                 SourceRow.lease_token == claim.token).values(
                **cleared, **({"next_check_at": next_check_at} if next_check_at else {})))
            if claim.host_id is not None:
                conn.execute(update(Host).where(Host.id == claim.host_id,
                                                Host.lease_token == claim.token).values(
                    **cleared, **({"next_allowed_at": host_allowed_at} if host_allowed_at else {})))
                refresh_hosts(conn, [claim.host_id])

    def host_allowed_at(self, host: str) -> datetime | None:
        """When the host may next be asked (its polite gap, Crawl-delay or Retry-After, as the
        last check of any process recorded it); None for a host never checked."""
        with self.reading() as conn:
            return conn.execute(_HOST_ALLOWED, {"name": host}).scalar()

    def ensure_sources(self, sources: Sequence[cfg.Source], *, enabled: bool = True) -> None:
        """Create or update these sources only; others are left alone (used by `import`)."""
        from monitor import extract  # here: read commands never load lxml
        now = utcnow()
        with self.write() as s:
            for src in sources:
                row = s.scalar(select(SourceRow).where(SourceRow.name == src.name))
                if row is None:
                    row = SourceRow(name=src.name, created_at=now, generation=0, in_config=False,
                                    consecutive_failures=0,
                                    extraction_key=extract.reading_key(src))
                    s.add(row)
                row.platform, row.title, row.url, row.kind = src.platform, src.title, src.url, src.kind
                row.enabled, row.updated_at, row.spec = enabled, now, src.spec()
                s.flush()
                refresh_hosts(s.connection(), [row.host_id])
