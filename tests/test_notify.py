"""Alerts through real receivers on loopback: an SMTP server (aiosmtpd) and a JSON webhook."""

from __future__ import annotations

import email
import email.header
import json
import re
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor import config as cfg
from monitor import notify
from monitor.store import Store
from tests.conftest import AI_TRAINING, PLAIN_POLICY, Daemon, served, wait_for

POLICY = "<h2>Data</h2><p>We use your data to provide the services.</p>"
AI = ("<h2>Generative AI</h2><p>We may use your posts to train generative AI models. This "
      "setting is on by default. To opt out, go to Settings &gt; Data privacy &gt; Data for "
      "Generative AI Improvement.</p>")


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


class Hook:
    """A JSON webhook receiver that can be down for its first N requests."""

    def __init__(self, server: HTTPServer, down_for: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.calls = 0
        self.down_for = down_for
        self.lock = threading.Lock()
        server.expect_request("/hook", method="POST").respond_with_handler(self.handle)
        self.url = "json://" + server.url_for("/hook").split("://", 1)[1]

    def handle(self, request: Request) -> Response:
        with self.lock:
            self.calls += 1
            if self.calls <= self.down_for:
                return Response("busy", status=503)
            self.received.append(json.loads(request.data))
        return Response("ok")


def pages(server: HTTPServer, bodies: dict[str, str]) -> None:
    for path in list(bodies):
        def handler(_: Request, path: str = path) -> Response:
            return Response(f"<html><body><main>{bodies[path]}</main></body></html>",
                            content_type="text/html; charset=utf-8")
        server.expect_request(path).respond_with_handler(handler)


def write(project, server: HTTPServer, subscriptions: str, extra: str = "",
          paths: tuple[tuple[str, str, str], ...] = (("/li", "linkedin/privacy-policy", "LinkedIn"),)
          ) -> None:
    srcs = "".join(f"""
        [[source]]
        name = "{name}"
        title = "Privacy Policy"
        platform = "{platform}"
        kind = "privacy_policy"
        url = "{server.url_for(path)}"
        select = "main"
    """ for path, name, platform in paths)
    if "event_window" not in extra:  # alerts at once unless a test is about the gathering window
        extra += '\nevent_window = "0s"'
    project.write(srcs + subscriptions, settings=f'base_url = "https://monitor.example.org"\n{extra}')
    project.cli("init")


def parts(msg: Message) -> dict[str, str]:
    return {p.get_content_type(): p.get_payload(decode=True).decode() for p in msg.walk()
            if p.get_content_type().startswith("text/")}


def test_high_ai_change_reaches_email_and_webhook(server: HTTPServer, project, smtp) -> None:
    box, port = smtp
    hook = Hook(server)
    bodies = {"/li": POLICY}
    pages(server, bodies)
    write(project, server, f"""
        [[subscription]]
        name = "privacy-team"
        url = ["mailto://127.0.0.1:{port}?from=monitor@example.org&to=team@example.org&mode=insecure",
               "{hook.url}"]
        labels = ["ai_training"]
        min_severity = "high"
    """)
    project.check()
    bodies["/li"] = POLICY + AI
    project.check()
    assert "sent 2, will retry 0, failed 0" in project.cli("notify", "flush").output

    (mail,) = box.messages
    subject = str(email.header.make_header(email.header.decode_header(mail["Subject"])))
    # the subject is worded from the verdict: what happened, whether it is on by default
    assert subject == ("[LinkedIn] Privacy Policy: trains AI on your data (on by default); "
                       "also new way to opt out of AI use — high")
    body = parts(mail)
    assert set(body) == {"text/plain", "text/html"}
    for text in body.values():
        assert "We may use your posts to train generative AI models." in text
        assert "Data privacy" in text and "Data for Generative AI Improvement" in text
        assert "https://monitor.example.org/changes/" in text
    (posted,) = hook.received
    assert posted["title"] == subject
    assert "train generative AI models" in posted["message"]
    # json:// is a plain-text target: plain words, not Markdown escapes (`opt\\-out`, `\\>`)
    assert "Settings > Data privacy > Data for Generative AI Improvement" in posted["message"]
    assert "\\" not in posted["message"] and "](" not in posted["message"]
    # Nothing is sent twice.
    assert "sent 0" in project.cli("notify", "flush").output
    assert len(box.messages) == 1


def test_filters_route_changes(server: HTTPServer, project) -> None:
    li, acme = Hook(server), None
    bodies = {"/li": POLICY, "/acme": POLICY}
    pages(server, bodies)
    server.expect_request("/acme-hook", method="POST").respond_with_data("ok")
    acme = "json://" + server.url_for("/acme-hook").split("://", 1)[1]
    write(project, server, f"""
        [[subscription]]
        name = "linkedin"
        url = "{li.url}"
        platforms = ["LinkedIn"]

        [[subscription]]
        name = "acme"
        url = "{acme}"
        platforms = ["Acme"]
    """, paths=(("/li", "linkedin/privacy-policy", "LinkedIn"), ("/acme", "acme/privacy", "Acme")))
    project.check()
    bodies["/li"] = POLICY.replace("We use", "We  use").replace("services.", "services!")
    project.check()  # a cosmetic change
    assert project.json("deliveries") == []
    bodies["/li"] = POLICY + AI
    project.check()
    queued = project.json("deliveries")
    assert [(d["subscription"], d["kind"]) for d in queued] == [("linkedin", "change")]
    project.cli("notify", "flush")
    assert len(li.received) == 1
    assert [req.path for req, _ in server.log].count("/acme-hook") == 0


def flush_over_time(project, rounds: int, step: timedelta) -> None:
    """Run the delivery worker `rounds` times, moving an injected clock on by `step` each time."""
    conf = cfg.load(project.config)
    store = Store(conf.settings.database)
    now = [datetime.now(UTC)]
    try:
        for _ in range(rounds):
            notify.flush(store, conf, clock=lambda: now[0])
            now[0] += step
    finally:
        store.close()


def test_receiver_down_three_times_then_delivered_once(server: HTTPServer, project) -> None:
    hook = Hook(server, down_for=3)
    bodies = {"/li": POLICY}
    pages(server, bodies)
    write(project, server, f"""
        [[subscription]]
        name = "hook"
        url = "{hook.url}"
    """, extra='delivery_retry_base = "1s"')
    project.check()
    bodies["/li"] = POLICY + AI
    project.check()
    flush_over_time(project, 6, timedelta(minutes=5))  # each step is past any retry time
    assert hook.calls == 4
    assert len(hook.received) == 1
    (row,) = project.json("deliveries")
    assert (row["status"], row["attempts"], row["error"]) == ("sent", 4, None)


def test_failing_delivery_gives_up_visibly_and_can_be_retried(server: HTTPServer, project) -> None:
    server.expect_request("/gone", method="POST").respond_with_data("no", status=404)
    bodies = {"/li": POLICY}
    pages(server, bodies)
    url = "json://" + server.url_for("/gone").split("://", 1)[1]
    write(project, server, f"""
        [[subscription]]
        name = "dead"
        url = "{url}"
    """, extra="delivery_max_attempts = 2")
    project.check()
    bodies["/li"] = POLICY + AI
    project.check()
    flush_over_time(project, 3, timedelta(hours=2))
    (failed,) = project.json("deliveries", "--failed")
    assert failed["status"] == "failed"
    assert failed["attempts"] == 2
    assert "404" in failed["error"]
    assert "1 deliveries queued again" in project.cli("notify", "retry").output
    assert project.json("deliveries", "--failed") == []


def test_alert_survives_sigkill_between_store_and_delivery(server: HTTPServer, project, daemons) -> None:
    hook = Hook(server)
    bodies = {"/li": POLICY}
    pages(server, bodies)
    subscription = f"""
        [[subscription]]
        name = "hook"
        url = "{hook.url}"
    """
    fast = 'interval = "1s"\njitter = "0s"\ndispatch_interval = "0.2s"\n'
    write(project, server, subscription, extra=fast + 'notify_interval = "1h"')
    project.check()
    bodies["/li"] = POLICY + AI
    first = Daemon(project.config)
    daemons.append(first)
    db = project.data / "monitor.db"

    def queued() -> bool:
        conn = sqlite3.connect(db)
        try:
            return conn.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 1
        finally:
            conn.close()

    wait_for(queued)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)
    assert hook.received == []  # stored, not yet delivered, then killed
    write(project, server, subscription, extra=fast + 'notify_interval = "0.5s"')
    second = Daemon(project.config)
    daemons.append(second)
    wait_for(lambda: len(hook.received) == 1)
    time.sleep(1.5)
    assert second.stop() == 0
    assert len(hook.received) == 1


