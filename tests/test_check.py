"""End to end: a real HTTP server on 127.0.0.1, the real CLI, a real SQLite file."""

from __future__ import annotations

import random
import re
import sqlite3
import time
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor import history, sourcelist
from monitor.store import Store

POLICY = """
<h2>1. Data we collect</h2>
<p>We collect the information you give us. We also collect data about your device.</p>
<h2>2. How we use data</h2>
<p>We use your data to provide the services. We keep it as long as your account is open.</p>
<ul><li>To show you relevant jobs</li><li>To keep the site safe</li></ul>
<h2>3. Your choices</h2>
<p>You can access and delete your data at any time.</p>
"""
NEW_SENTENCE = "We may use your data to train generative AI models that power features."


def serve(server: HTTPServer, path: str, content: dict[str, Any]) -> None:
    """Serve whatever content['body'] holds at the time of each request."""

    def handler(_: Request) -> Response:
        return Response(content["body"], content_type=content.get("type", "text/html; charset=utf-8"),
                        headers=content.get("headers", {}))

    server.expect_request(path).respond_with_handler(handler)


def test_added_sentence_is_reported_exactly(server: HTTPServer, project, page) -> None:
    content = {"body": page(POLICY, noise="a1")}
    serve(server, "/privacy", content)
    project.write(f"""
        [[source]]
        name = "acme/privacy"
        platform = "Acme"
        url = "{server.url_for('/privacy')}"
        kind = "privacy_policy"
        select = "#content"
    """)
    project.cli("init")
    assert project.check()["acme/privacy"]["outcome"] == "baseline"
    assert project.check()["acme/privacy"]["outcome"] == "unchanged"

    content["body"] = page(POLICY.replace(
        "We keep it as long", f"{NEW_SENTENCE} We keep it as long"), noise="b2")
    result = project.check()["acme/privacy"]
    assert result["outcome"] == "changed"

    changes = project.json("changes")
    assert len(changes) == 1
    assert changes[0]["added_sentences"] == [NEW_SENTENCE]
    assert changes[0]["removed_sentences"] == []
    assert changes[0]["words_removed"] == 0
    assert changes[0]["words_added"] == len(NEW_SENTENCE.split())

    unified = project.cli("diff", "acme/privacy").output
    plus = [ln for ln in unified.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    minus = [ln for ln in unified.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    assert len(plus) == 1 and NEW_SENTENCE in plus[0]
    assert len(minus) == 1 and NEW_SENTENCE not in minus[0]

    inline = project.cli("diff", "acme/privacy", "--format", "inline").output
    assert [m.strip() for m in re.findall(r"<ins>(.*?)</ins>", inline)] == [NEW_SENTENCE]
    assert "<del>" not in inline

    # The line printed by a plain `check` says what happened in words.
    content["body"] = page(POLICY, noise="c3")
    assert "changed (+0 −" in project.cli("check").output


def test_noise_outside_selector_never_makes_a_change(server: HTTPServer, project, page) -> None:
    rng = random.Random(7)
    content: dict[str, Any] = {"body": ""}

    def handler(_: Request) -> Response:
        token = f"{rng.getrandbits(128):032x}"
        related = " ".join(rng.sample(["privacy", "jobs", "ai", "news", "careers", "help"], 3))
        html = page(POLICY, noise=token).replace(
            "</aside>", f" {related} {time.time_ns()}</aside>")
        return Response(html, content_type="text/html; charset=utf-8")

    server.expect_request("/noisy").respond_with_handler(handler)
    project.write(f"""
        [[source]]
        name = "acme/noisy"
        platform = "Acme"
        url = "{server.url_for('/noisy')}"
        select = "#content"
    """)
    project.cli("init")
    outcomes = [project.check()["acme/noisy"]["outcome"] for _ in range(20)]
    assert outcomes[0] == "baseline"
    assert set(outcomes[1:]) == {"unchanged"}
    assert project.json("changes") == []
    assert [v["snapshot_id"] for v in project.json("history", "acme/noisy")] == [1]
    assert content["body"] == ""  # the handler made every page itself
    assert len(server.log) == 20


def test_etag_turns_into_a_304_without_download(server: HTTPServer, project, page) -> None:
    body = page(POLICY)
    seen: list[dict[str, str]] = []

    def handler(request: Request) -> Response:
        seen.append(dict(request.headers))
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(body, content_type="text/html; charset=utf-8",
                        headers={"ETag": '"v1"', "Last-Modified": "Wed, 18 Sep 2024 10:00:00 GMT"})

    server.expect_request("/etag").respond_with_handler(handler)
    project.write(f"""
        [[source]]
        name = "acme/etag"
        platform = "Acme"
        url = "{server.url_for('/etag')}"
        select = "#content"
    """)
    project.cli("init")
    assert project.check()["acme/etag"]["outcome"] == "baseline"
    assert project.check()["acme/etag"]["outcome"] == "unchanged"
    assert "If-None-Match" not in seen[0]
    assert seen[1]["If-None-Match"] == '"v1"'
    assert seen[1]["If-Modified-Since"] == "Wed, 18 Sep 2024 10:00:00 GMT"
    assert "policy-monitor" in seen[0]["User-Agent"]

    conn = sqlite3.connect(project.data / "monitor.db")
    rows = conn.execute("SELECT outcome, http_status, snapshot_id FROM checks ORDER BY id").fetchall()
    assert rows == [("baseline", 200, 1), ("unchanged", 304, 1)]
    assert conn.execute("SELECT count(*) FROM snapshots").fetchone() == (1,)


FAILURES = {
    "/404": ("HTTP 404", "permanent"),
    "/500": ("HTTP 500", "transient"),
    "/403": ("bot protection", "blocked"),
    "/slow": ("timed out", "transient"),
    "/loop-a": ("redirect loop", "permanent"),
    "/huge": ("body too large", "permanent"),
    "/binary": ("binary body", "permanent"),
    "/pdf": ("unsupported content type application/pdf", "permanent"),
    "/to-file": ("refused file URL", "blocked"),
    "/empty-selection": ("matched nothing", "permanent"),
}


def _install_faults(server: HTTPServer, page) -> dict[str, bool]:
    """Each path serves a good page until `broken[path]` is set, then fails its own way."""
    broken = dict.fromkeys(FAILURES, False)
    good = page(POLICY)

    def fault(path: str, make):
        def handler(_: Request) -> Response:
            if not broken[path]:
                return Response(good, content_type="text/html; charset=utf-8")
            return make()
        return handler

    def slow() -> Response:
        time.sleep(2.5)
        return Response(good, content_type="text/html")

    def huge() -> Response:
        def stream():
            chunk = b"<p>" + b"x" * 65_536 + b"</p>"
            for _ in range(170):  # ~11 MB, streamed without Content-Length
                yield chunk
        return Response(stream(), content_type="text/html")

    makers = {
        "/404": lambda: Response("gone", status=404),
        "/500": lambda: Response("oops", status=500),
        "/403": lambda: Response("Access denied by bot manager", status=403),
        "/slow": slow,
        "/loop-a": lambda: Response(status=302, headers={"Location": "/loop-b"}),
        "/huge": huge,
        "/binary": lambda: Response(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8,
                                    content_type="text/html"),
        "/pdf": lambda: Response(b"%PDF-1.7 ...", content_type="application/pdf"),
        "/to-file": lambda: Response(status=302, headers={"Location": "file:///etc/passwd"}),
        "/empty-selection": lambda: Response("<html><body><p>Under maintenance</p></body></html>",
                                             content_type="text/html"),
    }
    for path, make in makers.items():
        server.expect_request(path).respond_with_handler(fault(path, make))
    server.expect_request("/loop-b").respond_with_response(
        Response(status=302, headers={"Location": "/loop-a"}))
    return broken


def test_failures_are_recorded_and_history_survives(server: HTTPServer, project, page) -> None:
    broken = _install_faults(server, page)
    project.write("".join(f"""
        [[source]]
        name = "fault{path.replace('/', '/')}"
        platform = "Faults"
        url = "{server.url_for(path)}"
        select = "#content"
    """ for path in FAILURES), settings='max_bytes = 10_000_000')
    project.cli("init")
    first = project.check()
    assert {r["outcome"] for r in first.values()} == {"baseline"}
    texts = {name: project.cli("show", str(r["snapshot_id"])).output for name, r in first.items()}

    for path in broken:
        broken[path] = True
    results = project.check()
    for path, (reason, kind) in FAILURES.items():
        result = results[f"fault{path}"]
        assert result["outcome"] == "failed", path
        assert reason in result["detail"], (path, result["detail"])
        assert result["failure_kind"] == kind, path

    # Recorded, and read back through a brand-new connection: failed checks, intact history.
    fresh = Store(project.db_url)
    try:
        summaries = {s.name: s for s in sourcelist.sources(fresh)}
        for name, r in first.items():
            assert summaries[name].last_outcome == "failed"
            assert summaries[name].consecutive_failures == 1
            assert summaries[name].versions == 1
            _snap, text = history.snapshot(fresh, r["snapshot_id"])
            assert text == texts[name]
        assert fresh.integrity_ok()
    finally:
        fresh.close()
    conn = sqlite3.connect(project.data / "monitor.db")
    errors = dict(conn.execute(
        "SELECT s.name, c.error FROM checks c JOIN sources s ON s.id = c.source_id "
        "WHERE c.outcome = 'failed'").fetchall())
    assert set(errors) == {f"fault{p}" for p in FAILURES}
    assert conn.execute("SELECT count(*) FROM changes").fetchone() == (0,)

    # Fixed again: back to unchanged against the intact baseline, failure counter reset.
    for path in broken:
        broken[path] = False
    assert {r["outcome"] for r in project.check().values()} == {"unchanged"}
    assert {s["consecutive_failures"] for s in project.json("sources", "list")} == {0}


def test_private_addresses_are_refused_unless_allowed(server: HTTPServer, project, page) -> None:
    server.expect_request("/p").respond_with_data(page(POLICY), content_type="text/html")
    source = f"""
        [[source]]
        name = "internal/page"
        platform = "Internal"
        url = "{server.url_for('/p')}"
    """
    project.write(source, settings="")
    project.config.write_text(project.config.read_text().replace(
        "allow_private_addresses = true", "allow_private_addresses = false"))
    project.cli("init")
    result = project.check()["internal/page"]
    assert result["outcome"] == "failed"
    assert result["failure_kind"] == "blocked"
    assert "non-public address 127.0.0.1" in result["detail"]
    assert len(server.log) == 0  # refused before any request was made


def test_wrong_charset_label_does_not_garble_or_flap(server: HTTPServer, project) -> None:
    text = "Données personnelles — we process “your” data for 5 € or less."
    html = f"<html><body><main><p>{text}</p></main></body></html>".encode()
    content = {"body": html, "type": "text/html; charset=iso-8859-1"}
    serve(server, "/fr", content)
    project.write(f"""
        [[source]]
        name = "acme/fr"
        platform = "Acme"
        url = "{server.url_for('/fr')}"
        select = "main"
    """)
    project.cli("init")
    snap = project.check()["acme/fr"]["snapshot_id"]
    assert project.cli("show", str(snap)).output.strip() == text
    # The same page with a correct label, or with a bogus one, is not a change.
    content["type"] = "text/html; charset=utf-8"
    assert project.check()["acme/fr"]["outcome"] == "unchanged"
    content["type"] = "text/html; charset=no-such-charset"
    assert project.check()["acme/fr"]["outcome"] == "unchanged"


def test_removed_source_is_disabled_and_keeps_history(server: HTTPServer, project, page) -> None:
    server.expect_request("/a").respond_with_data(page(POLICY), content_type="text/html")
    server.expect_request("/b").respond_with_data(page(POLICY), content_type="text/html")
    both = f"""
        [[source]]
        name = "acme/a"
        platform = "Acme"
        url = "{server.url_for('/a')}"

        [[source]]
        name = "acme/b"
        platform = "Acme"
        url = "{server.url_for('/b')}"
    """
    project.write(both)
    project.cli("init")
    project.check()
    project.write(both.split("[[source]]")[0] + "[[source]]" + both.split("[[source]]")[1])
    assert set(project.check()) == {"acme/a"}
    rows = {r["name"]: r for r in project.json("sources", "list")}
    assert rows["acme/b"]["enabled"] is False
    assert rows["acme/b"]["in_config"] is False
    assert rows["acme/b"]["versions"] == 1
    assert len(project.json("history", "acme/b")) == 1


SELECTED = """
    [[source]]
    name = "acme/p"
    platform = "Acme"
    url = "{url}"
    select = "#content"
    {extra}
"""


def test_reextract_after_selector_change_is_not_a_page_change(
    server: HTTPServer, project, page
) -> None:
    content = {"body": page(POLICY, noise="one")}
    serve(server, "/p", content)
    source = SELECTED
    project.write(source.format(url=server.url_for("/p"), extra=""))
    project.cli("init")
    project.check()
    content["body"] = page(POLICY.replace("at any time.", f"at any time. {NEW_SENTENCE}"))
    project.check()
    assert len(project.json("changes")) == 1

    # New selectors drop the list; history is rebuilt from the stored raw pages.
    project.write(source.format(url=server.url_for("/p"), extra='remove = ["ul"]'))
    out = project.cli("reextract", "acme/p").output
    assert "re-extracted 2 versions" in out
    versions = project.json("history", "acme/p")
    assert len(versions) == 2
    snap_text = project.cli("show", str(versions[-1]["snapshot_id"])).output
    assert "relevant jobs" not in snap_text and NEW_SENTENCE in snap_text
    # The rebuilt change is history, not news; the next check sees no change at all.
    (rebuilt,) = project.json("changes")
    assert rebuilt["reextracted"]
    assert project.check()["acme/p"]["outcome"] == "unchanged"
    assert project.json("changes") == [rebuilt]


def test_selector_change_without_reextract_is_read_again_not_reported(
    server: HTTPServer, project, page
) -> None:
    """Forgetting `reextract` costs nothing: the first check under new selectors re-reads the
    stored history itself, and a page that did not change is unchanged."""
    content = {"body": page(POLICY)}
    serve(server, "/p", content)
    source = SELECTED
    project.write(source.format(url=server.url_for("/p"), extra=""))
    project.cli("init")
    project.check()
    project.write(source.format(url=server.url_for("/p"), extra='remove = ["ul"]'))
    assert project.check()["acme/p"]["outcome"] == "unchanged"
    assert project.json("changes") == []
    text = project.cli("show", str(project.json("history", "acme/p")[-1]["snapshot_id"])).output
    assert "relevant jobs" not in text


def test_plain_text_and_markdown_pass_through(server: HTTPServer, project) -> None:
    server.expect_request("/terms.md").respond_with_data(
        "# Terms\r\n\r\n\r\nUse   the service  nicely.\r\n- one\r\n", content_type="text/markdown")
    project.write(f"""
        [[source]]
        name = "acme/terms"
        platform = "Acme"
        url = "{server.url_for('/terms.md')}"
        kind = "terms"
    """)
    project.cli("init")
    snap = project.check()["acme/terms"]["snapshot_id"]
    assert project.cli("show", str(snap)).output == "# Terms\n\nUse the service nicely.\n- one\n"


@pytest.mark.parametrize("fmt", ["unified", "inline", "side-by-side", "json"])
def test_diff_formats_escape_page_text(server: HTTPServer, project, page, fmt: str) -> None:
    content = {"body": page("<p>Hello.</p>")}
    serve(server, "/x", content)
    project.write(f"""
        [[source]]
        name = "acme/x"
        platform = "Acme"
        url = "{server.url_for('/x')}"
        select = "#content"
    """)
    project.cli("init")
    project.check()
    content["body"] = page("<p>Hello.</p><p>&lt;script&gt;alert(1)&lt;/script&gt; is text here.</p>")
    project.check()
    out = project.cli("diff", "acme/x", "--format", fmt).output
    if fmt in ("inline", "side-by-side"):
        assert "<script>" not in out
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    else:
        assert "<script>alert(1)</script> is text here." in out


def test_a_collapsed_page_is_held_back_until_it_repeats(server: HTTPServer, project, page) -> None:
    """A captcha or half-loaded page must not alert 'everything was removed' (reliability F10)."""
    long_policy = POLICY * 8
    content = {"body": page(long_policy)}
    serve(server, "/p", content)
    project.write(f"""
        [[source]]
        name = "acme/p"
        platform = "Acme"
        url = "{server.url_for('/p')}"
        select = "#content"
    """)
    project.cli("init")
    project.check()
    content["body"] = page("<p>Please verify you are human.</p>")
    first = project.check()["acme/p"]
    assert first["outcome"] == "failed"
    assert first["failure_kind"] == "anomalous"
    assert "block page or a partial load" in first["detail"]
    content["body"] = page(long_policy)  # the next fetch is fine again: nothing happened
    assert project.check()["acme/p"]["outcome"] == "unchanged"
    assert project.json("changes") == []
    # A page that really shrank (the same short text twice in a row) is accepted.
    content["body"] = page("<p>This policy has moved.</p>")
    assert project.check()["acme/p"]["failure_kind"] == "anomalous"
    assert project.check()["acme/p"]["outcome"] == "changed"
    assert len(project.json("changes")) == 1


def test_a_page_flipping_back_to_an_older_copy_is_recorded_not_alerted(
        server: HTTPServer, project, page) -> None:
    """A cache or page variant serving last year's policy is not "AI training added"."""
    old_policy = "<p>Effective January 1, 2024</p>" + "".join(
        f"<p>Clause {i}: we may use your posts to train generative AI models for purpose {i}.</p>"
        for i in range(25))
    new_policy = "<p>Effective March 1, 2025</p>" + "".join(
        f"<p>Article {i}: we process account data only to provide feature {i}.</p>" for i in range(25))
    content = {"body": page(old_policy)}
    serve(server, "/p", content)
    project.write(f"""
        [[source]]
        name = "acme/privacy"
        platform = "Acme"
        url = "{server.url_for('/p')}"
        select = "main"
    """)
    project.cli("init")
    project.check()
    content["body"] = page(new_policy)
    project.check()
    content["body"] = page(old_policy.replace("Clause 3:", "Clause three:"))  # not an exact revert
    assert project.check()["acme/privacy"]["outcome"] == "changed"
    latest = project.json("changes")[0]
    assert latest["severity"] == "low"
    explained = project.cli("explain", str(latest["id"])).output
    assert "older copy" in explained and "Damped to low" in explained


def test_check_sums_up_and_folds_failures_that_share_a_cause(server: HTTPServer, project,
                                                             page) -> None:
    """Offline, a hundred sources fail alike: one line says so, not a hundred."""
    import socket

    content = {"body": page(POLICY)}
    serve(server, "/policy", content)
    server.expect_request("/gone").respond_with_data("no", status=404)
    closed = []
    for _ in range(4):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed.append(probe.getsockname()[1])
    entries = [("acme/policy", server.url_for("/policy")), ("acme/gone", server.url_for("/gone"))]
    entries += [(f"down/p{i}", f"http://127.0.0.1:{port}/p") for i, port in enumerate(closed)]
    project.write("".join(f'[[source]]\nname = "{n}"\nplatform = "X"\nurl = "{u}"\n\n'
                          for n, u in entries))
    project.cli("init")
    out = project.cli("check").output.splitlines()
    assert "acme/policy: first snapshot" in out
    assert "acme/gone: failed: HTTP 404 NOT FOUND" in out
    folded = [line for line in out if "sources failed the same way" in line]
    assert len(folded) == 1
    assert folded[0].startswith("4 sources failed the same way (transient): connection failed")
    assert "down/p0, down/p1, down/p2, …" in folded[0]
    assert not any(line.startswith("down/") for line in out)  # no wall of identical lines
    assert re.fullmatch(r"checked 6 sources in \d+\.\ds: 0 unchanged, 0 changed, "
                        r"1 first snapshot, 5 failed \(1 permanent, 4 transient\)", out[-1])
    # -v lists every source, unchanged ones included
    content["body"] = page(POLICY + f"<p>{NEW_SENTENCE}</p>")
    verbose = project.cli("check", "-v").output.splitlines()
    assert sum(line.startswith("down/") and "failed: connection failed" in line
               for line in verbose) == 4
    assert any(line.startswith("acme/policy: changed (+") for line in verbose)
    assert verbose[-1].endswith("0 unchanged, 1 changed, 5 failed (1 permanent, 4 transient)")
    quiet = project.cli("check", "acme/policy").output.splitlines()
    assert len(quiet) == 1 and "1 unchanged, 0 changed, 0 failed" in quiet[0]
    assert project.cli("check", "--fail-on-error", ok=False).exit_code == 1
