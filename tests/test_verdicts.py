"""What an alert says, through the live path: `check` against pages served on loopback, each
change read for its verdict, default and ways out (our own texts, not corpus copies)."""

from __future__ import annotations

import email.header
import re
from typing import Any

from pytest_httpserver import HTTPServer

from tests.test_notify import parts, smtp, write  # noqa: F401 (smtp: a fixture)

BASE = "<h2>Data</h2><p>We use your data to provide the services and keep them secure.</p>"


def serve(server: HTTPServer, bodies: dict[str, str]) -> None:
    from tests.test_notify import pages

    pages(server, bodies)


def changed(project: Any, server: HTTPServer, before: str, after: str) -> dict[str, Any]:
    """Check a page, change it, check again: the second check's JSON line."""
    bodies = {"/li": before}
    serve(server, bodies)
    write(project, server, "")
    project.check()
    bodies["/li"] = after
    out = [line for line in project.cli("check", "--json").output.splitlines() if line.strip()]
    import json

    (line,) = [json.loads(x) for x in out]
    assert line["outcome"] == "changed", line
    return line


STEPS_HTML = (
    "<h2>Generative AI</h2><p>We use the posts and articles you share to train the generative AI "
    "models that power our writing features.</p><p>To opt out of this use of your data:</p>"
    "<ol><li>Click the <strong>Me</strong> icon at the top of your homepage.</li>"
    "<li>Select <strong>Settings &amp; Privacy</strong> from the dropdown.</li>"
    "<li>Click <b>Data privacy</b> on the left pane.</li>"
    "<li>Under <strong>How we use your data</strong>, click <strong>Data for Generative AI "
    "Improvement</strong> and turn it off.</li></ol>")


def test_numbered_steps_in_html_become_the_full_settings_path(server: HTTPServer,
                                                               project: Any) -> None:
    line = changed(project, server, BASE, BASE + STEPS_HTML)
    assert line["verdict"][0] == "trains_on_user_data"
    assert line["default"] == "on"  # a way out is offered: the use applies until you act
    paths = [o["text"] for o in line["opt_out"] if o["type"] == "setting_path"]
    assert paths == ["Me > Settings & Privacy > Data privacy > Data for Generative AI Improvement"]
    # the evidence sentence itself is never a way out
    assert not any("train the generative" in o["text"] for o in line["opt_out"])
    assert line["headline"].startswith("trains AI on your data")
    explained = project.cli("explain", str(line["change_id"])).output
    assert "verdict: trains_on_user_data, " in explained and "default: on" in explained


def test_a_page_adding_only_an_objection_form_is_a_new_way_out(server: HTTPServer,
                                                                project: Any) -> None:
    before = BASE + ("<h2>AI</h2><p>We use your profile data to train and improve our AI models "
                     "under our legitimate interests.</p>")
    after = before + ("<p>You can object to the use of your data to train our AI models with the "
                      "<a href=\"https://www.example.com/help/ask/ai-objection\">AI Training "
                      "Objection Form</a>.</p>")
    line = changed(project, server, before, after)
    assert line["verdict"][0] == "opt_out_added", line["verdict"]
    assert "trains_on_user_data" not in line["verdict"]
    assert line["headline"].startswith("new way to opt out")
    assert [(o["type"], o["url"]) for o in line["opt_out"]] == [
        ("form", "https://www.example.com/help/ask/ai-objection")]


def test_a_promise_with_a_contraction_is_not_training(server: HTTPServer, project: Any) -> None:
    after = BASE + "<h2>Your files</h2><p>Your files aren’t used to train our AI models.</p>"
    line = changed(project, server, BASE, after)
    assert line["verdict"][0] == "promises_no_training"
    assert "AI training added" not in line["headline"]


def test_a_negation_far_from_its_verb_still_governs_it(server: HTTPServer, project: Any) -> None:
    after = BASE + ("<p>We do not use any of your messages, call recordings, shared files, "
                    "calendar entries, meeting notes or screen content, whether stored on our "
                    "servers or on your devices, to train our generative AI models.</p>")
    line = changed(project, server, BASE, after)
    assert line["verdict"][0] == "promises_no_training"


def test_a_ban_on_users_in_a_prohibited_list_is_a_rule_for_users(server: HTTPServer,
                                                                 project: Any) -> None:
    after = BASE + ("<h2>Acceptable use</h2><p>You may not:</p><ul>"
                    "<li>resell access to the services;</li>"
                    "<li>use outputs of our AI features to train models that compete with us.</li>"
                    "</ul>")
    line = changed(project, server, BASE, after)
    assert line["verdict"][0] == "user_ai_rules", line["verdict"]
    assert "trains_on_user_data" not in line["verdict"]


def test_a_way_out_in_prose_resolves_to_the_link_it_names(server: HTTPServer,
                                                          project: Any) -> None:
    after = BASE + ("<p>We may use your conversations to train our AI models. You can opt out "
                    "any time in your <a href=\"https://www.example.com/settings/ai-data\">"
                    "settings</a>.</p>")
    line = changed(project, server, BASE, after)
    assert line["verdict"][0] == "trains_on_user_data"
    assert line["opt_out"] == [{"type": "link", "text": "opt out in your settings",
                                "url": "https://www.example.com/settings/ai-data"}]


