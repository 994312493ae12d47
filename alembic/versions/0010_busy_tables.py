"""room for in-place updates on the busy tables, and a partial index on failing sources

Every check updates its source row and its host row a few times (lease, outcome, next
check). With full pages each update writes its new row version to another page and adds
an entry to every index; leaving 30% of each page free (PostgreSQL's fillfactor) lets most
of them stay on the page (heap-only tuples), with less WAL and no index entries. Pages
written before this migration get the room as they are rewritten (VACUUM FULL or CLUSTER).

The daemon's status line (systemd STATUS=, every 10 s) counts failing sources; at 100,000
sources that read every row. The failing ones are few, and a partial index holds only them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUSY = ("sources", "hosts")


def upgrade() -> None:
    op.create_index("ix_sources_failing", "sources", ["id"], postgresql_where=sa.text("failing"),
                    sqlite_where=sa.text("failing = 1"))
    if op.get_bind().dialect.name == "postgresql":
        for table in BUSY:
            op.execute(f"ALTER TABLE {table} SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in BUSY:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    op.drop_index("ix_sources_failing", table_name="sources")
