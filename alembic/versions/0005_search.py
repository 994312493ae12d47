"""full-text search over versions (SQLite FTS5, contentless)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 04:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import zstandard
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return  # other databases search with their own operators (see monitor/search.py)
    # Contentless: the index only; texts stay compressed in blobs (a copy would double the db).
    op.execute("CREATE VIRTUAL TABLE snapshot_fts USING fts5(text, content='', "
               "tokenize='unicode61 remove_diacritics 2')")
    for snapshot_id, key in bind.execute(sa.text("SELECT id, text_blob FROM snapshots")).all():
        bind.execute(sa.text("INSERT INTO snapshot_fts(rowid, text) VALUES (:id, :text)"),
                     {"id": snapshot_id, "text": _blob(bind, key).decode("utf-8")})


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
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE snapshot_fts")
