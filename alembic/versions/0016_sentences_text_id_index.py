"""index sentences.text_id: search counts and pages every match in the database

A search finds the matching sentence texts through the full-text index, then the pages that
say them through this index; without it, an exact count read every sentence row.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_sentences_text_id"), "sentences", ["text_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sentences_text_id"), table_name="sentences")
