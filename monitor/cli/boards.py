"""The AI data-use board: does each platform train AI on your data, since when, on by
default, how to get out, who is exempt, who else gets the data; each answer traced."""

from __future__ import annotations

import click

from monitor.cli.base import Context, _echo_json, _parse_since, handle_errors, main, pass_context


@main.command("board")
@click.argument("platform", required=False)
@click.option("--at", "at", metavar="DATE", help="The board as the stored versions made it "
              "on this date (e.g. 2024-10-01).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: one object per platform.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: one row per platform, "
              "document and question.")
@pass_context
@handle_errors
def board_cmd(ctx: Context, platform: str | None, at: str | None, as_json: bool,
              as_csv: bool) -> None:
    """Per platform (or PLATFORM): does it train AI on your data, since when, on by default,
    the ways out, who is exempt, who else gets your data for AI; each answer with the change
    and the version it comes from. Answers from a page that can no longer be read are marked
    stale."""
    from monitor import history
    from monitor.board import QUESTION_WORDS, QUESTIONS, end_of_day

    when = _parse_since(at)
    if when is not None and at is not None and len(at) == 10:  # a day: the whole of it
        when = end_of_day(when.date())
    boards = history.boards(ctx.store(), platform, when)
    if as_json:
        _echo_json(b.to_dict() for b in boards)
        return
    if as_csv:
        import csv
        import sys

        out = csv.writer(sys.stdout)
        out.writerow(["platform", "source", "question", "answer", "since", "change_id",
                      "version_id", "stale", "ways_out", "names", "quote"])
        for b in boards:
            for d in b.documents:
                for q in QUESTIONS:
                    a = d.answers[q]
                    out.writerow([b.platform, d.page.source, q, a.value,
                                  a.since.date().isoformat() if a.since else "", a.change_id or "",
                                  a.version or "", "yes" if a.stale else "",
                                  " | ".join(_step(s) for s in a.steps), ", ".join(a.names),
                                  a.quote or ""])
        return
    for b in boards:
        click.echo(f"{b.platform}" + (f" (as of {at})" if at else ""))
        for q in QUESTIONS:
            found = b.answers[q]
            if not found:
                click.echo(f"  {QUESTION_WORDS[q]}: not stated")
                continue
            parts = []
            for a in found:
                text = a.value
                if a.names and q == "sharing":
                    text += f" ({', '.join(a.names)})"
                if a.steps:
                    text += ": " + "; ".join(_step(s) for s in a.steps[:3])
                when_text = a.since.date().isoformat() if a.since else "?"
                parts.append(f"{text} [since {when_text}, {a.source}, change {a.change_id}]"
                             + (" (stale: page failing)" if a.stale else ""))
            disagree = " DOCUMENTS DISAGREE:" if len(found) > 1 else ""
            click.echo(f"  {QUESTION_WORDS[q]}:{disagree} " + " / ".join(parts))
        failing = [d.page.source for d in b.documents if d.page.failing]
        click.echo(f"  from {len(b.documents)} pages"
                   + (f"; failing: {', '.join(failing)}" if failing else ""))


def _step(step: dict[str, object]) -> str:
    text = str(step.get("text") or "")
    return f"{text} <{step['url']}>" if step.get("url") else text
