"""Hostile requests and hostile page text against the real `serve` process: never a 500,
every response (errors too) with the security headers, and feeds that stay valid XML."""

from __future__ import annotations

import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import Project, serving
from tests.test_notify import pages

# Control characters a watched page can contain; XML 1.0 forbids all three in a feed.
NASTY = "Data\x01 is\x0b shared\x1b[2J with partners."


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("faults-web")
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    bodies = {"/p": "<p>We use your data to run the service.</p>"}
    pages(server, bodies)
    project = Project(root)
    project.write(f"""
        [[source]]
        name = "acme/privacy"
        platform = "Acme"
        url = "{server.url_for('/p')}"
        select = "main"
    """)
    project.cli("init")
    project.cli("check")
    bodies["/p"] += f"<p>{NASTY} We may train AI models on your posts.</p>"
    project.cli("check")
    server.stop()
    with serving(project.config) as base:
        yield base


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - loopback test server
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.mark.parametrize("path", [
    "/compare/acme/privacy?from=99999999999999999999&to=1",
    "/compare/acme/privacy?from=1&to=-99999999999999999999",
    "/changes/99999999999999999999",
    "/versions/99999999999999999999/raw",
    "/sources/acme/privacy?page=99999999999999999999",
    "/search?q=%00",
    "/search?q=%00privacy%00",
    "/search?q=" + "a" * 5000,
    "/api/search?q=%00",
    "/feeds/platform/%00.atom",
    "/feeds/platform/%01%0b.atom",
    "/feeds/label/%00.atom",
    "/sources/%00",
    "/nowhere",
])
def test_hostile_requests_get_a_clear_answer_with_the_security_headers(site: str, path: str) -> None:
    status, headers, _ = get(site + path)
    assert status < 500, (path, status)
    assert "default-src 'none'" in headers.get("content-security-policy", ""), path
    assert headers.get("x-content-type-options") == "nosniff", path


def test_control_characters_in_a_page_do_not_break_any_feed(site: str) -> None:
    for path in ("/feeds/changes.atom", "/feeds/platform/Acme.atom", "/feeds/label/ai_training.atom"):
        status, headers, body = get(site + path)
        assert status == 200, path
        root = ET.fromstring(body)  # noqa: S314 - our own server's feed; must be well-formed
        text = "".join(root.itertext())
        assert "\x01" not in text and "\x0b" not in text and "\x1b" not in text
        assert headers.get("x-content-type-options") == "nosniff"
    _, _, body = get(site + "/feeds/changes.atom")
    assert "train AI models" in body.decode()  # the entry is there, only the characters went
