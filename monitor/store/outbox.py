"""The no-loss outbox: deliveries written with the change that caused them, sent at least
once, with the events that gather an announcement and the health of each alert target."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from monitor.errors import NotFoundError
from monitor.models import (
    Change,
    Delivery,
    Event,
    SourceAlert,
    SourceRow,
    TargetHealth,
)

if TYPE_CHECKING:
    from monitor.routing import Outgoing
from monitor.store.database import Database


def queue_outbox(conn: Connection, kind: str, ref: int | str, outbox: Sequence[Outgoing], at: datetime,
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


class Outbox(Database):
    """Deliveries, events and target health."""

    def queue(self, kind: str, ref: str, outbox: Sequence[Outgoing], at: datetime,
              payload: dict[str, Any] | None = None) -> int:
        """Queue rows that belong to no change (digests, tests)."""
        with self.write_conn() as conn:
            return queue_outbox(conn, kind, ref, outbox, at, payload=payload)

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
