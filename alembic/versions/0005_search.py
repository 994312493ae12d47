"""full-text search over versions (SQLite FTS5, contentless)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 04:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
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
    from sqlalchemy.orm import Session

    from monitor.blobstore import DatabaseBlobStore

    session = Session(bind=bind)
    blobs = DatabaseBlobStore(session)
    for snapshot_id, key in bind.execute(sa.text("SELECT id, text_blob FROM snapshots")).all():
        text = blobs.get(key).decode("utf-8")
        bind.execute(sa.text("INSERT INTO snapshot_fts(rowid, text) VALUES (:id, :text)"),
                     {"id": snapshot_id, "text": text})


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE snapshot_fts")
