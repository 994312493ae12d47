"""Labels through the real pipeline: local server → check → stored labels → CLI filters."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.classify import Classification
from monitor.diff import compute
from monitor.store import NewVersion, Store
from tests.conftest import corpus_or_skip

POLICY = """
<h2>How we use your data</h2>
<p>We use your data to provide and personalise the services.</p>
<p>We keep your data while your account is open.</p>
"""
AI_CLAUSE = """
<h2>Generative AI</h2>
<p>We may use your posts and profile data to train generative AI models that power features
on our services. This setting is turned on by default. To stop this use, go to
Settings &gt; Data privacy &gt; Data for Generative AI Improvement and switch it off.</p>
"""


def test_check_twice_gives_one_high_ai_change_with_setting_path(server: HTTPServer, project, page) -> None:
    content = {"body": page(POLICY)}

    def handler(_: Request) -> Response:
        return Response(content["body"], content_type="text/html; charset=utf-8")

    server.expect_request("/privacy").respond_with_handler(handler)
    project.write(f"""
        [[source]]
        name = "acme/privacy"
        platform = "Acme"
        url = "{server.url_for('/privacy')}"
        kind = "privacy_policy"
        select = "#content"
    """)
    project.cli("init")
    project.check()
    content["body"] = page(POLICY + AI_CLAUSE)
    result = project.check()["acme/privacy"]
    assert result["outcome"] == "changed"
    assert "ai_training" in result["detail"] and "high" in result["detail"]

    (change,) = project.json("changes")
    assert set(change["labels"]) == {"ai_training", "opt_out", "default_on"}
    assert change["severity"] == "high"
    path = "Settings > Data privacy > Data for Generative AI Improvement"
    assert {"type": "setting_path", "text": path, "url": None} in change["opt_out"]

    # Filters: by label and by severity.
    assert [c["id"] for c in project.json("changes", "--label", "ai_training",
                                          "--min-severity", "medium")] == [change["id"]]
    assert project.json("changes", "--label", "third_party_ai") == []
    assert project.json("changes", "--min-severity", "high") != []

    explained = project.cli("explain", str(change["id"])).output
    assert "[ai_training] added, high" in explained
    assert "«train»" in explained
    assert "Settings > Data privacy > Data for Generative AI Improvement" in explained
    assert "How to opt out" in explained
    detail = json.loads(project.cli("explain", str(change["id"]), "--json").output)
    assert detail["severity"] == "high"
    assert detail["directions"]["ai_training"] == "added"


def _version(text: str, at: datetime) -> dict[str, Any]:
    return {"text": text, "at": at}


def test_changes_of_one_platform_within_72_hours_are_one_event(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'e.db'}")
    try:
        store.upgrade()
        from monitor.config import Source

        store.ensure_sources([Source(name="acme/privacy", platform="Acme", url="https://a.example/p"),
                              Source(name="acme/faq", platform="Acme", url="https://a.example/f"),
                              Source(name="other/privacy", platform="Other", url="https://o.example/")])
        t0 = datetime(2024, 9, 18, 12, tzinfo=UTC)
        base = "We use data to run the service.\n"
        ai = base + "We train AI models on your posts.\n"

        def record(name: str, old: str | None, new: str, at: datetime) -> int | None:
            from monitor.blobstore import sha256
            from monitor.classify import classify

            diff = compute(old, new) if old is not None else None
            state = store.state(name)
            stored = store.record_version(state, at, 0, 200, NewVersion(
                text=new, sha256=sha256(new.encode()), raw=new.encode(), content_type="text/plain",
                charset="utf-8", url="u", etag=None, last_modified=None, fingerprint="",
                diff=diff, classification=classify(diff) if diff else None))
            return stored.change_id

        for name in ("acme/privacy", "acme/faq", "other/privacy"):
            record(name, None, base, t0 - timedelta(days=30))
        first = record("acme/privacy", base, ai, t0)
        second = record("acme/faq", base, base + "Opt out in your settings.\n", t0 + timedelta(hours=40))
        other = record("other/privacy", base, ai, t0 + timedelta(hours=1))
        later = record("acme/privacy", ai, ai + "We keep data for a year.\n", t0 + timedelta(days=10))

        from monitor import history

        events = {c.id: c.event_id for c in history.changes(store)}
        assert events[first] == events[second]
        assert events[other] not in (None, events[first])
        assert events[later] not in (None, events[first])
        from monitor.models import Event

        with store.read() as s:
            event = s.get(Event, events[first])
            assert event is not None
            assert event.severity == "high"  # the highest of its members
            assert event.changes == 2
    finally:
        store.close()


def _write_versions(root: Path, name: str, versions: dict[str, str]) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for stem, text in versions.items():
        (folder / stem).write_text(text)
    return folder


def test_replay_prints_one_json_line_per_change(tmp_path: Path, project) -> None:
    root = tmp_path / "history"
    _write_versions(root, "acme/privacy-policy", {
        "2024-08-01.md": "# Privacy\n\nWe use data to run the service.\n",
        "2024-09-18T12:00:00Z.md": "# Privacy\n\nWe use data to run the service. We use your posts "
                                   "to train generative AI models. You can opt out in Settings > "
                                   "Data privacy.\n",
        "2024-10-01T120000Z.md": "# Privacy\n\nWe use data to run the service. We use your posts "
                                 "to train generative AI models. You can opt out in Settings > "
                                 "Data privacy.\n\nEffective October 1, 2024\n",
        "2024-10-02T120000Z.md": "# Privacy\n\nWe use data to run the service. We use your posts "
                                 "to train generative AI models. You can opt out in Settings > "
                                 "Data privacy.\n\nEffective October 2, 2024\n",
    })
    _write_versions(root, "acme/faq", {
        "2024-09-19.html": "<html><body><main><h1>FAQ</h1><p>Nothing yet.</p></main></body></html>",
        "2024-09-20.html": "<html><body><main><h1>FAQ</h1><p>Members in the EU and UK are not "
                           "included in AI training.</p></main></body></html>",
    })
    project.write("")
    lines = [json.loads(ln) for ln in project.cli("replay", str(root), "--json").output.splitlines()]
    by_to = {(ln["source"], ln["to"]): ln for ln in lines}
    assert set(by_to) == {("acme/privacy-policy", "2024-09-18T12:00:00Z"),
                          ("acme/privacy-policy", "2024-10-01T120000Z"),
                          ("acme/privacy-policy", "2024-10-02T120000Z"),
                          ("acme/faq", "2024-09-20")}
    ai = by_to[("acme/privacy-policy", "2024-09-18T12:00:00Z")]
    assert ai["from"] == "2024-08-01"
    assert set(ai["labels"]) >= {"ai_training", "opt_out"}
    assert ai["severity"] == "high"
    assert {"label", "old", "new"} <= set(ai["evidence"][0])
    assert {"type": "setting_path", "text": "Settings > Data privacy", "url": None} in ai["opt_out"]
    assert ai["event"] is not None
    # The FAQ from the .html files joined the same platform event within 72 hours.
    assert by_to[("acme/faq", "2024-09-20")]["event"] == ai["event"]
    # A sentence added that is only a date counts as cosmetic; a date edit too.
    assert by_to[("acme/privacy-policy", "2024-10-02T120000Z")]["labels"] == ["cosmetic"]
    assert by_to[("acme/privacy-policy", "2024-10-02T120000Z")]["event"] is None


def test_import_backfills_history_and_is_resumable(tmp_path: Path, project) -> None:
    root = tmp_path / "history"
    _write_versions(root, "acme/terms", {
        "2024-01-01.txt": "Terms v1.\n", "2024-02-01.txt": "Terms v2, with more words.\n"})
    project.write("")
    project.cli("init")
    assert "2 versions, 1 change" in project.cli("import", str(root)).output
    (root / "acme/terms/2024-03-01.txt").write_text("Terms v3: we train AI models on uploads.\n")
    assert "1 change\n" in project.cli("import", str(root)).output
    versions = project.json("history", "acme/terms")
    assert [v["seen_at"][:10] for v in versions] == ["2024-01-01", "2024-02-01", "2024-03-01"]
    (latest,) = project.json("changes", "--label", "ai_training")
    assert latest["detected_at"].startswith("2024-03-01")


@pytest.mark.parametrize(("files", "message"), [
    ({}, "holds no version files"),
    ({"acme/p/yesterday.md": "x"}, "cannot read a date from 'yesterday'"),
    ({"acme/p/2024-13-45.md": "x"}, "is not a valid date"),
])
def test_import_errors_are_clear(tmp_path: Path, project, files: dict[str, str], message: str) -> None:
    root = tmp_path / "history"
    root.mkdir()
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    project.write("")
    result = project.cli("replay", str(root), ok=False)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_stored_classification_round_trips(tmp_path: Path) -> None:
    from monitor.classify import classify

    result = classify(compute("We use data.\n", "We use data. We train AI models on it.\n"))
    assert Classification.from_dict(json.loads(json.dumps(result.to_dict()))) == result


# ---- the real histories, when ../shared/corpus is present ----------------------------------


@pytest.fixture(scope="module")
def linkedin_replay(tmp_path_factory) -> dict[tuple[str, str], dict[str, Any]]:
    corpus = corpus_or_skip()
    from click.testing import CliRunner

    from monitor.cli import main

    root = tmp_path_factory.mktemp("li")
    for name in ("privacy-policy--contrib", "privacy-policy--pga"):
        src = corpus / "linkedin" / name
        dst = root / "linkedin" / name
        dst.mkdir(parents=True)
        for f in src.glob("*.md"):
            (dst / f.name).write_bytes(f.read_bytes())
    cfg = root / "empty.toml"
    cfg.write_text("")
    out = CliRunner().invoke(main, ["--config", str(cfg), "replay", str(root), "--json"]).output
    rows = [json.loads(line) for line in out.splitlines()]
    return {(r["source"].split("/")[-1], r["to"][:10]): r for r in rows}


def test_corpus_linkedin_2024_generative_ai_training_is_high(linkedin_replay) -> None:
    for doc in ("privacy-policy--contrib", "privacy-policy--pga"):
        row = linkedin_replay[(doc, "2024-09-19")]
        assert {"ai_training", "opt_out"} <= set(row["labels"]), doc
        assert row["severity"] == "high"
        assert any("train artificial intelligence (AI) models" in (e["new"] or "")
                   for e in row["evidence"])


def test_corpus_linkedin_2025_eu_extension_is_high_with_region(linkedin_replay) -> None:
    for to in ("2025-09-18", "2025-11-04"):
        row = linkedin_replay[("privacy-policy--pga", to)]
        assert {"ai_training", "region_scope"} <= set(row["labels"]), to
        assert row["severity"] == "high"


def test_corpus_linkedin_date_and_format_only_versions_are_cosmetic(linkedin_replay) -> None:
    cosmetic = [k for k, r in linkedin_replay.items() if r["labels"] == ["cosmetic"]]
    assert ("privacy-policy--contrib", "2021-10-20") in cosmetic  # curly quotes lost
    assert ("privacy-policy--contrib", "2021-10-25") in cosmetic  # and restored
    assert all(linkedin_replay[k]["severity"] == "none" for k in cosmetic)
    assert len(cosmetic) >= 8
