"""respect_robots = true follows RFC 9309, fetching robots.txt through the same gate."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer


def _config(project, server: HTTPServer) -> None:
    project.write(f"""
        [[source]]
        name = "site/public"
        platform = "Site"
        url = "{server.url_for('/public')}"

        [[source]]
        name = "site/private"
        platform = "Site"
        url = "{server.url_for('/private/policy')}"
    """, settings="respect_robots = true")
    project.cli("init")


def test_disallowed_pages_are_never_requested(server: HTTPServer, project) -> None:
    server.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nDisallow: /private\nCrawl-delay: 2\n", content_type="text/plain")
    server.expect_request("/public").respond_with_data("<p>Public.</p>", content_type="text/html")
    server.expect_request("/private/policy").respond_with_data("<p>No.</p>", content_type="text/html")
    _config(project, server)
    results = project.check()
    assert results["site/public"]["outcome"] == "baseline"
    assert results["site/private"]["outcome"] == "failed"
    assert results["site/private"]["failure_kind"] == "blocked"
    assert "disallowed by robots.txt" in results["site/private"]["detail"]
    paths = [req.path for req, _ in server.log]
    assert "/private/policy" not in paths
    assert paths.count("/robots.txt") == 1  # cached for the run


@pytest.mark.parametrize(("status", "outcome"), [(404, "baseline"), (403, "baseline"), (500, "failed")])
def test_robots_status_codes(server: HTTPServer, project, status: int, outcome: str) -> None:
    server.expect_request("/robots.txt").respond_with_data("nope", status=status)
    server.expect_request("/public").respond_with_data("<p>Public.</p>", content_type="text/html")
    server.expect_request("/private/policy").respond_with_data("<p>P.</p>", content_type="text/html")
    _config(project, server)
    results = project.check()
    assert results["site/public"]["outcome"] == outcome
    if outcome == "failed":
        assert "robots.txt unreachable" in results["site/public"]["detail"]
        assert [req.path for req, _ in server.log] == ["/robots.txt"]


RFC_ROBOTS = """
User-agent: *
Disallow: /
Allow: /legal/
Disallow: /*/print
Disallow: /terms$

User-agent: PolicyMonitor
Disallow: /
Allow: /legal/
Allow: /terms$
Disallow: /*/print
"""


@pytest.mark.parametrize(("path", "allowed"), [
    ("/legal/privacy", True),  # the longest match (Allow: /legal/) wins over Disallow: /
    ("/legal/print", False),  # `*` matches inside a path segment and across them
    ("/help/x/print?lang=en", False),
    ("/terms", True),  # `$` anchors: /terms itself is allowed…
    ("/terms/2024", False),  # …but not what merely starts with it
    ("/other", False),
])
def test_robots_rules_match_as_rfc_9309_says(server: HTTPServer, path: str,
                                             allowed: bool) -> None:
    from monitor.config import Settings
    from monitor.fetch import Fetcher
    from monitor.robots import RobotsCache

    server.expect_request("/robots.txt").respond_with_data(RFC_ROBOTS, content_type="text/plain")
    settings = Settings(allow_private_addresses=True)
    fetcher = Fetcher(settings)
    try:
        verdict = RobotsCache(fetcher, "PolicyMonitor/1.0 (+https://example.org)").check(
            server.url_for(path))
    finally:
        fetcher.close()
    assert verdict.allowed is allowed, verdict
