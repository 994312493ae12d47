"""Classifier behaviour on sentence pairs we wrote: what a reader of the alert would conclude."""

from __future__ import annotations

import pytest

from monitor.classify import classify, extract_opt_out, mark
from monitor.diff import compute
from monitor.items import is_cosmetic_pair
from monitor.rules import load_rules

BASE = (
    "# Privacy Policy\n\n"
    "## How we use your data\n\n"
    "We use your data to provide and personalise the services.\n\n"
    "We keep your data while your account is open.\n\n"
    "## Your choices\n\n"
    "You can access and delete your data at any time.\n"
)


def add(sentence: str, base: str = BASE) -> str:
    return base.replace("We keep your data", f"{sentence}\n\nWe keep your data")


def run(old: str, new: str):
    return classify(compute(old, new))


def test_ai_training_clause_with_default_on_setting_is_high_with_setting_path() -> None:
    new = add("We may use your personal data and content you post to train generative AI models "
              "that power features on our services. This setting is turned on by default. "
              "You can opt out at any time in Settings > Data privacy > Data for Generative AI "
              "Improvement.")
    result = run(BASE, new)
    assert set(result.labels) == {"ai_training", "opt_out", "default_on"}
    assert result.severity == "high"
    assert result.directions["ai_training"] == "added"
    assert result.directions["opt_out"] == "added"
    opt = {(o.type, o.text) for o in result.opt_out}
    assert ("setting_path", "Settings > Data privacy > Data for Generative AI Improvement") in opt
    assert ("setting", "Data for Generative AI Improvement") not in opt  # the path already ends there
    training = next(e for e in result.evidence if e.label == "ai_training")
    assert training.old is None
    assert "train generative AI models" in training.new
    assert "train" in training.matched


@pytest.mark.parametrize(("sentence", "direction", "severity"), [
    ("We do not use your private messages to train AI models.", "narrowed", "medium"),
    ("We never use the content of your messages to train our AI models.", "narrowed", "medium"),
    ("Your data is not used for training large language models.", "narrowed", "medium"),
    ("We use the content you share to fine-tune our LLMs.", "added", "high"),
    ("Public posts may be used to develop and improve our AI models.", "added", "high"),
])
def test_additions_and_exclusions(sentence: str, direction: str, severity: str) -> None:
    result = run(BASE, add(sentence))
    assert "ai_training" in result.labels
    assert result.directions["ai_training"] == direction
    assert result.severity == severity


def test_removing_an_exclusion_is_an_expansion() -> None:
    old = add("We do not use your private messages to train AI models.")
    result = run(old, BASE)
    assert result.directions["ai_training"] == "expanded"
    assert result.severity == "high"


def test_rewording_an_exclusion_into_a_permission_is_an_expansion() -> None:
    old = add("We do not use your posts to train our AI models.")
    new = add("We use your posts to train our AI models.")
    result = run(old, new)
    assert result.directions["ai_training"] == "expanded"
    assert result.severity == "high"
    (training,) = [e for e in result.evidence if e.label == "ai_training"]
    assert training.old and training.new  # a pair, quoted both ways


def test_removed_training_statement_is_not_high() -> None:
    old = add("We use your posts to train our AI models.")
    result = run(old, BASE)
    assert result.directions["ai_training"] == "removed"
    assert result.severity == "medium"


def test_paraphrased_training_sentence_is_still_training() -> None:
    old = add("We may use your data to improve our products.")
    new = add("We may use your data to improve our products, including to train machine learning "
              "models.")
    result = run(old, new)
    assert result.labels[0] == "ai_training"
    assert result.severity == "high"


def test_region_exemption_removed_with_ai_is_high() -> None:
    old = add("We train AI models on member content. Members in the EU, EEA, UK and Switzerland "
              "are not included in this training.")
    new = add("We train AI models on member content.")
    result = run(old, new)
    assert "region_scope" in result.labels
    assert result.directions["region_scope"] == "expanded"
    assert result.severity == "high"


def test_region_exemption_added_is_medium() -> None:
    old = add("We train AI models on member content.")
    new = add("We train AI models on member content. This does not apply to members in the "
              "European Economic Area.")
    result = run(old, new)
    assert result.directions["region_scope"] == "narrowed"
    assert result.severity == "medium"


def test_region_named_without_ai_is_not_region_scope() -> None:
    result = run(BASE, add("If you live in the EU, you can read our European notice."))
    assert "region_scope" not in result.labels
    assert result.severity == "low"


def test_third_party_ai_sharing() -> None:
    result = run(BASE, add("We share certain member data with our parent company Microsoft so "
                           "that it can train its AI models."))
    assert {"ai_training", "third_party_ai"} <= set(result.labels)
    assert result.severity == "high"
    licensing = run(BASE, add("We may license user content to third parties for artificial "
                              "intelligence research."))
    assert "third_party_ai" in licensing.labels
    assert licensing.severity == "medium"


