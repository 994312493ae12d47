"""A one-shot `check` keeps the host schedule the daemon keeps: the polite gap, robots.txt
Crawl-delay and Retry-After hold between pages of a host and across runs."""

from __future__ import annotations

import itertools
import time

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


def _two_pages(project, server: HTTPServer, settings: str = "") -> None:
    project.write(f"""
        [[source]]
        name = "site/a"
        platform = "Site"
        url = "{server.url_for('/a')}"

        [[source]]
        name = "site/b"
        platform = "Site"
        url = "{server.url_for('/b')}"
    """, settings=settings)
    project.cli("init")


def _timed(server: HTTPServer, seen: list[tuple[str, float]]) -> None:
    def answer(request: Request) -> Response:
        seen.append((request.path, time.monotonic()))
        return Response(f"<main><p>Page {request.path}.</p></main>", content_type="text/html")

    for path in ("/a", "/b"):
        server.expect_request(path).respond_with_handler(answer)


def test_crawl_delay_spaces_pages_of_a_host_within_and_across_runs(server: HTTPServer,
                                                                  project) -> None:
    server.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nCrawl-delay: 1\n", content_type="text/plain")
    seen: list[tuple[str, float]] = []
    _timed(server, seen)
    _two_pages(project, server, settings="respect_robots = true")
    first = project.check()
    assert {r["outcome"] for r in first.values()} == {"baseline"}
    again = project.check("site/a")
    assert again["site/a"]["outcome"] == "unchanged"
    assert [path for path, _ in seen] == ["/a", "/b", "/a"]
    gaps = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(seen)]
    # Each request waited for the host's turn, the one in a new run too.
    assert all(gap >= 0.9 for gap in gaps), gaps


def test_retry_after_rests_the_host_for_later_runs(server: HTTPServer, project) -> None:
    server.expect_request("/a").respond_with_data(
        "busy", status=503, headers={"Retry-After": "3600"})
    server.expect_request("/b").respond_with_data("<main><p>B.</p></main>",
                                                  content_type="text/html")
    _two_pages(project, server)
    results = project.check()
    assert results["site/a"]["outcome"] == "failed"
    assert results["site/b"]["outcome"] == "postponed"
    assert "asked for a rest until" in results["site/b"]["detail"]
    again = project.check("site/a")
    assert again["site/a"]["outcome"] == "postponed"
    assert "asked for a rest until" in again["site/a"]["detail"]
    # The host was asked once: nothing was fetched during its rest.
    assert [req.path for req, _ in server.log] == ["/a"]
    # The page that was not asked has no check recorded, so the daemon still owes it one.
    listed = {s["name"]: s for s in project.json("sources", "list")}
    assert listed["site/b"]["last_check_at"] is None