def test_page_text_arrives_inert(server: HTTPServer, project, smtp) -> None:
    box, port = smtp
    hook = Hook(server)
    bodies = {"/li": POLICY}
    pages(server, bodies)
    write(project, server, f"""
        [[subscription]]
        name = "both"
        url = ["mailto://127.0.0.1:{port}?from=m@example.org&to=t@example.org&mode=insecure",
               "{hook.url}"]
    """)
    project.check()
    evil = ("<p>We train AI models on {{ 7*7 }} ${link} $headline posts &lt;script&gt;alert(1)"
            "&lt;/script&gt; [click](javascript:alert(1)) **now** &lt;img src=x onerror=alert(1)&gt;.</p>")
    bodies["/li"] = POLICY + evil
    project.check()
    project.cli("notify", "flush")
    html_part = parts(box.messages[0])["text/html"]
    # Evaluated, the template would read "models on 49"; a random port may contain "49" itself.
    assert "{{ 7*7 }}" in html_part and "on 49" not in html_part
    assert "${link}" in html_part and "$headline" in html_part
    assert "<script>" not in html_part and "&lt;script&gt;" in html_part
    assert "<img" not in html_part
    assert 'href="javascript' not in html_part
    # json:// is a plain-text target: the page's words arrive as words, literally (nothing
    # there renders Markdown, so nothing needs escaping), and no template was evaluated
    message = hook.received[0]["message"]
    assert "[click](javascript:alert(1))" in message and "\\[" not in message
    quoted = message.split("```")[0]  # the evidence, before the diff excerpt
    assert "**now**" not in quoted and " now" in quoted  # emphasis marks read as plain text
    assert "{{ 7*7 }}" in message and "on 49" not in message
    assert "${link}" in message and "$headline" in message