def test_retroactivity() -> None:
    result = run(BASE, add("Opting out of AI training does not affect training that has already "
                           "taken place."))
    assert "retroactivity" in result.labels
    assert result.severity in ("medium", "high")


def test_ai_feature_data_without_training() -> None:
    # A new use of a named kind of the user's content by an AI feature is worth an alert...
    result = run(BASE, add("When you use our AI assistant, we store your prompts and the generated "
                           "responses for 30 days."))
    assert result.labels == ("ai_feature_data",)
    assert result.severity == "medium"
    # ...an AI feature mentioned without any of the user's content is not.
    result = run(BASE, add("Our AI assistant can suggest replies and summarise threads."))
    assert result.labels == ("ai_feature_data",)
    assert result.severity == "low"


def test_non_ai_opt_out_is_labelled_but_low() -> None:
    result = run(BASE, add("You can opt out of personalised ads in your settings."))
    assert result.labels == ("opt_out",)
    assert result.severity == "low"


def test_opt_out_removed_near_ai_is_high() -> None:
    old = add("We use your posts to train AI models. You can opt out in your settings.")
    new = add("We use your posts to train AI models.")
    result = run(old, new)
    assert result.directions["opt_out"] == "removed"
    assert result.severity == "high"


@pytest.mark.parametrize(("old", "new"), [
    ("Effective September 18, 2024", "Effective November 3, 2025"),
    ("Last updated: 2024-09-18", "Last updated: 2025-11-03"),
    ("We collect personal data, inlcuding your email.", "We collect personal data, including your email."),
    ("LinkedIns services are free.", "LinkedIn’s services are free."),
    ("1. We collect data.", "2. We collect data."),
    ("See our [Help Center](https://x.example/a?trk=1).", "See our [Help Center](https://x.example/b)."),
    ("We   collect data .", "We collect data."),
])
def test_cosmetic_pairs(old: str, new: str) -> None:
    assert is_cosmetic_pair(old, new)
    result = run(add(old), add(new))
    assert result.labels == ("cosmetic",)
    assert result.severity == "none"


@pytest.mark.parametrize(("old", "new"), [
    ("We keep data for 30 days.", "We keep data for 90 days."),
    ("We may share your data.", "We will share your data."),
    ("We do not sell your data.", "We sell your data."),
])
def test_small_substantive_edits_are_not_cosmetic(old: str, new: str) -> None:
    assert not is_cosmetic_pair(old, new)
    assert run(add(old), add(new)).severity != "none"


def test_moved_paragraph_is_cosmetic() -> None:
    moved = BASE.replace("We keep your data while your account is open.\n\n", "") + (
        "\nWe keep your data while your account is open.\n")
    assert run(BASE, moved).labels == ("cosmetic",)


def test_x_ai_email_is_not_ai() -> None:
    result = run(BASE, add("Contact us at privacy@x.ai with questions."))
    assert "ai_training" not in result.labels
    assert "ai_feature_data" not in result.labels


def test_opt_out_instructions_forms_links_emails_regions() -> None:
    text = (
        "We use your posts to train our AI models. "
        "If you are in the EU, EEA or Switzerland, you can object using the "
        "[Data Processing Objection Form](https://www.linkedin.com/help/linkedin/ask/TS-DPRO). "
        "You can also object by writing to privacy@example.com. Go to Settings > Privacy > AI training "
        "and switch it off.\n"
        "Our [Cookie Policy](https://example.com/cookies) explains cookies.\n"
    )
    found = {(o.type, o.text, o.url) for o in extract_opt_out(text)}
    assert ("form", "Data Processing Objection Form",
            "https://www.linkedin.com/help/linkedin/ask/TS-DPRO") in found
    assert ("email", "privacy@example.com", None) in found
    assert ("setting_path", "Settings > Privacy > AI training", None) in found
    # who is exempt is the verdict's regions_excluded, never a "way out"; cookies are no way out
    assert {t for t, _, _ in found} <= {"form", "email", "setting_path", "setting", "link"}
    assert not any("ookie" in text_ for _, text_, _ in found)


def test_regions_excluded_are_read_from_the_sentence_that_exempts_them() -> None:
    new = add("We use your posts to train our AI models, except for members in the EEA, UK "
              "and Switzerland.")
    result = run(BASE, new)
    assert result.verdict.verdict[0] == "trains_on_user_data"
    assert set(result.verdict.regions_excluded) >= {"EEA", "UK", "Switzerland"}


def test_mark_quotes_matched_phrases() -> None:
    assert mark("We train [AI](https://x) models.", ["train", "AI"]) == "We «train» «AI» models."