def test_a_rights_list_is_never_a_settings_path(server: HTTPServer, project: Any) -> None:
    after = BASE + ("<p>We use your data to train our AI models. You can object to this in your "
                    "settings. You also have the right to:</p><ul><li>Access your data</li>"
                    "<li>Delete your data</li><li>Complain to a supervisory authority at "
                    "dpo@regulator.example.org</li></ul>")
    line = changed(project, server, BASE, after)
    assert not any(o["type"] == "setting_path" for o in line["opt_out"]), line["opt_out"]
    assert not any("regulator" in (o["text"] or "") for o in line["opt_out"])


def test_the_email_says_and_n_more_and_before_after(server: HTTPServer, project: Any,
                                                    smtp: Any) -> None:  # noqa: F811
    box, port = smtp
    way_out = "<p>You can opt out of AI training by writing to privacy@example.com.</p>"
    before = BASE + way_out
    after = BASE + way_out.replace("by writing to privacy@example.com",
                                   "in your account settings under AI data") + "".join(
        f"<p>Rule {i}: we may use your posts, messages and files to train generative AI models "
        f"for product area {i} and partner {i}.</p>" for i in range(6))
    bodies = {"/li": before}
    serve(server, bodies)
    write(project, server, f"""
        [[subscription]]
        name = "team"
        url = "mailto://127.0.0.1:{port}?from=monitor@example.org&to=team@example.org&mode=insecure"
        labels = ["ai_training"]
    """)
    project.check()
    bodies["/li"] = after
    project.check()
    assert "failed 0" in project.cli("notify", "flush").output
    (mail,) = box.messages
    subject = str(email.header.make_header(email.header.decode_header(mail["Subject"])))
    assert subject.startswith("[LinkedIn] Privacy Policy: trains AI on your data")
    plain = parts(mail)["text/plain"]
    assert "After: Rule 0: we may use your posts" in plain  # the verdict's own evidence first
    assert plain.index("AI training") < plain.index("opt-out")
    assert "Before: You can opt out of AI training by writing to privacy@example.com" in plain
    assert "After: You can opt out of AI training in your account settings" in plain
    # 6 new training sentences, 3 quoted: the rest counted, with the change page to read them
    more = re.search(r"and (\d+) more \(https://monitor\.example\.org/changes/1\)", plain)
    assert more is not None and int(more.group(1)) >= 3


def test_changes_stored_before_verdicts_are_judged_on_upgrade(server: HTTPServer,
                                                              project: Any) -> None:
    import sqlite3

    line = changed(project, server, BASE, BASE + STEPS_HTML)
    db = project.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:  # as a database written before migration 0011 holds it
        conn.execute("UPDATE changes SET verdict = NULL, ai_default = NULL, regions_excluded = NULL")
    (before,) = project.json("changes")
    assert before["verdict"] is None
    project.cli("db", "upgrade")
    (after,) = project.json("changes")
    assert after["verdict"] == line["verdict"] and after["default"] == "on"
    assert after["labels"] == line["labels"] and after["severity"] == line["severity"]


# The clause reader on its own, sentence by sentence: each case is a class of sentence the
# alerts got upside down or noisy before (our own wording, not corpus text).
BASE_TEXT = "# Privacy Policy\n\nWe use your data to provide the services.\n"


def verdict_of(added: str, before: str = BASE_TEXT) -> tuple[str, ...]:
    from monitor.classify import classify
    from monitor.diff import compute

    after = before + "\n" + added + "\n"
    return classify(compute(before, after), old_text=before, new_text=after).verdict.verdict


def test_clause_reader_cases() -> None:
    cases = {
        # a condition's negation does not negate the main clause
        "If you do not opt out, we will use your posts to train our AI models.":
            "trains_on_user_data",
        # "not limited to" is no negation
        "We use your content for many purposes, including, but not limited to, training our "
        "AI models.": "trains_on_user_data",
        # without permission: a promise
        "We never train our AI models on your private messages without your permission.":
            "promises_no_training",
        # the company restricting its providers: a promise, not a rule for users
        "We restrict our AI service providers from training their models on your content.":
            "promises_no_training",
        # a definition is terms, not a data use
        "“AI Services” means features that use machine learning to generate text or images.":
            "ai_feature_terms",
        # users banned from training on outputs: rules for users
        "You agree not to use any output of the AI features to train or improve other models.":
            "user_ai_rules",
    }
    for sentence, expected in cases.items():
        assert verdict_of(sentence)[0] == expected, (sentence, verdict_of(sentence))


def test_a_we_do_not_lead_in_negates_its_items() -> None:
    added = ("We do not:\n\n- sell your personal data;\n- use your private messages to train our "
             "AI models.")
    assert verdict_of(added)[0] == "promises_no_training"


def test_even_if_you_opt_out_is_a_limit_not_a_way_out() -> None:
    added = ("Even if you opt out, we will use your conversations to train our AI models when "
             "you report them to us.")
    words = verdict_of(added)
    assert words[0] == "trains_on_user_data"
    assert "opt_out_added" not in words


def test_who_trains_and_what_is_negated() -> None:
    cases = {
        "Your data is not sold, but we do use it to improve our AI models.": "trains_on_user_data",
        "Customer content is never used to train foundation models.": "promises_no_training",
        # the partner trains: the company shares, it does not train itself
        "We may share your public posts with Microsoft so that it can train its AI models.":
            "shares_for_ai",
    }
    for sentence, expected in cases.items():
        assert verdict_of(sentence)[0] == expected, (sentence, verdict_of(sentence))
