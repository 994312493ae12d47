"""board_answers and board_news: the AI data-use board, kept as each change is recorded

The board (per platform and document: does it train AI on your data, since when, on by
default, the ways out, who is exempt, who else gets the data) is read from these rows at any
date and never re-derived at read time; board_news holds each change that moved a platform's
answers (what answers subscriptions are told and the board's feed lists). Rows for changes
stored before this revision are written by `policy-monitor db upgrade` (and `init`) from the
changes' stored verdicts with the running program's board rules, which a migration must not
import.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "board_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("question", sa.String(length=32), nullable=False),
        sa.Column("change_id", sa.Integer(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("moved", sa.Boolean(), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["change_id"], ["changes.id"]),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_board_answers_change_id", "board_answers", ["change_id"])
    op.create_index("ix_board_answers_latest", "board_answers",
                    ["source_id", "generation", "question", "detected_at"])
    op.create_table(
        "board_news",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=200), nullable=False),
        sa.Column("change_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("news", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["change_id"], ["changes.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_board_news_at", "board_news", ["at"])
    op.create_index("ix_board_news_platform_at", "board_news", ["platform", "at"])


def downgrade() -> None:
    op.drop_index("ix_board_news_platform_at", table_name="board_news")
    op.drop_index("ix_board_news_at", table_name="board_news")
    op.drop_table("board_news")
    op.drop_index("ix_board_answers_latest", table_name="board_answers")
    op.drop_index("ix_board_answers_change_id", table_name="board_answers")
    op.drop_table("board_answers")