def test_rules_are_versioned() -> None:
    assert load_rules().version >= 1
    assert run(BASE, add("We train AI models on posts.")).rules_version == load_rules().version


def test_scattered_additions_in_a_100kb_policy_are_all_found() -> None:
    paragraphs = [f"Section {i}. We process data category {i} for purpose {i} under basis {i}. "
                  f"You may object to processing of category {i} at any time." for i in range(900)]
    old = "\n\n".join(paragraphs) + "\n"
    new_paragraphs = list(paragraphs)
    for i in range(0, 900, 90):
        new_paragraphs[i] += " We may also use this data to train AI models."
    new = "\n\n".join(new_paragraphs) + "\n"
    assert len(old) > 100_000
    result = classify(compute(old, new))
    assert result.severity == "high"
    training = [e for e in result.evidence if e.label == "ai_training"]
    assert len(training) == 10  # ten additions, all quoted (up to twenty per label)
    assert all(e.direction == "added" for e in training)


def test_prohibitions_on_the_user_are_not_ai_training() -> None:
    result = run(BASE, add("You may not use content from the services to train or improve AI models."))
    assert "ai_training" not in result.labels
    assert result.severity == "low"


def test_ai_training_in_a_regional_document_is_region_scope() -> None:
    old = "# LinkedIn European Regional Privacy Notice\n\nWe process data to run the service.\n"
    new = old + "\nWe rely on legitimate interests to train content-generating AI models.\n"
    result = classify(compute(old, new), title="LinkedIn European Regional Privacy Notice")
    assert {"ai_training", "region_scope"} <= set(result.labels)
    assert result.severity == "high"
    region = next(e for e in result.evidence if e.label == "region_scope")
    assert "European" in region.why


def test_a_page_flapping_back_within_30_days_is_damped() -> None:
    from datetime import UTC, datetime, timedelta

    old = BASE
    new = add("We use your posts to train AI models.")
    at = datetime(2026, 2, 10, tzinfo=UTC)
    flap = classify(compute(old, new), restores=at - timedelta(days=4), at=at)
    assert flap.severity == "low"
    assert flap.reverted_to is not None
    assert flap.summary.startswith("back to the version last seen 2026-02-06")
    assert "ai_training" in flap.labels  # still labelled, just quiet
    comeback = classify(compute(old, new), restores=at - timedelta(days=90), at=at)
    assert comeback.severity == "high"


def test_minor_rewording_of_an_ai_sentence_is_low() -> None:
    old = add("See here for how you can opt out of our use of your content to train our models.")
    new = add("Read our instructions on how you can opt out of our use of your content to train our "
              "models.")
    result = run(old, new)
    assert "ai_training" in result.labels
    assert result.severity == "low"


def test_contractions_negate() -> None:
    # rules.toml once wrote these patterns with "\b" in a basic string (a backspace): never matched.
    for sentence in ("We don't use your messages to train AI models.",
                     "We won’t use your messages to train AI models."):
        result = run(BASE, add(sentence))
        assert result.directions.get("ai_training") == "narrowed", sentence


def test_word_prefilters_never_change_a_match() -> None:
    rules = load_rules()
    sentences = [
        "We may use your posts to train generative AI models.", "We don’t sell data.",
        "Members in the EU, EEA, UK or Switzerland are not included.", "Visit your settings page.",
        "Go to Settings > Data privacy.", "Use the Data Processing Objection Form.",
        "Before you opt out, data already used stays.", "The U.S. states listed below apply.",
        "Our GenAI and LLM features use prompts.", "By default, this is on.", "Plain text here.",
        "You may not scrape content to develop foundation models.", "We share data with OpenAI.",
    ]
    matchers = [*rules.vocab.values(), *(g for r in rules.labels.values() for rule in r for g in rule)]
    for matcher in matchers:
        for sentence in sentences:
            assert (matcher.search(sentence) is None) == (matcher.regex.search(sentence) is None), \
                (matcher.regex.pattern[:60], sentence)


def test_running_a_rule_s_alternatives_separately_finds_what_the_whole_pattern_finds() -> None:
    """Rules run only the alternatives whose words a sentence holds; the match (position and
    text) must be the one the whole alternation finds, or evidence and negation would move."""
    from monitor.matching import _prepared

    rules = load_rules()
    sentences = [BASE, *BASE.split("\n"),
                 "You can opt out in your settings, or object to it using our objection form.",
                 "Turn it off in Settings > Data privacy: Data for Generative AI Improvement.",
                 "EU members are not included; in the EEA we don't use your data to train AI.",
                 "We share data with OpenAI and Microsoft affiliates to improve our LLM features.",
                 "Unless you opt out, we automatically enrolled you by default in 2024.",
                 "you may control, limit or stop how third parties (incl. Anthropic) use it"]
    matchers = [g for rule_set in rules.labels.values() for rule in rule_set for g in rule]
    matchers += list(rules.vocab.values())
    compared = 0
    for sentence in sentences:
        text, present = _prepared(sentence, rules)
        for m in matchers:
            whole = m.regex.search(text) if m.possible(text.lower()) else None
            split = m.search(text, present)
            assert (whole and (whole.span(), whole.group(0))) == \
                (split and (split.span(), split.group(0))), (m.regex.pattern[:60], sentence)
            compared += whole is not None
    assert compared > 20  # the sentences exercise the rules, not only their absence


