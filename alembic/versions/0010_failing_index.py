"""a partial index on the failing sources

The daemon's status line (systemd STATUS=, every 10 s) counts failing sources; at 100,000
sources that read every row of the table. The failing ones are few, and a partial index
holds only them.

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


def upgrade() -> None:
    op.create_index("ix_sources_failing", "sources", ["id"], postgresql_where=sa.text("failing"),
                    sqlite_where=sa.text("failing = 1"))


def downgrade() -> None:
    op.drop_index("ix_sources_failing", table_name="sources")
