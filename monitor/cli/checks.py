"""Checking now and reading the state of every source: check, status."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from monitor.cli.base import (
    Context,
    _ago,
    _cut,
    _echo_json,
    _problem,
    _table,
    handle_errors,
    main,
    pass_context,
)
from monitor.errors import StoreError
from monitor.wording import plural

if TYPE_CHECKING:
    from monitor.pipeline import CheckResult


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
    store = ctx.check_store()
    store.sync_sources(conf.sources, conf.settings.interval)
    # Without names: sources.toml's enabled sources, then every imported list's.
    selected = [ctx.source(n) for n in names] if names else \
        [s for s in conf.sources if s.enabled] + store.listed_sources()

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
    from monitor.scheduler import check_once

    results = check_once(store, conf.settings, selected, show, subscriptions=conf.subscriptions,
                         warn=lambda message: click.echo(f"note: {message}", err=True))
    report = summary.summarise(results, time.monotonic() - started)
    if not as_json and not verbose:
        shown = summary.grouped(report.groups)
        for result in sorted(results, key=lambda r: r.source):
            if result.outcome in ("failed", "postponed") and result.source not in shown:
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


def _storage_line(ctx: Context) -> str:
    """The database's size and what check retention keeps, so its growth is never a surprise."""
    from monitor.wording import duration_words

    size = ctx.store().size_bytes()
    keep = ctx.config.settings.check_retention
    kept = (f"unchanged checks older than {duration_words(keep)} are thinned to one per source "
            "per day (failures, state changes, versions, changes and alerts are all kept)"
            if keep else "every check is kept (check_retention = 0)")
    shown = f"{size / 1e6:,.1f} MB" if size is not None else "size unknown"
    return f"database: {shown}; {kept}"


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
    from monitor.store.trouble import noted

    limit = ctx.config.settings.failure_threshold if max_failures is None else max_failures
    trouble = noted(ctx.config.settings.data_dir)
    if trouble is not None:  # the daemon's own problem, said before anything about pages
        click.echo(f"daemon: waiting for the database since {trouble.get('since')}: "
                   f"{trouble.get('message')}", err=True)
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
    if not as_json:  # (the JSON is the rows alone, as scripts read it)
        click.echo(_storage_line(ctx))
    alarms = [t for t in ctx.store().target_health(failing_only=True) if t.alert_at]
    for t in alarms:
        click.echo(f"alert target failing: {t.subscription}#{t.target} {t.masked} since "
                   f"{_ago(t.failing_since)}: {_cut(t.last_error, 100)}", err=as_json)
    # By default exactly what the STATE column shows as failing (failure_threshold failures in
    # a row reached); --max-failures N tolerates N and fails past it.
    over = [r.name for r in rows if r.enabled and (
        r.consecutive_failures > limit if max_failures is not None else r.failing)]
    if (alarms or trouble) and not over:
        click.get_current_context().exit(1)
    if over:
        said = (f"failed more than {limit} times in a row (--max-failures = {limit})"
                if max_failures is not None else
                f"failing ({limit} failures in a row; failure_threshold = {limit})")
        click.echo(f"status: {plural(len(over), 'source')} {said}: {', '.join(over[:5])}"
                   + (", …" if len(over) > 5 else ""), err=True)
        click.get_current_context().exit(1)
