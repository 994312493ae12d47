"""`/metrics` in the Prometheus text format (the optional `metrics` extra: prometheus-client).

Built per scrape from the database (monitor/measures.py) by a custom collector, so any `serve`
process reports for every daemon that shares the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from monitor import measures
from monitor.store.trouble import DatabaseTrouble, noted

router = APIRouter()
INSTALL_HINT = ("metrics need the optional extra: pip install 'policy-monitor[metrics]' "
                "(prometheus-client)\n")


class _Collector:
    """Reads the database once per scrape; a database in trouble is a metric, not a 500."""

    def __init__(self, request: Request) -> None:
        self.store = request.app.state.store
        self.data_dir = request.app.state.settings.data_dir

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        up = GaugeMetricFamily("policy_monitor_database_up",
                               "1 when this scrape could read the database")
        trouble = GaugeMetricFamily(
            "policy_monitor_database_trouble",
            "1 while a daemon of this data directory reports database trouble", labels=["kind"])
        note = noted(self.data_dir)
        if note is not None:
            trouble.add_metric([str(note.get("kind", "unknown"))], 1)
        try:
            m = measures.measure(self.store)
        except DatabaseTrouble as exc:
            up.add_metric([], 0)
            trouble.add_metric([exc.kind], 1)
            yield from (up, trouble)
            return
        up.add_metric([], 1)
        yield from (up, trouble)
        checks = CounterMetricFamily("policy_monitor_checks", "Checks recorded, by outcome and "
                                     "fetcher", labels=["outcome", "fetcher"])
        for (outcome, fetcher), n in sorted(m.checks.items()):
            checks.add_metric([outcome, fetcher], n)
        yield checks
        buckets = [(str(b), n) for b, n in zip(measures.BUCKETS, m.duration_buckets, strict=True)]
        yield HistogramMetricFamily("policy_monitor_check_duration_seconds",
                                    "Wall time of each recorded check",
                                    buckets=[*buckets, ("+Inf", m.duration_count)],
                                    sum_value=m.duration_sum)
        outbox = GaugeMetricFamily("policy_monitor_outbox_deliveries",
                                   "Alert deliveries in the outbox, by state", labels=["state"])
        for state in sorted({"pending", "sending", "sent", "failed", *m.outbox}):
            outbox.add_metric([state], m.outbox.get(state, 0))
        yield outbox
        sources = GaugeMetricFamily("policy_monitor_sources", "Configured sources",
                                    labels=["state"])
        sources.add_metric(["enabled"], m.sources_enabled)
        sources.add_metric(["disabled"], m.sources_disabled)
        yield sources
        yield GaugeMetricFamily("policy_monitor_failing_sources",
                                "Enabled sources past failure_threshold", value=m.sources_failing)
        yield CounterMetricFamily("policy_monitor_changes", "Changes detected",
                                  value=m.changes)
        if m.last_success_age is not None:
            yield GaugeMetricFamily("policy_monitor_last_success_age_seconds",
                                    "Seconds since the newest successful check of any source",
                                    value=m.last_success_age)
        if m.oldest_check_age is not None:
            yield GaugeMetricFamily("policy_monitor_oldest_check_age_seconds",
                                    "Seconds since the least recently checked enabled source "
                                    "was checked", value=m.oldest_check_age)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    try:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    except ImportError:
        return PlainTextResponse(INSTALL_HINT, status_code=501)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(request))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
