"""A throwaway PostgreSQL on loopback: Debian's binaries, a temp data directory, trust auth.

Used by the test suite (one server per run) and by `bench/scale_out.py`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclasses.dataclass(frozen=True)
class Postgres:
    """A running throwaway server that a test may stop and start again on the same port."""

    address: str
    data: Path
    ctl: tuple[str, ...]
    options: str

    def stop(self) -> None:
        subprocess.run([*self.ctl, "-D", str(self.data), "-m", "fast", "stop"], check=False,
                       capture_output=True)

    def start(self) -> None:
        port = self.address.rsplit(":", 1)[1]
        root = self.data.parent
        subprocess.run([*self.ctl, "-D", str(self.data), "-l", str(root / "log"), "-o",
                        f"-c listen_addresses=127.0.0.1 -p {port} -k {root} {self.options}",
                        "-w", "start"], check=True, capture_output=True)


@contextlib.contextmanager
def running_postgres(options: str = "") -> Iterator[Postgres]:
    """Start a server (with extra `postgres -c …` options) and yield it."""
    bindir = binaries()
    if bindir is None:
        raise RuntimeError("PostgreSQL is missing; `make test` installs Debian's postgresql")
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="policy-monitor-pg-"))
    data = root / "data"
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                    "-U", "postgres"], check=True, capture_output=True)
    server = Postgres(f"127.0.0.1:{port}", data, (*as_postgres, str(bindir / "pg_ctl")),
                      options)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres(options: str = "") -> Iterator[str]:
    """Start a server and yield its "127.0.0.1:port"."""
    with running_postgres(options) as server:
        yield server.address


def create_database(server: str, name: str) -> str:
    """An empty database on the server; returns its SQLAlchemy URL."""
    host, port = server.split(":")
    subprocess.run(["psql", "-h", host, "-p", port, "-U", "postgres", "-c",
                    f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return f"postgresql+psycopg://postgres@{server}/{name}"
