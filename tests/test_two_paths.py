"""What `replay`/`import` measures is what a live check gives: the same history, served on
loopback and checked version by version with the clock at each version's stamp, stores the
same changes as importing its folder (labels, severity, summary, evidence, verdict, ways out,
page artefacts). Real corpus histories when ../shared/corpus is present, and made-up ones for
the ways the paths used to differ (a block page, a partial load far back, a flapping page)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor import importer
from monitor.config import load as load_config
from monitor.fetchers import Fetchers
from monitor.pipeline import CheckContext, check_source
from monitor.store import Store
from tests.conftest import CORPUS

HISTORIES = (
    "linkedin/privacy-policy--contrib",
    "linkedin/terms-of-service--pga",
    "facebook/privacy-policy--pga",
    "xai/privacy-policy--genai",
    "google/privacy-policy--contrib",
    "grammarly/privacy-policy--contrib",
)
QUERY = ("SELECT c.detected_at, c.labels, c.severity, c.opt_out, c.verdict, c.ai_default, "
         "c.regions_excluded, c.findings FROM changes c ORDER BY c.detected_at")


def changes_of(db: Path) -> list[tuple[Any, ...]]:
    """Every change as stored, in order, with what a reader or an alert gets from it."""
    import json

    with sqlite3.connect(db) as conn:
        rows = conn.execute(QUERY).fetchall()
    out = []
    for at, *values, findings in rows:
        f = json.loads(findings) if findings else {}
        out.append((at[:19], *values, f.get("summary"), json.dumps(f.get("evidence")),
                    json.dumps(f.get("anomaly"))))
    return out


def live(tmp: Path, server: HTTPServer, versions: list[tuple[datetime, str]]) -> Path:
    """Check the page once per version, each served in turn, with the clock at its stamp."""
    body = {"text": ""}

    def handler(_: Request) -> Response:
        return Response(body["text"], content_type="text/plain; charset=utf-8")

    server.expect_request("/page").respond_with_handler(handler)
    data = tmp / "live"
    config = tmp / "sources.toml"
    config.write_text(f"""
[settings]
data_dir = "{data}"
allow_private_addresses = true
per_host_delay = "0s"

[[source]]
name = "x/page"
platform = "X"
url = "{server.url_for('/page')}"
""")
    conf = load_config(config)
    store = Store(f"sqlite:///{data / 'monitor.db'}")
    store.upgrade()
    store.sync_sources(conf.sources, conf.settings.interval)
    fetchers = Fetchers.build(conf.settings, conf.sources)
    (source,) = conf.sources
    for at, text in versions:
        body["text"] = text
        result = check_source(store, fetchers, source, ctx=CheckContext(clock=lambda at=at: at))
        assert result.outcome in ("baseline", "changed", "unchanged", "failed"), result
    fetchers.close()
    store.close()
    return data / "monitor.db"


def imported(tmp: Path, versions: list[tuple[datetime, str]]) -> Path:
    folder = tmp / "history" / "x" / "page"
    folder.mkdir(parents=True)
    for at, text in versions:
        (folder / f"{at:%Y-%m-%dT%H%M%SZ}.md").write_text(text, encoding="utf-8")
    db = tmp / "imported.db"
    store = Store(f"sqlite:///{db}")
    store.upgrade()
    importer.import_documents(store, importer.discover(tmp / "history"), search_index=False)
    store.close()
    return db


def assert_same(tmp: Path, server: HTTPServer, versions: list[tuple[datetime, str]]) -> int:
    a, b = changes_of(live(tmp, server, versions)), changes_of(imported(tmp, versions))
    assert len(a) == len(b), (len(a), len(b))
    for x, y in zip(a, b, strict=True):
        assert x == y
    return len(a)


def corpus_versions(name: str) -> list[tuple[datetime, str]]:
    folder = CORPUS / name
    out = []
    for path in sorted(folder.glob("*.md")):
        out.append((importer.parse_stem(path.stem), path.read_text(encoding="utf-8")))
    return out


@pytest.mark.parametrize("name", HISTORIES)
def test_a_real_history_checked_live_equals_its_replay(tmp_path: Path, server: HTTPServer,
                                                       name: str) -> None:
    if not (CORPUS / "MANIFEST.json").exists():
        pytest.skip("../shared/corpus is not present")
    assert assert_same(tmp_path, server, corpus_versions(name)) > 0


def made_up(texts: list[str], start: datetime = datetime(2025, 1, 1, tzinfo=UTC),
            step: timedelta = timedelta(days=3)) -> list[tuple[datetime, str]]:
    return [(start + i * step, t) for i, t in enumerate(texts)]


POLICY = "# Privacy Policy\n\n" + "".join(
    f"## Section {i}\n\nWe process data category {i} for purpose {i} under legal basis {i}.\n\n"
    for i in range(60))
AI = "We use your posts and messages to train our generative AI models.\n"


def test_a_block_page_is_refused_on_both_paths(tmp_path: Path, server: HTTPServer) -> None:
    block = "Please verify you are a human.\n"
    versions = made_up([POLICY, block, POLICY + AI, block, block])
    assert assert_same(tmp_path, server, versions) == 2  # the AI change, then the block page twice


def test_a_partial_load_far_back_is_remembered_on_both_paths(tmp_path: Path,
                                                             server: HTTPServer) -> None:
    full = POLICY + AI
    sections = full.split("## ")
    partial = "## ".join(sections[:25]) + "\n"  # a third of the page, the AI section gone
    texts = [full, partial]
    texts += [partial + f"\nMinor note {i}.\n" for i in range(11)]  # eleven changes later…
    texts.append(full + "\nMinor note 10.\n")  # …the lost sections come back
    assert assert_same(tmp_path, server, made_up(texts, step=timedelta(days=10))) >= 12


def test_a_flapping_page_is_judged_alike(tmp_path: Path, server: HTTPServer) -> None:
    a, b = POLICY + AI, POLICY + "We never use your messages to train AI models.\n"
    versions = made_up([a, b, a, b, a, b], step=timedelta(days=1))
    assert assert_same(tmp_path, server, versions) == 5


def test_re_extraction_judges_a_history_as_an_import_does(tmp_path: Path) -> None:
    """Re-extraction rebuilds a history in memory before writing it: the same judgements."""
    from monitor import judge
    from monitor.blobstore import sha256

    full = POLICY + AI
    partial = "## ".join(full.split("## ")[:25]) + "\n"
    texts = [full, partial, partial + "\nA note.\n", full + "\nA note.\n", partial + "\nA note.\n",
             full + "\nA note.\n", POLICY + "We never use your messages to train AI models.\n"]
    versions = made_up(texts, step=timedelta(days=2))
    stored = changes_of(imported(tmp_path, versions))
    past, previous, rebuilt = judge.MemoryPast(), None, []
    for at, text in versions:
        digest = sha256(text.encode("utf-8"))
        judged = judge.judge(previous, text, digest, at, past)
        if judged.classification is not None:
            rebuilt.append(judged.classification)
        past.keep(text, digest, at, judged.classification)
        previous = text
    assert [(c[2], c[-3]) for c in stored] == [(r.severity, r.summary) for r in rebuilt]
    assert any("partial" in (c[-1] or "") for c in stored)  # the history holds what it tests
