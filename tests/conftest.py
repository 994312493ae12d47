"""Shared fixtures: a real HTTP server on 127.0.0.1, real SQLite files, the real CLI."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pytest_httpserver import HTTPServer

from monitor.cli import main
from tests.pgserver import binaries, create_database, throwaway_postgres

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    """A threaded HTTP server on loopback, so a slow handler cannot stall the others."""
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    try:
        yield srv
    finally:
        srv.clear()
        if srv.is_running():
            srv.stop()


class Project:
    """A sources.toml and data directory in a temp folder, driven through the real CLI."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "sources.toml"
        self.data = root / "data"
        self.runner = CliRunner()

    def write(self, sources: str, settings: str = "") -> None:
        values = {
            "data_dir": f'"{self.data}"',
            "allow_private_addresses": "true",
            "per_host_delay": '"0s"',
            "connect_timeout": '"2s"',
            "read_timeout": '"1s"',
            "total_timeout": '"3s"',
        }
        for line in textwrap.dedent(settings).strip().splitlines():
            if "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
        header = "[settings]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
        self.config.write_text(header + "\n" + textwrap.dedent(sources))

    def cli(self, *args: str, ok: bool = True) -> Result:
        result = self.runner.invoke(main, ["--config", str(self.config), *args])
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def check(self, *names: str) -> dict[str, dict[str, Any]]:
        out = self.cli("check", "--json", *names).output
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {r["source"]: r for r in rows}

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.data / 'monitor.db'}"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.fixture
def page() -> Callable[..., str]:
    """A policy page with noise around its main content, written by us for the tests."""

    def make(body: str, *, noise: str = "", title: str = "Privacy Policy") -> str:
        return textwrap.dedent(f"""\
            <!doctype html>
            <html><head><meta charset="utf-8"><title>{title}</title>
            <script>window.__csrf = "{noise}";</script>
            <style>.x {{ color: red }}</style></head>
            <body>
            <nav><a href="/">Home</a> <a href="/jobs">Jobs</a></nav>
            <form><input type="hidden" name="csrf" value="{noise}"></form>
            <main id="content">
            <h1>{title}</h1>
            {body}
            </main>
            <aside class="related">Related: article {noise}</aside>
            <footer>Rendered at {noise}</footer>
            </body></html>
            """)

    return make


PLAIN_POLICY = "<p>We use your data to run the service.</p>"
AI_TRAINING = "<p>We may use your posts to train generative AI models.</p>"


def served(server: HTTPServer, path: str, html: str) -> dict[str, str]:
    """A page on the test server whose HTML a test changes between checks
    (`body["html"] = …`): the returned dict is what the server answers."""
    from werkzeug import Response

    body = {"html": html}
    server.expect_request(path).respond_with_handler(
        lambda _: Response(body["html"], content_type="text/html; charset=utf-8"))
    return body


def corpus_or_skip() -> Path:
    if not (CORPUS / "MANIFEST.json").exists():
        pytest.skip("../shared/corpus is not present")
    return CORPUS


class Daemon:
    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "run"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})})
        self.stderr = ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        self.proc.send_signal(sig)
        _, self.stderr = self.proc.communicate(timeout=timeout)
        return self.proc.returncode


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.communicate()


def wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A throwaway PostgreSQL on loopback for the whole run; tests take databases from it."""
    if binaries() is None:
        pytest.fail("PostgreSQL is missing; `make test` installs Debian's postgresql")
    with throwaway_postgres() as server:
        yield server


_databases = itertools.count(1)


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return create_database(pg_server, f"monitor{next(_databases)}")


@contextlib.contextmanager
def serving(config: Path) -> Iterator[str]:
    """The real `serve` command on a free loopback port; yields its base URL once it answers."""
    import urllib.request

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config),
                             "serve", "--port", str(port)], stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/", timeout=1)  # noqa: S310 - loopback test server
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def free_port() -> int:
    """A loopback port nothing listens on (for a server a test starts, or a refused connection)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