def test_a_close_variant_is_found_through_the_word_index_exactly_as_by_reading_every_one() -> None:
    import random

    from monitor.items import TWIN_SIMILARITY, _Twins

    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(60)]
    shared = [frozenset(rng.sample(vocab, rng.randint(1, 12))) for _ in range(400)]
    twins = _Twins(shared)
    found = 0
    for _ in range(400):
        words = frozenset(rng.sample(vocab, rng.randint(1, 12)))
        brute = any(len(words & o) / len(words | o) >= TWIN_SIMILARITY for o in shared)
        assert twins.has(words) is brute, sorted(words)
        found += brute
    assert 0 < found < 400  # both answers occur


def test_a_rewrite_too_large_to_read_whole_still_reads_every_sentence_a_rule_matches() -> None:
    from monitor.items import READ_IN_FULL

    n = READ_IN_FULL // 2 + 100
    old = "\n\n".join(["# Privacy Policy", *(f"Section {i}: we keep records about topic {i}."
                                            for i in range(n))])
    lines = ["# Privacy Policy", *(f"Clause {i}: we hold files on subject {i}." for i in range(n))]
    lines[n - 3] = "We use your posts to train generative AI models unless you opt out."
    new = "\n\n".join(lines)
    result = classify(compute(old, new), old_text=old, new_text=new)
    assert "ai_training" in result.labels
    assert result.severity in ("medium", "high")
    assert result.skimmed >= 2 * n - 2  # the rest were counted, and it says so
    assert result.summary.startswith("whole-page rewrite")
    assert result.to_dict()["skimmed"] == result.skimmed


def test_rule_words_match_whole_words_only() -> None:
    # "chat" at the end of a brand name, "train" inside "constraints": not the rule's words
    result = run(BASE, add("Our AI assistant works with Snapchat under legal constraints."))
    assert "ai_training" not in result.labels
    assert result.verdict.verdict != ("trains_on_user_data",)
    assert run(BASE, add("Our AI assistant stores your chats.")).labels[:1] == ("ai_feature_data",)


def test_a_regional_link_at_the_top_is_not_the_documents_region() -> None:
    nav = "[European Regional Privacy Notice](https://example.com/eu) | [Cookie Policy](https://example.com/c)\n\n"
    old = nav + "# Privacy Policy\n\nWe use your data to provide the services.\n"
    new = old + "\nWe use your posts to train our AI models.\n"
    result = classify(compute(old, new), old_text=old, new_text=new)
    assert "region_scope" not in result.labels  # the page is the global policy, not the EU notice
    assert result.verdict.regions_excluded == ()
    assert result.verdict.verdict[0] == "trains_on_user_data"


def test_ai_feature_phrasings_are_read() -> None:
    for sentence in ("We use AI to detect fraud in your messages.",
                     "You must not pass off generative AI content as made by a human.",
                     "When you use our generative AI features, inputs and outputs are your User Data."):
        assert "ai_feature_data" in run(BASE, add(sentence)).labels, sentence


def test_a_joined_page_dropped_again_is_not_news() -> None:
    policy = ("# Privacy Policy\n\nEffective: January 1, 2025\n\nWe collect your profile data.\n\n"
              "We use your posts to train our generative AI models. You can opt out in your "
              "settings.\n\nWe keep data for two years.\n")
    faq = ("# Generative AI FAQ\n\nLast updated: December 1, 2024\n\nWe use the posts you share "
           "to train our generative AI models, as our privacy policy says.\n\nMembers in the EU "
           "are not included.\n")
    joined = policy + "\n- - -\n\n" + faq
    assert classify(compute(policy, joined), old_text=policy, new_text=joined).severity == "low"
    dropped = classify(compute(joined, policy), old_text=joined, new_text=policy)
    assert dropped.severity == "low" and (dropped.anomaly or {}).get("kind") == "unjoined"
    # a real change in the main document at the same time is still news
    changed = policy.replace("We keep data for two years.",
                             "We also use your private messages to train our AI models.")
    real = classify(compute(joined, changed), old_text=joined, new_text=changed)
    assert real.severity == "high" and real.anomaly is None