def test_daily_digest_groups_three_changes_into_one_message(server: HTTPServer, project) -> None:
    hook = Hook(server)
    bodies = {"/li": POLICY, "/acme": POLICY}
    pages(server, bodies)
    write(project, server, f"""
        [[subscription]]
        name = "morning"
        url = "{hook.url}"
        mode = "daily"
    """, paths=(("/li", "linkedin/privacy-policy", "LinkedIn"), ("/acme", "acme/privacy", "Acme")))
    project.check()
    bodies["/li"] = POLICY + AI
    bodies["/acme"] = POLICY + "<p>We keep data for a year.</p>"
    project.check()
    bodies["/li"] = POLICY + AI + "<p>We share your content with Microsoft to train its AI.</p>"
    project.check()
    assert project.json("deliveries") == []  # daily: nothing instant
    assert "1 digest deliveries queued" in project.cli("notify", "digest").output
    assert "0 digest deliveries queued" in project.cli("notify", "digest").output  # once a day
    project.cli("notify", "flush")
    (digest,) = hook.received
    assert digest["title"].endswith("3 changes")
    text = digest["message"]
    assert text.index("LinkedIn") < text.index("Acme")  # the most severe platform first
    assert text.count("/changes/") == 3


def test_subscriptions_list_masks_secrets(project, monkeypatch) -> None:
    project.write("""
        [[subscription]]
        name = "slack"
        url = ["slack://T000/B000/${SLACK_TOKEN}", "mailtos://alerts:hunter2@smtp.example.org?to=a@b.c"]
        labels = ["ai_training", "opt_out"]
    """)
    out = project.cli("subscriptions", "list").output
    assert "hunter2" not in out and "SLACK_TOKEN" not in out
    assert "slack://***/***/***" in out  # tokens sit in the host and path of Slack URLs
    (row,) = project.json("subscriptions", "list")
    assert row["url"][1] == "mailtos://***@smtp.example.org?to=***"


