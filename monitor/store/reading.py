"""What a source showed before: plain queries a judgement (monitor/judge.py) or a command
asks for. Which of them matter, and how far back, is decided by the caller."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    func,
    select,
)

from monitor.blobstore import DatabaseBlobStore
from monitor.models import (
    Change,
    Check,
    Snapshot,
    SourceRow,
)

if TYPE_CHECKING:
    pass
from monitor.store.database import Database
from monitor.store.values import SourceState


class Reader(Database):
    """Reads of a source's stored past."""

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
        first, with the last time each was current."""
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

    def recent_changes(self, state: SourceState, limit: int
                       ) -> list[tuple[dict[str, Any], str | None, datetime]]:
        """The source's last `limit` changes, newest first: (findings, the text before it as
        a blob key, when it was seen)."""
        with self.read() as s:
            return [(findings or {}, blob, at) for findings, blob, at in s.execute(
                select(Change.findings, Snapshot.text_blob, Change.detected_at)
                .outerjoin(Snapshot, Snapshot.id == Change.from_snapshot_id)
                .where(Change.source_id == state.id, Change.generation == state.generation)
                .order_by(Change.id.desc()).limit(limit))]

    def version_texts(self, state: SourceState, limit: int) -> list[str]:
        """The texts of the source's newest `limit` versions, newest first."""
        with self.read() as s:
            blobs = DatabaseBlobStore(s, self.blobs)
            keys = s.scalars(select(Snapshot.text_blob).where(
                Snapshot.source_id == state.id, Snapshot.generation == state.generation)
                .order_by(Snapshot.id.desc()).limit(limit)).all()
            return [blobs.get(k).decode("utf-8") for k in keys]

    def text_of(self, blob_key: str) -> str:
        with self.read() as s:
            return DatabaseBlobStore(s, self.blobs).get(blob_key).decode("utf-8")

    def blob(self, key: str) -> bytes:
        with self.read() as s:
            return DatabaseBlobStore(s, self.blobs).get(key)

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

    def counts(self) -> dict[str, int]:
        with self.read() as s:
            return {
                name: s.scalar(select(func.count()).select_from(model)) or 0
                for name, model in (("sources", SourceRow), ("snapshots", Snapshot),
                                    ("checks", Check), ("changes", Change))
            }
