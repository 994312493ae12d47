"""The AI data-use board from pages we wrote, checked through the real CLI: each answer with
its change and version, the board as of a date, documents that disagree, a failing page."""

from __future__ import annotations

import csv
import io
import json

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

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
