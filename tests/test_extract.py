"""Extraction: structure kept, noise dropped, encodings right, fingerprints honest."""

from __future__ import annotations

import json
import unicodedata

import pytest

from monitor.config import Source
from monitor.errors import ExtractError
from monitor.extract import extract, fingerprint
from tests.conftest import corpus_or_skip

SRC = Source(name="t/page", platform="T", url="https://t.example/legal/privacy")


def html(body: str, head: str = "") -> bytes:
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>".encode()


def test_structure_becomes_markdown_like_text() -> None:
    body = """
      <h1>Privacy  Policy</h1>
      <p>We collect <b>data</b>.<br>Second line.</p>
      <h2>Choices</h2>
      <ul><li>One</li><li>Two<ul><li>Nested</li></ul></li></ul>
      <ol><li><p>First step</p></li><li>Second step</li></ol>
      <table><tr><th>Data</th><th>Purpose</th></tr><tr><td>Email</td><td>Login | alerts</td></tr></table>
      <p>Open <a href="/settings?trk=nav&amp;tab=ai">Settings</a> or <a href="javascript:alert(1)">this</a>.</p>
    """
    assert extract(html(body), "text/html", "utf-8", SRC) == (
        "# Privacy Policy\n\n"
        "We collect data.\nSecond line.\n\n"
        "## Choices\n\n"
        "- One\n- Two\n  - Nested\n\n"
        "1. First step\n2. Second step\n\n"
        "| Data | Purpose |\n| Email | Login \\| alerts |\n\n"
        "Open [Settings](https://t.example/settings?tab=ai) or this.\n"
    )


def test_blocks_inside_a_list_item_are_lines_of_their_own() -> None:
    body = """
      <ol>
        <li><p>Open <strong>Settings &amp; Privacy</strong>.</p><p>Then <b>Data privacy</b>.</p></li>
        <li>Plain item<br>its second line</li>
        <li>With a list<ul><li><p>child</p><div>child's second block</div></li></ul>after it</li>
      </ol>
    """
    assert extract(html(body), "text/html", "utf-8", SRC) == (
        "1. Open **Settings & Privacy**.\n"
        "   Then **Data privacy**.\n"
        "2. Plain item\n"
        "   its second line\n"
        "3. With a list\n"
        "  - child\n"
        "    child's second block\n"
        "   after it\n"
    )


def test_a_list_item_holding_headings_is_a_section_not_a_bullet() -> None:
    """LinkedIn lays its privacy policy out as a list of sections, each an <li> with headings
    and paragraphs: one edited paragraph must be one changed line, not the whole section."""
    body = """
      <ul class="sections">
        <li><h2>1. Data we collect</h2>
            <div><h3>1.1 Data you provide</h3><p>Your name.</p><p>Your email.</p>
                 <ul><li>Phone</li><li>Address</li></ul></div></li>
        <li><h2>2. How we use it</h2><p>To run the service.</p></li>
      </ul>
    """
    assert extract(html(body), "text/html", "utf-8", SRC) == (
        "## 1. Data we collect\n\n### 1.1 Data you provide\n\nYour name.\n\nYour email.\n\n"
        "- Phone\n- Address\n\n## 2. How we use it\n\nTo run the service.\n"
    )


def test_scripts_styles_hidden_and_chrome_are_dropped() -> None:
    body = """
      <nav>Menu</nav>
      <main>
        <script>var token = "abc";</script><style>p{}</style><noscript>Enable JS</noscript>
        <template><p>tpl</p></template><svg><text>icon</text></svg><iframe src="x"></iframe>
        <p>Visible.</p><p hidden>Hidden attr.</p><div style="display: none">Hidden style.</div>
        <div aria-hidden="true" class="accordion"><p>Collapsed but real.</p></div>
        <div class="cookie-banner">We use cookies</div>
      </main>
      <footer>Footer</footer>
    """
    src = Source(name="t/p", platform="T", url="https://t.example/", select=("main",),
                 remove=(".cookie-banner",))
    assert extract(html(body), "text/html", None, src) == "Visible.\n\nCollapsed but real.\n"


def test_ignore_drops_matching_lines() -> None:
    src = Source(name="t/p", platform="T", url="https://t.example/",
                 ignore=(r"^Last updated:", r"\bviews?\b"))
    body = "<p>Last updated: 2024-09-18</p><p>Policy text.</p><p>1,234 views</p>"
    assert extract(html(body), "text/html", None, src) == "Policy text.\n"


def test_unicode_is_normalised_to_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Données personnelles")
    text = extract(html(f"<p>{decomposed}\u00a0\u200b!</p>"), "text/html", "utf-8", SRC)
    assert text == "Données personnelles !\n"
    assert unicodedata.is_normalized("NFC", text)


