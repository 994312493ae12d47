"""The commands. Thin: parse arguments, call the pipeline or a read view, print.

Errors the user can act on are one line on stderr and a non-zero exit status (78 for config
errors, so systemd does not restart into the same broken file); never a traceback unless -v.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import click

# Only what defines the commands is imported here. Everything else, down to most of the
# standard library, is imported by the commands that use it: SQLAlchemy alone takes most of a
# second on a small machine, and `--help` or `changes` should not wait for what they never use.
from monitor.errors import ConfigError, MonitorError, StoreError, unknown_source
from monitor.wording import (
    LABELS,
    SEVERITIES,
    iso,
    plain_text,
    plural,
    safe_terminal_text,
    severity_rank,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from monitor import config as cfg
    from monitor.pipeline import CheckResult
    from monitor.store import Store

F = TypeVar("F", bound=Callable[..., Any])
CONFIG_ENV = "POLICY_MONITOR_CONFIG"  # the same as monitor.config.CONFIG_ENV


class Context:
    """Lazily loaded config and store, shared by the commands of one invocation."""

    def __init__(self, config_path: str | None, verbose: bool) -> None:

        self.config_path = config_path
        self.verbose = verbose
        self._config: cfg.Config | None = None
        self._store: Store | None = None

    @property
    def config(self) -> cfg.Config:
        """The config as the read commands need it (selectors not compiled)."""
        from monitor import config as cfg

        if self._config is None:
            self._config = cfg.load(self.config_path, selectors=False)
        return self._config

    def checked_config(self, *, targets: bool = False) -> cfg.Config:
        """The config with its selectors compiled, and with `targets` every alert target parsed
        too: for the commands that fetch, or start things."""
        from monitor import config as cfg

        self._config = cfg.load(self.config_path, targets=targets)
        return self._config

    def store(self, *, require_schema: bool = True) -> Store:
        from monitor.store import Store

        if self._store is None:
            if require_schema:
                missing = Store.missing_file(self.config.settings.database)
                if missing is not None:  # opening would leave an empty file behind
                    raise StoreError(f"no database at {missing}; run `policy-monitor init` first")
            self._store = Store.from_settings(self.config.settings)
            started()
        if require_schema:
            self._store.require_schema()
        return self._store

    def source(self, name: str) -> cfg.Source:
        """The configured source of this name, or an error that names the nearest ones."""
        found = self.config.source(name)
        if found is None:
            raise unknown_source(name, (s.name for s in self.config.sources), " in the config")
        return found

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def handle_errors(func: F) -> F:
    """Turn expected errors into one line on stderr and the right exit status."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        verbose = bool(ctx.find_root().params.get("verbose"))
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(f"error: {problem}", err=True)
            ctx.exit(ConfigError.exit_code)
        except MonitorError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if verbose:
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            click.echo(f"error: internal error: {type(exc).__name__}: {first} (run with -v for "
                       "details)", err=True)
            ctx.exit(70)

    return wrapper  # type: ignore[return-value]


def _echo_json(rows: Iterable[Any]) -> None:
    import json

    click.echo(json.dumps([r.to_dict() if hasattr(r, "to_dict") else r for r in rows],
                          ensure_ascii=False, indent=2))


