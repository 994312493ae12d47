"""what a change means: verdict, default and regions excluded, stored with each change

Headlines are worded from these when an alert, a page or a feed is rendered. The columns are
NULL for changes judged before this revision: `policy-monitor db upgrade` (and `init`) re-judge
those from their stored versions with the classifier of the running program, which a
migration must not import.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("verdict", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("ai_default", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("regions_excluded", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("changes") as batch:
        batch.drop_column("regions_excluded")
        batch.drop_column("ai_default")
        batch.drop_column("verdict")
