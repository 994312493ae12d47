"""search by sentence: each distinct sentence once, with when it came and went

Replaces the FTS5 index over every version's whole text (snapshot_fts). Backfilled from the
stored versions, in the order the pages showed them; the downgrade rebuilds snapshot_fts
from the same versions, so nothing is lost either way.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitor.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sentences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("first_snapshot_id", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", monitor.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_snapshot_id", sa.Integer(), nullable=True),
        sa.Column("removed_at", monitor.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("appearances", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"],
                                name=op.f("fk_sentences_source_id_sources")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sentences")),
        sa.UniqueConstraint("source_id", "generation", "key", name=op.f("uq_sentences_source_id")),
    )
    bind = op.get_bind()
    from monitor.search import FTS_DDL, PG_INDEX_DDL

    if bind.dialect.name == "sqlite":
        op.execute(FTS_DDL)
    elif bind.dialect.name == "postgresql":
        op.execute(PG_INDEX_DDL)
    _backfill(bind)
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS snapshot_fts")


def _backfill(bind: sa.Connection) -> None:
    """Replay each page's versions in the order it showed them into the sentence index."""
    from sqlalchemy.orm import Session

    from monitor.blobstore import DatabaseBlobStore
    from monitor.search import index_version

    blobs = DatabaseBlobStore(Session(bind=bind))
    pages = bind.execute(sa.text("SELECT DISTINCT source_id, generation FROM snapshots "
                                 "ORDER BY source_id, generation")).all()
    for source_id, generation in pages:
        stamp = monitor.models.UTCDateTime()
        snaps = {row.id: row for row in bind.execute(sa.text(
            "SELECT id, text_blob, first_seen_at FROM snapshots WHERE source_id = :s AND "
            "generation = :g ORDER BY first_seen_at, id").columns(
                sa.column("id", sa.Integer()), sa.column("text_blob", sa.String()),
                sa.column("first_seen_at", stamp)), {"s": source_id, "g": generation})}
        changes = bind.execute(sa.text(
            "SELECT from_snapshot_id, to_snapshot_id, detected_at FROM changes WHERE "
            "source_id = :s AND generation = :g ORDER BY detected_at, id").columns(
                sa.column("from_snapshot_id", sa.Integer()), sa.column("to_snapshot_id", sa.Integer()),
                sa.column("detected_at", stamp)), {"s": source_id, "g": generation}).all()
        texts: dict[int, str] = {}

        def text_of(snapshot_id: int) -> str:
            if snapshot_id not in texts:
                texts.clear()  # only the previous and the current are needed
                texts[snapshot_id] = blobs.get(snaps[snapshot_id].text_blob).decode("utf-8")
            return texts[snapshot_id]

        first = changes[0].from_snapshot_id if changes else next(iter(snaps))
        first_text = text_of(first)
        index_version(bind, source_id, generation, first, first_text, snaps[first].first_seen_at,
                      None, None)
        previous, previous_text = first, first_text
        for change in changes:
            if change.to_snapshot_id == previous or change.to_snapshot_id not in snaps:
                continue
            current_text = text_of(change.to_snapshot_id)
            index_version(bind, source_id, generation, change.to_snapshot_id, current_text,
                          change.detected_at, previous, previous_text)
            previous, previous_text = change.to_snapshot_id, current_text


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS sentence_fts")
        # The whole-text index of 0005, rebuilt from the stored versions.
        op.execute("CREATE VIRTUAL TABLE snapshot_fts USING fts5(text, content='', "
                   "tokenize='unicode61 remove_diacritics 2')")
        from sqlalchemy.orm import Session

        from monitor.blobstore import DatabaseBlobStore

        blobs = DatabaseBlobStore(Session(bind=bind))
        for snapshot_id, key in bind.execute(sa.text("SELECT id, text_blob FROM snapshots")).all():
            bind.execute(sa.text("INSERT INTO snapshot_fts(rowid, text) VALUES (:id, :text)"),
                         {"id": snapshot_id, "text": blobs.get(key).decode("utf-8")})
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_sentences_tsv")
    op.drop_table("sentences")
