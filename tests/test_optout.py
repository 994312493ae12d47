"""Opt-out steps and headlines that are true: the way out, once, cleanly; the net direction."""

from __future__ import annotations

from monitor.classify import classify
from monitor.diff import compute
from monitor.optout import clean_url, steps_paths

HELP_OLD = """# Generative AI features

You can use generative AI features to draft posts and messages.
You can choose not to use these features.
"""

HELP_NEW = """# Generative AI features

You can use generative AI features to draft posts and messages.
We use your posts and the content you create with these features to train our generative AI models.

To opt out of training:

1. Click the **Me** icon at the top of your homepage.
2. Select **Settings & Privacy** from the dropdown.
3. Click **Data privacy** on the left pane.
4. Under **How we use your data**, click **Data for Generative AI Improvement** and turn it off.

You can also object to other uses with the [Data Processing Objection Form](https://www.example.com/help/ask/TS-DPRO).
Members in the EU, EEA, UK and Switzerland are not included: we do not train on their data.

[Effective November 3, 2025](https://www.example.com/legal/privacy-policy-2025)
[Privacy Policy](https://www.example.com/legal/privacy-policy)
[Manage your ad settings](https://www.example.com/mypreferences/d/ads-settings)
[broken](https://www.example.com/help/solve%22%20/t%20%22_blank)
To opt out of AI training by e-mail, write to [privacy@example.com](MAILTO) and include your profile URL.
""".replace("MAILTO", "mailto:privacy@example.com?subject=Opt%20out%20of%20AI%20training")


def classified():  # type: ignore[no-untyped-def]
    return classify(compute(HELP_OLD, HELP_NEW), old_text=HELP_OLD, new_text=HELP_NEW)


def test_opt_out_added_while_an_old_opt_out_sentence_left_is_not_removed() -> None:
    result = classified()
    assert result.directions["opt_out"] == "added"
    assert "opt-out removed" not in result.summary
    assert "opt-out added" in result.summary
    assert result.summary.startswith("AI training added")


def test_opt_out_steps_are_clean_and_complete() -> None:
    steps = {(o.type, o.text): o for o in classified().opt_out}
    assert ("setting_path", "Me > Settings & Privacy > Data privacy > Data for Generative AI Improvement") \
        in steps
    forms = [o for o in steps.values() if o.type == "form"]
    assert [(o.text, o.url) for o in forms] == [
        ("Data Processing Objection Form", "https://www.example.com/help/ask/TS-DPRO")]  # once
    email = next(o for o in steps.values() if o.type == "email")
    assert email.text == "privacy@example.com"
    assert email.subject == "Opt out of AI training"
    assert email.detail is not None and "include your profile URL" in email.detail
    texts = " ".join(f"{o.text} {o.url or ''}" for o in steps.values())
    assert "Effective November 3, 2025" not in texts  # a date, not a way out
    assert "legal/privacy-policy" not in texts  # the policy itself
    assert "ads-settings" not in texts  # ads are not about AI
    assert "%22" not in texts and "_blank" not in texts


def test_numbered_and_nested_steps_become_paths() -> None:
    nested = "- Settings\n  - Data privacy\n    - Use my data for training AI\n"
    assert steps_paths(nested) == ["Settings > Data privacy > Use my data for training AI"]
    numbered = '1. Open "Settings".\n2. Tap "Privacy".\n3. Switch off "Improve the model for everyone".\n'
    assert steps_paths(numbered) == ["Settings > Privacy > Improve the model for everyone"]
    assert steps_paths("1. We collect data.\n2. We use data.\n") == []  # no interface labels


def test_urls_are_decoded_and_validated() -> None:
    assert clean_url("https://ex.com/help/solve%22%20/t%20%22_blank") == "https://ex.com/help/solve"
    assert clean_url("https://ex.com/a%20b") == "https://ex.com/a"
    assert clean_url("javascript:alert(1)") is None
    assert clean_url("https://localhost/") is None
    assert clean_url("https://www.linkedin.com/mypreferences/d/settings/data-for-ai-improvement") \
        == "https://www.linkedin.com/mypreferences/d/settings/data-for-ai-improvement"


def test_a_wrapped_address_leads_to_the_innermost_one() -> None:
    # a printable view wrapping a redirector wrapping the real page (Facebook's policy does this)
    wrapped = ("https://m.example.com/policy/printable/https%3A%2F%2Fl.example.com%2Fl.php%3Fu="
               "https%3A%2F%2Fhelp.example.org%2Fcontact%2F1170")
    assert clean_url(wrapped) == "https://help.example.org/contact/1170"
    assert clean_url("https://www.example.com/settings") == "https://www.example.com/settings"


def test_a_setting_named_in_capitals_is_found_whatever_its_name() -> None:
    from monitor.classify import extract_opt_out

    text = ("We use your chats to train our AI models. You can turn off the Help Improve Acme "
            "Models setting at any time.\n")
    # the instruction in the page's words, with the setting's name in it; named once
    assert [(o.type, o.text) for o in extract_opt_out(text)] == [
        ("setting", "turn off the Help Improve Acme Models setting")]
    named = ("We use your chats to train our AI models. To stop this, switch the Help Improve "
             "Acme Models toggle.\n")
    assert [(o.type, o.text) for o in extract_opt_out(named)] == [
        ("setting", "Help Improve Acme Models")]
