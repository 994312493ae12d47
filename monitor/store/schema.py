"""Where the migrations are and which revision is newest, without SQLAlchemy or Alembic:
every command checks the database's revision before it reads, a one-shot `check` included."""

from __future__ import annotations

from pathlib import Path

from monitor.errors import StoreError

ALEMBIC_DIRS = (
    Path(__file__).parents[1] / "_alembic",  # installed wheel
    Path(__file__).parents[2] / "alembic",  # source checkout / editable install
)


def alembic_dir() -> Path:
    for candidate in ALEMBIC_DIRS:
        if (candidate / "env.py").exists():
            return candidate
    raise StoreError("alembic migrations not found next to the monitor package")


def head_from_files() -> str:
    """The newest migration's revision, from the file names (`0007_target_health.py` → "0007"):
    our revisions are numbered in order, which a test holds against Alembic's own answer."""
    names = sorted(p.name for p in (alembic_dir() / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    return names[-1][:4]


def require_revision(current: str | None) -> None:
    """The database at `current` can be read and written by this code, or the command to run."""
    if current is None:
        raise StoreError("the database is not initialised; run `policy-monitor init`")
    if current != head_from_files():
        raise StoreError("the database schema is out of date; run `policy-monitor db upgrade`")
