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
from monitor.wording import plural

if TYPE_CHECKING:
    from monitor import config as cfg
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
