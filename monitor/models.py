"""SQLAlchemy tables: Alembic's target metadata. Every change here needs a migration.

History is append-only: snapshots and changes are never updated in place except their
`last_seen_at`; a source removed from the config is disabled, never deleted.
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.sql.dml import Insert

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on SQLite (which has no tz) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        return value.astimezone(UTC).replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class CompressedJSON(TypeDecorator[dict[str, Any]]):
    """JSON stored zlib-compressed: diffs of whole-page rewrites are large and mostly text."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return zlib.compress(json.dumps(value, ensure_ascii=False).encode("utf-8"), 6)

    def process_result_value(self, value: bytes | None, dialect: Dialect) -> dict[str, Any] | None:
        if value is None:
            return None
        result: dict[str, Any] = json.loads(zlib.decompress(value))
        return result


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(), dict[str, Any]: JSON, float: Float(),
    }


class Blob(Base):
    """Content-addressed, compressed bytes. `base` names the blob this one is a delta against."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    codec: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    base: Mapped[str | None] = mapped_column(String(64), ForeignKey("blobs.sha256"))
    depth: Mapped[int] = mapped_column(Integer, default=0)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # For a history's newest text, stored whole: how many older versions reach it through
    # deltas (see DatabaseBlobStore.put); bounds the chains behind it.
    run: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SourceRow(Base):
    __tablename__ = "sources"
    # A claim takes a ready host's earliest due source: one index probe, whatever the table size.
    # The failing ones are few: the daemon's status line counts them from a partial index
    # every 10 s instead of reading every row (80 ms of server time at 100,000 sources).
    # Every check updates its row a few times: 30% of each page is left free on PostgreSQL so
    # those updates stay on the page (migration 0010).
    __table_args__ = (Index("ix_sources_host_next", "host_id", "next_check_at"),
                      # List pages in order, and the dashboard's counts from the index alone.
                      Index("ix_sources_platform_name", "platform", "name", "failing",
                            "last_outcome"),
                      Index("ix_sources_failing", "id", postgresql_where=text("failing"),
                            sqlite_where=text("failing = 1")),
                      {"postgresql_with": {"fillfactor": 70}})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    platform: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    in_config: Mapped[bool] = mapped_column(Boolean, default=True)  # in its list's latest sync
    # The list it belongs to: "config" (sources.toml) or an imported list's name; each list is
    # synced on its own, so syncing one never disables another's sources.
    watchlist: Mapped[str] = mapped_column(String(100), default="config", server_default="config",
                                           index=True)
    # The source's settings as JSON (config.Source.spec): a daemon rebuilds the source from the
    # row it claims and never loads the whole list.
    spec: Mapped[str | None] = mapped_column(Text)
    extraction_key: Mapped[str] = mapped_column(Text, default="")
    generation: Mapped[int] = mapped_column(Integer, default=0)
    # Validators and fingerprint of the last successful fetch, for conditional GET and for
    # skipping extraction when the selected content did not change.
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    current_snapshot_id: Mapped[int | None] = mapped_column(
        ForeignKey("snapshots.id", use_alter=True)
    )
    last_check_at: Mapped[datetime | None]
    last_outcome: Mapped[str | None] = mapped_column(String(32))
    last_change_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Schedule state: all of it stored, so a restart resumes exactly where it stopped and
    # several worker processes can share one database.
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"))
    interval_seconds: Mapped[float | None]
    next_check_at: Mapped[datetime | None] = mapped_column(index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    failing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # alert open


class Host(Base):
    """Politeness state per host: one request in flight, and a minimum gap between requests."""

    __tablename__ = "hosts"
    __table_args__ = ({"postgresql_with": {"fillfactor": 70}},)  # updated by every check (0010)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(255), unique=True)
    next_allowed_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    crawl_delay: Mapped[float | None]
    # When this host can next be claimed: the latest of its earliest due source, its polite
    # gap and its lease; NULL when none of its sources is scheduled. Kept in the transactions
    # that change any of them, so the claim reads an index range instead of every source.
    ready_at: Mapped[datetime | None] = mapped_column(index=True)


class SourceAlert(Base):
    """One "source failing" record after N failures in a row, one "recovered" when it works."""

    __tablename__ = "source_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # failing | recovered
    at: Mapped[datetime]
    failures: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


class Snapshot(Base):
    """One distinct normalised text of a source (per extraction generation)."""

    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("source_id", "generation", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    text_blob: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    raw_blob: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))
    content_type: Mapped[str | None] = mapped_column(String(100))
    charset: Mapped[str | None] = mapped_column(String(40))
    url: Mapped[str | None] = mapped_column(Text)
    text_size: Mapped[int] = mapped_column(Integer)
    raw_size: Mapped[int | None] = mapped_column(Integer)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    fetcher: Mapped[str | None] = mapped_column(String(16))  # http | browser
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class Check(Base):
    """Every attempt, successful or not. Kept small: one per source per interval, for years."""

    __tablename__ = "checks"
    __table_args__ = (Index("ix_checks_source_started", "source_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    started_at: Mapped[datetime]
    duration_ms: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    failure_kind: Mapped[str | None] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(Integer)
    bytes: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshots.id"))
    fetcher: Mapped[str | None] = mapped_column(String(16))  # http | browser


class Change(Base):
    """A transition between two snapshots of one source; the classifier fills the nullable columns."""

    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_source_detected", "source_id", "detected_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    generation: Mapped[int] = mapped_column(Integer, default=0)
    from_snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id"))
    to_snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id"))
    check_id: Mapped[int | None] = mapped_column(ForeignKey("checks.id"))
    detected_at: Mapped[datetime] = mapped_column(index=True)
    # True for changes rebuilt by `reextract`: history, not news, so never alerted.
    reextracted: Mapped[bool] = mapped_column(Boolean, default=False)
    diff: Mapped[dict[str, Any]] = mapped_column(CompressedJSON)
    words_added: Mapped[int] = mapped_column(Integer)
    words_removed: Mapped[int] = mapped_column(Integer)
    sentences_added: Mapped[int] = mapped_column(Integer)
    sentences_removed: Mapped[int] = mapped_column(Integer)
    labels: Mapped[list[str] | None] = mapped_column(JSON)
    severity: Mapped[str | None] = mapped_column(String(16), index=True)
    # {"evidence": [...], "directions": {...}, "summary": "..."} from classify.Classification
    findings: Mapped[dict[str, Any] | None]
    opt_out: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    rules_version: Mapped[int | None] = mapped_column(Integer)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), index=True)
    # What happened, for the reader (monitor/verdict.py): verdict words, most important first;
    # whether the AI use is on by default; regions the text exempts. NULL: not judged yet.
    verdict: Mapped[list[str] | None] = mapped_column(JSON)
    ai_default: Mapped[str | None] = mapped_column(String(8))
    regions_excluded: Mapped[list[str] | None] = mapped_column(JSON)


class Event(Base):
    """Changes of one platform within 72 hours: one announcement, one alert."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_platform_last", "platform", "last_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(200))
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    severity: Mapped[str] = mapped_column(String(16))
    labels: Mapped[list[str]] = mapped_column(JSON)
    changes: Mapped[int] = mapped_column(Integer, default=0)


