"""The AI data-use board from pages we wrote, checked through the real CLI: each answer with
its change and version, the board as of a date, documents that disagree, a failing page."""

from __future__ import annotations

import csv
import email
import email.header
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor import config as cfg
from monitor import importer, notify
from monitor.models import Change, Delivery
from monitor.store import Store
from tests.conftest import corpus_or_skip
from tests.test_notify import JsonHook, parts
from tests.test_notify import smtp as smtp  # a fixture

SCHEMA = json.loads((Path(notify.__file__).parent / "schemas" / "webhook.schema.json").read_text())

QUIET = "<h2>Your data</h2><p>We use your data to run the service and keep it safe.</p>"
TRAINS = ("<p>We use your posts and profile data to train generative AI models that power our "
          "features. This setting is on by default.</p><p>You can opt out in <a "
          "href='https://example.com/settings/ai'>Settings &gt; Data privacy &gt; Data for AI "
          "Improvement</a>.</p>")
PROMISE = "<p>We do not use your messages to train AI models.</p>"


def _site(server: HTTPServer, project, pages: dict[str, str]) -> None:
    def answer(request: Request) -> Response:
        if request.path == "/down" and pages["/down"] == "":
            return Response("gone", status=503)
        return Response(f"<html><body><main>{pages[request.path]}</main></body></html>",
                        content_type="text/html; charset=utf-8")

    for path in pages:
        server.expect_request(path).respond_with_handler(answer)
    project.write(f"""
        [[source]]
        name = "acme/privacy"
        platform = "Acme"
        kind = "privacy_policy"
        url = "{server.url_for('/privacy')}"

        [[source]]
        name = "acme/help"
        platform = "Acme"
        url = "{server.url_for('/help')}"

        [[source]]
        name = "acme/down"
        platform = "Acme"
        url = "{server.url_for('/down')}"
    """, settings="failure_threshold = 1")
    project.cli("init")


def _board(project, *args: str) -> dict:
    (found,) = json.loads(project.cli("board", "acme", "--json", *args).output)
    return found


def test_board_answers_with_their_changes_and_as_of_a_date(server: HTTPServer, project) -> None:
    pages = {"/privacy": QUIET, "/help": QUIET, "/down": QUIET}
    _site(server, project, pages)
    project.cli("check")
    quiet = _board(project)
    assert all(found == [] for found in quiet["answers"].values())
    pages["/privacy"] = QUIET + TRAINS
    changed = project.check("acme/privacy")["acme/privacy"]
    found = _board(project)
    (training,) = found["answers"]["training"]
    assert training["value"] == "yes"
    assert training["change_id"] == changed["change_id"]
    assert training["version_id"] == changed["snapshot_id"]
    assert "train generative AI models" in training["quote"]
    assert [a["value"] for a in found["answers"]["default"]] == ["on"]
    steps = [s for a in found["answers"]["ways_out"] for s in a["steps"]]
    assert any(s.get("url") == "https://example.com/settings/ai" for s in steps), steps
    # The board as of a day before the change is the quiet one.
    assert _board(project, "--at", "2000-01-01")["answers"]["training"] == []
    # The help page promises otherwise: both answers are shown, neither silently picked.
    pages["/help"] = QUIET + PROMISE
    project.check("acme/help")
    found = _board(project)
    assert {a["value"] for a in found["answers"]["training"]} == {"yes", "promises not to"}
    assert "training" in found["disagreements"]
    text = project.cli("board", "acme").output
    assert "DOCUMENTS DISAGREE" in text and "promises not to" in text
    rows = list(csv.DictReader(io.StringIO(project.cli("board", "acme", "--csv").output)))
    assert {(r["source"], r["answer"]) for r in rows if r["question"] == "training"} == {
        ("acme/privacy", "yes"), ("acme/help", "promises not to"), ("acme/down", "not stated")}