def test_alert_targets_are_checked_up_front_with_line_name_and_masked_url(project) -> None:
    """A typo in a target is a config error at validate/init/run, not a lost alert later."""
    project.write("""
        [[subscription]]
        name = "team"
        url = ["slak://xoxbSECRETtoken/#chan", "mailto://foo",
               "mailtos://alerts:hunter2@smtp.example.org?to=a@b.c"]

        [[subscription]]
        name = "ops"
        url = "slack://${UNSET_TOKEN_FOR_TEST}/#ops"
    """)
    for command in (("sources", "validate"), ("init",), ("run",)):
        result = project.cli(*command, ok=False)
        assert result.exit_code == 78, command
        lines = result.output.strip().splitlines()
        assert len(lines) == 2, lines  # the good e-mail and the unset-secret Slack URL pass
        assert re.fullmatch(r"error: .*sources\.toml:\d+: subscription\[team\]\.url: "
                            r"slak://\*\*\*/#chan: unknown scheme slak://.*", lines[0])
        assert re.fullmatch(r"error: .*sources\.toml:\d+: subscription\[team\]\.url: "
                            r"mailto://\*\*\*: .*could not load E-Mail URL", lines[1])
        assert "SECRET" not in result.output and "hunter2" not in result.output
        assert not (project.data / "monitor.db").exists()


def test_subscription_errors_name_line_and_field(project) -> None:
    project.write("""
        [[subscription]]
        name = "x"
        url = "not a url"
        labels = ["ai_trainin"]
        mode = "hourly"
        min_severity = "urgent"
    """)
    result = project.cli("sources", "validate", ok=False)
    assert result.exit_code == 78
    text = result.output
    for field in ("subscription[x].url", "subscription[x].labels", "subscription[x].mode",
                  "subscription[x].min_severity"):
        assert field in text


def test_a_crash_between_send_and_mark_resends_once_later(server: HTTPServer, project) -> None:
    hook = Hook(server)
    bodies = {"/li": POLICY}
    pages(server, bodies)
    write(project, server, f"""
        [[subscription]]
        name = "hook"
        url = "{hook.url}"
    """)
    project.check()
    bodies["/li"] = POLICY + AI
    project.check()
    conf = cfg.load(project.config)
    store = Store(conf.settings.database)
    now = datetime.now(UTC)
    try:
        (row,) = store.due_deliveries(now, now - notify.STALE_SENDING)
        assert store.begin_attempt(row, now, now - notify.STALE_SENDING)  # then the process died
        assert notify.flush(store, conf, clock=lambda: now + timedelta(minutes=1)).sent == 0
        assert notify.flush(store, conf, clock=lambda: now + timedelta(minutes=6)).sent == 1
        (done,) = store.deliveries()
    finally:
        store.close()
    assert (done.status, done.attempts) == ("sent", 2)
    assert len(hook.received) == 1


class JsonHook:
    """Our structured webhook's receiver: keeps each body raw (to check the signature) and its
    headers."""

    def __init__(self, server: HTTPServer, status: int = 200) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.status = status
        server.expect_request("/events", method="POST").respond_with_handler(self.handle)
        self.url = "webhook://" + server.url_for("/events").split("://", 1)[1]

    def handle(self, request: Request) -> Response:
        self.received.append((request.get_data(), dict(request.headers)))
        return Response("", status=self.status)


