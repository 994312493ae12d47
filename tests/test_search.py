"""The sentence index: which pages say X now, since when, and when they stopped."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import urllib.request
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import text
from werkzeug import Response

from monitor.store import Store
from tests.conftest import free_port

A = "We use your data to provide the services."
B = "We may use your posts to train generative AI models."
C = "You can opt out in Settings."
D = "Members in the EEA are not included in AI training."


def _serve(server: HTTPServer, body: dict[str, str]) -> None:
    server.expect_request("/p").respond_with_handler(lambda _: Response(
        f"<html><body><main>{body['html']}</main><aside>Related: train more</aside></body></html>",
        content_type="text/html"))


def _page(*sentences: str) -> str:
    return "".join(f"<p>{s}</p>" for s in sentences)


def _hits(project, *words: str) -> dict[str, Any]:
    return {h["source"]: h for h in project.json("search", *words)}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request) -> str:
    """The same tests on both backends: "" is the default SQLite file."""
    return "" if request.param == "sqlite" else request.getfixturevalue("pg_url")



def _settings(database: str) -> str:
    return f'database_url = "{database}"' if database else ""


def _watch(server: HTTPServer, project, body: dict[str, str], database: str = "",
           select: str = "main") -> None:
    """One source, acme/privacy, serving whatever body["html"] holds; initialised and checked."""
    _serve(server, body)
    project.write(f"""
        [[source]]
        name = "acme/privacy"
        platform = "Acme"
        url = "{server.url_for('/p')}"
        select = "{select}"
    """, settings=_settings(database))
    project.cli("init")
    project.cli("check")


def test_first_and_last_appearance_across_add_remove_and_readd(server: HTTPServer, project,
                                                                database: str) -> None:
    body = {"html": _page(A, B)}
    _watch(server, project, body, database)
    versions = lambda: project.json("history", "acme/privacy")  # noqa: E731
    first = versions()[0]
    body["html"] = _page(A, C, D)  # B removed; C and D added
    project.cli("check")
    second = versions()[-1]
    hit = _hits(project, "train", "generative")["acme/privacy"]
    assert hit["present"] is False
    assert hit["first_snapshot_id"] == first["snapshot_id"]
    assert hit["removed_at"] == second["seen_at"]  # when the version without it was seen
    assert hit["last_snapshot_id"] == first["snapshot_id"]  # the last version that had it
    assert hit["sentence"] == B
    body["html"] = _page(A, B, C)  # B back, D gone
    project.cli("check")
    third = versions()[-1]
    again = _hits(project, "train", "generative")["acme/privacy"]
    assert again["present"] is True and again["removed_at"] is None
    assert again["first_seen_at"] == first["seen_at"]  # it first appeared long before
    eea = _hits(project, "EEA")["acme/privacy"]
    assert eea["present"] is False
    assert eea["first_snapshot_id"] == second["snapshot_id"]
    assert eea["last_snapshot_id"] == second["snapshot_id"]
    assert eea["removed_at"] == third["seen_at"]
    # Words must stand in one sentence; the page's text outside `select` is not indexed.
    assert _hits(project, "opt", "generative") == {}
    assert _hits(project, "related") == {}
    # Each distinct sentence is stored once, however many versions show it.
    store = Store(database or project.db_url)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(text("SELECT t.text, s.appearances FROM sentences s JOIN "
                                     "sentence_texts t ON t.id = s.text_id ORDER BY s.id")).all()
    finally:
        store.close()
    assert [tuple(r) for r in rows] == [(A, 1), (B, 2), (C, 1), (D, 1)]
    # The command, the API and the web page agree, on either backend.
    out = project.cli("search", "train", "generative").output
    assert "acme/privacy" in out and "yes" in out and "1 page say it now, 0 said it before" in out
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(project.config),
                             "serve", "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # "serving the web UI at …"
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/api/search?q=EEA") as r:  # noqa: S310 - loopback
            (api,) = json.loads(r.read())
            assert (r.headers["X-Total-Count"], r.headers["X-Count-Now"]) == ("1", "0")
            assert r.headers["Link"] is None  # one page holds every match
        assert (api["source"], api["present"], api["removed_at"]) == (
            "acme/privacy", False, third["seen_at"])
        with urllib.request.urlopen(f"{base}/search?q=train+generative") as r:  # noqa: S310
            page = r.read().decode()
        assert "acme/privacy" in page and first["seen_at"][:10] in page
        assert "1 page say" in page
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_search_follows_a_reextraction(server: HTTPServer, project, database: str) -> None:
    body = {"html": _page(A, B)}
    _watch(server, project, body, database)
    assert _hits(project, "related") == {}
    project.config.write_text(project.config.read_text().replace('select = "main"', 'select = "body"'))
    project.cli("reextract", "acme/privacy")
    hit = _hits(project, "related")["acme/privacy"]  # the aside is now part of the page
    assert hit["present"] is True
    assert _hits(project, "generative", "train")["acme/privacy"]["present"] is True
    # Only the current generation answers: nothing is counted twice.
    assert _hits(project, "generative", "train")["acme/privacy"]["sentences"] == 1


def test_migration_down_and_up_on_a_populated_database_loses_nothing(server: HTTPServer,
                                                                       project) -> None:
    from alembic import command
    from monitor.store import Store

    body = {"html": _page(A, B)}
    _watch(server, project, body)
    body["html"] = _page(A, C)
    project.cli("check")
    body["html"] = _page(A, B, D)
    project.cli("check")
    db = project.data / "monitor.db"
    query = ("SELECT source_id, generation, t.key, t.text, first_snapshot_id, first_seen_at, "
             "last_snapshot_id, removed_at, appearances FROM sentences s "
             "JOIN sentence_texts t ON t.id = s.text_id ORDER BY t.key")
    before = sqlite3.connect(db).execute(query).fetchall()
    store = Store(project.db_url)
    try:
        command.downgrade(store.alembic_config(), "0007")
        conn = sqlite3.connect(db)
        # The whole-text index of every version is back.
        assert conn.execute("SELECT count(*) FROM snapshots").fetchone() == (3,)
        assert conn.execute("SELECT rowid FROM snapshot_fts WHERE snapshot_fts MATCH 'EEA'"
                            ).fetchall() == [(3,)]
        conn.close()
        store.upgrade()
    finally:
        store.close()
    after = sqlite3.connect(db).execute(query).fetchall()
    assert after == before  # rebuilt from the stored versions: the same index
    assert _hits(project, "opt", "out")["acme/privacy"]["present"] is False


QUERIES = ("artificial intelligence", "train", "opt out", "generative AI", "Microsoft",
           "legitimate interests", "cookies", "delete your account", "données", "EEA")


def _answers(store: Store) -> dict[str, list[tuple[str, bool, str, str | None]]]:
    from monitor import history

    return {q: sorted((h.source, h.present, h.sentence, str(h.removed_at))
                      for h in history.search(store, q, limit=500).hits) for q in QUERIES}


def test_corpus_search_is_the_same_on_both_backends_and_across_the_migration(
        pg_url: str, tmp_path) -> None:
    """LinkedIn's real histories imported into SQLite and PostgreSQL answer every query alike,
    and the texts moving to one row per distinct sentence (0015, down and up) changes no
    answer."""
    from alembic import command
    from monitor import importer
    from tests.conftest import corpus_or_skip

    root = corpus_or_skip()
    docs = [d for d in importer.discover(root / "linkedin", ["md"])
            if d.name.split("/")[-1].startswith(("privacy-policy", "terms-of-service"))]
    assert len(docs) >= 10
    answers = []
    for url in (f"sqlite:///{tmp_path / 'monitor.db'}", pg_url):
        store = Store(url)
        try:
            store.upgrade()
            importer.import_documents(store, docs)
            answers.append(_answers(store))
            if url.startswith("sqlite"):
                command.downgrade(store.alembic_config(), "0014")
                store.upgrade()
                assert _answers(store) == answers[0]
        finally:
            store.close()
    sqlite_answers, pg_answers = answers
    assert sum(len(v) for v in sqlite_answers.values()) > 50
    for q in QUERIES:
        a, b = set(sqlite_answers[q]), set(pg_answers[q])
        assert a == b, (q, sorted(a - b)[:3], sorted(b - a)[:3])


def test_corpus_search_counts_every_page_beyond_two_thousand_matches(tmp_path) -> None:
    """Counts are the database's own count over every matching sentence (the old answer was
    cut at 2,000 sentences and printed the cut as the total), stable from one request to the
    next, and paging by cursor reaches every page exactly once, in order."""
    from monitor import history, importer
    from tests.conftest import corpus_or_skip

    root = corpus_or_skip()
    docs = [d for d in importer.discover(root / "linkedin", ["md"])
            if d.name.split("/")[-1].startswith(("privacy-policy", "terms-of-service"))]
    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    try:
        store.upgrade()
        importer.import_documents(store, docs)
        with store.engine.connect() as conn:
            per_page = dict(conn.execute(text(
                "SELECT src.name, COUNT(*) FROM sentence_fts f "
                "JOIN sentences s ON s.text_id = f.rowid JOIN sources src ON src.id = s.source_id "
                "AND src.generation = s.generation WHERE sentence_fts MATCH '\"linkedin\"' "
                "GROUP BY src.name")).all())
            saying_now = set(conn.execute(text(
                "SELECT DISTINCT src.name FROM sentence_fts f "
                "JOIN sentences s ON s.text_id = f.rowid JOIN sources src ON src.id = s.source_id "
                "AND src.generation = s.generation WHERE sentence_fts MATCH '\"linkedin\"' "
                "AND s.removed_at IS NULL")).scalars())
        assert sum(per_page.values()) > 2000  # more matching sentences than the old cut
        first = history.search(store, "LinkedIn", limit=3)
        assert (first.now, first.before) == (len(saying_now), len(per_page) - len(saying_now))
        assert history.search(store, "LinkedIn", limit=3) == first  # stable
        seen, after = [], None
        while True:
            page = history.search(store, "LinkedIn", limit=3, after=after)
            assert (page.now, page.before) == (first.now, first.before)
            seen.extend(page.hits)
            if page.next is None:
                break
            after = page.next
        assert sorted(h.source for h in seen) == sorted(per_page)  # every page, once
        assert {h.source: h.sentences for h in seen} == per_page
        order = [(not h.present, h.first_seen_at) for h in seen]
        assert order == sorted(order)
        with pytest.raises(ValueError, match="cursor"):
            history.search(store, "LinkedIn", after="not-a-cursor")
    finally:
        store.close()
