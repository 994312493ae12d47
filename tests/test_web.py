"""The web UI in a real browser (Debian's chromium via Playwright) against the real server."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.conftest import Project, free_port, serving

OUTPUT = Path(__file__).resolve().parents[1] / "test-output"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ADDED = "We may use your posts to train generative AI models that power our features."
EVIL = ('<p>Read this &lt;script&gt;alert(1)&lt;/script&gt; and &lt;img src=x onerror=alert(2)&gt;. '
        'We train AI models on <a href="javascript:alert(3)">your posts</a> and '
        '<a href="https://example.org/opt?x=1">opt out here</a>.</p>'
        '<script>alert(4)</script><img src="x" onerror="alert(5)">')



@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[str]:
    """A database filled through the real pipeline, served by the real `serve` command."""
    root = tmp_path_factory.mktemp("web")
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    # Long unbroken text, a wide table and a long link: what pushes a page sideways.
    wide = ("<p>Opt-out link: https://www.example.org/" + "settings/data-privacy/" * 20 + "</p>"
            "<table><tr>" + "".join(f"<th>Column {i} heading</th>" for i in range(12))
            + "</tr><tr>" + "".join(f"<td>value{i}" + "x" * 60 + "</td>" for i in range(12))
            + "</tr></table>")
    bodies = {"/privacy": f"<h2>Data</h2><p>We use your data to run the service.</p>{wide}",
              "/terms": "<h2>Terms</h2><p>Be nice.</p>",
              "/down": ""}
    down_reason = {"status": 200}

    def handler(request: Request) -> Response:
        if request.path == "/down":
            return Response("<p>Service unavailable</p>", status=down_reason["status"])
        return Response(f"<html><body><main>{bodies[request.path]}</main></body></html>",
                        content_type="text/html; charset=utf-8")

    for path in bodies:
        server.expect_request(path).respond_with_handler(handler)
    project = Project(root)
    project.write(f"""
        [[source]]
        name = "linkedin/privacy-policy"
        title = "Privacy Policy"
        platform = "LinkedIn"
        kind = "privacy_policy"
        url = "{server.url_for('/privacy')}"
        select = "main"

        [[source]]
        name = "evil/terms"
        title = "Terms"
        platform = "Evil"
        url = "{server.url_for('/terms')}"
        select = "main"

        [[source]]
        name = "acme/down"
        title = "Acme Terms"
        platform = "Acme"
        url = "{server.url_for('/down')}"
    """)
    project.cli("init")
    down_reason["status"] = 503
    project.cli("check")
    bodies["/privacy"] += f"<p>{ADDED} You can opt out in Settings &gt; Data privacy.</p>"
    bodies["/terms"] += EVIL
    project.cli("check")
    server.stop()
    with serving(project.config) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is missing; `make test` installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def test_dashboard_source_change_and_feed_by_clicking(site: str, browser) -> None:
    OUTPUT.mkdir(exist_ok=True)
    page = browser.new_page()
    page.goto(site + "/")
    assert "Watched pages" in page.text_content("h1")
    assert page.locator("svg[role=img] circle").count() >= 1  # the timeline chart
    page.screenshot(path=str(OUTPUT / "dashboard.png"), full_page=True)
    page.click("details.platform table >> text=Privacy Policy")
    assert page.url.endswith("/sources/linkedin/privacy-policy")
    page.click("a[href^='/changes/']")
    assert "/changes/" in page.url
    inserted = page.locator("ins")
    assert ADDED in " ".join(inserted.all_text_contents())
    assert page.locator("ins").first.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    assert page.locator("mark").count() >= 1  # matched phrases highlighted in the evidence
    assert "Settings > Data privacy" in page.text_content("main")
    page.screenshot(path=str(OUTPUT / "change.png"), full_page=True)
    page.click("text=side by side")
    assert page.locator("table.diff-side td.add").count() >= 1
    with page.expect_response(lambda r: r.url.endswith("/feeds/changes.atom")) as info:
        page.click("header >> text=Atom feed")
    assert info.value.headers["content-type"].startswith("application/atom+xml")
    page.close()


def test_failing_sources_show_their_reason_and_since_when(site: str, browser) -> None:
    page = browser.new_page()
    page.goto(site + "/")
    failing = page.locator("ul.failures li", has_text="Acme Terms")
    assert "failures in a row, transient, since" in failing.inner_text()
    assert "HTTP 503" in failing.inner_text()
    page.goto(site + "/sources/acme/down")
    box = page.locator(".failing-box").inner_text()
    assert box.startswith("Failing since") and "(transient)" in box and "HTTP 503" in box
    page.close()


def test_pages_fit_1280_pixels_and_versions_are_formatted(site: str, browser) -> None:
    """No horizontal scrollbar at 1280 px on any kind of page, even with long URLs, wide
    tables and long diff lines; a version reads as formatted text, not Markdown source."""
    changes = json.loads(urllib.request.urlopen(site + "/api/changes?source=linkedin/privacy-policy").read())  # noqa: S310
    change = changes[0]
    paths = ["/", "/?range=30d", "/?range=all", "/sources/linkedin/privacy-policy",
             f"/changes/{change['id']}", f"/changes/{change['id']}?view=side",
             f"/versions/{change['to_snapshot_id']}", f"/events/{change['event_id']}",
             f"/compare/linkedin/privacy-policy?from={change['from_snapshot_id']}"
             f"&to={change['to_snapshot_id']}", "/search?q=data", "/sources/acme/down"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    for path in paths:
        page.goto(site + path)
        width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width[0] <= width[1], (path, width)
    page.goto(site + f"/versions/{change['to_snapshot_id']}")
    assert page.locator("article.policy h2", has_text="Data").count() == 1  # a heading…
    assert page.locator("article.policy table th").count() == 12  # …a real table…
    assert "##" not in page.locator("article.policy").inner_text()  # …no Markdown marks
    assert page.locator("pre").count() == 0
    page.goto(site + "/")
    marks = page.locator("svg.timeline a circle")
    assert marks.count() >= 1
    assert "Privacy Policy" in marks.first.locator("title").text_content()
    page.close()


def test_hostile_page_text_executes_nothing(site: str, browser) -> None:
    page = browser.new_page()
    dialogs: list[str] = []
    console: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: console.append(m.text))
    changes = json.loads(urllib.request.urlopen(site + "/api/changes?source=evil/terms").read())  # noqa: S310
    (change,) = changes
    for path in ("/", "/sources/evil/terms", f"/changes/{change['id']}",
                 f"/changes/{change['id']}?view=side", f"/versions/{change['to_snapshot_id']}",
                 "/search?q=alert"):
        page.goto(site + path)
        page.wait_for_timeout(200)
        assert page.locator("script").count() == 0, path
        assert page.locator("[onerror]").count() == 0, path
        assert page.locator("a[href^='javascript:']").count() == 0, path
    assert dialogs == []
    assert not [m for m in console if "alert" in m]
    # The hostile text is there, as text.
    page.goto(site + f"/changes/{change['id']}")
    assert "<script>alert(1)</script>" in page.text_content("main")
    evidence = " ".join(page.locator(".evidence").all_text_contents())
    assert "opt out here (https://example.org/opt?x=1)" in evidence  # a link reads as text…
    assert "](" not in evidence  # …never as Markdown source
    # On the version page the safe link is a link, the javascript: one is not
    page.goto(site + f"/versions/{change['to_snapshot_id']}")
    assert page.locator("article.policy a[href='https://example.org/opt?x=1']").count() == 1
    assert page.locator("article.policy a[href='https://example.org/opt?x=1']").get_attribute(
        "rel") == "nofollow noopener noreferrer"
    # The raw page is a text/plain download, never rendered.
    with urllib.request.urlopen(site + f"/versions/{change['to_snapshot_id']}/raw") as r:  # noqa: S310
        assert r.headers["Content-Type"].startswith("text/plain")
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Content-Disposition"].startswith("attachment")
    page.close()


def test_every_html_response_has_a_strict_csp(site: str) -> None:
    for path in ("/", "/sources/linkedin/privacy-policy", "/search?q=data", "/nope/404"):
        try:
            r = urllib.request.urlopen(site + path)  # noqa: S310
        except urllib.error.HTTPError as err:
            r = err
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp


def test_feeds_parse(site: str) -> None:
    for path in ("/feeds/changes.atom", "/feeds/label/ai_training.atom",
                 "/feeds/platform/LinkedIn.atom"):
        parsed = feedparser.parse(urllib.request.urlopen(site + path).read())  # noqa: S310
        assert parsed.bozo == 0, (path, parsed.get("bozo_exception"))
        assert parsed.version == "atom10"
    feed = feedparser.parse(urllib.request.urlopen(site + "/feeds/label/ai_training.atom").read())  # noqa: S310
    assert len(feed.entries) >= 1
    assert all("ai_training" in [t.term for t in e.tags] for e in feed.entries)
    assert "/changes/" in feed.entries[0].link
    # the charset is said, so a browser shows "—" and "’" as they are
    r = urllib.request.urlopen(site + "/feeds/changes.atom")  # noqa: S310
    assert r.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    # the summary is the evidence, in plain words, not the first lines of a Markdown diff
    [summary] = [e.summary for e in feed.entries if "linkedin/privacy-policy" in e.title]
    assert f"Added: “{ADDED}" in summary or ADDED in summary, summary
    assert "Way out:" in summary and "Settings" in summary
    assert "](" not in summary and "| |" not in summary
    # feed readers and link checkers ask HEAD first
    head = urllib.request.urlopen(urllib.request.Request(  # noqa: S310
        site + "/feeds/label/ai_training.atom", method="HEAD"))
    assert head.status == 200 and head.read() == b""
    assert head.headers["Content-Type"].startswith("application/atom+xml")


def test_search_finds_when_a_sentence_first_appeared(site: str) -> None:
    html = urllib.request.urlopen(site + "/search?q=generative+features").read().decode()  # noqa: S310
    assert "linkedin/privacy-policy" in html
    assert "evil/terms" not in html


def test_openapi_is_valid_and_the_api_honours_it(site: str) -> None:
    spec = json.loads(urllib.request.urlopen(site + "/openapi.json").read())  # noqa: S310
    assert {"/api/sources", "/api/changes", "/api/changes/{change_id}"} <= set(spec["paths"])
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "run", site + "/openapi.json",
         "--checks", "all", "--max-examples", "15", "--request-timeout", "10",
         "--suppress-health-check", "all", "--phases", "examples,coverage,fuzzing",
         # A fixed seed keeps CI repeatable; change it locally to explore new inputs.
         "--seed", "20261130"],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_serving_beyond_loopback_needs_a_token(project) -> None:
    project.write("")
    project.cli("init")
    result = project.cli("serve", "--host", "0.0.0.0", ok=False)
    assert result.exit_code == 1
    assert "refusing to serve on 0.0.0.0 without web_token" in result.output


def test_serve_prints_its_url_and_a_busy_port_is_one_clear_line(project) -> None:
    project.write("")
    project.cli("init")
    port = free_port()
    args = [sys.executable, "-m", "monitor", "--config", str(project.config), "serve",
            "--port", str(port)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == f"serving the web UI at http://127.0.0.1:{port}/ (Ctrl-C to stop)"
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).status == 200
        busy = subprocess.run(args, capture_output=True, text=True, timeout=30)
        assert busy.returncode == 1
        assert busy.stdout == ""
        assert busy.stderr.strip() == (f"error: port {port} on 127.0.0.1 is in use (another "
                                       "`serve`?); pick another with --port")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_token_protects_every_route(project) -> None:
    import base64

    project.write("", settings='web_token = "s3cret"')
    project.cli("init")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(project.config),
                             "serve", "--port", str(port)], stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"

    def status(path: str, auth: str | None = None) -> int:
        req = urllib.request.Request(base + path, headers={"Authorization": auth} if auth else {})  # noqa: S310
        try:
            return urllib.request.urlopen(req, timeout=5).status  # noqa: S310
        except urllib.error.HTTPError as err:
            return err.code

    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        wrong = "Basic " + base64.b64encode(b"any:wrong").decode()
        right = "Basic " + base64.b64encode(b"any:s3cret").decode()
        for path in ("/", "/api/sources", "/feeds/changes.atom", "/openapi.json",
                     "/static/style.css", "/search?q=x"):
            assert status(path) == 401, path
            assert status(path, wrong) == 401, path
        assert status("/", right) == 200
        assert status("/api/sources", "Bearer s3cret") == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_ui_has_no_mutating_routes(project) -> None:
    from fastapi.routing import APIRoute

    from monitor import config as cfg
    from monitor.web.app import create_app

    project.write("")
    project.cli("init")
    app = create_app(cfg.load(project.config))
    methods = {m for r in app.routes if isinstance(r, APIRoute) for m in r.methods}
    assert methods <= {"GET", "HEAD"}


def test_every_page_is_reachable_from_the_dashboard(site: str) -> None:
    """Follow same-site links breadth-first from / and check every kind of page is reached."""
    import re
    from collections import deque

    seen: set[str] = set()
    queue = deque(["/"])
    while queue and len(seen) < 300:
        path = queue.popleft()
        if path in seen:
            continue
        seen.add(path)
        try:
            with urllib.request.urlopen(site + path) as r:  # noqa: S310
                if not r.headers["Content-Type"].startswith("text/html"):
                    continue
                body = r.read().decode()
        except urllib.error.HTTPError as err:
            raise AssertionError(f"{path} answered {err.code}") from None
        for href in re.findall(r'href="(/[^"#]*)"', body):
            href = href.replace("&amp;", "&")
            if href not in seen:
                queue.append(href)
    kinds = {p.strip("/").split("/")[0].split("?")[0] or "/" for p in seen}
    assert {"/", "sources", "changes", "versions", "events", "feeds", "static",
            "openapi.json"} <= kinds, kinds


@pytest.fixture(scope="module")
def linkedin_site(tmp_path_factory) -> Iterator[str]:
    """The LinkedIn histories of ../shared/corpus imported and served: real years of history."""
    from tests.conftest import CORPUS

    if not (CORPUS / "MANIFEST.json").exists():
        pytest.skip("../shared/corpus is not present")
    root = tmp_path_factory.mktemp("linkedin")
    shutil.copytree(CORPUS / "linkedin", root / "histories" / "linkedin",
                    ignore=lambda folder, names: [n for n in names if "." in n
                                                  and not n.endswith(".md")])
    project = Project(root)
    project.write("")
    project.cli("init")
    project.cli("import", str(root / "histories"), "--ext", "md")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(project.config),
                             "serve", "--port", str(port)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # "serving the web UI at …": it is listening
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


def test_real_history_screenshots(linkedin_site: str, browser) -> None:
    """Dashboard, source and change pages over the imported LinkedIn history, at 1280 px:
    a timeline with a mark per change, high-severity headlines first, nothing wider than the
    window. Screenshots go to test-output/."""
    OUTPUT.mkdir(exist_ok=True)
    high = json.loads(urllib.request.urlopen(  # noqa: S310
        linkedin_site + "/api/changes?min_severity=high&limit=1").read())
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(linkedin_site + "/?range=all")
    assert page.locator("svg.timeline a circle").count() > 50  # one mark per change, years of them
    assert page.locator("svg.timeline circle.sev-mark-high").count() >= 1
    first_high = page.locator("ul.high li").first.inner_text()
    # the dashboard words each headline from the change's verdict ("trains AI on your data …")
    from monitor.wording import VERDICT_WORDS

    assert first_high.startswith("high")
    assert any(words in first_high for words in VERDICT_WORDS.values()), first_high
    page.screenshot(path=str(OUTPUT / "history-dashboard.png"), full_page=True)
    change = high[0]
    for path, shot in ((f"/sources/{change['source']}", "history-source.png"),
                       (f"/changes/{change['id']}", "history-change.png"),
                       (f"/versions/{change['to_snapshot_id']}", "history-version.png")):
        page.goto(linkedin_site + path)
        width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width[0] <= width[1], (path, width)
        page.screenshot(path=str(OUTPUT / shot), full_page=path.startswith("/sources"))
    page.close()


def test_board_cells_lead_to_their_changes_and_fit_1280_pixels(linkedin_site: str,
                                                               browser) -> None:
    """The AI data-use board over real LinkedIn history: every answer links to an existing
    change page, nothing is wider than the window, and it reads without JavaScript."""
    context = browser.new_context(viewport={"width": 1280, "height": 900},  # type: ignore[attr-defined]
                                  java_script_enabled=False)
    page = context.new_page()
    links: set[str] = set()
    for path in ("/board", "/board/linkedin"):
        response = page.goto(linkedin_site + path)
        assert response is not None and response.status == 200
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280, path
        assert "trains AI on your data" in page.inner_text("main")
        links |= set(page.eval_on_selector_all('a[href^="/changes/"]',
                                               "els => els.map(e => e.getAttribute('href'))"))
    assert links
    for href in sorted(links):
        response = page.goto(linkedin_site + href)
        assert response is not None and response.status == 200, href
    context.close()


def test_board_api_answers_linkedin_as_its_policy_said(linkedin_site: str) -> None:
    import requests

    def board(at: str) -> dict:
        answer = requests.get(f"{linkedin_site}/api/board/linkedin", params={"at": at}, timeout=10)
        assert answer.status_code == 200
        return answer.json()

    before = board("2024-09-01")["answers"]
    assert before["training"] == []  # nothing said yet
    autumn = board("2024-10-01")
    (training,) = autumn["answers"]["training"]
    assert training["value"] == "yes"
    assert training["since"].startswith("2024-09-19")
    assert "privacy-policy" in training["source"]
    assert "develop and train artificial intelligence (AI) models" in training["quote"]
    assert training["change_id"] and training["version_id"] and training["from_version_id"]
    assert any(m["question"] == "training" and m["new"] == "yes" for m in autumn["timeline"])
    later = board("2025-11-10")["answers"]
    assert [a["value"] for a in later["default"]] == ["on"]
    urls = [s["url"] for a in later["ways_out"] for s in a["steps"] if s.get("url")]
    assert any("data-for-ai-improvement" in u for u in urls), urls
    assert any("Microsoft" in a["names"] for a in later["sharing"])


def test_board_feed_has_one_entry_per_answer_that_changed(linkedin_site: str) -> None:
    import xml.etree.ElementTree as ET

    import requests

    answer = requests.get(f"{linkedin_site}/feeds/board/linkedin.atom", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/atom+xml")
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = ET.fromstring(answer.content).findall("a:entry", ns)  # noqa: S314 (our own feed)
    titles = [e.findtext("a:title", namespaces=ns) for e in entries]
    # newest first; the first one ever is the policy that started training in September 2024
    assert titles[-1] == "linkedin: trains AI on your data: not stated → yes"
    assert entries[-1].findtext("a:updated", namespaces=ns).startswith("2024-09-19")
    assert "develop and train artificial intelligence (AI) models" in \
        entries[-1].findtext("a:summary", namespaces=ns)
    assert any("Microsoft" in t for t in titles)
    assert len(titles) == len(set(titles))  # no answer told twice
    for e in entries:  # every entry leads to an existing change page
        link = e.find("a:link", ns).get("href")
        path = link.split("/changes/", 1)[1]
        assert requests.get(f"{linkedin_site}/changes/{path}", timeout=10).status_code == 200
    assert requests.get(f"{linkedin_site}/feeds/board/nosuch.atom", timeout=10).status_code == 404
    everything = requests.get(f"{linkedin_site}/feeds/board.atom", timeout=10)
    assert everything.status_code == 200 and everything.content.count(b"<entry>") == len(entries)


def test_offline_dashboard_is_folded_not_a_wall(tmp_path_factory, browser) -> None:
    """97 sources failing the same way are one row with the cause, the sources on demand."""
    project = Project(tmp_path_factory.mktemp("offline"))
    port = free_port()  # nothing listens: every check is refused the same way
    project.write("".join(f"""
        [[source]]
        name = "platform{i % 30}/page{i}"
        platform = "Platform {i % 30}"
        title = "Page {i}"
        url = "http://127.0.0.1:{port}/page{i}"
    """ for i in range(97)), settings="failure_threshold = 1")
    project.cli("init")
    project.cli("check")
    with serving(project.config) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/")
        height = page.evaluate("document.documentElement.scrollHeight")
        assert height < 2000, height
        fold = page.locator("li.fold")
        assert fold.count() == 1
        assert "97 sources failing the same way" in fold.inner_text()
        assert "97 sources on 30 platforms" in page.inner_text("body")
        assert not page.locator("li.fold a", has_text="Page 5").first.is_visible()
        fold.locator("summary").click()  # the sources, on demand
        assert page.locator("li.fold a", has_text="Page 5").first.is_visible()
        page.close()


def test_compare_by_picking_versions(site: str, browser) -> None:
    """Comparing two versions is picking them by date, not typing snapshot ids."""
    versions = json.loads(urllib.request.urlopen(  # noqa: S310
        site + "/api/sources/linkedin/privacy-policy/versions").read())
    assert len(versions) >= 2
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(site + "/sources/linkedin/privacy-policy")
    older, newer = versions[0], versions[-1]
    page.select_option("form.pick select[name=from]", str(older["snapshot_id"]))
    page.select_option("form.pick select[name=to]", str(newer["snapshot_id"]))
    page.click("form.pick button")
    page.wait_for_url("**/compare/**")
    assert f"#{older['snapshot_id']} → #{newer['snapshot_id']}" in page.inner_text("h1")
    assert ADDED[:40] in page.inner_text("body")
    # the comparison page offers the same pickers, set to what it shows
    assert page.input_value("form.pick select[name=to]") == str(newer["snapshot_id"])
    labels = page.locator("form.pick select[name=from] option").all_inner_texts()
    assert all(label[:4].isdigit() and "(#" in label for label in labels)  # dated, not bare ids
    page.close()


def test_eu_notice_changes_read_as_formatted_text(linkedin_site: str, browser) -> None:
    """The European notice is table-heavy (rows of thousands of characters): each of its
    change pages shows cells, links and bold as formatted text with the changed words marked,
    folds unchanged rows, and stays under 6,000 px in both views (it was 14,953)."""
    changes = json.loads(urllib.request.urlopen(  # noqa: S310
        linkedin_site + "/api/changes?source=linkedin/privacy-policy--pga").read())
    eu = [c for c in changes if c["detected_at"] > "2025-06-11"]  # after the page became the notice
    assert len(eu) >= 4
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    heights = {}
    for change in eu:
        for view in ("inline", "side"):
            page.goto(f"{linkedin_site}/changes/{change['id']}?view={view}")
            heights[change["id"], view] = page.evaluate("document.documentElement.scrollHeight")
            text = page.locator(".diff").inner_text()
            assert "](" not in text and "| --- |" not in text and "**" not in text
            assert page.locator(".diff ins, .diff del, .diff .relink").count() >= 1
    assert max(heights.values()) < 6000, heights
    biggest = max(eu, key=lambda c: c["words_added"] + c["words_removed"])
    page.goto(f"{linkedin_site}/changes/{biggest['id']}?view=side")
    assert page.locator(".diff .md-cell").count() > 10
    assert re.search(r"… \d+ unchanged (rows|lines) …", page.locator(".diff").inner_text())
    page.screenshot(path=str(OUTPUT / "eu-notice-change.png"), full_page=True)
    page.close()
