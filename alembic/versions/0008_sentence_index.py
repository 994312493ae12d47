"""search by sentence: each distinct sentence once, with when it came and went

Replaces the FTS5 index over every version's whole text (snapshot_fts). Backfilled from the
stored versions, in the order the pages showed them, by `policy-monitor db upgrade` (and
`init`) right after migrating: splitting sentences is live code that a migration must not
import. The downgrade rebuilds snapshot_fts from the same versions, so nothing is lost
either way.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import zstandard
from alembic import op

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
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_snapshot_id", sa.Integer(), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("appearances", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"],
                                name=op.f("fk_sentences_source_id_sources")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sentences")),
        sa.UniqueConstraint("source_id", "generation", "key", name=op.f("uq_sentences_source_id")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":  # external content: the text is stored once, in sentences
        op.execute("CREATE VIRTUAL TABLE sentence_fts USING fts5(text, content='sentences', "
                   "content_rowid='id', tokenize='unicode61 remove_diacritics 2')")
        op.execute("DROP TABLE IF EXISTS snapshot_fts")
    elif bind.dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_sentences_tsv ON sentences "
                   "USING gin (to_tsvector('simple', text))")


def _blob(bind: sa.Connection, key: str) -> bytes:
    """A stored blob's bytes: zstd alone, or a zstd delta against its base (frozen copy of
    the reader as of this revision, so a later change to the store cannot change it)."""
    codec, base, size, data = bind.execute(sa.text(
        "SELECT codec, base, size, data FROM blobs WHERE sha256 = :k"), {"k": key}).one()
    if codec == "zstd":
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
    dictionary = zstandard.ZstdCompressionDict(_blob(bind, base),
                                               dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return zstandard.ZstdDecompressor(dict_data=dictionary).decompress(data, max_output_size=size)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS sentence_fts")
        # The whole-text index of 0005, rebuilt from the stored versions.
        op.execute("CREATE VIRTUAL TABLE snapshot_fts USING fts5(text, content='', "
                   "tokenize='unicode61 remove_diacritics 2')")
        for snapshot_id, key in bind.execute(sa.text("SELECT id, text_blob FROM snapshots")).all():
            bind.execute(sa.text("INSERT INTO snapshot_fts(rowid, text) VALUES (:id, :text)"),
                         {"id": snapshot_id, "text": _blob(bind, key).decode("utf-8")})
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_sentences_tsv")
    op.drop_table("sentences")