def _ago(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in headers]] + [[safe_terminal_text(str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for r in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _parse_since(value: str | None) -> datetime | None:
    from datetime import UTC, datetime

    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MonitorError(f"{value!r} is not a date (use e.g. 2024-09-18)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.group()
@click.option("--config", "config_path", metavar="PATH", envvar=CONFIG_ENV,
              help="sources.toml to use (default ./sources.toml; env POLICY_MONITOR_CONFIG).")
@click.option("-v", "--verbose", is_flag=True, help="Log each step to stderr; show tracebacks.")
@click.version_option(package_name="policy-monitor")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """Watch privacy policies and terms; keep every version; show what changed."""
    import logging

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    ctx.obj = Context(config_path, verbose)
    ctx.call_on_close(ctx.obj.close)


pass_context = click.make_pass_decorator(Context)


@main.command()
@pass_context
@handle_errors
def init(ctx: Context) -> None:
    """Create the data directory and database (alembic upgrade head), and register sources."""
    settings = ctx.checked_config(targets=True).settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = ctx.store(require_schema=False)
    revision = _upgrade(store, settings)
    store.sync_sources(ctx.config.sources, ctx.config.settings.interval)
    click.echo(f"database ready at revision {revision}: {_safe_url(store.url)}")
    click.echo(f"{plural(len(ctx.config.sources), 'source')} from {ctx.config.path}")


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@pass_context
@handle_errors
def db_upgrade(ctx: Context) -> None:
    """Apply pending migrations (backs up a SQLite database first)."""
    settings = ctx.config.settings
    store = ctx.store(require_schema=False)
    revision = _upgrade(store, settings)
    click.echo(f"database at revision {revision}")


def _upgrade(store: Store, settings: cfg.Settings) -> str | None:
    """Migrations, then a verdict for every change stored before verdicts existed."""
    from monitor.judge import judge_stored

    revision = store.upgrade(backup_dir=settings.data_dir / "backups")
    judge_stored(store)
    return revision


@main.group("sources")
def sources_group() -> None:
    """The watched pages."""


@sources_group.command("validate")
@pass_context
@handle_errors
def sources_validate(ctx: Context) -> None:
    """Check sources.toml and every alert target; report each problem with file, line, field."""
    conf = ctx.checked_config(targets=True)
    enabled = sum(1 for s in conf.sources if s.enabled)
    click.echo(f"{conf.path}: ok ({plural(len(conf.sources), 'source')}, {enabled} enabled)")


@sources_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@handle_errors
def sources_list(ctx: Context, as_json: bool) -> None:
    """Sources with their last check, outcome and number of versions."""
    from monitor import history

    store = ctx.store()
    store.sync_sources(ctx.config.sources, ctx.config.settings.interval)
    rows = history.sources(store)
    if as_json:
        _echo_json(rows)
        return
    _table(
        ["NAME", "PLATFORM", "KIND", "ENABLED", "LAST CHECK", "OUTCOME", "FAILS", "VERSIONS",
         "PROBLEM"],
        [[r.name, r.platform, r.kind, "yes" if r.enabled else "no", _ago(r.last_check_at),
          r.last_outcome or "-", r.consecutive_failures, r.versions,
          _problem(r.last_failure_kind, r.last_error, r.failing_since)] for r in rows],
    )


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or url).lower()


def run_checks(
    store: Store,
    settings: cfg.Settings,
    selected: Sequence[cfg.Source],
    on_result: Callable[[CheckResult], None],
    workers: int = 8,
    subscriptions: tuple[cfg.Subscription, ...] = (),
) -> list[CheckResult]:
    """Check sources in parallel across hosts, one at a time per host with a polite delay."""
    import threading
    import time
    from collections import defaultdict
    from concurrent.futures import ThreadPoolExecutor
    from datetime import timedelta

    from monitor.browser import INSTALL_HINT, browser_for
    from monitor.fetch import Fetcher
    from monitor.pipeline import CheckContext, check_source
    from monitor.robots import RobotsCache

    fetcher = Fetcher(settings)
    robots = RobotsCache(fetcher, settings.user_agent) if settings.respect_robots else None
    browser = browser_for(settings, selected)
    if browser is not None and not browser.available:
        click.echo(f"note: {INSTALL_HINT}; sources that need a browser will fail", err=True)
    ctx = CheckContext(policy=settings.policy, failure_threshold=settings.failure_threshold,
                       robots=robots, subscriptions=subscriptions,
                       event_window=timedelta(seconds=settings.event_window),
                       default_fetcher=settings.fetcher, browser=browser)
    by_host: dict[str, list[cfg.Source]] = defaultdict(list)
    for src in selected:
        by_host[_host(src.url)].append(src)
    results: list[CheckResult] = []
    lock = threading.Lock()

    def run_host(items: list[cfg.Source]) -> None:
        for i, src in enumerate(items):
            if i:
                time.sleep(settings.per_host_delay)
            result = check_source(store, fetcher, src, ctx=ctx)
            with lock:
                results.append(result)
                on_result(result)

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(by_host)))) as pool:
            list(pool.map(run_host, by_host.values()))
    finally:
        fetcher.close()
        if browser is not None:
            browser.close()
    return results