def test_spacing_is_read_the_same_whatever_the_space_character() -> None:
    # Stored texts must not change between releases: every Unicode space folds to one space
    # (the fast path), while separators that are not spaces (U+001C..U+001F, NEL) stay as
    # they were read before (they are not spaces a reader sees, and folding them would
    # re-report every page that holds one).
    spaces = "\u00a0\u1680\u2002\u2009\u202f\u205f\u3000\t\u2028"
    text = extract(html(f"<p>{spaces}Opt{spaces}out{spaces}</p>"), "text/html", "utf-8", SRC)
    assert text == "Opt out\n"
    kept = extract(html("<p>a\x1fb \u00a0 c\x85d</p>"), "text/html", "utf-8", SRC)
    assert kept == "a\x1fb c\x85d\n"


@pytest.mark.parametrize(("raw", "header", "expected"), [
    ("Café “AI” €".encode(), None, "Café “AI” €"),  # undeclared UTF-8
    ("Café “AI” €".encode(), "iso-8859-1", "Café “AI” €"),  # mislabelled UTF-8
    ("Café".encode("cp1252"), "windows-1252", "Café"),
    ("Café".encode("cp1252"), "bogus-charset", "Café"),  # unknown label: detection
    ("Café".encode("latin-1"), None, "Café"),
    ("Grüße".encode("utf-16"), "utf-16", "Grüße"),
])
def test_charsets(raw: bytes, header: str | None, expected: str) -> None:
    if header == "utf-16":
        body = "<html><body><p>Grüße</p></body></html>".encode("utf-16")
    else:
        body = b"<html><body><p>" + raw + b"</p></body></html>"
    assert extract(body, "text/html", header, SRC).strip() == expected


def test_meta_charset_is_used_when_the_header_has_none() -> None:
    body = html("<p>" + "Überwachung" + "</p>", head='<meta charset="windows-1252">')
    body = body.replace("Überwachung".encode(), "Überwachung".encode("cp1252"))
    assert extract(body, "text/html", None, SRC).strip() == "Überwachung"


def test_plain_text_passes_through_normalisation() -> None:
    body = b"Terms\r\n\r\n\r\n  - item   one\t\r\nend"
    assert extract(body, "text/plain", None, SRC) == "Terms\n\n  - item one\nend\n"


@pytest.mark.parametrize(("ctype", "body", "message"), [
    ("application/pdf", b"%PDF-1.7", "unsupported content type application/pdf"),
    ("image/png", b"\x89PNG", "unsupported content type image/png"),
    ("text/html", b"<p>a\x00b</p>", "binary body"),
    ("text/html", b"<html><body><script>x</script></body></html>", "no text left"),
])
def test_unsupported_bodies_are_clear_failures(ctype: str, body: bytes, message: str) -> None:
    with pytest.raises(ExtractError, match=message):
        extract(body, ctype, None, SRC)


def test_selector_that_matches_nothing_is_a_failure_not_an_empty_page() -> None:
    src = Source(name="t/p", platform="T", url="https://t.example/", select=("#content",))
    with pytest.raises(ExtractError, match="matched nothing"):
        extract(html("<p>Maintenance</p>"), "text/html", None, src)


def test_fingerprint_ignores_noise_outside_and_inside_attributes() -> None:
    src = Source(name="t/p", platform="T", url="https://t.example/", select=("#c",))

    def page(token: str, text: str = "Policy text.") -> bytes:
        return html(f"""<form><input name="csrf" value="{token}"></form>
            <div id="c"><button aria-controls="s-{token}">More</button>
            <div id="s-{token}" data-x="{token}"><p>{text}</p></div>
            <script>var t="{token}"</script></div><p>Rendered {token}</p>""")

    a, b = fingerprint(page("111"), "text/html", None, src), fingerprint(page("222"), "text/html", None, src)
    assert a == b
    changed = fingerprint(page("333", "Policy text, changed."), "text/html", None, src)
    assert changed != a
    # Equal fingerprints must mean equal text.
    assert extract(page("111"), "text/html", None, src) == extract(page("222"), "text/html", None, src)