def test_json_webhook_posts_signed_change_resources_that_match_the_schema(
        server: HTTPServer, project, monkeypatch) -> None:
    import hashlib
    import hmac
    from pathlib import Path

    import jsonschema

    schema = json.loads((Path(notify.__file__).parent / "schemas" / "webhook.schema.json").read_text())
    hook = JsonHook(server)
    monkeypatch.setenv("HOOK_SECRET", "s3cret-for-test")
    bodies = {"/li": POLICY, "/li-faq": "<p>Questions.</p>"}
    pages(server, bodies)
    write(project, server, f"""
        [[subscription]]
        name = "program"
        url = "{hook.url}"
        secret = "${{HOOK_SECRET}}"
    """, paths=(("/li", "linkedin/privacy-policy", "LinkedIn"),
                ("/li-faq", "linkedin/ai-faq", "LinkedIn")))
    project.check()
    bodies["/li"] = POLICY + AI
    bodies["/li-faq"] = "<p>Questions.</p><p>We use your data to train generative AI models. You " \
                        "can opt out in Settings &gt; Data privacy &gt; Data for Generative AI " \
                        "Improvement.</p>"
    project.check()
    assert "sent 2" in project.cli("notify", "flush").output  # one POST per change, no merging
    payloads = []
    for raw, headers in hook.received:
        expected = "sha256=" + hmac.new(b"s3cret-for-test", raw, hashlib.sha256).hexdigest()
        assert headers["X-Policy-Monitor-Signature"] == expected
        assert headers["Content-Type"] == "application/json"
        assert headers["X-Policy-Monitor-Event"] == "change"
        assert headers["X-Policy-Monitor-Delivery"]
        payload = json.loads(raw)
        jsonschema.validate(payload, schema)
        payloads.append(payload)
    by_source = {p["source"]: p for p in payloads}
    policy = by_source["linkedin/privacy-policy"]
    assert "ai_training" in policy["labels"] and policy["severity"] in ("medium", "high")
    assert any("train generative AI" in (e["new"] or "") for e in policy["evidence"])
    assert "\\" not in json.dumps(policy["evidence"]).replace("\\u", "")  # no Markdown escapes
    assert policy["links"]["change"] == f"https://monitor.example.org/changes/{policy['id']}"
    assert policy["links"]["diff"].endswith(f"/api/changes/{policy['id']}/diff")
    faq = by_source["linkedin/ai-faq"]
    assert faq["opt_out"] and "Data for Generative AI Improvement" in json.dumps(faq["opt_out"])
    # one event, each change names the other page
    assert policy["event_id"] is not None and policy["event_id"] == faq["event_id"]
    assert [p["source"] for p in policy["event_pages"]] == ["linkedin/ai-faq"]
    # the payload carries the same fields as the API's change resource
    api_fields = {"id", "source", "platform", "detected_at", "labels", "severity", "evidence",
                  "opt_out", "event_id"}
    assert api_fields <= set(policy)
    # notify test reaches the webhook too, signed
    assert "sent" in project.cli("notify", "test", "program").output
    raw, headers = hook.received[-1]
    assert json.loads(raw)["type"] == "test"
    jsonschema.validate(json.loads(raw), schema)
    assert headers["X-Policy-Monitor-Signature"].startswith("sha256=")


def flush_when_due(project) -> None:
    """Wait for the latest retry time the deliveries carry (the backoff doubles with jitter), then flush."""
    due = [datetime.fromisoformat(r["next_attempt_at"]) for r in project.json("deliveries")
           if r["status"] == "pending" and r["next_attempt_at"]]
    if due:
        time.sleep(max(0.0, (max(due) - datetime.now(UTC)).total_seconds()) + 0.05)
    project.cli("notify", "flush")


def test_a_dead_target_is_visible_while_it_retries_and_raises_one_record(
        server: HTTPServer, project) -> None:
    hook = JsonHook(server, status=503)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    bodies = {"/li": POLICY}
    pages(server, bodies)
    write(project, server, f"""
        [[subscription]]
        name = "team"
        url = ["json://127.0.0.1:{closed}/dead", "{hook.url}"]
    """, extra='delivery_retry_base = "1s"\ntarget_failing_after = "1s"')
    project.check()
    bodies["/li"] = POLICY + AI
    project.check()
    assert "will retry 2" in project.cli("notify", "flush").output
    assert project.json("deliveries", "--failed") == []  # nothing has given up yet…
    failing = {t["target"]: t for t in project.json("deliveries", "--failing")}  # …but it shows
    assert failing[0]["url"] == f"json://127.0.0.1:{closed}/dead"
    assert failing[0]["error_class"] == "connection error"
    assert "127.0.0.1" in failing[0]["error"]  # the host, not a truncated log line
    assert failing[1]["error_class"] == "HTTP 503"
    assert all(t["alert_at"] is None for t in failing.values())
    table = project.cli("deliveries").output
    assert "connection error" in table and "HTTP 503" in table
    assert f"team#0 json://127.0.0.1:{closed}/dead" in table
    rows = project.json("deliveries")
    assert all(r["status"] == "pending" and r["next_attempt_at"] for r in rows)
    assert project.cli("status").exit_code == 0
    # still failing after target_failing_after: one record each, shown by status
    time.sleep(1.2)
    flush_when_due(project)
    flush_when_due(project)
    result = project.cli("status", ok=False)
    assert result.exit_code == 1
    assert result.output.count("alert target failing: team#0") == 1
    assert result.output.count("alert target failing: team#1") == 1
    # the webhook comes back: its record closes, the dead one stays
    hook.status = 200
    flush_when_due(project)
    assert [t["target"] for t in project.json("deliveries", "--failing")] == [0]
    assert len(hook.received) >= 3


