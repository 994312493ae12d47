"""The alerts: notify test/flush/retry/digest and the deliveries they left."""

from __future__ import annotations

from typing import Any

import click

from monitor.cli.base import Context, _ago, _cut, _echo_json, _table, handle_errors, main, pass_context
from monitor.errors import MonitorError
from monitor.wording import iso


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
    from datetime import UTC, datetime

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

    now = datetime.now(UTC)

    def held(d: Any) -> datetime | None:
        """Not due yet and never tried: an alert waiting for its event's siblings."""
        at = d.next_attempt_at.replace(tzinfo=UTC) if d.next_attempt_at.tzinfo is None \
            else d.next_attempt_at
        return at if d.status == "pending" and not d.attempts and at > now else None

    def next_try(d: Any) -> str:
        until = held(d)
        if until is not None:
            why = " (event window)" if d.kind in ("change", "answer") else ""
            return f"held until {until:%H:%M} UTC{why}"
        return _ago(d.next_attempt_at) if d.status == "pending" and d.last_error else "-"

    if as_json:
        _echo_json({"id": d.id, "kind": d.kind, "change_id": d.change_id,
                    "subscription": d.subscription, "target": d.target,
                    "url": masked.get((d.subscription, d.target)), "status": d.status,
                    "attempts": d.attempts, "next_attempt_at": iso(d.next_attempt_at),
                    "sent_at": iso(d.sent_at), "error": d.last_error, "error_class": problem(d),
                    "held_until": iso(held(d))}
                   for d in rows)
        return
    _table(["ID", "KIND", "CHANGE", "TARGET", "STATUS", "TRIES", "PROBLEM", "NEXT TRY", "ERROR"],
           [[d.id, d.kind, d.change_id or "-",
             f"{d.subscription}#{d.target} {masked.get((d.subscription, d.target)) or '(gone from config)'}",
             "held" if held(d) else d.status, d.attempts, problem(d) or "-", next_try(d),
             _cut(d.last_error, 60)] for d in rows])
