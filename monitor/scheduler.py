"""The daemon's dispatcher: a loop that claims due sources and runs their checks on a pool.

The schedule itself lives in the database (next check, leases, host ready times); this loop
sleeps until the earliest ready time it knows (at most `dispatch_interval`) or until a worker
finishes, so work starts when it becomes due instead of on the next tick. APScheduler keeps the
periodic jobs: lease renewal (the heartbeat that lets leases be short), maintenance,
notifications. That is why a restart resumes where it stopped and why several processes, on
several machines, can share one database.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from monitor import config as cfg
from monitor import schedule
from monitor.errors import StoreError
from monitor.fetchers import Fetchers
from monitor.pipeline import CheckContext, CheckResult, check_source
from monitor.schedule import host_of
from monitor.store.trouble import TROUBLE, DatabaseTrouble
from monitor.store.values import Claim
from monitor.summary import FoldedFailures

if TYPE_CHECKING:
    from apscheduler.events import JobExecutionEvent
    from apscheduler.schedulers.background import BackgroundScheduler

    from monitor.store import Store
# APScheduler (40 ms to import) runs the daemon's jobs; a one-shot `check` never needs it.

log = logging.getLogger("monitor.scheduler")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Running:
    """A check in flight: its claim (renewed while it runs) and when it started."""

    claim: Claim
    started: float


WAKE_SPREAD = 0.02  # seconds of random delay on a wake-up for a ready time (see _sleep_for)
TROUBLE_PAUSES = (5.0, 10.0, 20.0, 40.0, 60.0)  # no claims for these, while the database fails


def _earliest(*times: datetime | None) -> datetime | None:
    return min((t for t in times if t is not None), default=None)


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
        self.folded = FoldedFailures()  # failures sharing a cause: one line a minute
        settings = config.settings
        self.workers = settings.workers
        # The daemon does not know the watch list (the database does): a browser is started
        # for the first claimed source that needs one.
        self.fetchers = Fetchers.build(settings, None)
        self.pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="check")
        self.in_flight: dict[int, Running] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.done = threading.Event()
        self.next_ready: datetime | None = None  # the earliest host ready time, from the last claim
        self.last_claim = 0.0  # monotonic time of the last claim
        self.rng = random.Random()
        self.freed: datetime | None = None  # the soonest host freed since the claim began
        self.dispatching = threading.Lock()  # held while a dispatch hands out work (stop waits)
        self.last_dispatch = time.monotonic()
        self.thread: threading.Thread | None = None
        # While the database is in trouble no new work is claimed: until `paused_until`
        # (monotonic), each pause longer than the last (TROUBLE_PAUSES), reset by a good claim.
        self.paused_until = 0.0
        self.pauses = 0
        self.claim_failed = False

    @property
    def lease_seconds(self) -> float:
        """Short: renewed every third of it while a check runs, so a killed process's sources
        and hosts come back within about one lease."""
        return self.config.settings.lease_duration

    @property
    def max_hold(self) -> float:
        """How long a check may keep renewing: past the slowest possible check it is wedged,
        and its lease is left to lapse so the source is not lost to it."""
        return self.config.settings.total_timeout * 2 + 60

    def context(self) -> CheckContext:
        return CheckContext.of(self.config.settings, self.config.subscriptions, self.clock)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="dispatch", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            claimed = 0
            try:
                claimed = self.dispatch()
            except DatabaseTrouble as exc:  # logged once a minute; claims pause, then retry
                TROUBLE.report(exc)
                self.claim_failed = True
                self._pause()
            except StoreError as exc:  # the database refused: one line; the service decides
                log.error("dispatch: %s", exc)
            except Exception:
                log.exception("dispatch failed")
            self.wake.wait(self._sleep_for(claimed))
            self.wake.clear()

    def _recovered(self) -> None:
        with self.lock:
            self.pauses = 0
            self.paused_until = 0.0
        TROUBLE.recovered()

    def _pause(self) -> None:
        """Stop claiming for a while: the database cannot record what a check would find."""
        with self.lock:
            step = TROUBLE_PAUSES[min(self.pauses, len(TROUBLE_PAUSES) - 1)]
            self.paused_until = max(self.paused_until, time.monotonic() + step)
            self.pauses += 1

    def _sleep_for(self, claimed: int) -> float:
        """Until the earliest host becomes ready, within [a moment, dispatch_interval]."""
        longest = self.config.settings.dispatch_interval
        paused = self.paused_until - time.monotonic()
        if paused > 0:
            return min(paused, longest)
        with self.lock:
            if len(self.in_flight) >= self.workers:
                return longest  # a finishing check wakes the loop
        ready = self.next_ready  # read by the claim itself: no extra round trip
        if ready is None:
            return longest
        wait = (ready - self.clock()).total_seconds()
        if wait <= 0:  # ready now but not claimed: another process holds it; don't spin
            return 0.01 if claimed else min(0.2, longest)
        # Every process that read the same ready time wakes for it: a few ms of random delay
        # makes whichever wins the race a matter of chance, not of whose clock offset was
        # measured a millisecond short, so the work spreads over the processes.
        return min(wait + 0.005 + self.rng.uniform(0, WAKE_SPREAD), longest)

    def dispatch(self) -> int:
        """One scheduling step: claim what is due and free, and start it."""
        self.last_dispatch = time.monotonic()
        if self.stopping.is_set():
            return 0
        with self.dispatching:
            return self._dispatch()

    def _dispatch(self) -> int:
        with self.lock:
            free = self.workers - len(self.in_flight)
        if free <= 0 or time.monotonic() < self.paused_until:
            return 0
        now = self.clock()
        ready = self.next_ready
        if ready is not None and ready > now and \
                time.monotonic() - self.last_claim < self.config.settings.dispatch_interval:
            # Nothing can be ready before the time the last claim saw (a finished check's own
            # host rests for per_host_delay first): a claim now would find nothing. Claims
            # still run every dispatch_interval, for hosts that other processes free.
            return 0
        self.last_claim = time.monotonic()
        with self.lock:
            self.freed = None
        claims, ready = self.store.claim_next(self.owner, now, free, self.lease_seconds)
        with self.lock:  # a check that finished during the claim may not be in what it read
            self.next_ready = _earliest(ready, self.freed)
            recovered, self.claim_failed = self.claim_failed, False
        if recovered:  # the claim that failed is written again (checks say so for themselves)
            self._recovered()
        for claim in claims:
            source = self._source(claim)
            if source is None or not source.enabled or self.stopping.is_set():
                self.store.release(claim)
                with self.lock:
                    self.next_ready = now  # its host is free again at once
                continue
            lag = (now - claim.due_at).total_seconds() if claim.due_at is not None else 0.0
            with self.lock:
                self.pool.submit(self._run, claim, source, lag)
                self.in_flight[claim.source_id] = Running(claim, time.monotonic())
        return len(claims)

    def _source(self, claim: Claim) -> cfg.Source | None:
        """The claimed source's settings, from its row: the database is the watch list, so a
        daemon holds the sources it is checking, not the whole list. A row without them
        (written before migration 0018 and not synced since) is looked up in sources.toml."""
        if claim.spec is None:
            return self.config.source(claim.name)
        try:
            return cfg.Source.from_spec(claim.spec)
        except (ValueError, TypeError) as exc:
            log.error("source=%s: its stored settings are unreadable (%s); skipped until the "
                      "next sync", claim.name, exc)
            return None

    def _run(self, claim: Claim, source: cfg.Source, lag: float) -> None:
        # The earliest this check's host can be ready again: after its polite gap, or at once
        # if the check gave its lease back unrecorded.
        rested = timedelta(seconds=self.config.settings.per_host_delay)
        try:
            result = check_source(self.store, self.fetchers, source, ctx=self.context(),
                                  claim=claim)
            if result.recorded and TROUBLE.outage is not None:
                self._recovered()
            if result.trouble is not None:
                # Not recorded because of the database: the page was fetched, so its host
                # rests as after any check, the source waits a step of the retry ladder, and
                # no new work is claimed for a while. If even that cannot be written, the
                # lease lapses on its own (lease_duration).
                self._pause()
                self._rest(claim)
            elif not result.recorded:
                self.store.release(claim)
                rested = timedelta(0)
            failed = result.outcome == "failed"
            # the database's trouble is logged once, not per check; page failures by cause
            if result.trouble is None and (not failed or self.folded.first(result)):
                log.log(logging.WARNING if failed else logging.INFO, "check %s (lag=%.3fs)",
                        result.line(), lag)
            for line in self.folded.due():
                log.warning(line)
            if self.on_result is not None:
                self.on_result(result)
        except Exception:  # never let one check take the pool down
            log.exception("source=%s check crashed", claim.name)
        finally:
            with self.lock:
                self.in_flight.pop(claim.source_id, None)
                soonest = self.clock() + rested
                self.next_ready = _earliest(self.next_ready, soonest)
                self.freed = _earliest(self.freed, soonest)
            self.wake.set()  # a worker is free: the loop claims when anything can be ready
            self.done.set()

    def _rest(self, claim: Claim) -> None:
        settings = self.config.settings
        ladder = settings.retry_ladder or (60.0,)
        now = self.clock()
        step = ladder[min(max(self.pauses - 1, 0), len(ladder) - 1)]
        # If this cannot be written either, the lease lapses by itself and the pause keeps
        # this process from claiming meanwhile.
        with contextlib.suppress(StoreError):
            self.store.release(claim, next_check_at=now + timedelta(seconds=step),
                               host_allowed_at=now + timedelta(seconds=settings.per_host_delay))

    def renew(self) -> None:
        """The heartbeat: extend the leases of checks still making their way (not wedged ones)."""
        now = time.monotonic()
        with self.lock:
            live = [r.claim for r in self.in_flight.values() if now - r.started < self.max_hold]
        if live:
            self.store.renew(live, self.clock() + timedelta(seconds=self.lease_seconds))

    def problem(self, max_age: float) -> str | None:
        """Why the daemon is not making progress, or None: the dispatch loop has not run
        lately, or every worker has been on one check for longer than any check may take (a
        fetch or a step that ignores its deadline). Database trouble is not one: the daemon
        waits it out and resumes by itself (TROUBLE tells it), so it must not be restarted."""
        if time.monotonic() - self.last_dispatch > max_age:
            return f"the dispatch loop has not run for {max_age:.0f}s"
        now = time.monotonic()
        with self.lock:
            stuck = [r.claim.name for r in self.in_flight.values() if now - r.started > self.max_hold]
        if self.workers and len(stuck) >= self.workers:
            return (f"all {self.workers} workers stuck for more than {self.max_hold:.0f}s "
                    f"(on {', '.join(sorted(stuck)[:5])})")
        return None

    def stop(self, timeout: float) -> bool:
        """Stop claiming, let running checks finish; True if they all did within the timeout.

        Checks still running at the deadline have their leases released, so another process
        takes their sources at once; if they finish later their commit finds the lease gone
        and writes nothing.
        """
        self.stopping.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
        with self.dispatching:  # a dispatch in progress has handed out its work
            pass
        deadline = time.monotonic() + timeout
        self.done.clear()
        while time.monotonic() < deadline:
            with self.lock:
                if not self.in_flight:
                    break
            self.done.wait(0.05)  # set by each finishing check
            self.done.clear()
        with self.lock:
            unfinished = [r.claim for r in self.in_flight.values()]
        for line in self.folded.due(everything=True):  # held failures are said before exit
            log.warning(line)
        for claim in unfinished:
            try:
                self.store.release(claim)
            except Exception:
                log.exception("could not release %s; its lease lapses on its own", claim.name)
        self.pool.shutdown(wait=not unfinished, cancel_futures=True)
        if not unfinished:
            self.fetchers.close()
        return not unfinished


def check_once(
    store: Store,
    settings: cfg.Settings,
    selected: Sequence[cfg.Source],
    on_result: Callable[[CheckResult], None],
    subscriptions: tuple[cfg.Subscription, ...] = (),
    *,
    warn: Callable[[str], None] = log.warning,
    sleep: Callable[[float], None] = time.sleep,
) -> list[CheckResult]:
    """A one-shot `check`: hosts in parallel, each host's sources one after another, each
    when the host's turn comes by the schedule the daemon's claim reads (the polite gap,
    robots Crawl-delay and Retry-After recorded by the last check of any process)."""
    fetchers = Fetchers.build(settings, selected, warn)
    ctx = CheckContext.of(settings, subscriptions)
    by_host: dict[str, list[cfg.Source]] = defaultdict(list)
    for src in selected:
        by_host[host_of(src.url)].append(src)
    results: list[CheckResult] = []
    lock = threading.Lock()

    def run_host(host: str, items: list[cfg.Source]) -> None:
        for src in items:
            allowed = store.host_allowed_at(host)
            wait = schedule.one_shot_wait(ctx.clock(), allowed)
            if wait is None:
                assert allowed is not None
                result = CheckResult(
                    src.name, "postponed", f"{host} asked for a rest until "
                    f"{allowed:%Y-%m-%d %H:%M:%S} UTC (Retry-After or Crawl-delay); not asked now")
            else:
                sleep(wait)
                result = check_source(store, fetchers, src, ctx=ctx)
            with lock:
                results.append(result)
                on_result(result)

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(settings.workers, len(by_host)))) as pool:
            list(pool.map(run_host, by_host, by_host.values()))
    finally:
        fetchers.close()
    return results


def build_scheduler(dispatcher: Dispatcher, maintenance: Callable[[], None]) -> BackgroundScheduler:
    """The APScheduler 3.x jobs: lease renewal every third of a lease, maintenance hourly."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={
            "coalesce": True,  # a late run happens once, not once per missed period
            "max_instances": 1,
            "misfire_grace_time": None,  # a busy pool delays a run; it must never drop it
        },
    )
    scheduler.add_job(dispatcher.renew, IntervalTrigger(seconds=dispatcher.lease_seconds / 3),
                      id="renew", name="renew leases")
    scheduler.add_job(maintenance, IntervalTrigger(hours=1), id="maintenance", name="maintenance")

    def on_event(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("job %s missed its run time", event.job_id)
        elif event.exception is not None:
            log.error("job %s failed: %s", event.job_id, event.exception)

    scheduler.add_listener(on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    return scheduler
