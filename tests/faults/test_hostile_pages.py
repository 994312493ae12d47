"""What a watched page can throw at us: terminal escapes, chat mentions, a charset header
that lies, a whole-page rewrite of thousands of lines, and validators the 304 path must keep."""

from __future__ import annotations

import sqlite3

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.test_notify import Hook


def serve(server: HTTPServer, state: dict[str, object]) -> None:
    def handler(request: Request) -> Response:
        etag = state.get("etag")
        if etag and request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": str(etag)})
        headers = {"ETag": str(etag)} if etag else {}
        return Response(state["body"], content_type=str(state.get("type", "text/html; charset=utf-8")),
                        headers=headers)

    server.expect_request("/p").respond_with_handler(handler)


def config(server: HTTPServer, extra: str = "") -> str:
    return f"""
        [[source]]
        name = "acme/privacy"
        platform = "Acme"
        url = "{server.url_for('/p')}"
        select = "main"
    """ + extra


def page(text: str) -> str:
    return f"<html><body><main><p>We use your data to run the service.</p>{text}</main></body></html>"


ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZWNobyBwd25lZA==\x07"


def test_terminal_escapes_in_page_text_never_reach_the_terminal(server: HTTPServer, project) -> None:
    state: dict[str, object] = {"body": page("")}
    serve(server, state)
    project.write(config(server))
    project.cli("init")
    project.check()
    state["body"] = page(f"<p>We may train AI models on your posts.{ESCAPES} You can opt out.</p>")
    change = project.check()["acme/privacy"]
    assert change["outcome"] == "changed"
    (row,) = project.json("changes")
    outputs = [project.cli("show", str(change["snapshot_id"])).output,
               project.cli("diff", "acme/privacy", "--color", "always").output,
               project.cli("diff", "acme/privacy", "--format", "inline").output,
               project.cli("explain", str(row["id"])).output,
               project.cli("changes").output,
               project.cli("search", "train").output]
    for out in outputs:
        assert "\x07" not in out and "]52;" not in out.replace("\ufffd]52;", "")
        assert all(seq not in out for seq in ("\x1b]", "\x1b[2J"))
    assert "train AI models" in outputs[0]  # the text is all there, only inert


def test_a_304_leaves_every_stored_column_as_it_was(server: HTTPServer, project) -> None:
    state: dict[str, object] = {"body": page(""), "etag": '"v1"'}
    serve(server, state)
    project.write(config(server))
    project.cli("init")
    project.check()
    db = project.data / "monitor.db"

    def rows() -> tuple[list[tuple], list[tuple]]:
        conn = sqlite3.connect(db)
        try:
            snaps = conn.execute("SELECT id, sha256, text_blob, raw_blob, etag, last_modified, "
                                 "content_type, charset, first_seen_at FROM snapshots").fetchall()
            source = conn.execute("SELECT etag, last_modified, fingerprint, current_snapshot_id "
                                  "FROM sources").fetchall()
            return snaps, source
        finally:
            conn.close()

    before = rows()
    assert before[1][0][0] == '"v1"' and before[0][0][4] == '"v1"'
    for _ in range(3):
        assert project.check()["acme/privacy"]["outcome"] == "unchanged"
    assert rows() == before  # the ETag the next conditional GET needs is still there
    assert server.log[-1][1].status_code == 304


def test_chat_mentions_in_page_text_notify_nobody(server: HTTPServer, project) -> None:
    state: dict[str, object] = {"body": page("")}
    serve(server, state)
    hook = Hook(server)
    project.write(config(server, f"""
        [[subscription]]
        name = "chat"
        url = "{hook.url}"
    """), settings='event_window = "0s"')
    project.cli("init")
    project.check()
    state["body"] = page("<p>@everyone @here <!channel> <@U024BE7LH> We may train AI models "
                         "on your posts.</p>")
    project.check()
    project.cli("notify", "flush")
    message = hook.received[-1]["message"]
    assert "train AI models" in message
    for mention in ("@everyone", "@here", "<!channel>", "<@U024BE7LH>"):
        assert mention not in message, mention
    assert "@\u2060everyone" in message  # still readable, no longer the mention syntax


def test_a_lying_charset_header_is_no_change(server: HTTPServer, project) -> None:
    state: dict[str, object] = {"body": page("<p>Only ASCII text here.</p>"),
                                "type": "text/html; charset=utf-8"}
    serve(server, state)
    project.write(config(server))
    project.cli("init")
    project.check()
    for lie in ("utf-16", "utf-32", "cp500", "shift_jis", "utf-16"):
        state["type"] = f"text/html; charset={lie}"
        result = project.check()["acme/privacy"]
        assert result["outcome"] == "unchanged", (lie, result)
    assert project.json("changes") == []
    (version,) = project.json("history", "acme/privacy")
    assert "Only ASCII text here." in project.cli("show", str(version["snapshot_id"])).output


def test_a_rewrite_of_thousands_of_lines_is_recorded_with_a_bounded_diff(
        server: HTTPServer, project) -> None:
    lines = 7000
    state: dict[str, object] = {
        "body": page("".join(f"<p>Section {i}: we process data about topic {i}.</p>"
                             for i in range(lines)))}
    serve(server, state)
    project.write(config(server), settings='total_timeout = "30s"')
    project.cli("init")
    project.check()
    rewritten = [f"<p>Clause {i}: we may handle information on subject {i}.</p>"
                 for i in range(lines)]
    # One sentence that matters, near the end of 14,000 changed sentences: too many to read
    # one by one, so only the ones a rule matches are, and this one must be among them.
    rewritten[6900] = "<p>We use your posts to train generative AI models.</p>"
    state["body"] = page("".join(rewritten))
    assert project.check()["acme/privacy"]["outcome"] == "changed"
    (row,) = project.json("changes")
    detail = project.json("explain", str(row["id"]))
    assert detail["diff_simplified"] is True  # recorded as a diff that hit its budget
    assert detail["stats"]["lines_added"] >= lines
    assert "ai_training" in detail["labels"]
    assert any("train generative AI" in (e["new"] or "") for e in detail["evidence"])
    assert detail["sentences_skimmed"] > 10_000  # recorded as a classification that skimmed
    assert detail["summary"].startswith("whole-page rewrite")
    out = project.cli("explain", str(row["id"])).output
    assert "whole blocks" in out
    assert "counted, not read one by one" in out
