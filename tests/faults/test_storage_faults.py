"""Disk and database faults: a deleted data directory, a damaged file, a full disk. Each one
is a clear line and a refusal to write, never checks "recorded" into nowhere or into a
damaged file, and never a traceback."""

from __future__ import annotations

import hashlib
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from pytest_httpserver import HTTPServer

from tests.conftest import Daemon, wait_for
from tests.test_notify import pages

PAGE = "<p>We use your data to run the service.</p>{}"  # inside <main>, as `pages` serves it


def watch(server: HTTPServer, project, count: int = 3, settings: str = "") -> dict[str, str]:
    bodies = {f"/p{i}": PAGE.format("") for i in range(count)}
    pages(server, bodies)
    project.write("".join(f"""
        [[source]]
        name = "acme/p{i}"
        platform = "Acme"
        url = "{server.url_for(f'/p{i}')}"
    """ for i in range(count)), settings=settings)
    return bodies


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(project, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", "--config", str(project.config), *args],
                          capture_output=True, text=True, timeout=120, check=False, **kwargs)  # type: ignore[call-overload]


def test_deleting_the_data_directory_under_run_stops_the_daemon_with_a_clear_line(
        server: HTTPServer, project, daemons: list[Daemon]) -> None:
    watch(server, project, settings='interval = "1s"\njitter = "0s"\ndispatch_interval = "0.2s"')
    project.cli("init")
    d = Daemon(project.config)
    daemons.append(d)
    db = project.data / "monitor.db"
    wait_for(lambda: sqlite3.connect(db).execute("SELECT count(*) FROM checks").fetchone()[0] >= 3)
    shutil.rmtree(project.data)
    d.proc.wait(timeout=30)  # it stops on its own, instead of "succeeding" into a deleted file
    _, d.stderr = d.proc.communicate()
    assert d.proc.returncode == 74, d.stderr[-2000:]
    assert "was deleted while this process was using it" in d.stderr
    assert "Traceback" not in d.stderr


def damage(db: Path) -> None:
    """Overwrite the last pages of the file with garbage, as a bad disk sector would."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.seek(size - 3 * page_size)
        f.write(b"\xa5" * 3 * page_size)


def test_a_damaged_database_is_never_written_to(server: HTTPServer, project) -> None:
    bodies = watch(server, project)
    project.cli("init")
    project.cli("check")
    for path in bodies:
        bodies[path] = PAGE.format("<p>We may train AI models on your posts.</p>")
    db = project.data / "monitor.db"
    damage(db)
    before = digest(db)
    for command in (["check"], ["sources", "list"]):
        result = cli(project, *command)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "failed PRAGMA quick_check" in result.stderr
        assert "Traceback" not in result.stderr and result.stderr.count("\n") <= 3
        assert digest(db) == before, command  # not one byte written into it


def test_a_full_disk_is_one_clear_line_and_nothing_recorded(server: HTTPServer, project) -> None:
    bodies = watch(server, project, count=1)
    project.cli("init")
    project.cli("check")
    db = project.data / "monitor.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checks_before = conn.execute("SELECT count(*) FROM checks").fetchone()[0]
    conn.close()
    # A new version too big to fit in what the file system still allows this process to write.
    noise = (hashlib.sha256(str(i).encode()).hexdigest() * 8 for i in range(4000))
    bodies["/p0"] = PAGE.format("".join(f"<p>Paragraph {n}</p>" for n in noise))
    limit = db.stat().st_size + 64 * 1024

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = cli(project, "check", preexec_fn=small_disk)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "the database's disk" in result.stdout and "nothing is recorded" in result.stdout
    assert "Traceback" not in result.stderr
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM checks").fetchone()[0] == checks_before
    finally:
        conn.close()
    # with room again, the same check goes through: it was retried, not lost
    assert "changed" in project.cli("check").output
