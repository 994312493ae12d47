"""A check's outcome in one transaction: the failure, the unchanged page (one INSERT and
two UPDATEs with prebuilt statements) or the new version with its change, event and
alerts; and a re-extracted history written as a new generation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    bindparam,
    func,
    insert,
    select,
    update,
)

from monitor.blobstore import DatabaseBlobStore, sha256
from monitor.errors import FailureKind, StoreError, unknown_source
from monitor.models import (
    Change,
    Check,
    Event,
    Host,
    Reextraction,
    Snapshot,
    SourceRow,
)
from monitor.wording import max_severity

if TYPE_CHECKING:
    from monitor.classify import Classification
    from monitor.diff import Diff
from monitor.store.answers import keep_answers, rebuild, retell
from monitor.store.database import Database, advisory_lock, utcnow
from monitor.store.leases import complete_check
from monitor.store.outbox import queue_outbox
from monitor.store.values import (
    Completion,
    LeaseLost,
    NewVersion,
    SourceState,
    StoredCheck,
    guard_params,
)

# Prebuilt Core statements for the per-check hot path (state before, bookkeeping after):
# building SQLAlchemy expressions per call costs more than executing them.
_STATE = (
    select(SourceRow.id, SourceRow.etag, SourceRow.last_modified, SourceRow.fingerprint,
           SourceRow.current_snapshot_id, Snapshot.sha256, Snapshot.text_blob, Snapshot.raw_blob,
           SourceRow.generation, SourceRow.consecutive_failures, SourceRow.failing,
           SourceRow.host_id, Host.crawl_delay, SourceRow.interval_seconds, Snapshot.text_size,
           SourceRow.extraction_key)
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


_KNOWN_SNAPSHOT = select(Snapshot.id).where(
    Snapshot.source_id == bindparam("sid"), Snapshot.generation == bindparam("gen"),
    Snapshot.sha256 == bindparam("digest"))


def _upsert_snapshot(conn: Connection, blobs: DatabaseBlobStore, state: SourceState,
                     version: NewVersion, now: datetime) -> int:
    t = Snapshot.__table__.c
    known = conn.execute(_KNOWN_SNAPSHOT, {"sid": state.id, "gen": state.generation,
                                           "digest": version.sha256}).scalar()
    if known is not None:  # the page went back to an earlier text: reuse that snapshot
        conn.execute(_SEEN_SNAPSHOT, {"snap": known, "at": now})
        return int(known)
    data = version.text.encode("utf-8")
    previous = version.previous_text.encode("utf-8") if version.previous_text is not None else None
    text_key = blobs.put(data, base=state.current_text_blob, base_data=previous, newest=True)
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


class Recorder(Database):
    """Writes of checks, versions and changes."""

    def state(self, name: str) -> SourceState:
        with self.reading() as conn:
            row = conn.execute(_STATE, {"name": name}).first()
            if row is None:
                raise unknown_source(name, conn.scalars(select(SourceRow.name)), " in the database")
        return SourceState(*row)

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
            complete_check(s.connection(), state, done, ok=False, at=started,
                      failures=row.consecutive_failures, error=error)
            return StoredCheck(check.id, "failed")

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
        guard = {**guard_params(state), "at": started}
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
            complete_check(conn, state, done, ok=True, at=started, failures=0,
                      source_done=completing is not None)
            return StoredCheck(check_id, "unchanged", state.current_snapshot_id)

    def record_version(
        self, state: SourceState, started: datetime, duration_ms: int, http_status: int,
        version: NewVersion, done: Completion | None = None,
    ) -> StoredCheck:
        """Snapshot, change and check in one transaction: all visible, or none. Core
        statements on one connection: the ORM's unit of work cost a changed check ~3 ms."""
        with self.write_conn() as conn:
            platform = conn.execute(_PLATFORM_IF_UNCHANGED, guard_params(state)).scalar()
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
                queue_outbox(conn, "change", change_id, version.outbox, due,
                       change_id=change_id, created=started)
                news = keep_answers(conn, state.id, state.generation, platform, change_id,
                                    change)
                if news is not None:  # the platform's answers moved: answers subscriptions hear
                    queue_outbox(conn, "answer", change_id, version.answer_outbox, started,
                                 change_id=change_id, payload=news.to_dict(), created=started)
                values["last_change_at"] = started
            conn.execute(update(SourceRow).where(SourceRow.id == state.id).values(
                **values, current_snapshot_id=snap_id, last_check_at=started,
                last_outcome=outcome, consecutive_failures=0, etag=version.etag,
                last_modified=version.last_modified, fingerprint=version.fingerprint))
            complete_check(conn, state, done, ok=True, at=started, failures=0)
            return StoredCheck(check_id, outcome, snap_id, change_id)

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

    def raw_version(self, snapshot_id: int) -> tuple[Snapshot, bytes | None]:
        """One snapshot and its raw body (None when it was stored as text only)."""
        with self.read() as s:
            snap = s.get(Snapshot, snapshot_id)
            if snap is None:
                raise StoreError(f"no snapshot with id {snapshot_id}")
            body = DatabaseBlobStore(s, self.blobs).get(snap.raw_blob) if snap.raw_blob else None
            return snap, body

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
                    key = blobs.put(data, base=previous.text_blob if previous else None,
                                    newest=True)
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
            s.flush()
            rebuild(s.connection(), row.id)  # the board reads the new generation's changes
            retell(s.connection(), row.platform)
            return new_gen

    def keep_reading(self, source_id: int, extraction_key: str) -> None:
        """Take the stored texts as read under `extraction_key`: a history that cannot be read
        again (imported as text, or no raw page left that extracts) is compared as it is."""
        with self.write() as s:
            s.execute(update(SourceRow).where(SourceRow.id == source_id)
                      .values(extraction_key=extraction_key))

    def record_verdict(self, change_id: int, verdict: dict[str, Any]) -> None:
        """Store a change's verdict, default and regions excluded (labels stay as they are)."""
        with self.write() as s:
            s.execute(update(Change).where(Change.id == change_id).values(
                verdict=verdict["verdict"], ai_default=verdict["default"],
                regions_excluded=verdict["regions_excluded"]))
