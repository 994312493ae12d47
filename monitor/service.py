"""The daemon's life: start order, signals, systemd notify and watchdog, clean stop.

SIGTERM/SIGINT only set an event; the main thread stops claiming work, lets running checks
finish (up to `shutdown_timeout`) and exits 0. SIGHUP re-reads sources.toml and keeps the old
config if the new one is invalid. WATCHDOG=1 is sent only while the dispatch loop keeps running
and the database answers, so a wedged scheduler gets restarted by systemd.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select

from monitor import config as cfg
from monitor.errors import ConfigError, StoreError
from monitor.models import Host, SourceRow
from monitor.scheduler import Dispatcher, build_scheduler
from monitor.sdnotify import Notifier
from monitor.store import DatabaseClock, Store
from monitor.store.trouble import MARKER, TROUBLE, DatabaseTrouble
from monitor.wording import plural

log = logging.getLogger("monitor.service")
STATUS_EVERY = 10.0
COUNT_EVERY = 3600.0  # a million rows take a second to count
EX_IOERR = 74  # sysexits.h: systemd's Restart=on-failure tries again, and init/recovery can follow


def _now() -> datetime:
    return datetime.now(UTC)


class Service:
    """Owns the store, the dispatcher, the APScheduler instance and the signal flags."""

    def __init__(self, config_path: str | os.PathLike[str] | None,
                 clock: Callable[[], datetime] = _now, notifier: Notifier | None = None) -> None:
        self.config_path = config_path
        self.config = cfg.load_for_daemon(config_path, targets=True)
        self.notifier = notifier or Notifier()
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()
        self.store = Store.from_settings(self.config.settings)
        # Every time the daemon writes (leases, due times, host gaps) is the database's, so
        # daemons on machines whose clocks disagree still share one schedule.
        self.clock = DatabaseClock(self.store, clock)
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.rng = random.Random()
        self._enabled, self._counted_at = 0, -COUNT_EVERY

    # ---- signals ------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s: stopping", signal.Signals(signum).name)
            self.stop_event.set()

        def reload(_signum: int, _frame: FrameType | None) -> None:
            self.reload_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    # ---- lifecycle ------------------------------------------------------------------------

    def prepare(self) -> None:
        self.store.require_schema()
        if not self.store.integrity_ok():
            # Never write into a damaged file: stop, say so, and leave it for `sqlite3 .recover`.
            raise StoreError(f"the database failed PRAGMA quick_check; not starting "
                             f"({self.store.url})")
        settings = self.config.settings
        # sources.toml's own list is synced (imported lists are written by `sources import`);
        # from here on the database is the watch list: a source is read when it is claimed.
        self._sync(self.config)
        new = self.store.schedule_new(self.clock(), self.rng, settings.interval)
        log.info("sources=%d (%d in sources.toml) newly scheduled=%d owner=%s",
                 self.enabled_sources(force=True), len(self.config.sources), new, self.owner)

    def _sync(self, config: cfg.Config) -> None:
        if config.sources_skipped:
            log.info("%s is larger than %d MB: its sources are not read here; `policy-monitor "
                     "init` or `sources sync` writes them into the database, which daemons "
                     "check from", config.path, cfg.LARGE_CONFIG // 1_000_000)
            return
        self.store.sync_sources(config.sources, config.settings.interval)

    def reload(self, dispatcher: Dispatcher) -> None:
        try:
            new = cfg.load_for_daemon(self.config_path, targets=True)
            self._sync(new)  # refused too when a name is an imported list's
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused, keeping the old config: %s", problem)
            return
        self.enabled_sources(force=True)
        scheduled = self.store.schedule_new(self.clock(), self.rng, new.settings.interval)
        self.config = new
        dispatcher.config = new
        log.info("reloaded %s: %d sources, %d newly scheduled", new.path, len(new.sources), scheduled)

    def enabled_sources(self, force: bool = False) -> int:
        """Enabled sources of every list, counted by the database at most every COUNT_EVERY
        seconds (a count of a million rows is not for every status line)."""
        now = time.monotonic()
        if force or now - self._counted_at >= COUNT_EVERY:
            with self.store.read() as s:
                self._enabled = s.scalar(select(func.count()).select_from(SourceRow)
                                         .where(SourceRow.enabled.is_(True))) or 0
            self._counted_at = now
        return self._enabled

    def status_line(self) -> str:
        enabled = self.enabled_sources()
        with self.store.read() as s:
            # Written as the partial index's own predicate, so the planner uses it.
            failing = s.scalar(select(func.count()).select_from(SourceRow)
                               .where(SourceRow.failing == True, SourceRow.enabled)) or 0  # noqa: E712
            upcoming = s.scalar(select(func.min(Host.ready_at)))  # an index probe
        nxt = upcoming.strftime("%H:%M:%S") if upcoming else "-"
        return f"{plural(enabled, 'source')}, {failing} failing, next check {nxt}"

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; return the exit status."""
        self.prepare()
        settings = self.config.settings
        TROUBLE.marker = settings.data_dir / MARKER
        dispatcher = Dispatcher(self.store, self.config, self.owner, self.clock)
        scheduler = build_scheduler(dispatcher, self.maintenance)
        self.add_notification_jobs(scheduler)
        scheduler.start()
        dispatcher.start()
        self.notifier.ready(self.status_line())
        log.info("running: %d workers, leases of %.0fs", settings.workers, settings.lease_duration)
        watchdog = self.notifier.watchdog_interval
        tick = min(1.0, watchdog / 2) if watchdog else 1.0
        last_ping = last_status = 0.0
        reported: str | None = None
        told: str | None = None  # the database trouble the status line reports
        healthy_within = max(3 * settings.dispatch_interval, 5.0)
        status = 0
        while not self.stop_event.wait(tick):
            if self.store.fatal:
                # The database file is gone, replaced or damaged: every check would be lost.
                log.error("stopping: %s", self.store.fatal)
                self.notifier.status(f"stopped: {self.store.fatal}")
                status = EX_IOERR
                break
            if self.reload_event.is_set():
                self.reload_event.clear()
                self.reload(dispatcher)
            now = time.monotonic()
            problem = dispatcher.problem(healthy_within)
            if problem is not None and problem != reported:
                # No WATCHDOG=1 from here on: systemd restarts a daemon that makes no progress.
                log.error("not healthy: %s", problem)
                self.notifier.status(f"not healthy: {problem}")
            reported = problem
            outage = TROUBLE.outage
            if outage is not None and outage.kind != told:
                self.notifier.status(f"waiting for the database: {outage.message}")
            elif outage is None and told is not None:
                last_status = 0.0  # say at once that all is well again
            told = outage.kind if outage is not None else None
            if watchdog and now - last_ping >= watchdog and problem is None:
                self.notifier.watchdog()
                last_ping = now
            if problem is None and told is None and now - last_status >= STATUS_EVERY:
                try:
                    self.notifier.status(self.status_line())
                except Exception:
                    log.exception("status line failed")
                last_status = now

        self.notifier.stopping()
        from monitor import notify

        notify.stop()  # a receiver that hangs holds no one: its delivery stays in the outbox
        scheduler.shutdown(wait=False)
        finished = dispatcher.stop(self.config.settings.shutdown_timeout)
        if not finished:
            # Unfinished checks have not committed: their transactions die with the process,
            # so nothing partial is left, and their leases expire for the next run.
            log.warning("stopping with checks still running after %.0fs; they are discarded",
                        self.config.settings.shutdown_timeout)
            logging.shutdown()
            os._exit(0)
        self.store.close()
        log.info("stopped cleanly" if status == 0 else "stopped")
        if notify.sends_left():
            # A receiver still holds a send past its deadline; its delivery stays in the
            # outbox for the next run. Exiting must not wait for it (apprise's worker threads
            # are joined at interpreter exit).
            logging.shutdown()
            os._exit(status)
        return status

    def add_notification_jobs(self, scheduler: BackgroundScheduler) -> None:
        """Outbox delivery every notify_interval; digests at digest_time (UTC)."""
        settings = self.config.settings
        hour, minute = (int(x) for x in settings.digest_time.split(":"))
        scheduler.add_job(self.flush, IntervalTrigger(seconds=settings.notify_interval),
                          id="notify", name="notify", next_run_time=datetime.now(UTC))
        scheduler.add_job(self.digests, CronTrigger(hour=hour, minute=minute, timezone=UTC),
                          args=[cfg.Mode.DAILY], id="digest-daily", name="digest-daily")
        scheduler.add_job(self.digests, CronTrigger(day_of_week="mon", hour=hour, minute=minute,
                                                    timezone=UTC),
                          args=[cfg.Mode.WEEKLY], id="digest-weekly", name="digest-weekly")

    def flush(self) -> None:
        from monitor import notify

        try:
            # A slow receiver delays neither the others nor the next run of this job.
            result = notify.flush(self.store, self.config, self.clock,
                                  wait=self.config.settings.notify_interval)
            if result.sent or result.failed:
                log.info("notifications: sent %d, retrying %d, failed %d", result.sent,
                         result.retrying, result.failed)
        except DatabaseTrouble as exc:
            TROUBLE.report(exc)
        except Exception:
            log.exception("notification delivery failed")

    def digests(self, mode: cfg.Mode) -> None:
        from monitor import notify

        try:
            queued = notify.queue_digests(self.store, self.config, self.clock(), mode)
            log.info("%s digests queued: %d", mode, queued)
        except DatabaseTrouble as exc:
            TROUBLE.report(exc)
        except Exception:
            log.exception("digest failed")

    def maintenance(self) -> None:
        try:
            self.store.checkpoint()
            keep = self.config.settings.check_retention
            if keep:
                from datetime import timedelta

                from monitor.store.retention import compact_checks

                dropped = compact_checks(self.store, self.clock() - timedelta(seconds=keep))
                if dropped:
                    log.info("retention: %d old unchanged checks thinned", dropped)
        except DatabaseTrouble as exc:
            TROUBLE.report(exc)
        except Exception:
            log.exception("maintenance failed")


def main(config_path: str | os.PathLike[str] | None) -> int:
    """Entry point of `policy-monitor run`."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="%(levelname)s %(name)s: %(message)s")
    # One line per event we care about; APScheduler's per-run chatter would drown them.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    service = Service(config_path)
    service.install_signal_handlers()
    try:
        return service.run()
    finally:
        service.notifier.close()