class Reextraction(Base):
    """A record that a source's history was rebuilt from raw bodies under new selectors."""

    __tablename__ = "reextractions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    at: Mapped[datetime]
    from_generation: Mapped[int] = mapped_column(Integer)
    to_generation: Mapped[int] = mapped_column(Integer)
    extraction_key: Mapped[str] = mapped_column(Text)
    versions: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)


class Delivery(Base):
    """The outbox: one row per alert, subscription and target URL, written with the change.

    `dedupe_key` is unique, so the same alert can never be queued twice for one target;
    `attempts` is recorded before sending, so a crash between send and mark is visible.
    """

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # change | alert | digest
    change_id: Mapped[int | None] = mapped_column(ForeignKey("changes.id"), index=True)
    source_alert_id: Mapped[int | None] = mapped_column(ForeignKey("source_alerts.id"))
    subscription: Mapped[str] = mapped_column(String(200))
    target: Mapped[int] = mapped_column(Integer)  # index into the subscription's url list
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | sending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None]  # digests: the change ids they cover


class TargetHealth(Base):
    """How one alert target (a subscription's n-th URL) has been doing. `failing_since` marks
    the first failed attempt of the current run of failures; `alert_at` is set once, when the
    run has lasted longer than target_failing_after: the "alert target failing" record."""

    __tablename__ = "target_health"

    subscription: Mapped[str] = mapped_column(String(200), primary_key=True)
    target: Mapped[int] = mapped_column(Integer, primary_key=True)
    masked: Mapped[str] = mapped_column(String(500))  # the URL with its secrets hidden
    failing_since: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    alert_at: Mapped[datetime | None]