def test_an_ignored_line_does_not_change_the_fingerprint() -> None:
    """A page whose only change is a line an `ignore` rule drops is recognised from its
    fingerprint, without a full extraction; anything the rule does not drop still counts."""
    src = Source(name="t/page", platform="T", url="https://t.example/p", select=("main",),
                 ignore=(r"^Last updated:", r"^Page generated in \d+ ms$"))

    def page(stamp: str, body: str = "<p>We use your data.</p>", item: str = "") -> bytes:
        return html(f"<main><h1>Privacy</h1><p class=x>Last updated: <time>{stamp}</time></p>"
                    f"<div><span>Page generated in {len(stamp)} ms</span></div>{body}"
                    f"<ul><li>Keep{item}</li></ul></main>")

    def fp(body: bytes) -> str:
        return fingerprint(body, "text/html", "utf-8", src)

    assert fp(page("12:00:01")) == fp(page("12:00:02 and then some"))
    assert extract(page("12:00:01"), "text/html", "utf-8", src) == \
        "# Privacy\n\nWe use your data.\n\n- Keep\n"
    assert fp(page("12:00:01")) != fp(page("12:00:01", body="<p>We sell your data.</p>"))
    # Never dropped whole: a block with a line the rules keep, or a line in a list item
    # (rendered "- Keep Last updated: …", which "^Last updated:" does not match).
    mixed = "<p>Last updated: 1<br>Real text {}</p>"
    assert fp(page("1", body=mixed.format(1))) != fp(page("1", body=mixed.format(2)))
    assert fp(page("1", item=" Last updated: 1")) != fp(page("1", item=" Last updated: 2"))


def test_ignored_lines_are_seen_through_however_many_and_however_written() -> None:
    """The rules are searched node by node from C, and only the matching nodes are fetched:
    a rule with its own flags, a rule that starts with a space, and a page with more stamped
    lines than are fetched one by one all still see through them."""
    src = Source(name="t/page", platform="T", url="https://t.example/p", select=("main",),
                 ignore=(r"(?i)^last UPDATED", r"\s*Build \d+$"))

    def page(stamp: int, lines: int, text: str = "We use your data.") -> bytes:
        stamped = "".join(f"<p>Last updated {stamp + k}</p><div><b>x</b> Build {stamp}</div>"
                          for k in range(lines))
        return html(f"<main><h1>Privacy</h1>{stamped}<p>{text}</p></main>")

    for lines in (1, 12):
        a, b = page(1, lines), page(2, lines)
        assert fingerprint(a, "text/html", "utf-8", src) == \
            fingerprint(b, "text/html", "utf-8", src)
        assert extract(a, "text/html", "utf-8", src) == extract(b, "text/html", "utf-8", src)
        changed = page(2, lines, "We sell your data.")
        assert fingerprint(a, "text/html", "utf-8", src) != \
            fingerprint(changed, "text/html", "utf-8", src)


def test_fingerprint_changes_when_selectors_change() -> None:
    body = html("<div id='c'><p>x</p></div>")
    a = Source(name="t/p", platform="T", url="https://t.example/", select=("#c",))
    b = Source(name="t/p", platform="T", url="https://t.example/", select=("#c",), remove=("p",))
    assert fingerprint(body, "text/html", None, a) != fingerprint(body, "text/html", None, b)


def test_linkedin_noise_only_snapshots_extract_to_the_same_text() -> None:
    corpus = corpus_or_skip()
    folder = corpus / "linkedin" / "privacy-policy--india"
    files = sorted(folder.glob("*.html"))
    if len(files) < 2:
        pytest.skip("corpus has no noise-only LinkedIn snapshots")
    src = Source(name="linkedin/privacy-policy", platform="LinkedIn",
                 url="https://www.linkedin.com/legal/privacy-policy", select=("#component-container",))
    texts = {extract(f.read_bytes(), "text/html", None, src) for f in files}
    prints = {fingerprint(f.read_bytes(), "text/html", None, src) for f in files}
    assert len(texts) == 1
    assert len(prints) == 1  # the cheap path alone decides "unchanged" for these
    (text,) = texts
    assert text.startswith("# ")
    assert len(text) > 20_000


def test_corpus_html_snapshots_extract_close_to_ota_versions() -> None:
    """Our text of a raw snapshot shares most of its sentences with OTA's own extraction."""
    corpus = corpus_or_skip()
    manifest = json.loads((corpus / "MANIFEST.json").read_text())
    from monitor.diff import split_sentences

    checked = 0
    for entry in manifest["files"]:
        if entry["type"] != "snapshot" or not entry.get("matches_version_date"):
            continue
        if "--" in entry["path"].rsplit("/", 1)[-1].removesuffix(".html")[18:]:
            continue  # multi-page documents: one page is only part of the version
        raw = (corpus / entry["path"]).read_bytes()
        version = (corpus / entry["path"]).with_suffix(".md").read_text()
        ours = set(split_sentences(extract(raw, "text/html", None, SRC)))
        theirs = [s for s in split_sentences(version) if len(s) > 40 and "](" not in s]
        found = sum(1 for s in theirs if s in ours)
        assert found / max(1, len(theirs)) > 0.8, entry["path"]
        checked += 1
    assert checked >= 3