@main.command()
@click.argument("names", nargs=-1, metavar="[SOURCE]...")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object per source (and no summary).")
@click.option("-v", "--verbose", is_flag=True,
              help="A line per source, unchanged ones and each failure included.")
@click.option("--fail-on-error", is_flag=True, help="Exit 1 if any check failed.")
@pass_context
@handle_errors
def check(ctx: Context, names: tuple[str, ...], as_json: bool, verbose: bool,
          fail_on_error: bool) -> None:
    """Check each enabled source (or the named ones) once, now, and sum up.

    Without -v, changes and first snapshots are printed as they come; failures follow at the
    end, one line for each cause that several sources share; a summary line closes.
    Exit status: 0 when every check ran (failed pages are recorded and retried), 1 with
    --fail-on-error when any check failed, 78 for a bad config.
    """
    import json
    import time

    from monitor import summary

    conf = ctx.checked_config()
    store = ctx.store()
    store.sync_sources(conf.sources, conf.settings.interval)
    selected = [ctx.source(n) for n in names] if names else [s for s in conf.sources if s.enabled]

    def show(result: CheckResult) -> None:
        if as_json:
            line: dict[str, object] = {
                "source": result.source, "outcome": result.outcome, "detail": result.detail,
                "change_id": result.change_id, "snapshot_id": result.snapshot_id,
                "failure_kind": str(result.failure_kind) if result.failure_kind else None,
                "fetcher": result.fetcher,
            }
            if result.change_id is not None:  # what the change means, as changes --json says it
                from monitor import history

                d = history.change_detail(store, result.change_id)
                line.update(labels=d.labels, severity=d.severity, **d.meaning(),
                            opt_out=d.opt_out)
            click.echo(json.dumps(line, ensure_ascii=False))
        elif verbose or result.outcome in ("changed", "baseline"):
            click.echo(_check_line(result))

    started = time.monotonic()
    results = run_checks(store, conf.settings, selected, show, subscriptions=conf.subscriptions)
    report = summary.summarise(results, time.monotonic() - started)
    if not as_json and not verbose:
        shown = summary.grouped(report.groups)
        for result in sorted(results, key=lambda r: r.source):
            if result.outcome == "failed" and result.source not in shown:
                click.echo(_check_line(result))
        for group in report.groups:
            click.echo(group.line() + " (-v lists each)")
    if not as_json:
        click.echo(report.line())
    unrecorded = [r for r in results if not r.recorded]
    if unrecorded:  # the database refused the writes (disk full, file gone): say so, exit 1
        raise StoreError(f"{plural(len(unrecorded), 'check')} could not be recorded and will be "
                         f"retried: {unrecorded[0].detail}")
    if fail_on_error and any(r.outcome == "failed" for r in results):
        click.get_current_context().exit(1)


def _check_line(result: CheckResult) -> str:
    from monitor.browser import INSTALL_HINT

    if result.detail == INSTALL_HINT:  # said once above, not once per source
        return f"{result.source}: failed: no browser to render it (see the note above)"
    return result.line()


@main.command()
@pass_context
@handle_errors
def run(ctx: Context) -> None:
    """Run the daemon: check every source on its interval until SIGTERM (systemd-friendly)."""
    from monitor import service

    path = ctx.checked_config(targets=True).path  # validates the config first: exit 78 on errors
    started()
    click.get_current_context().exit(service.main(path))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--max-failures", type=int, default=None, metavar="N",
              help="Exit 1 if any source failed more than N times in a row "
                   "(default: failure_threshold).")
