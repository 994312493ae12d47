"""Alembic environment: the target metadata is monitor.models; SQLite needs batch mode."""

from __future__ import annotations

from sqlalchemy import create_engine

from alembic import context
from monitor.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):
    """The FTS5 search indexes are created by hand (SQLite virtual tables have no model), as is
    PostgreSQL's GIN index over the sentences' text."""
    if type_ == "table" and name and name.startswith(("snapshot_fts", "sentence_fts")):
        return False
    return not (type_ == "index" and name == "ix_sentences_tsv")


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if url:
        return url
    from monitor import config as cfg

    return cfg.load().settings.database


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or create_engine(_url())
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table by copy-and-drop; with foreign keys enforced, dropping
            # a referenced table fails. The pragma only works outside a transaction, so it is
            # set on the driver connection before SQLAlchemy begins one.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        # render_as_batch: SQLite has almost no ALTER TABLE; batch mode copies and moves.
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, compare_type=True, include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left broken references: {broken[:5]}")
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
