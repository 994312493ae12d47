"""`/metrics` is what an operator of several daemons scrapes: real numbers from the database,
in the Prometheus text format as Prometheus's own parser reads it."""

from __future__ import annotations

import re
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer

from tests.conftest import AI_TRAINING, PLAIN_POLICY, served, serving


def _scrape(base: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:  # noqa: S310 - loopback
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        text = r.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_are_scraped_and_parsed(server: HTTPServer, project, page) -> None:
    body = served(server, "/ok", page(PLAIN_POLICY))
    server.expect_request("/gone").respond_with_data("no", status=500)
    project.write(f"""
        [[source]]
        name = "acme/privacy"
        platform = "Acme"
        url = "{server.url_for('/ok')}"

        [[source]]
        name = "acme/broken"
        platform = "Acme"
        url = "{server.url_for('/gone')}"

        [[subscription]]
        name = "team"
        url = "json://127.0.0.1:9/hook"
    """, settings='failure_threshold = 1\nevent_window = "0s"')
    project.cli("init")
    project.check()
    body["html"] = page(PLAIN_POLICY + AI_TRAINING)
    project.check()
    with serving(project.config) as base:
        m = _scrape(base)
        with urllib.request.urlopen(base + "/", timeout=10) as r:  # noqa: S310 - loopback
            text = re.sub(r"<[^>]+>", "", r.read().decode())  # the words, as a reader sees them
            assert "2 sources on 1 platform ·" in text  # never "1 platforms"
    assert m["policy_monitor_database_up"][()] == 1
    checks = m["policy_monitor_checks_total"]
    assert checks[(("fetcher", "http"), ("outcome", "baseline"))] == 1
    assert checks[(("fetcher", "http"), ("outcome", "changed"))] == 1
    assert checks[(("fetcher", "http"), ("outcome", "failed"))] == 2
    assert m["policy_monitor_check_duration_seconds_count"][()] == 4
    assert m["policy_monitor_check_duration_seconds_bucket"][(("le", "+Inf"),)] == 4
    assert m["policy_monitor_failing_sources"][()] == 1
    assert m["policy_monitor_sources"][(("state", "enabled"),)] == 2
    assert m["policy_monitor_changes_total"][()] == 1
    assert m["policy_monitor_outbox_deliveries"][(("state", "pending"),)] >= 1  # the AI change
    assert 0 <= m["policy_monitor_last_success_age_seconds"][()] < 120
