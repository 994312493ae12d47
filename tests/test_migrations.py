"""Models and migrations never drift; upgrading is repeatable and backs up first."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from monitor.models import Base
from monitor.store import Store


def test_upgrade_head_on_empty_database_matches_models(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        store.upgrade()
        with store.engine.connect() as conn:
            from monitor.store import alembic_dir

            env = {}
            exec((alembic_dir() / "env.py").read_text().split("def _url")[0]  # noqa: S102
                 .replace("from alembic import context", "").replace("config = context.config", ""),
                 env)
            diffs = compare_metadata(MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": env["include_object"]}),
                Base.metadata)
        assert diffs == []
        assert tables(store) >= {"sources", "snapshots", "checks", "changes", "blobs"}
        assert store.current_revision() == store.head_revision()
    finally:
        store.close()


def tables(store: Store) -> set[str]:
    from sqlalchemy import inspect

    return set(inspect(store.engine).get_table_names())


def test_wal_mode_and_durable_settings(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        store.upgrade()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.close()


def test_downgrade_and_upgrade_again_are_clean(tmp_path: Path) -> None:
    from alembic import command

    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        store.upgrade()
        command.downgrade(store.alembic_config(), "base")
        assert store.current_revision() is None
        assert tables(store) == {"alembic_version"}
        store.upgrade()
        assert store.current_revision() == store.head_revision()
        assert "snapshots" in tables(store)
    finally:
        store.close()


def test_upgrading_a_database_with_history_backs_it_up_and_keeps_rows(tmp_path: Path) -> None:
    import sqlite3

    from alembic import command

    db = tmp_path / "m.db"
    store = Store(f"sqlite:///{db}")
    try:
        command.upgrade(store.alembic_config(), "0002")
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("INSERT INTO sources (name, platform, url, kind, enabled, in_config, "
                     "extraction_key, generation, consecutive_failures, created_at, updated_at) "
                     "VALUES ('a/b', 'A', 'https://a.example/', 'other', 1, 1, '', 0, 0, "
                     "'2026-01-01 00:00:00', '2026-01-01 00:00:00')")
        # Rows that reference sources: a table rebuild must not break or drop them.
        import hashlib

        import zstandard

        text = b"We train AI models on your posts."
        key = hashlib.sha256(text).hexdigest()
        conn.execute("INSERT INTO blobs (sha256, codec, size, depth, data) VALUES (?, 'zstd', ?, 0, ?)",
                     (key, len(text), zstandard.ZstdCompressor().compress(text)))
        conn.execute("INSERT INTO snapshots (source_id, generation, sha256, text_blob, text_size, "
                     "first_seen_at, last_seen_at) VALUES (1, 0, 's', ?, 0, '2026-01-01 00:00:00', "
                     "'2026-01-01 00:00:00')", (key,))
        conn.execute("UPDATE sources SET current_snapshot_id = 1")
        conn.execute("INSERT INTO checks (source_id, started_at, duration_ms, outcome, snapshot_id) "
                     "VALUES (1, '2026-01-01 00:00:00', 5, 'baseline', 1)")
        conn.commit()
        conn.close()
        store.upgrade(backup_dir=tmp_path / "backups")
        assert store.current_revision() == store.head_revision()
        (backup,) = (tmp_path / "backups").glob("monitor-0002-*.db")
        old = sqlite3.connect(backup)
        assert old.execute("SELECT name FROM sources").fetchall() == [("a/b",)]
        assert old.execute("SELECT version_num FROM alembic_version").fetchall() == [("0002",)]
        new = sqlite3.connect(db)
        assert new.execute("SELECT name, failing FROM sources").fetchall() == [("a/b", 0)]
        assert new.execute("SELECT count(*) FROM checks").fetchall() == [(1,)]
        assert new.execute("PRAGMA foreign_key_check").fetchall() == []
        # The sentence index was backfilled from the existing version.
        assert new.execute("SELECT t.text, s.first_snapshot_id, s.removed_at FROM sentence_fts f "
                           "JOIN sentence_texts t ON t.id = f.rowid "
                           "JOIN sentences s ON s.text_id = t.id WHERE sentence_fts MATCH 'train'"
                           ).fetchall() == [("We train AI models on your posts.", 1, None)]
    finally:
        store.close()


def test_head_from_file_names_is_alembics_head(tmp_path: Path) -> None:
    """Commands check the schema without importing Alembic, by the migrations' file names."""
    from monitor.store import Store, head_from_files

    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        assert head_from_files() == store.head_revision()
        assert store.stored_revision() is None
        store.upgrade()
        assert store.stored_revision() == head_from_files()
    finally:
        store.close()
