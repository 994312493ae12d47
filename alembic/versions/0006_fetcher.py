"""which fetcher produced each check and snapshot (http or browser)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:59:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): SQLite does it in place, keeping foreign keys.
    op.add_column("checks", sa.Column("fetcher", sa.String(length=16), nullable=True))
    op.add_column("snapshots", sa.Column("fetcher", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("fetcher")
    with op.batch_alter_table("checks") as batch:
        batch.drop_column("fetcher")
