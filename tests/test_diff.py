"""Diffs: exact hunks, word-level refinement, stats, and safe renderings."""

from __future__ import annotations

import json

from monitor import diff as d

OLD = (
    "# Policy\n\nWe collect data. We share it with partners.\n\n"
    "## Use\n\nWe may use your data for ads.\n\n- a\n- b\n"
)


def test_identical_texts_have_no_hunks() -> None:
    result = d.compute(OLD, OLD)
    assert not result.changed
    assert d.unified(result) == ""


def test_modified_sentence_is_refined_to_words() -> None:
    new = OLD.replace("We may use your data for ads.", "We use your data for ads and AI training.")
    result = d.compute(OLD, new)
    (hunk,) = result.hunks
    removed = [ln for ln in hunk.lines if ln.tag == "-"]
    added = [ln for ln in hunk.lines if ln.tag == "+"]
    assert [ln.text for ln in removed] == ["We may use your data for ads."]
    assert [ln.text for ln in added] == ["We use your data for ads and AI training."]
    assert [s.text for s in removed[0].segments if s.op == "-"] == ["may "]
    assert "".join(s.text for s in added[0].segments if s.op == "+") in (" and AI training", "and AI training ")
    assert result.stats.words_removed == 1
    assert result.stats.words_added == 3
    assert result.removed_sentences == ("We may use your data for ads.",)
    assert result.added_sentences == ("We use your data for ads and AI training.",)


def test_unified_output_has_standard_shape() -> None:
    new = OLD + "- c\n"
    text = d.unified(d.compute(OLD, new), "a", "b")
    assert text.splitlines()[:3] == ["--- a", "+++ b", "@@ -8,3 +8,4 @@"]
    assert text.splitlines()[-1] == "+- c"


def test_distant_changes_make_separate_hunks_with_context() -> None:
    lines = [f"Paragraph {i}." for i in range(40)]
    new = list(lines)
    new[2] = "Paragraph two, changed."
    new[30] = "Paragraph thirty, changed."
    result = d.compute("\n".join(lines) + "\n", "\n".join(new) + "\n")
    assert len(result.hunks) == 2
    first = result.hunks[0]
    assert (first.old_start, first.old_count) == (1, 6)
    assert sum(1 for ln in first.lines if ln.tag == " ") == 5


def test_json_round_trip() -> None:
    result = d.compute(OLD, OLD.replace("partners", "our affiliates and partners"))
    data = json.loads(json.dumps(result.to_dict()))
    assert d.Diff.from_dict(data) == result


def test_html_renderers_escape_page_text() -> None:
    new = OLD.replace("We collect data.", 'We collect <script>alert(1)</script> & "data".')
    result = d.compute(OLD, new)
    for rendered in (d.inline_html(result), d.side_by_side_html(result)):
        assert "<script>" not in rendered
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;data&quot;" in rendered


def test_side_by_side_pairs_removed_and_added_lines() -> None:
    new = OLD.replace("We may use", "We will use")
    html = d.side_by_side_html(d.compute(OLD, new))
    assert '<td class="del">We <del>may</del> use' in html
    assert '<td class="add">We <ins>will</ins> use' in html


def test_pathological_rewrite_stays_fast_and_exact() -> None:
    old = "\n".join(f"old sentence number {i} about cookies." for i in range(3000)) + "\n"
    new = "\n".join(f"new clause {i} on artificial intelligence." for i in range(3000)) + "\n"
    result = d.compute(old, new)
    assert result.stats.lines_removed == 3000
    assert result.stats.lines_added == 3000


def test_sentences_split_on_markup_and_punctuation() -> None:
    text = "# Title\n\n- First item. Second sentence!\n1. Step one\n| cell |\n"
    assert d.split_sentences(text) == ["Title", "First item.", "Second sentence!", "Step one", "cell |"]