def test_answers_from_a_page_that_fails_are_stale(server: HTTPServer, project) -> None:
    pages = {"/privacy": QUIET, "/help": QUIET, "/down": QUIET}
    _site(server, project, pages)
    project.cli("check")
    pages["/down"] = QUIET + TRAINS
    project.check("acme/down")
    assert not _board(project)["answers"]["training"][0]["stale"]
    pages["/down"] = ""  # the page can no longer be read
    project.check("acme/down")
    (training,) = _board(project)["answers"]["training"]
    assert training["value"] == "yes"
    assert training["stale"] is True
    down = next(d for d in _board(project)["documents"] if d["source"] == "acme/down")
    assert down["failing"] is True


def test_an_unknown_platform_is_one_clear_line(server: HTTPServer, project) -> None:
    _site(server, project, {"/privacy": QUIET, "/help": QUIET, "/down": QUIET})
    result = project.cli("board", "nosuch", ok=False)
    assert result.exit_code != 0
    assert "no platform 'nosuch' is watched" in result.output


def _answers_site(server: HTTPServer, project, pages: dict[str, str], port: int, hook_url: str
                  ) -> None:
    for path in pages:
        server.expect_request(path).respond_with_handler(
            lambda request: Response(f"<html><body><main>{pages[request.path]}</main></body></html>",
                                     content_type="text/html; charset=utf-8"))
    project.write(f"""
        [[source]]
        name = "acme/privacy"
        title = "Privacy Policy"
        platform = "Acme"
        kind = "privacy_policy"
        url = "{server.url_for('/privacy')}"

        [[source]]
        name = "acme/help"
        title = "AI help"
        platform = "Acme"
        url = "{server.url_for('/help')}"

        [[subscription]]
        name = "board-watch"
        url = ["mailto://127.0.0.1:{port}?from=monitor@example.org&to=desk@example.org&mode=insecure",
               "{hook_url}"]
        answers = true
        platforms = ["acme"]
    """, settings='event_window = "0s"\nbase_url = "https://monitor.example.org"')
    project.cli("init")


def test_an_answers_subscription_hears_only_when_an_answer_moves(server: HTTPServer, project,
                                                                smtp) -> None:
    box, port = smtp
    hook = JsonHook(server)
    pages = {"/privacy": QUIET, "/help": QUIET}
    _answers_site(server, project, pages, port, hook.url)
    project.cli("check")
    # A change that says nothing about AI: an ordinary subscriber would hear of it, this one not.
    pages["/privacy"] = QUIET + "<p>We keep your data for as long as your account is open.</p>"
    project.check("acme/privacy")
    pages["/privacy"] += TRAINS
    changed = project.check("acme/privacy")["acme/privacy"]
    # The help page now says it too: the platform's answer stays "yes", nothing to tell.
    pages["/help"] = QUIET + TRAINS
    project.check("acme/help")
    project.cli("notify", "flush")
    (mail,) = box.messages
    subject = str(email.header.make_header(email.header.decode_header(mail["Subject"])))
    assert subject == ("Acme: trains AI on your data: not stated → yes, on by default; way out: "
                       "Settings > Data privacy > Data for AI Improvement "
                       "(https://example.com/settings/ai)")
    body = parts(mail)["text/plain"]
    assert "train generative AI models" in body  # the evidence
    assert f"https://monitor.example.org/changes/{changed['change_id']}" in body
    assert "https://monitor.example.org/board/acme" in body
    ((raw, headers),) = hook.received
    assert headers["X-Policy-Monitor-Event"] == "answer_change"
    payload = json.loads(raw)
    jsonschema.validate(payload, SCHEMA)
    assert payload["type"] == "answer_change"
    assert payload["change_id"] == changed["change_id"]
    assert {m["question"]: (m["old"], m["new"]) for m in payload["moves"]}["training"] == (
        ["not stated"], ["yes"])
    # Now the help page drops it for a promise: the platform's answers moved again.
    pages["/help"] = QUIET + PROMISE
    project.check("acme/help")
    project.cli("notify", "flush")
    assert len(box.messages) == 2
    assert str(email.header.make_header(email.header.decode_header(box.messages[1]["Subject"]))
               ).startswith("Acme: trains AI on your data: yes → no or yes")


