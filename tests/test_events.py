"""Events merge news, never drop it: one message per announcement, updates for what is new."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from monitor import config as cfg
from monitor import importer, notify
from monitor.classify import severity_rank
from monitor.models import Change, Delivery
from monitor.store import Store
from tests.test_notify import Hook, pages

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

BASE = "<h1>{title}</h1><p>We use your data to provide the services.</p>"
TRAINING = ("<h2>Generative AI</h2><p>We may use your posts and profile data to train generative AI "
            "models that power features on our services.</p>")
EXEMPTION = ("<p>We do not use data of members in the EU, EEA, UK or Switzerland to train "
             "generative AI models.</p>")
PAGES = (("/policy", "linkedin/privacy-policy", "Privacy Policy"),
         ("/faq", "linkedin/ai-faq", "Generative AI FAQ"),
         ("/terms", "linkedin/user-agreement", "User Agreement"))


def setup(project, server: HTTPServer, window: str) -> tuple[Hook, dict[str, str]]:  # type: ignore[no-untyped-def]
    hook = Hook(server)
    bodies = {path: BASE.format(title=title) for path, _, title in PAGES}
    pages(server, bodies)
    sources = "".join(f"""
        [[source]]
        name = "{name}"
        title = "{title}"
        platform = "LinkedIn"
        url = "{server.url_for(path)}"
        select = "main"
    """ for path, name, title in PAGES)
    project.write(sources + f"""
        [[subscription]]
        name = "hook"
        url = "{hook.url}"
    """, settings=f'base_url = "https://monitor.example.org"\nevent_window = "{window}"')
    project.cli("init")
    project.check()
    return hook, bodies


def test_announcement_then_follow_up_with_event_window_zero(server: HTTPServer, project) -> None:
    hook, bodies = setup(project, server, "0s")
    bodies["/policy"] += TRAINING
    bodies["/faq"] += TRAINING + EXEMPTION
    project.check()
    project.cli("notify", "flush")
    assert len(hook.received) == 1  # one announcement, one message
    first = hook.received[0]
    for title in ("Privacy Policy", "Generative AI FAQ"):
        assert title in first["message"]
    assert "User Agreement" not in first["message"]  # unchanged pages are not named
    assert "2 pages changed" in first["title"]

    bodies["/faq"] = bodies["/faq"].replace(EXEMPTION, "")  # the EEA/UK exemption goes
    project.check()
    project.cli("notify", "flush")
    assert len(hook.received) == 2
    update = hook.received[1]
    assert update["title"].startswith("[LinkedIn] Update: Generative AI FAQ")
    assert "regional exemption removed" in update["message"]
    assert "Privacy Policy" in update["message"]  # the event's earlier pages are named
    assert "EEA" in update["message"]


def test_three_pages_held_for_the_window_go_out_in_one_message(server: HTTPServer, project) -> None:
    hook, bodies = setup(project, server, "15m")
    for path in bodies:
        bodies[path] += TRAINING
    project.check()
    conf = cfg.load(project.config)
    store = Store(conf.settings.database)
    try:
        now = datetime.now(UTC)
        assert notify.flush(store, conf, clock=lambda: now).sent == 0  # still gathering
        assert hook.received == []
        result = notify.flush(store, conf, clock=lambda: now + timedelta(minutes=16))
        rows = store.deliveries()
    finally:
        store.close()
    assert result.sent == 1
    assert len(hook.received) == 1
    message = hook.received[0]
    assert "3 pages changed" in message["title"]
    for _, _, title in PAGES:
        assert title in message["message"]
    assert sorted(r.status for r in rows) == ["sent"] * 3  # one row per page, one message


def test_a_repeat_without_new_text_is_merged_not_sent_not_lost(server: HTTPServer, project) -> None:
    hook, bodies = setup(project, server, "0s")
    bodies["/policy"] += TRAINING
    project.check()
    project.cli("notify", "flush")
    bodies["/terms"] += TRAINING  # the same sentence on another page, later
    project.check()
    project.cli("notify", "flush")
    assert len(hook.received) == 1
    rows = project.json("deliveries")
    assert sorted(r["status"] for r in rows) == ["merged", "sent"]
    merged = next(r for r in rows if r["status"] == "merged")
    assert merged["change_id"] is not None


@pytest.mark.corpus
def test_every_ai_change_of_the_linkedin_histories_reaches_the_subscription(
        tmp_path: Path, server: HTTPServer) -> None:
    if not (CORPUS / "MANIFEST.json").exists():
        pytest.skip("../shared/corpus is not here")
    hook = Hook(server)
    config_path = tmp_path / "sources.toml"
    config_path.write_text(f"""
        [settings]
        data_dir = "{tmp_path / 'data'}"
        event_window = "15m"

        [[subscription]]
        name = "everything"
        url = "{hook.url}"
        min_severity = "low"
    """.replace("\n        ", "\n"))
    conf = cfg.load(config_path)
    store = Store(conf.settings.database)
    try:
        store.upgrade()
        documents = [d for d in importer.discover(CORPUS, ["md"]) if d.platform == "linkedin"]
        importer.import_documents(store, documents, subscriptions=conf.subscriptions)
        with store.read() as s:
            changes = [c for c in s.query(Change).all()
                       if severity_rank(c.severity) >= severity_rank("medium")
                       and {"ai_training", "ai_feature_data"} & set(c.labels or [])]
            queued = {d.change_id for d in s.query(Delivery).filter(Delivery.subscription == "everything")}
        assert changes, "the LinkedIn histories hold AI changes"
        missing = [c.id for c in changes if c.id not in queued]
        assert missing == []
        later = datetime.now(UTC) + timedelta(days=1)
        while (result := notify.flush(store, conf, clock=lambda: later)).sent or result.merged:
            pass
        statuses = {d.change_id: d.status for d in store.deliveries(limit=100_000)}
    finally:
        store.close()
    assert {statuses[c.id] for c in changes} <= {"sent", "merged"}
    assert hook.received, "alerts were delivered to the webhook"
