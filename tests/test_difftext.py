"""The change page's diff reads like the page: formatted lines, changed words still marked,
unchanged runs folded, page text never markup."""

from __future__ import annotations

import re

from monitor import diff
from monitor.web.difftext import inline, side_by_side


def shown(markup: str) -> str:
    """The text a reader sees (tags dropped, entities read)."""
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def table(rows: list[str]) -> str:
    return "\n".join(["| **Purpose** | Legal basis |", "| --- | --- |", *rows]) + "\n"


ROWS = [f"| **Purpose {i}** | We process [your data](https://example.com/d{i}) to run service {i}. |"
        for i in range(60)]


def test_a_table_reads_as_cells_with_the_changed_words_marked() -> None:
    new = list(ROWS)
    new[5] = new[5].replace("to run service 5", "to run and improve service 5")
    html_ = str(inline(diff.compute(table(ROWS), table(new))))
    assert re.findall(r"<ins>(.*?)</ins>", html_) == ["and improve "]
    text = shown(html_)
    assert "**" not in text and "](" not in text and "| |" not in text and "---" not in text
    assert "Purpose 5" in text and '<span class="md-cell">' in html_
    assert '<a href="https://example.com/d5" rel="nofollow noopener noreferrer">your data</a>' in html_


def test_unchanged_runs_are_folded_next_to_the_change() -> None:
    new = list(ROWS)
    new[10] = new[10].replace("service 10", "service ten")
    new[55] = new[55].replace("service 55", "service fifty-five")
    html_ = str(side_by_side(diff.compute(table(ROWS), table(new))))
    folds = re.findall(r"… ([\d,]+) unchanged (rows?|lines?) …", shown(html_))
    # Rows 11–54 lie between the changes: one row is kept on each side of each change.
    assert ("42", "rows") in folds
    assert "Purpose 30" not in shown(html_)
    assert shown(html_).count("Purpose 11") == 1 and shown(html_).count("Purpose 54") == 1


def test_a_link_whose_address_alone_changed_is_one_row() -> None:
    old = "Read our [cookie policy](https://example.com/cookies) first.\n"
    new = "Read our [cookie policy](https://example.com/cookies?v=2) first.\n"
    html_ = str(inline(diff.compute(old, new)))
    assert html_.count('class="line') == 1 and "link changed" in html_
    assert 'class="link-changed"' in html_


def test_long_unchanged_stretches_are_cut_but_marks_kept() -> None:
    filler = "We keep records of what you do on the service for as long as we need them. " * 30
    old = f"{filler}We never sell data.\n"
    new = f"{filler}We never sell or rent data.\n"
    html_ = str(inline(diff.compute(old, new)))
    assert "<ins>or rent </ins>" in html_
    assert 'class="elided"' in html_ and len(shown(html_)) < len(new)


def test_headings_and_lists_lose_their_marks_not_their_shape() -> None:
    old = "## Your choices\n\n- You can opt out.\n  1. Open settings\n"
    new = "## Your choices\n\n- You can opt out at any time.\n  1. Open settings\n"
    html_ = str(inline(diff.compute(old, new)))
    assert '<span class="md-h md-h2">Your choices</span>' in html_
    assert '<span class="md-marker">•</span>' in html_ and "<ins> at any time</ins>" in html_
    assert "##" not in shown(html_)


def test_page_text_is_never_markup() -> None:
    old = "Plain.\n"
    new = ("Plain. <script>alert(1)</script> [click](javascript:alert(2)) "
           "<img src=x onerror=alert(3)> **bold <b>**\n")
    for render in (inline, side_by_side):
        html_ = str(render(diff.compute(old, new)))
        assert "<script>" not in html_ and "<img" not in html_ and "javascript:" not in html_
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_
        assert html_.count("<strong>") == html_.count("</strong>")