@pass_context
@handle_errors
def status(ctx: Context, as_json: bool, max_failures: int | None) -> None:
    """Per source: last check, outcome, last change, failures in a row, next due."""
    from monitor import history

    limit = ctx.config.settings.failure_threshold if max_failures is None else max_failures
    rows = history.status(ctx.store())
    if as_json:
        _echo_json(rows)
    else:
        _table(
            ["NAME", "LAST CHECK", "OUTCOME", "LAST CHANGE", "FAILS", "NEXT DUE", "STATE", "PROBLEM"],
            [[r.name, _ago(r.last_check_at), r.last_outcome or "-", _ago(r.last_change_at),
              r.consecutive_failures, _ago(r.next_check_at),
              "failing" if r.failing else ("disabled" if not r.enabled else "ok"),
              _problem(r.last_failure_kind, r.last_error, r.failing_since)] for r in rows],
        )
    alarms = [t for t in ctx.store().target_health(failing_only=True) if t.alert_at]
    for t in alarms:
        click.echo(f"alert target failing: {t.subscription}#{t.target} {t.masked} since "
                   f"{_ago(t.failing_since)}: {_cut(t.last_error, 100)}", err=as_json)
    over = [r.name for r in rows if r.enabled and r.consecutive_failures > limit]
    if alarms and not over:
        click.get_current_context().exit(1)
    if over:
        which = "--max-failures" if max_failures is not None else "failure_threshold"
        click.echo(f"status: {plural(len(over), 'source')} failed more than {limit} "
                   f"times in a row ({which} = {limit}): {', '.join(over[:5])}"
                   + (", …" if len(over) > 5 else ""), err=True)
        click.get_current_context().exit(1)


def _problem(kind: str | None, reason: str | None, since: datetime | None) -> str:
    """`transient since 2026-12-01 20:50: connection failed…`, cut to fit a table cell."""
    if not reason:
        return ""
    text = f"{kind or 'failed'} since {_ago(since)}: {reason}"
    return text if len(text) <= 90 else text[:89] + "…"


@main.group("subscriptions")
def subscriptions_group() -> None:
    """Who gets alerts."""


@subscriptions_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@handle_errors
def subscriptions_list(ctx: Context, as_json: bool) -> None:
    """Subscriptions with their filters; secrets in URLs are masked."""
    rows: list[dict[str, Any]] = [
            {"name": s.name, "mode": str(s.mode), "url": list(s.masked()), "labels": list(s.labels),
             "platforms": list(s.platforms), "sources": list(s.sources),
             "min_severity": s.min_severity, "include_cosmetic": s.include_cosmetic}
            for s in ctx.config.subscriptions]
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("no subscriptions (add [[subscription]] tables to sources.toml)")
        return
    _table(["NAME", "MODE", "MIN", "LABELS", "PLATFORMS", "TARGETS"],
           [[r["name"], r["mode"], r["min_severity"], ",".join(r["labels"]) or "any",
             ",".join(r["platforms"]) or "any", " ".join(r["url"])] for r in rows])


@main.group("notify")
def notify_group() -> None:
    """Send alerts."""


@notify_group.command("test")
@click.argument("name", metavar="SUBSCRIPTION")
@pass_context
@handle_errors
def notify_test(ctx: Context, name: str) -> None:
    """Send a sample alert to every target of SUBSCRIPTION and report each result."""
    from monitor import notify

    sub = ctx.config.subscription(name)
    if sub is None:
        raise MonitorError(f"no subscription named {name!r} (see `subscriptions list`)")
    failed = False
    for target, ok, error in notify.send_test(ctx.config, sub):
        click.echo(f"{target}: {'sent' if ok else 'failed: ' + error}")
        failed = failed or not ok
    if failed:
        click.get_current_context().exit(1)


@notify_group.command("flush")
@pass_context
@handle_errors
def notify_flush(ctx: Context) -> None:
    """Send every due delivery once (what the daemon does every notify_interval)."""
    from monitor import notify

    result = notify.flush(ctx.store(), ctx.config)
    merged = f", merged {result.merged} (already told)" if result.merged else ""
    click.echo(f"sent {result.sent}, will retry {result.retrying}, failed {result.failed}{merged}")


@notify_group.command("retry")
@click.argument("ids", nargs=-1, type=int, metavar="[DELIVERY_ID]...")
@pass_context
@handle_errors
def notify_retry(ctx: Context, ids: tuple[int, ...]) -> None:
    """Put failed deliveries (all, or the given ones) back in the queue."""
    from datetime import UTC, datetime

    count = ctx.store().retry_failed(ids, datetime.now(UTC))
    click.echo(f"{count} deliveries queued again")


@notify_group.command("digest")
@pass_context
@handle_errors
def notify_digest(ctx: Context) -> None:
    """Queue the daily/weekly digests now (the daemon does it at digest_time)."""
    from monitor import notify

    click.echo(f"{notify.queue_digests(ctx.store(), ctx.config)} digest deliveries queued")


