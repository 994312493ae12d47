"""`sources test` tries a source before it is saved: it fetches, extracts and judges as a check
would, prints what a check would record, and writes nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pytest_httpserver import HTTPServer

from tests.conftest import PLAIN_POLICY, served


def _digest(data_dir: Path) -> dict[str, str]:
    """The database file's bytes (and its WAL's, which holds no frame unless written), and
    every other file of the data directory. SQLite's shared-memory index is not data."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(data_dir.iterdir())
            if p.is_file() and not p.name.endswith("-shm") and (p.stat().st_size or
                                                                 not p.name.endswith("-wal"))}


def test_sources_test_shows_the_would_be_change_and_writes_nothing(
        server: HTTPServer, project, page) -> None:
    body = served(server, "/privacy", page(PLAIN_POLICY))
    project.write(f"""
        [[source]]
        name = "acme/privacy"
        platform = "Acme"
        url = "{server.url_for('/privacy')}"
    """)
    project.cli("init")
    project.check()
    body["html"] = page(PLAIN_POLICY + "<p>We may use your posts to train generative AI models. "
                        "You can opt out in Settings &gt; Data privacy &gt; Data for Generative "
                        "AI Improvement.</p>")
    before = _digest(project.data)
    result = project.cli("sources", "test", "acme/privacy")
    assert _digest(project.data) == before  # not one byte of the database changed
    out = result.output
    assert "We may use your posts to train generative AI models." in out  # the text
    assert "fingerprint" in out
    assert "+ We may use your posts" in out or "+We may use your posts" in out  # the diff
    assert "ai_training" in out and "way out: Settings" in out
    assert "a check now would record a new version and a change" in out
    trial = json.loads(project.cli("sources", "test", "acme/privacy", "--json").output)
    # a real check afterwards still sees the change, and stores the very text the trial showed
    checked = project.check()["acme/privacy"]
    assert checked["outcome"] == "changed"
    assert checked["labels"] == trial["labels"] and checked["severity"] == trial["severity"]
    stored = project.cli("show", str(checked["snapshot_id"])).output
    assert stored.strip() == trial["text"].strip()


def test_sources_test_tries_selectors_on_any_url_without_a_database(
        server: HTTPServer, project, page) -> None:
    server.expect_request("/terms").respond_with_data(
        page("<section class='keep'><p>Keep this clause.</p></section>"
             "<section class='ad'><p>Buy our premium plan.</p></section>"),
        content_type="text/html; charset=utf-8")
    project.write("")
    url = server.url_for("/terms")
    trial = json.loads(project.cli("sources", "test", url, "--select", "main",
                                   "--remove", ".ad", "--json").output)
    assert "Keep this clause." in trial["text"]
    assert "Buy our premium plan." not in trial["text"]
    assert trial["outcome"] == "baseline" and trial["status"] == 200
    assert not (project.data / "monitor.db").exists()  # nothing was created either
    # a bad selector is a usage error naming the option, not a traceback
    bad = project.cli("sources", "test", url, "--select", "main[", ok=False)
    assert bad.exit_code == 2 and "--select" in bad.output and "invalid CSS selector" in bad.output


def test_sources_test_goes_through_the_gate(project) -> None:
    project.write("", settings="allow_private_addresses = false")
    result = project.cli("sources", "test", "http://127.0.0.1:9/policy", ok=False)
    assert result.exit_code == 1
    assert "error:" in result.output and "private" in result.output.lower()
