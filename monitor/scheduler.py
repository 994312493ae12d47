"""APScheduler wiring: a `dispatch()` job every second hands due sources to a worker pool.

The schedule itself lives in the database (next check, leases, host gaps); APScheduler only
provides the heartbeat. That is why a restart resumes where it stopped and why the same
`dispatch()` can run in several processes against one database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor import config as cfg
from monitor.browser import INSTALL_HINT, browser_for
from monitor.fetch import Fetcher
from monitor.pipeline import CheckContext, CheckResult, check_source
from monitor.robots import RobotsCache
from monitor.store import Claim, Store

log = logging.getLogger("monitor.scheduler")


def _now() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    """Claims due sources (one per free host) and runs their checks on a thread pool."""

    def __init__(
        self,
        store: Store,
        config: cfg.Config,
        owner: str,
        clock: Callable[[], datetime] = _now,
        on_result: Callable[[CheckResult], None] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.owner = owner
        self.clock = clock
        self.on_result = on_result
        settings = config.settings
        self.workers = settings.workers
        self.fetcher = Fetcher(settings)
        self.browser = browser_for(settings, config.sources)
        if self.browser is not None and not self.browser.available:
            log.warning("%s; sources that need a browser will fail", INSTALL_HINT)
        self.robots = RobotsCache(self.fetcher, settings.user_agent) if settings.respect_robots else None
        self.pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="check")
        self.in_flight: dict[int, Future[None]] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.dispatching = threading.Lock()  # one dispatch at a time, from any thread
        self.last_dispatch = time.monotonic()

    @property
    def lease_seconds(self) -> float:
        """Long enough for the slowest possible check, so a healthy worker never loses it."""
        return self.config.settings.total_timeout * 2 + 60

    def context(self) -> CheckContext:
        s = self.config.settings
        return CheckContext(policy=s.policy, clock=self.clock,
                            failure_threshold=s.failure_threshold, robots=self.robots,
                            subscriptions=self.config.subscriptions,
                            event_window=timedelta(seconds=s.event_window),
                            default_fetcher=s.fetcher, browser=self.browser)

    def dispatch(self) -> int:
        """One scheduling step: claim what is due and free, and start it.

        Runs from the APScheduler heartbeat and again whenever a check finishes, so a free
        worker picks up due work at once instead of idling until the next tick.
        """
        self.last_dispatch = time.monotonic()
        if self.stopping.is_set():
            return 0
        if not self.dispatching.acquire(blocking=False):
            return 0  # another thread is dispatching right now
        try:
            return self._dispatch()
        finally:
            self.dispatching.release()

    def _dispatch(self) -> int:
        with self.lock:
            free = self.workers - len(self.in_flight)
        if free <= 0:
            return 0
        now = self.clock()
        claims = self.store.claim(self.owner, now, free, self.lease_seconds)
        for claim in claims:
            source = self.config.source(claim.name)
            if source is None or not source.enabled:
                self.store.release(claim)
                continue
            lag = (now - claim.due_at).total_seconds() if claim.due_at is not None else 0.0
            with self.lock:
                self.in_flight[claim.source_id] = self.pool.submit(self._run, claim, source, lag)
        return len(claims)

    def _run(self, claim: Claim, source: cfg.Source, lag: float) -> None:
        try:
            result = check_source(self.store, self.fetcher, source, ctx=self.context(),
                                  claim=claim)
            if not result.recorded:
                self.store.release(claim)
            level = logging.WARNING if result.outcome == "failed" else logging.INFO
            log.log(level, "check %s (lag=%.3fs)", result.line(), lag)
            if self.on_result is not None:
                self.on_result(result)
        except Exception:  # never let one check take the pool down
            log.exception("source=%s check crashed", claim.name)
        finally:
            with self.lock:
                self.in_flight.pop(claim.source_id, None)
        if not self.stopping.is_set():
            try:
                self.dispatch()
            except Exception:
                log.exception("dispatch after a check failed")

    def healthy(self, max_age: float) -> bool:
        """The dispatch job ran recently and the database answers."""
        if time.monotonic() - self.last_dispatch > max_age:
            return False
        try:
            self.store.counts_cheap()
        except Exception:
            return False
        return True

    def stop(self, timeout: float) -> bool:
        """Stop claiming, let running checks finish; True if they all did within the timeout."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.in_flight:
                    break
            time.sleep(0.05)
        with self.lock:
            unfinished = len(self.in_flight)
        self.pool.shutdown(wait=unfinished == 0, cancel_futures=True)
        if unfinished == 0:
            self.fetcher.close()
            if self.browser is not None:
                self.browser.close()
        return unfinished == 0


def build_scheduler(dispatcher: Dispatcher, maintenance: Callable[[], None]) -> BackgroundScheduler:
    """The APScheduler 3.x jobs: dispatch every second, maintenance hourly."""
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={
            "coalesce": True,  # a late heartbeat runs once, not once per missed second
            "max_instances": 1,
            "misfire_grace_time": None,  # a busy pool delays a run; it must never drop it
        },
    )
    interval = dispatcher.config.settings.dispatch_interval
    scheduler.add_job(dispatcher.dispatch, IntervalTrigger(seconds=interval), id="dispatch",
                      name="dispatch", next_run_time=datetime.now(UTC))
    scheduler.add_job(maintenance, IntervalTrigger(hours=1), id="maintenance", name="maintenance")

    def on_event(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("job %s missed its run time", event.job_id)
        elif event.exception is not None:
            log.error("job %s failed: %s", event.job_id, event.exception)

    scheduler.add_listener(on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    return scheduler