class SentenceText(Base):
    """Each distinct sentence text once, whichever pages say it: the search index is built
    over these (a policy's boilerplate is said by many pages, and by every version)."""

    __tablename__ = "sentence_texts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(16), unique=True)  # blake2b of the comparison key
    text: Mapped[str] = mapped_column(Text)


class Sentence(Base):
    """One distinct sentence of a source (per extraction generation), once, with the version
    where it first appeared and, once gone, the last version that had it and when it went."""

    __tablename__ = "sentences"
    __table_args__ = (UniqueConstraint("source_id", "generation", "text_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    generation: Mapped[int] = mapped_column(Integer)
    text_id: Mapped[int] = mapped_column(ForeignKey("sentence_texts.id"), index=True)
    first_snapshot_id: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[datetime]
    last_snapshot_id: Mapped[int | None] = mapped_column(Integer)  # set while it is gone
    removed_at: Mapped[datetime | None]  # None: the current version says it
    appearances: Mapped[int] = mapped_column(Integer, default=1)  # 2+: removed and re-added


class BoardAnswer(Base):
    """One answer a change gave to one board question of its document (monitor/board.py),
    written when the change is recorded: the board at any date is the latest row of each
    source and question up to then, read and never re-derived. Rows of a superseded
    generation stay, ignored, like its changes; ids grow with `detected_at` per source."""

    __tablename__ = "board_answers"
    __table_args__ = (
        Index("ix_board_answers_latest", "source_id", "generation", "question", "detected_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    generation: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(String(32))
    change_id: Mapped[int] = mapped_column(ForeignKey("changes.id"), index=True)
    detected_at: Mapped[datetime]
    old_value: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text)
    moved: Mapped[bool] = mapped_column(Boolean)  # the value changed here: a timeline entry
    answer: Mapped[dict[str, Any]]  # board.Answer.to_dict(): evidence, steps, names


class BoardNews(Base):
    """A change that moved a platform's board answers (board.AnswerNews), kept when the change
    is recorded: what an answers subscription was told and what the board's feed lists.
    Rebuilt for the platform whenever its answers are (re-extraction, re-judging)."""

    __tablename__ = "board_news"
    __table_args__ = (Index("ix_board_news_platform_at", "platform", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(200))
    change_id: Mapped[int] = mapped_column(ForeignKey("changes.id"))
    at: Mapped[datetime] = mapped_column(index=True)
    news: Mapped[dict[str, Any]]  # board.AnswerNews.to_dict()


def insert_ignore(session: Session | Connection, model: type[Base]) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING in the session's dialect (SQLite and PostgreSQL)."""
    dialect = session.get_bind().dialect if isinstance(session, Session) else session.dialect
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model).on_conflict_do_nothing()
