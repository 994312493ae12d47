"""Reading a page differently is not a change of the page: after an upgrade of the extractor
or an edit of a source's select/remove/ignore, the first check re-reads the stored history from
its raw pages (history, never alerted), so only what the page itself changed is news.

A real loopback server, a real SQLite file; the "old extractor" is today's with the lines of
each list item run together (what version 1 did to items holding paragraphs).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from monitor import extract, history
from monitor.config import Source, Subscription
from monitor.config import load as load_config
from monitor.fetchers import Fetchers
from monitor.pipeline import CheckContext, check_source
from monitor.store import Store
from tests.conftest import served as serve_page

ITEM = "<li><p>{first}</p><p>{second}</p><p>{third}</p></li>"
FILLER = ("We keep your account data while your account is open, and for a short time after "
          "you close it so that you can come back. ")


def page(edit: str = "") -> str:
    # Items of ~1,500 words, as long as the sections of LinkedIn's privacy policy.
    items = "".join(ITEM.format(first=f"Section {i}. {FILLER * 20}",
                                second=f"{FILLER * 20} Part {i}.",
                                third=f"Last part {i}. {FILLER * 20}{edit if i == 3 else ''}")
                    for i in range(1, 6))
    return f"<html><body><main><h1>Privacy</h1><ul>{items}</ul></main></body></html>"


def flattened(render):  # type: ignore[no-untyped-def]
    """Version 1's reading: each list item on one line."""
    def old(roots, base_url):  # type: ignore[no-untyped-def]
        out: list[str] = []
        for line in render(roots, base_url).split("\n"):
            if line.startswith("  ") and out:
                out[-1] += " " + line.strip()
            else:
                out.append(line)
        return "\n".join(out)
    return old


@pytest.fixture
def setup(tmp_path: Path, server: HTTPServer
          ) -> Iterator[tuple[Store, Fetchers, Source, dict[str, str]]]:
    served = serve_page(server, "/privacy", page())
    config = tmp_path / "sources.toml"
    config.write_text(f"""
[settings]
data_dir = "{tmp_path}"
allow_private_addresses = true
per_host_delay = "0s"

[[source]]
name = "acme/privacy"
platform = "Acme"
url = "{server.url_for('/privacy')}"
""")
    conf = load_config(config)
    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.upgrade()
    store.sync_sources(conf.sources, conf.settings.interval)
    fetchers = Fetchers.build(conf.settings, conf.sources)
    yield store, fetchers, conf.sources[0], served
    fetchers.close()
    store.close()


def deliveries(store: Store) -> int:
    path = store.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM deliveries").fetchone()[0])


EVERYONE = (Subscription(name="all", url=("json://127.0.0.1:9/",), min_severity="low",
                         include_cosmetic=True),)


def test_first_check_after_an_extractor_upgrade_is_not_a_change(
        setup: tuple[Store, Fetchers, Source, dict[str, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    store, fetchers, source, served = setup
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def check(at: datetime) -> str:
        ctx = CheckContext(clock=lambda: at, subscriptions=EVERYONE)
        return check_source(store, fetchers, source, ctx=ctx).outcome

    with monkeypatch.context() as old:
        old.setattr(extract, "EXTRACTOR_VERSION", "1")
        old.setattr(extract, "_render", flattened(extract._render))
        assert check(t0) == "baseline"
        served["html"] = page(edit="We may also use it to train AI models.")
        assert check(t0 + timedelta(days=1)) == "changed"
    (before,) = history.changes(store, source.name)
    assert before.words_added > 1000  # a whole flattened item counted as changed
    alerts = deliveries(store)

    # Upgraded: the same page, read now with each paragraph of an item on its own line.
    assert check(t0 + timedelta(days=2)) == "unchanged"
    assert deliveries(store) == alerts  # no alert for reading the page differently
    (after,) = history.changes(store, source.name)
    assert after.reextracted and after.detected_at == before.detected_at
    assert after.words_added == 9  # "We may also use it to train AI models."
    newest = history.versions(store, source.name)[-1]
    assert "\n  Last part 3." in history.snapshot(store, newest.snapshot_id)[1]

    # The page's own next edit is news, measured on the new reading.
    served["html"] = page(edit="We may also use it to train AI models. You can opt out.")
    assert check(t0 + timedelta(days=3)) == "changed"
    news = history.changes(store, source.name)[0]
    assert not news.reextracted and news.words_added == 4
    assert deliveries(store) > alerts
    # And settled: nothing is re-read twice.
    assert check(t0 + timedelta(days=4)) == "unchanged"
    assert len(history.changes(store, source.name)) == 2


def test_history_without_raw_pages_is_compared_as_it_is(
        setup: tuple[Store, Fetchers, Source, dict[str, str]], tmp_path: Path) -> None:
    store, fetchers, source, _ = setup
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert check_source(store, fetchers, source, ctx=CheckContext(clock=lambda: at)).outcome \
        == "baseline"
    path = store.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:  # as an imported Markdown history is stored
        conn.execute("UPDATE snapshots SET raw_blob = NULL")
        conn.execute("UPDATE sources SET extraction_key = 'older rules'")
    later = at + timedelta(days=1)
    assert check_source(store, fetchers, source,
                        ctx=CheckContext(clock=lambda: later)).outcome == "unchanged"
    with sqlite3.connect(path) as conn:
        (key,) = conn.execute("SELECT extraction_key FROM sources").fetchone()
        generations = conn.execute("SELECT count(DISTINCT generation) FROM snapshots").fetchone()
    assert key == extract.reading_key(source) and generations == (1,)