@pytest.mark.parametrize(("platform", "title", "source", "name"), [
    ("LinkedIn", "LinkedIn Privacy Policy", "linkedin/privacy-policy", "Privacy Policy"),
    ("LinkedIn", "LinkedIn", "linkedin/privacy-policy", "Privacy policy"),
    ("LinkedIn", None, "linkedin/user-agreement", "User agreement"),
    ("Meta", "Meta's Privacy Policy", "meta/privacy", "Privacy Policy"),
    ("LinkedIn", "LinkedIn and generative AI (GAI) FAQs", "linkedin/gai-faq",
     "LinkedIn and generative AI (GAI) FAQs"),
    ("X", "Xbox terms", "x/xbox", "Xbox terms"),
])
def test_pages_are_named_without_repeating_their_platform(platform: str, title: str | None,
                                                          source: str, name: str) -> None:
    from monitor import messages

    assert messages.page_name(platform, title, source) == name


def test_alerts_name_the_page_once_and_show_links_as_text() -> None:
    from monitor import messages
    from monitor.diff import compute

    view = messages.ChangeView(
        id=7, platform="LinkedIn", title=messages.page_name("LinkedIn", "LinkedIn", "linkedin/privacy"),
        url="https://www.linkedin.com/legal/privacy-policy", kind="privacy_policy",
        labels=["opt_out"], severity="medium", summary="opt-out added",
        evidence=[{"label": "opt_out", "direction": "added", "severity": "medium", "old": None,
                   "new": "Use the [Data Processing Objection Form](https://www.linkedin.com/help/"
                          "linkedin/ask/TS-DPRO) to object."}],
        opt_out=[{"type": "form", "text": "[Objection form](https://example.org/form)"}],
        diff=compute("a\n", "b\n"))
    for fmt in ("markdown", "html"):
        message = messages.render_change(view, fmt, "https://monitor.example.org")
        assert message.title == "[LinkedIn] Privacy: opt-out added — medium"
        assert "LinkedIn changed its Privacy" in message.body
        assert "LinkedIn: " not in message.title.split("] ", 1)[1]
        assert "](https://www.linkedin.com/help" not in message.body
        assert "Data Processing Objection Form (https://www.linkedin.com/help/linkedin/ask/TS" \
               in message.body.replace("\\", "")
        assert "Objection form (https://example.org/form)" in message.body.replace("\\", "")


def test_held_alerts_say_until_when(server: HTTPServer, project, page) -> None:
    """With the default event window a new alert waits for its siblings: `deliveries` says so
    and until when, instead of a bare "pending" with no next try."""
    body = served(server, "/p", page(PLAIN_POLICY))
    project.write(f"""
        [[source]]
        name = "acme/privacy"
        platform = "Acme"
        url = "{server.url_for('/p')}"

        [[subscription]]
        name = "team"
        url = "json://127.0.0.1:9/hook"
    """)  # event_window: the default 15 minutes
    project.cli("init")
    project.check()
    body["html"] = page(PLAIN_POLICY + AI_TRAINING)
    project.check()
    [row] = project.json("deliveries")
    assert row["status"] == "pending" and row["held_until"] is not None
    held = datetime.fromisoformat(row["held_until"].replace("Z", "+00:00"))
    assert timedelta(minutes=13) < held - datetime.now(UTC) <= timedelta(minutes=15)
    table = project.cli("deliveries").output
    assert f"held until {held:%H:%M} UTC (event window)" in table
