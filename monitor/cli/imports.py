"""Histories from elsewhere, and histories read again: import, replay, reextract."""

from __future__ import annotations

import click

from monitor.cli.base import Context, handle_errors, main, pass_context, started
from monitor.wording import SEVERITIES, plural, severity_rank


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


@main.command("export")
@click.argument("args", nargs=-1, required=True, metavar="[SOURCE]... DIR")
@click.option("--git", "as_git", is_flag=True,
              help="Write a new git repository: one commit per version, at its recorded time.")
@pass_context
@handle_errors
def export_cmd(ctx: Context, args: tuple[str, ...], as_git: bool) -> None:
    """Write every version of the sources (default: all) to DIR in the layout `import` reads:
    DIR/<source>/<stamp>.md, with the raw page beside it."""
    from pathlib import Path

    from monitor import export

    *names, directory = args
    store = ctx.store()
    chosen = export.chosen(store, names)
    root = Path(directory)
    done = (export.write_git if as_git else export.write_folder)(store, chosen, root)
    click.echo(f"exported {plural(done.sources, 'source')}, {plural(done.versions, 'version')} "
               f"to {root}" + (" (a git repository)" if as_git else ""))
