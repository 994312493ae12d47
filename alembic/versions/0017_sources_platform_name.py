"""index sources (platform, name): the source list is read a keyset page at a time

/sources, /api/sources and the dashboard list sources by platform and name; with this index
a page reads its own rows, not the whole table sorted, at any number of sources. It holds
the columns that say whether a source is failing, so the dashboard's counts per platform are
read from the index alone.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 20:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_sources_platform_name", "sources",
                    ["platform", "name", "failing", "last_outcome"])


def downgrade() -> None:
    op.drop_index("ix_sources_platform_name", table_name="sources")