def test_an_answers_subscription_takes_no_label_filter(project) -> None:
    project.write("""
        [[subscription]]
        name = "board-watch"
        url = ["json://127.0.0.1:9/hook"]
        answers = true
        labels = ["ai_training"]
    """)
    result = project.cli("sources", "validate", ok=False)
    assert result.exit_code != 0
    assert "subscription[board-watch].labels" in result.output
    assert "not used with answers = true" in result.output


def test_the_board_kept_with_each_change_is_the_board_rebuilt_from_them(server: HTTPServer,
                                                                        project) -> None:
    pages = {"/privacy": QUIET, "/help": QUIET, "/down": QUIET}
    _site(server, project, pages)
    project.cli("check")
    for body in (QUIET + TRAINS, QUIET + PROMISE, QUIET + TRAINS + PROMISE):
        pages["/privacy"] = body
        project.check("acme/privacy")
    pages["/help"] = QUIET + PROMISE
    project.check("acme/help")
    kept = _board(project)
    timeline = json.loads(project.cli("board", "acme", "--json").output)
    store = Store(cfg.load(project.config).settings.database)
    try:
        told = [n.to_dict() for n in store.board_news()]
        assert len(told) >= 3  # yes, then no, then … each a platform answer that moved
        assert store.rebuild_board() > 0
        assert [n.to_dict() for n in store.board_news()] == told
    finally:
        store.close()
    assert _board(project) == kept
    assert json.loads(project.cli("board", "acme", "--json").output) == timeline


@pytest.mark.corpus
def test_linkedin_replayed_tells_an_answers_subscription_once_in_september_2024(
        tmp_path: Path, server: HTTPServer) -> None:
    """The real LinkedIn histories imported in date order, as a daemon would have seen them:
    one message when the policy of 2024-09-19 started training, none for the changes around."""
    corpus = corpus_or_skip()
    hook = JsonHook(server)
    config_path = tmp_path / "sources.toml"
    config_path.write_text(f"""
[settings]
data_dir = "{tmp_path / 'data'}"
base_url = "https://monitor.example.org"

[[subscription]]
name = "board-watch"
url = "{hook.url}"
answers = true
platforms = ["LinkedIn"]
""")
    conf = cfg.load(config_path)
    store = Store(conf.settings.database)
    try:
        store.upgrade()
        documents = [d for d in importer.discover(corpus, ["md"]) if d.platform == "linkedin"]
        importer.import_documents(store, documents, subscriptions=conf.subscriptions,
                                  search_index=False)
        window = (datetime(2024, 8, 1, tzinfo=UTC), datetime(2024, 11, 30, tzinfo=UTC))
        with store.read() as s:
            around = [c.id for c in s.query(Change) if window[0] <= c.detected_at <= window[1]]
            queued = [d for d in s.query(Delivery) if d.subscription == "board-watch"]
        later = datetime.now(UTC) + timedelta(days=1)
        while notify.flush(store, conf, clock=lambda: later).sent:
            pass
    finally:
        store.close()
    assert len(around) > 1, "the histories hold quiet changes around the announcement"
    assert {d.kind for d in queued} == {"answer"}  # never a per-change alert
    told = [json.loads(raw) for raw, _ in hook.received]
    assert len(told) == len(queued)
    in_window = [p for p in told if p["change_id"] in around]
    (news,) = in_window
    assert news["at"].startswith("2024-09-19")
    assert news["headline"].startswith("linkedin: trains AI on your data: not stated → yes")
    (training,) = news["answers"]["training"]
    assert "develop and train artificial intelligence (AI) models" in training["quote"]
    for payload in told:
        jsonschema.validate(payload, SCHEMA)
