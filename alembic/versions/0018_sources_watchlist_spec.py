"""sources.watchlist and sources.spec: the database is the watch list at run time

Each source row keeps its settings as JSON (`spec`), so a daemon rebuilds a source from the
row it claims instead of loading sources.toml's whole list, and names the list it belongs to
(`watchlist`: "config" for sources.toml, or an imported list's name), so syncing one list never
disables another's sources. Existing rows are sources.toml's; their spec is written by the next
sync (`init`, `sources sync`, a daemon's start or SIGHUP).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("watchlist", sa.String(100), nullable=False,
                                   server_default="config"))
        batch.add_column(sa.Column("spec", sa.Text(), nullable=True))
    # A list's sync reads its own rows through this, not a million imported ones.
    op.create_index("ix_sources_watchlist", "sources", ["watchlist"])


def downgrade() -> None:
    op.drop_index("ix_sources_watchlist", table_name="sources")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("spec")
        batch.drop_column("watchlist")