@main.command()
@click.option("--failed", "failed_only", is_flag=True, help="Only deliveries that gave up.")
@click.option("--failing", is_flag=True,
              help="Alert targets whose latest attempts failed, even while still retrying.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@handle_errors
def deliveries(ctx: Context, failed_only: bool, failing: bool, as_json: bool) -> None:
    """The alert outbox: what was sent, what is pending, what failed, where and why."""
    from monitor import config as cfg
    from monitor.wording import error_class

    store = ctx.store()
    if failing:
        health = store.target_health(failing_only=True)
        if as_json:
            _echo_json({"subscription": t.subscription, "target": t.target, "url": t.masked,
                        "failing_since": iso(t.failing_since),
                        "last_attempt_at": iso(t.last_attempt_at),
                        "last_success_at": iso(t.last_success_at), "error": t.last_error,
                        "error_class": error_class(t.last_error), "alert_at": iso(t.alert_at)}
                       for t in health)
            return
        if not health:
            click.echo("no alert target is failing")
        _table(["SUBSCRIPTION", "TARGET", "FAILING SINCE", "PROBLEM", "LAST SUCCESS", "ERROR"],
               [[f"{t.subscription}#{t.target}", t.masked, _ago(t.failing_since),
                 error_class(t.last_error), _ago(t.last_success_at) if t.last_success_at else "never",
                 _cut(t.last_error, 70)] for t in health])
        return
    masked = {(sub.name, i): cfg.mask_url(url) for sub in ctx.config.subscriptions
              for i, url in enumerate(sub.url)}
    rows = store.deliveries(failed_only)

    def problem(d: Any) -> str:
        return error_class(d.last_error) if d.status != "merged" else ""

    if as_json:
        _echo_json({"id": d.id, "kind": d.kind, "change_id": d.change_id,
                    "subscription": d.subscription, "target": d.target,
                    "url": masked.get((d.subscription, d.target)), "status": d.status,
                    "attempts": d.attempts, "next_attempt_at": iso(d.next_attempt_at),
                    "sent_at": iso(d.sent_at), "error": d.last_error, "error_class": problem(d)}
                   for d in rows)
        return
    _table(["ID", "KIND", "CHANGE", "TARGET", "STATUS", "TRIES", "PROBLEM", "NEXT TRY", "ERROR"],
           [[d.id, d.kind, d.change_id or "-",
             f"{d.subscription}#{d.target} {masked.get((d.subscription, d.target)) or '(gone from config)'}",
             d.status, d.attempts, problem(d) or "-",
             _ago(d.next_attempt_at) if d.status == "pending" and d.last_error else "-",
             _cut(d.last_error, 60)] for d in rows])


def _terminal(text: str) -> str:
    """Page text for a terminal: Markdown links as "text (url)", control characters inert."""
    return safe_terminal_text(plain_text(text))


def _cut(text: str | None, width: int) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[:width - 1] + "…"


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to bind.")
@pass_context
@handle_errors
def serve(ctx: Context, host: str, port: int) -> None:
    """Serve the read-only web UI, Atom feeds and JSON API (loopback unless a token is set)."""
    import errno
    import ipaddress
    import socket

    import uvicorn

    from monitor.web.app import create_app

    conf = ctx.config
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not conf.settings.web_token:
        raise MonitorError(f"refusing to serve on {host} without web_token: anyone who can reach "
                           "it would read your monitoring data (set web_token in [settings])")
    ctx.store()  # the schema must exist
    # Bind first, ourselves: a busy port is one clear line, and the URL is printed once the
    # port is ours (connections made before the server loop starts wait in the backlog).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = "is in use (another `serve`?); pick another with --port" \
            if exc.errno == errno.EADDRINUSE else f"cannot be used: {exc.strerror}"
        raise MonitorError(f"port {port} on {host} {why}") from None
    sock.listen(128)
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    click.echo(f"serving the web UI at http://{shown}:{sock.getsockname()[1]}/ (Ctrl-C to stop)")
    server = uvicorn.Server(uvicorn.Config(create_app(conf), log_level="warning",
                                           access_log=False))
    server.run(sockets=[sock])


@main.command("history")
@click.argument("name", metavar="SOURCE")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@handle_errors
def history_cmd(ctx: Context, name: str, as_json: bool) -> None:
    """Versions of a source: time, hash, size and change stats."""
    from monitor import history

    rows = history.versions(ctx.store(), name)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo(f"{name}: no versions yet (run `policy-monitor check {name}`)")
        return
    _table(
        ["SNAPSHOT", "SEEN", "SHA256", "SIZE", "CHANGE", "WORDS", "FETCHER"],
        [[r.snapshot_id, _ago(r.seen_at), r.sha256[:12], r.size,
          r.change_id or "baseline", f"+{r.words_added} -{r.words_removed}"
          + (" (re-extracted)" if r.reextracted else ""), r.fetcher or "http"] for r in rows],
    )


@main.command()
@click.argument("snapshot_id", type=int)
@click.option("--raw", is_flag=True, help="Print the stored raw body instead of the text.")
@pass_context
@handle_errors
def show(ctx: Context, snapshot_id: int, raw: bool) -> None:
    """Print one version's text (or, with --raw, the page as fetched)."""
    from monitor import history

    if raw:
        _, body = history.raw(ctx.store(), snapshot_id)
        if sys.stdout.isatty():  # the exact bytes go to a file or pipe, never to a terminal
            click.echo(safe_terminal_text(body.decode("utf-8", "replace")), nl=False)
            return
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
    else:
        _, text = history.snapshot(ctx.store(), snapshot_id)
        click.echo(safe_terminal_text(text), nl=False)


@main.command("diff")
@click.argument("name", metavar="SOURCE")
@click.option("--from", "from_id", type=int, help="Snapshot id of the old version.")
@click.option("--to", "to_id", type=int, help="Snapshot id of the new version (default: current).")
@click.option("--format", "fmt", type=click.Choice(["unified", "inline", "side-by-side", "json"]),
              default="unified", show_default=True)
@click.option("--color", "color_mode", type=click.Choice(["auto", "always", "never"]),
              default="auto", show_default=True,
              help="Highlight added and removed words (auto: when stdout is a terminal and "
                   "NO_COLOR is not set).")
@click.option("--width", type=click.IntRange(min=20), default=None,
              help="Wrap lines at this many columns (default: the terminal's width; "
                   "no wrapping when stdout is not a terminal).")
@pass_context
@handle_errors
def diff_cmd(ctx: Context, name: str, from_id: int | None, to_id: int | None, fmt: str,
             color_mode: str, width: int | None) -> None:
    """Show what changed (default: the latest change of SOURCE)."""
    import json
    import os
    import shutil

    from monitor import diff as difflib
    from monitor import history

    old, new, d = history.diff_between(ctx.store(), name, from_id, to_id)
    if fmt == "json":
        click.echo(json.dumps({"source": name, "from": old, "to": new, **d.to_dict()},
                              ensure_ascii=False, indent=2))
    elif fmt == "inline":
        click.echo(safe_terminal_text(difflib.inline_html(d)))
    elif fmt == "side-by-side":
        click.echo(safe_terminal_text(difflib.side_by_side_html(d)))
    else:
        tty = sys.stdout.isatty()
        color = color_mode == "always" or (color_mode == "auto" and tty
                                           and not os.environ.get("NO_COLOR"))
        if width is None and tty:
            width = shutil.get_terminal_size().columns
        text = difflib.terminal(d, f"{name}@{old}", f"{name}@{new}", width=width, color=color)
        click.echo(text or f"{name}: snapshots {old} and {new} have the same text",
                   nl=bool(not text), color=color)


@main.command()
@click.option("--source", "source", metavar="SOURCE", help="Only this source.")
@click.option("--since", metavar="DATE", help="Only changes detected on or after DATE (ISO 8601).")
@click.option("--label", "labels", multiple=True, type=click.Choice(LABELS),
              help="Only changes with this label (repeat for any of several).")
@click.option("--min-severity", type=click.Choice(SEVERITIES), help="Only changes at least this severe.")
@click.option("--limit", type=int, default=None, help="At most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@handle_errors
def changes(ctx: Context, source: str | None, since: str | None, labels: tuple[str, ...],
            min_severity: str | None, limit: int | None, as_json: bool) -> None:
    """Detected changes, newest first, with labels and severity."""
    from monitor import history

    rows = history.changes(ctx.store(), source, _parse_since(since), limit=limit, labels=labels,
                           min_severity=min_severity)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("no changes")
        return
    _table(
        ["ID", "DETECTED", "SOURCE", "WORDS", "SEVERITY", "LABELS", "SUMMARY"],
        [[r.id, _ago(r.detected_at), r.source, f"+{r.words_added} -{r.words_removed}",
          r.severity or "-", ",".join(r.labels or []) or "-", r.summary or ""]
         for r in rows],
    )


@main.command()
@click.argument("words", nargs=-1, required=True)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@handle_errors
def search(ctx: Context, words: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Which pages say WORDS now, since when, and which stopped saying them and when."""
    from monitor import history

    hits = history.search(ctx.store(), " ".join(words), limit)
    if as_json:
        _echo_json(hits)
        return
    if not hits:
        click.echo(f"no page says {' '.join(words)!r}, now or before")
        return
    _table(["SOURCE", "NOW", "FIRST SEEN", "REMOVED", "SENTENCE"],
           [[h.source, "yes" if h.present else "no", _ago(h.first_seen_at), _ago(h.removed_at),
             _cut(_terminal(h.sentence), 90)] for h in hits])


@main.command()
@click.argument("change_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@handle_errors
def explain(ctx: Context, change_id: int, as_json: bool) -> None:
    """Why a change got its labels: the evidence, quoted, and how to opt out."""
    import json

    from monitor import history
    from monitor.classify import READ_MATCHING, mark

    d = history.change_detail(ctx.store(), change_id)
    if as_json:
        click.echo(json.dumps(d.to_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(_terminal(f"change {d.id}: {d.title or d.source} ({d.platform}), "
                         f"detected {_ago(d.detected_at)}"))
    click.echo(f"severity: {d.severity or 'unclassified'}; labels: {', '.join(d.labels) or '-'}")
    click.echo(_terminal(f"headline: {d.headline}"))
    if d.verdict:
        regions = f"; regions excluded: {', '.join(d.regions_excluded)}" \
            if d.regions_excluded else ""
        click.echo(_terminal(f"verdict: {', '.join(d.verdict)}; default: {d.default or 'n/a'}"
                             f"{regions}"))
    click.echo(_terminal(f"summary: {d.summary or '-'}"))
    if d.event_id:
        click.echo(f"event: {d.event_id}")
    if d.anomaly:
        click.echo(_terminal(f"\nDamped to low, not alerted as an AI change: "
                             f"{d.anomaly.get('why', '')} ({d.anomaly.get('kind', '')})."))
    elif "cosmetic" in d.labels:
        click.echo("\nNo sentence of substance is new or gone: only moved or repeated text, dates, "
                   "punctuation, formatting, link targets or typos changed.")
    for e in d.evidence:
        click.echo(_terminal(f"\n[{e['label']}] {e['direction']}, {e['severity']}: {e['why']}"))
        if e.get("old"):
            click.echo(f"  old: {_terminal(mark(e['old'], e.get('matched', [])))}")
        if e.get("new"):
            click.echo(f"  new: {_terminal(mark(e['new'], e.get('matched', [])))}")
    if d.opt_out:
        click.echo("\nHow to opt out:")
        for o in d.opt_out:
            url = f" <{o['url']}>" if o.get("url") else ""
            subject = f" (subject “{o['subject']}”)" if o.get("subject") else ""
            detail = f"\n      {o['detail']}" if o.get("detail") else ""
            click.echo(_terminal(f"  - {o['type']}: {o['text']}{url}{subject}{detail}"))
    if d.diff.simplified:
        click.echo("\nThe page was rewritten too widely to align line by line within the diff's "
                   "time budget: changed parts are compared as whole blocks.")
    if d.skimmed:
        click.echo(f"\nA whole-page rewrite: {d.skimmed:,} changed sentences were counted, not "
                   "read one by one; every sentence a rule matches was read, up to "
                   f"{READ_MATCHING:,}.")
    if d.rules_version is not None:
        click.echo(f"\n(rules version {d.rules_version}; phrases that matched are in «»)")


@main.command("import")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--ext", "extensions", multiple=True, metavar="EXT",
              help="Only files with this extension (html, md, txt); repeatable.")
@pass_context
@handle_errors
def import_cmd(ctx: Context, directory: str, extensions: tuple[str, ...]) -> None:
    """Backfill history from a folder of dated versions (one folder per document)."""
    from pathlib import Path

    from monitor import importer

    documents = importer.discover(Path(directory), extensions or None)
    store = ctx.store()
    changes = importer.import_documents(store, documents)
    versions = sum(len(d.versions) for d in documents)
    click.echo(f"imported {plural(len(documents), 'document')}, {plural(versions, 'version')}, "
               f"{plural(len(changes), 'change')}")


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--ext", "extensions", multiple=True, metavar="EXT",
              help="Only files with this extension (html, md, txt); repeatable.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per detected change.")
@click.option("--min-severity", type=click.Choice(SEVERITIES), default=None,
              help="Only print changes at least this severe.")
@click.pass_context
@handle_errors
def replay(click_ctx: click.Context, directory: str, extensions: tuple[str, ...], as_json: bool,
           min_severity: str | None) -> None:
    """Import a folder of versions into a throwaway database and print every change."""
    import json
    import tempfile
    from pathlib import Path

    from monitor import history, importer
    from monitor.store import Store

    documents = importer.discover(Path(directory), extensions or None)
    with tempfile.TemporaryDirectory(prefix="policy-monitor-replay-") as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'replay.db'}")
        started()
        try:
            store.upgrade()

            shown = 0

            def show(item: importer.ImportedChange) -> None:
                nonlocal shown
                d = history.change_detail(store, item.change_id)
                if min_severity and severity_rank(d.severity) < severity_rank(min_severity):
                    return
                shown += 1
                if as_json:
                    click.echo(json.dumps({
                        "source": item.source, "from": item.from_stem, "to": item.to_stem,
                        "labels": d.labels, "severity": d.severity,
                        **d.meaning(),
                        "evidence": [{"label": e["label"], "old": e.get("old"), "new": e.get("new"),
                                      "direction": e.get("direction"),
                                      "severity": e.get("severity")} for e in d.evidence],
                        "opt_out": d.opt_out, "event": d.event_id,
                        "direction": d.directions, "summary": d.summary,
                    }, ensure_ascii=False))
                else:
                    click.echo(f"{item.source} {item.from_stem} → {item.to_stem}: "
                               f"{d.severity} {','.join(d.labels) or '-'} {d.summary}")

            found = importer.import_documents(store, documents, on_change=show, search_index=False)
        finally:
            store.close()
    if not as_json and not shown:
        at_least = f" at least {min_severity}" if min_severity and found else ""
        click.echo(f"no changes{at_least} found in {plural(len(documents), 'document')} "
                   f"({directory})")


@main.command()
@click.argument("name", metavar="SOURCE")
@pass_context
@handle_errors
def reextract(ctx: Context, name: str) -> None:
    """Rebuild SOURCE's versions from stored raw pages after its selectors changed."""
    from monitor.pipeline import reextract_source

    ctx.checked_config()
    source = ctx.source(name)
    store = ctx.store()
    store.sync_sources(ctx.config.sources, ctx.config.settings.interval)
    result = reextract_source(store, source)
    click.echo(f"{name}: re-extracted {plural(result.versions, 'version')} from stored pages "
               f"(generation {result.generation}; {result.skipped} skipped); "
               "not reported as page changes")


def _safe_url(url: str) -> str:
    """A database URL without its password, for printing."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def entry() -> None:
    """The `policy-monitor` program. Start-up allocates about a million objects that live as
    long as the process (modules, SQLAlchemy's tables and compiled statements), and the cyclic
    garbage collector would scan them over and over while they are created and again at exit:
    ~0.4 s of a one-shot command on a small machine. So collection waits until the command
    has imported what it needs (`started`), and what is left at exit is not scanned."""
    gc.disable()
    try:
        main(prog_name="policy-monitor")
    finally:
        gc.freeze()


def started() -> None:
    """The command's imports are done: keep what start-up built out of every later collection,
    and collect garbage from now on (a daemon or a long check must not grow without bound)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
