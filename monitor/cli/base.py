"""What every command shares: the context (config and store opened on demand), the
one-line errors and exit statuses, the output helpers, and the `policy-monitor` group."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

# Only what defines the commands is imported here. Everything else, down to most of the
# standard library, is imported by the commands that use it: SQLAlchemy alone takes most of a
# second on a small machine, and `--help` or `changes` should not wait for what they never use.
from monitor.errors import ConfigError, MonitorError, StoreError, unknown_source
from monitor.text import readable
from monitor.wording import safe_terminal_text

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime
    from pathlib import Path

    from monitor import config as cfg
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
        if self._store is None:
            from monitor.store import Store

            if require_schema:
                _exists(Store.missing_file(self.config.settings.database))
            self._store = Store.from_settings(self.config.settings)
            started()
        if require_schema:
            self._store.require_schema()
        return self._store

    def check_store(self) -> Store:
        """The store a one-shot `check` writes through. On a SQLite file, the light one
        (monitor/store/lite.py): unchanged pages are recorded without importing SQLAlchemy,
        and it opens the full store the moment a page needs more."""
        if self._store is None:
            from monitor.store import lite

            path = lite.sqlite_file(self.config.settings.database)
            if path is not None:
                _exists(None if path.exists() else path)
                light = lite.LiteStore(self.config.settings.database, path,
                                       connections=self.config.settings.workers + 4)
                self._store = cast("Store", light)  # every other method is the full store's
                started()
        return self.store()

    def source(self, name: str) -> cfg.Source:
        """The configured source of this name, or an error that names the nearest ones."""
        found = self.config.source(name)
        if found is None and self._database_exists():
            found = self.store().source_spec(name)  # an imported list's
        if found is None:
            raise unknown_source(name, (s.name for s in self.config.sources), " in the config")
        return found

    def _database_exists(self) -> bool:
        from monitor.store import Store

        return Store.missing_file(self.config.settings.database) is None

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _exists(missing: Path | None) -> None:
    """Refuse a database file that is not there: opening it would leave an empty file behind."""
    if missing is not None:
        raise StoreError(f"no database at {missing}; run `policy-monitor init` first")


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
        except BrokenPipeError:  # `… | head` stopped reading: not an error of ours
            import os
            import sys

            # Python would complain again when it flushes stdout at exit: point it elsewhere.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
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


def _terminal(text: str) -> str:
    """Page text for a terminal: Markdown links as "text (url)", control characters inert."""
    return safe_terminal_text(readable(text))


def _cut(text: str | None, width: int) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[:width - 1] + "…"


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


def _problem(kind: str | None, reason: str | None, since: datetime | None) -> str:
    """`transient since 2026-12-01 20:50: connection failed…`, cut to fit a table cell."""
    if not reason:
        return ""
    text = f"{kind or 'failed'} since {_ago(since)}: {reason}"
    return text if len(text) <= 90 else text[:89] + "…"
