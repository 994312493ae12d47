"""A throwaway PostgreSQL on loopback: Debian's binaries, a temp data directory, trust auth.

Used by the test suite (one server per run) and by `bench/scale_out.py`.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def throwaway_postgres(options: str = "") -> Iterator[str]:
    """Start a server (with extra `postgres -c …` options) and yield its "127.0.0.1:port"."""
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
    subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
                    "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {root} {options}", "-w",
                    "start"], check=True, capture_output=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "stop"], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def create_database(server: str, name: str) -> str:
    """An empty database on the server; returns its SQLAlchemy URL."""
    host, port = server.split(":")
    subprocess.run(["psql", "-h", host, "-p", port, "-U", "postgres", "-c",
                    f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return f"postgresql+psycopg://postgres@{server}/{name}"
