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
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
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
