"""Reading the kept history: history, show, diff, changes, search, explain."""

from __future__ import annotations

import sys

import click

from monitor.cli.base import (
    Context,
    _ago,
    _cut,
    _echo_json,
    _parse_since,
    _table,
    _terminal,
    handle_errors,
    main,
    pass_context,
)
from monitor.labels import LABELS
from monitor.wording import SEVERITIES, safe_terminal_text


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
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="Pages per answer.")
@click.option("--after", metavar="CURSOR",
              help="Continue after a previous answer (the cursor it printed).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the pages as a JSON list (the totals and the next cursor go to stderr).")
@pass_context
@handle_errors
def search(ctx: Context, words: tuple[str, ...], limit: int, after: str | None,
           as_json: bool) -> None:
    """Which pages say WORDS now, since when, and which stopped saying them and when."""
    from monitor import history

    try:
        found = history.search(ctx.store(), " ".join(words), limit, after)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--after") from None
    more = f"more: policy-monitor search {' '.join(words)} --after {found.next}" \
        if found.next else None
    totals = (f"{found.now:,} page{'' if found.now == 1 else 's'} say it now, "
              f"{found.before:,} said it before")
    if as_json:
        _echo_json(found.hits)
        click.echo(totals + (f"; {more}" if more else ""), err=True)
        return
    if not found.total:
        click.echo(f"no page says {' '.join(words)!r}, now or before")
        return
    click.echo(totals)
    _table(["SOURCE", "NOW", "FIRST SEEN", "REMOVED", "SENTENCE"],
           [[h.source, "yes" if h.present else "no", _ago(h.first_seen_at), _ago(h.removed_at),
             _cut(_terminal(h.sentence), 90)] for h in found.hits])
    if more:
        click.echo(more)


@main.command()
@click.argument("change_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@handle_errors
def explain(ctx: Context, change_id: int, as_json: bool) -> None:
    """Why a change got its labels: the evidence, quoted, and how to opt out."""
    import json

    from monitor import history
    from monitor.classify import mark
    from monitor.items import READ_MATCHING

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
