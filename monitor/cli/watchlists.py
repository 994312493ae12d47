"""Writing the watch list into the database: `sources sync` (sources.toml) and `sources
import` (a long list kept as CSV or JSON Lines). Daemons read sources from the database only."""

from __future__ import annotations

import click

from monitor.cli.base import Context, handle_errors, pass_context
from monitor.cli.setup import sources_group
from monitor.wording import plural


@sources_group.command("sync")
@pass_context
@handle_errors
def sources_sync(ctx: Context) -> None:
    """Write sources.toml's sources into the database (init, a daemon's start and SIGHUP do too)."""
    import random

    from monitor.store.database import utcnow

    conf = ctx.checked_config()
    store = ctx.store()
    store.sync_sources(conf.sources, conf.settings.interval)
    new = store.schedule_new(utcnow(), random.Random(), conf.settings.interval)
    click.echo(f"{plural(len(conf.sources), 'source')} from {conf.path}; "
               f"{new} newly scheduled")


@sources_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--list", "name", required=True, metavar="NAME",
              help="The list these sources make up; importing it again replaces it.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]),
              help="csv or jsonl (default: from the file's extension).")
@pass_context
@handle_errors
def sources_import(ctx: Context, file: str, name: str, fmt: str | None) -> None:
    """Write a long watch list (CSV with a header row, or JSON Lines; the keys of [[source]])
    into the database as the list NAME. Every row is checked before anything is written; a
    source the list no longer has is disabled, its history kept."""
    import random
    import re
    from pathlib import Path

    from monitor import watchlist
    from monitor.errors import ConfigError, ConfigProblem
    from monitor.store.database import utcnow

    if not re.fullmatch(watchlist.LIST_NAME, name) or name == "config":
        raise ConfigError([ConfigProblem(file, None, "--list", f"{name!r}: a list name is lower-"
                                         "case letters, digits, '.', '_' and '-' (and not "
                                         "'config', which is sources.toml's)")])
    path = Path(file)
    fmt = watchlist.format_of(path, fmt)
    watchlist.check(path, fmt)
    settings = ctx.config.settings
    store = ctx.store()
    written, retired = store.import_sources(watchlist.sources(path, fmt), settings.interval, name)
    new = store.schedule_new(utcnow(), random.Random(), settings.interval)
    click.echo(f"list {name}: {plural(written, 'source')} from {file}; {retired} no longer "
               f"listed (disabled, history kept); {new} newly scheduled")
