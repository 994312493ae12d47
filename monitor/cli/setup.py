"""Setting up and running: init, db upgrade, sources, subscriptions, run, serve."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from monitor.cli.base import (
    Context,
    _ago,
    _echo_json,
    _problem,
    _safe_url,
    _table,
    handle_errors,
    main,
    pass_context,
    started,
)
from monitor.errors import MonitorError
from monitor.wording import plural, safe_terminal_text

if TYPE_CHECKING:
    from monitor import config as cfg
    from monitor import pipeline
    from monitor.store import Store


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


@db.command("compact")
@click.option("--older-than", metavar="DURATION",
              help="Thin checks older than this (default: check_retention).")
@pass_context
@handle_errors
def db_compact(ctx: Context, older_than: str | None) -> None:
    """Thin old unchanged checks to one per source per day, as the daemon does hourly
    (failures, changes, state changes and every version and alert are kept)."""
    from datetime import timedelta

    from monitor import config as cfg
    from monitor.store import utcnow
    from monitor.store.retention import compact_checks

    try:
        keep = cfg.parse_duration(older_than) if older_than else \
            ctx.config.settings.check_retention
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    if not keep:
        click.echo("check_retention is 0: every check is kept")
        return
    dropped = compact_checks(ctx.store(), utcnow() - timedelta(seconds=keep))
    click.echo(f"{plural(dropped, 'old unchanged check')} thinned")


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


@sources_group.command("test")
@click.argument("target", metavar="NAME|URL")
@click.option("--select", "select", multiple=True,
              help="CSS selector of the content to keep (repeatable; replaces the source's).")
@click.option("--remove", "remove", multiple=True,
              help="CSS selector of content to drop (repeatable; replaces the source's).")
@click.option("--fetcher", type=click.Choice(["http", "browser", "auto"]), default=None,
              help="How to fetch the page (default: the source's, or the settings').")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
@handle_errors
def sources_test(ctx: Context, target: str, select: tuple[str, ...], remove: tuple[str, ...],
                 fetcher: str | None, as_json: bool) -> None:
    """Try a source (or any URL) before saving it: fetch it through the gate, print the text,
    its fingerprint, and the diff and classification against the last stored version. Nothing
    is written: not the page, not a check, not the robots.txt cache."""
    import dataclasses
    import json

    from monitor import config as cfg
    from monitor import pipeline
    from monitor.fetchers import Fetchers

    conf = ctx.checked_config()
    source = _trial_source(ctx, conf, target)
    try:
        if select:
            source = dataclasses.replace(source, select=tuple(map(cfg.check_selector, select)))
        if remove:
            source = dataclasses.replace(source, remove=tuple(map(cfg.check_selector, remove)))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--select/--remove") from None
    if fetcher is not None:
        source = dataclasses.replace(source, fetcher=fetcher)
    store = _read_only_store(conf.settings)
    fetchers = Fetchers.build(conf.settings, [source],
                              lambda message: click.echo(f"note: {message}", err=True))
    try:
        trial = pipeline.try_source(store, fetchers, source)
    finally:
        fetchers.close()
        if store is not None:
            store.close()
    if as_json:
        click.echo(json.dumps(trial.to_dict(), ensure_ascii=False))
        return
    _print_trial(trial)


def _trial_source(ctx: Context, conf: cfg.Config, target: str) -> cfg.Source:
    """The configured source of that name, or a new one for a URL (named after its host)."""
    from urllib.parse import urlsplit

    from monitor import config as cfg

    found = conf.source(target)
    if found is not None:
        return found
    if "://" not in target:
        return ctx.source(target)  # the error that names the nearest sources
    try:
        url = cfg.check_url(target)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME|URL") from None
    host = urlsplit(url).hostname or "page"
    return cfg.Source(name=f"{host}/test", platform=host, url=url)


def _read_only_store(settings: cfg.Settings) -> Store | None:
    """The database to compare with, opened so it cannot be written; None when there is none."""
    from monitor.store import Store

    if Store.missing_file(settings.database) is not None:
        return None
    store = Store(settings.database, read_only=True)
    try:
        store.require_schema()
    except MonitorError:
        store.close()
        return None
    return store


def _print_trial(trial: pipeline.Trial) -> None:
    from monitor import diff as difflib

    s = trial.source
    click.echo(f"{s.name}: {_safe_url(trial.url)} (HTTP {trial.status}, {trial.fetcher}; "
               f"select {list(s.select) or 'the page'}, remove {list(s.remove) or 'nothing'})")
    click.echo(f"fingerprint {trial.fingerprint}, text sha256 {trial.sha256[:16]}…, "
               f"{plural(len(trial.text.split()), 'word')}")
    click.echo("--- text ---")
    click.echo(safe_terminal_text(trial.text).rstrip("\n"))
    click.echo("--- end of text ---")
    if trial.diff is not None:
        click.echo(f"against the stored version (snapshot {trial.previous_snapshot_id}):")
        click.echo(difflib.terminal(trial.diff, "stored", "now").rstrip("\n"))
    c = trial.classification
    if c is not None:
        click.echo(f"classified: {', '.join(c.labels) or 'no labels'} — {c.severity}: "
                   f"{trial.headline}")
        for way in c.opt_out:
            click.echo(f"  way out: {way.text}" + (f" ({_safe_url(way.url)})" if way.url else ""))
    click.echo(f"a check now would record {trial.would_record}; nothing was written")


@sources_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@handle_errors
def sources_list(ctx: Context, as_json: bool) -> None:
    """Sources with their last check, outcome and number of versions."""
    from monitor import sourcelist

    store = ctx.store()
    store.sync_sources(ctx.config.sources, ctx.config.settings.interval)
    rows = sourcelist.sources(store)
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


@main.command()
@pass_context
@handle_errors
def run(ctx: Context) -> None:
    """Run the daemon: check every source on its interval until SIGTERM (systemd-friendly)."""
    from monitor import service

    path = ctx.checked_config(targets=True).path  # validates the config first: exit 78 on errors
    started()
    click.get_current_context().exit(service.main(path))


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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to bind.")
@pass_context
@handle_errors
def serve(ctx: Context, host: str, port: int) -> None:
    """Serve the read-only web UI, Atom feeds and JSON API (loopback unless a token is set)."""
    import contextlib
    import errno
    import ipaddress
    import signal
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
    from monitor.store import Store

    if conf.settings.web_database == conf.settings.database:
        ctx.store()  # the schema must exist (with a clear error when the file is missing)
    web_store = Store(conf.settings.web_database, read_only=True)
    try:
        web_store.require_schema()
    except MonitorError:
        web_store.close()
        raise
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
    server = uvicorn.Server(uvicorn.Config(create_app(conf, web_store), log_level="warning",
                                           access_log=False))
    # uvicorn shuts down gracefully on SIGINT or SIGTERM, then raises the signal again for
    # the handler it found: let that be ours, so Ctrl-C or a stop is exit 0, not "Aborted!".
    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    click.echo("stopped", err=True)
