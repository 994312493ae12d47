"""claim by host ready time: hosts.ready_at and an index on (host, next check)

The claim used to compute every host's earliest due source on each call, reading the whole
sources table. Now each host carries the time it can next be claimed, kept up to date by the
transactions that change it, and the claim reads an index range. Backfilled from the current
schedule; the downgrade drops only derived data.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EARLIEST = ("(SELECT s.next_check_at FROM sources s WHERE s.host_id = hosts.id AND s.enabled "
            "AND s.next_check_at IS NOT NULL ORDER BY s.next_check_at LIMIT 1)")


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("ready_at", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.create_index("ix_hosts_ready_at", ["ready_at"])
    with op.batch_alter_table("sources") as batch:
        batch.drop_index("ix_sources_host_id")
        batch.create_index("ix_sources_host_next", ["host_id", "next_check_at"])
    bind = op.get_bind()
    greatest = "GREATEST" if bind.dialect.name == "postgresql" else "MAX"
    epoch = "'1970-01-01 00:00:00+00'" if bind.dialect.name == "postgresql" \
        else "'1970-01-01 00:00:00.000000'"
    op.execute(f"UPDATE hosts SET ready_at = CASE WHEN {EARLIEST} IS NULL THEN NULL ELSE "
               f"{greatest}({EARLIEST}, next_allowed_at, COALESCE(lease_expires_at, {epoch})) END")


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_index("ix_sources_host_next")
        batch.create_index("ix_sources_host_id", ["host_id"])
    with op.batch_alter_table("hosts") as batch:
        batch.drop_index("ix_hosts_ready_at")
        batch.drop_column("ready_at")
