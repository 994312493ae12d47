"""Whole-document reading: text that only moved, repeated or came back is never an AI alert."""

from __future__ import annotations

from datetime import UTC, date, datetime

from monitor.classify import classify, recent_versions
from monitor.diff import compute, split_sentences

POLICY = """# Privacy Policy

Effective March 1, 2025

## What we collect

We collect the information you give us when you create an account.
We collect information about how you use the services.

## How we use it

We use your information to provide and improve the services.
We may use your posts and profile data to train generative AI models that power features.
You can opt out in Settings > Data privacy > Data for Generative AI Improvement.

## Sharing

We share information with service providers who process it for us.
We do not sell your personal data.
"""


def run(old: str, new: str, **kw):  # type: ignore[no-untyped-def]
    return classify(compute(old, new), old_text=old, new_text=new, **kw)


def test_a_doubled_document_is_not_new_text() -> None:
    doubled = POLICY + "\n" + POLICY.replace("# Privacy Policy", "# Privacy Policy (print view)")
    result = run(POLICY, doubled)
    assert result.severity in ("none", "low")
    assert "ai_training" not in result.labels
    undoubled = run(doubled, POLICY)  # and back: nothing was removed either
    assert undoubled.severity in ("none", "low")
    assert "ai_training" not in undoubled.labels


def test_a_moved_section_is_not_added_or_removed() -> None:
    sections = POLICY.split("\n## ")
    moved = "\n## ".join([sections[0], sections[3], sections[2], sections[1]])
    result = run(POLICY, moved)
    assert result.labels in ((), ("cosmetic",))
    assert result.severity == "none"
    assert "moved" in result.summary


def test_a_rewrapped_paragraph_is_not_new_text() -> None:
    rewrapped = POLICY.replace(
        "We may use your posts and profile data to train generative AI models that power features.",
        "We may use your posts and profile data\nto train generative AI models that power features.")
    assert run(POLICY, rewrapped).severity == "none"


def test_a_real_addition_next_to_moved_text_still_alerts() -> None:
    sections = POLICY.split("\n## ")
    moved = "\n## ".join([sections[0], sections[3], sections[2], sections[1]])
    new = moved + "\nWe also use your private messages to train our AI models.\n"
    result = run(POLICY, new)
    assert result.severity == "high"
    assert [e.new for e in result.evidence if e.label == "ai_training"] == [
        "We also use your private messages to train our AI models."]


def test_a_half_loaded_page_is_an_anomaly_and_its_recovery_is_quiet() -> None:
    body = "\n".join(f"Section {i}. We process data category {i} for purpose {i}." for i in range(60))
    full = POLICY + "\n## More\n\n" + body + "\n"
    half = POLICY.split("## How we use it")[0] + "\n## More\n\n" + "\n".join(body.split("\n")[:10]) + "\n"
    lost = run(full, half)
    assert lost.anomaly is not None and lost.anomaly["kind"] == "partial"
    assert lost.severity in ("none", "low")
    back = run(half, full, recent=recent_versions([(full, datetime(2025, 3, 2, tzinfo=UTC))]))
    assert back.severity in ("none", "low")
    assert "ai_training" not in back.labels or back.anomaly is not None


def test_an_older_copy_the_page_showed_before_is_an_anomaly() -> None:
    older = ("# Privacy Policy\n\nEffective January 1, 2023\n\n" + "\n".join(
        f"Old clause {i}: we may use your content to improve machine learning models {i}."
        for i in range(30)) + "\n")
    seen = recent_versions([], stated=[date(2023, 1, 1)])
    result = run(POLICY, older, recent=seen)
    assert result.anomaly is not None and result.anomaly["kind"] == "older_copy"
    assert result.severity == "low"
    # The same text, never shown by this page before: an earlier-dated document, read as news.
    fresh = run(POLICY, older, recent=recent_versions([]))
    assert fresh.anomaly is None and fresh.severity == "high"


def test_a_rewording_of_an_ai_sentence_is_at_most_low() -> None:
    old = POLICY + "We analyse your prompts, including through generative AI features.\n"
    new = POLICY + "We analyse your prompts, including through our AI features.\n"
    result = run(old, new)
    assert result.severity in ("none", "low")
    more_data = POLICY + "We analyse your prompts and your messages, including through our AI features.\n"
    assert run(old, more_data).severity != "none"  # new data is not a rewording


def test_a_removed_sentence_that_stands_elsewhere_is_not_removed() -> None:
    duplicated = POLICY + "\n## Summary\n\nWe may use your posts and profile data to train " \
                          "generative AI models that power features.\n"
    result = run(duplicated, POLICY)  # one of its two copies went
    assert "ai_training" not in result.labels


def test_abbreviations_stay_inside_sentences() -> None:
    text = ("We analyze Customer Data (e.g. prompts and files) to improve our models. "
            "Acme Inc. is based in the U.S. and processes data, i.e. your posts, etc. for us. "
            "See No. 5 of the terms.")
    assert split_sentences(text) == [
        "We analyze Customer Data (e.g. prompts and files) to improve our models.",
        "Acme Inc. is based in the U.S. and processes data, i.e. your posts, etc. for us.",
        "See No. 5 of the terms.",
    ]
