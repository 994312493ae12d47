"""The same code on PostgreSQL: a throwaway server started by the test, on loopback."""

from __future__ import annotations

import glob
import os
import random
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.config import Source
from monitor.store import Store
from tests.test_notify import Hook


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    bindir = _binaries()
    if bindir is None:
        pytest.fail("PostgreSQL is missing; `make test` installs Debian's postgresql")
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
                    "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {root}", "-w", "start"],
                   check=True, capture_output=True)
    try:
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c",
                        "CREATE DATABASE monitor"], check=True, capture_output=True)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/monitor"
    finally:
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "stop"], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_the_pipeline_runs_on_postgresql(pg_url: str, server: HTTPServer, project) -> None:
    body = {"text": "<main><p>We use your data to run the service.</p></main>"}

    def handler(_: Request) -> Response:
        return Response(body["text"], content_type="text/html; charset=utf-8")

    server.expect_request("/p").respond_with_handler(handler)
    hook = Hook(server)
    project.write(f"""
        [[source]]
        name = "acme/privacy"
        platform = "Acme"
        url = "{server.url_for('/p')}"
        select = "main"

        [[subscription]]
        name = "hook"
        url = "{hook.url}"
    """, settings=f'database_url = "{pg_url}"\nevent_window = "0s"')
    head = Store("sqlite://").head_revision()  # the newest migration, whatever its number
    assert f"revision {head}" in project.cli("init").output
    assert project.check()["acme/privacy"]["outcome"] == "baseline"
    body["text"] = ("<main><p>We use your data to run the service. We may use your posts to train "
                    "generative AI models.</p></main>")
    assert project.check()["acme/privacy"]["outcome"] == "changed"
    (change,) = project.json("changes", "--label", "ai_training", "--min-severity", "high")
    assert change["added_sentences"] == ["We may use your posts to train generative AI models."]
    assert project.cli("explain", str(change["id"])).output.count("[ai_training]") == 1
    (delivery,) = project.json("deliveries")
    assert (delivery["subscription"], delivery["status"]) == ("hook", "pending")
    assert "sent 1," in project.cli("notify", "flush").output  # events and outbox on PostgreSQL
    assert "train generative AI models" in hook.received[0]["message"]
    (row,) = project.json("status")
    assert row["consecutive_failures"] == 0


def test_claims_are_exclusive_across_workers_on_postgresql(pg_url: str) -> None:
    store_a, store_b = Store(pg_url), Store(pg_url)
    try:
        store_a.sync_sources([Source(name=f"h{i}/doc", platform="P", url=f"https://h{i}.example/")
                              for i in range(6)], 3600)
        now = datetime.now(UTC) + timedelta(days=1)
        store_a.schedule_new(now - timedelta(hours=1), random.Random(0), 3600)
        a = store_a.claim("a", now, 4, 60)
        b = store_b.claim("b", now, 10, 60)
        names_a, names_b = {c.name for c in a}, {c.name for c in b}
        assert names_a.isdisjoint(names_b)
        assert len(names_a | names_b) == 6  # every due source went to exactly one worker
        assert store_a.claim("a", now, 10, 60) == []  # all leased now
    finally:
        store_a.close()
        store_b.close()
