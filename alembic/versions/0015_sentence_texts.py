"""sentence_texts: each distinct sentence text once, whichever pages and versions say it

The search index (FTS5 on SQLite, a GIN expression index on PostgreSQL) moves from
`sentences.text` to `sentence_texts.text`; `sentences` keeps, per page, when each sentence
came and went, pointing at its text. The first check of 200 policy pages held 14.7 MB of
sentence rows for 6.9 MB of text said mostly by several pages; now each text is stored once.
The downgrade puts the text and key back on every row.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 18:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    op.create_table(
        "sentence_texts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sentence_texts")),
        sa.UniqueConstraint("key", name=op.f("uq_sentence_texts_key")),
    )
    # The text first seen under each key (rows of one key say the same sentence).
    op.execute("INSERT INTO sentence_texts (key, text) SELECT s.key, s.text FROM sentences s "
               "WHERE s.id IN (SELECT min(id) FROM sentences GROUP BY key) ORDER BY s.id")
    if sqlite:
        op.execute("DROP TABLE IF EXISTS sentence_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_sentences_tsv")
    with op.batch_alter_table("sentences") as batch:
        batch.add_column(sa.Column("text_id", sa.Integer(), nullable=True))
    op.execute("UPDATE sentences SET text_id = (SELECT t.id FROM sentence_texts t "
               "WHERE t.key = sentences.key)")
    with op.batch_alter_table("sentences") as batch:
        batch.drop_constraint("uq_sentences_source_id", type_="unique")
        batch.alter_column("text_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(op.f("fk_sentences_text_id_sentence_texts"), "sentence_texts",
                                 ["text_id"], ["id"])
        batch.create_unique_constraint("uq_sentences_source_id",
                                       ["source_id", "generation", "text_id"])
        batch.drop_column("key")
        batch.drop_column("text")
    if sqlite:
        op.execute("CREATE VIRTUAL TABLE sentence_fts USING fts5(text, content='sentence_texts', "
                   "content_rowid='id', tokenize='unicode61 remove_diacritics 2')")
        op.execute("INSERT INTO sentence_fts(sentence_fts) VALUES ('rebuild')")
    else:
        op.execute("CREATE INDEX ix_sentence_texts_tsv ON sentence_texts "
                   "USING gin (to_tsvector('simple', text))")


def downgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        op.execute("DROP TABLE IF EXISTS sentence_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_sentence_texts_tsv")
    with op.batch_alter_table("sentences") as batch:
        batch.add_column(sa.Column("key", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("text", sa.Text(), nullable=True))
    op.execute("UPDATE sentences SET key = (SELECT t.key FROM sentence_texts t "
               "WHERE t.id = sentences.text_id), text = (SELECT t.text FROM sentence_texts t "
               "WHERE t.id = sentences.text_id)")
    with op.batch_alter_table("sentences") as batch:
        batch.drop_constraint("uq_sentences_source_id", type_="unique")
        batch.drop_constraint(op.f("fk_sentences_text_id_sentence_texts"), type_="foreignkey")
        batch.alter_column("key", existing_type=sa.String(length=16), nullable=False)
        batch.alter_column("text", existing_type=sa.Text(), nullable=False)
        batch.create_unique_constraint("uq_sentences_source_id", ["source_id", "generation", "key"])
        batch.drop_column("text_id")
    op.drop_table("sentence_texts")
    if sqlite:
        op.execute("CREATE VIRTUAL TABLE sentence_fts USING fts5(text, content='sentences', "
                   "content_rowid='id', tokenize='unicode61 remove_diacritics 2')")
        op.execute("INSERT INTO sentence_fts(sentence_fts) VALUES ('rebuild')")
    else:
        op.execute("CREATE INDEX ix_sentences_tsv ON sentences "
                   "USING gin (to_tsvector('simple', text))")
