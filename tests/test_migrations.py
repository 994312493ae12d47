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
        assert set(store.table_names()) >= {"sources", "snapshots", "checks", "changes", "blobs"}
        assert store.current_revision() == store.head_revision()
    finally:
        store.close()


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
        assert set(store.table_names()) == {"alembic_version"}
        store.upgrade()
        assert store.current_revision() == store.head_revision()
        assert "snapshots" in store.table_names()
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
        conn.execute("INSERT INTO sources (name, platform, url, kind, enabled, in_config, "
                     "extraction_key, generation, consecutive_failures, created_at, updated_at) "
                     "VALUES ('a/b', 'A', 'https://a.example/', 'other', 1, 1, '', 0, 0, "
                     "'2026-01-01 00:00:00', '2026-01-01 00:00:00')")
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
    finally:
        store.close()
