"""How to opt out, read from the whole document: every way out of AI use it offers. Pure.

What a reader needs is the way out, not every link on the page: settings paths rebuilt from
numbered or nested steps, the instruction in the page's words, named settings, objection forms,
opt-out links and e-mail addresses with the subject line they require. Effective dates, links
to the policy itself, ads and cookie settings, and URLs that do not parse are left out; each
way out is listed once.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from monitor.clauses import REFUSAL_RE, WAY_OUT_WORDS
from monitor.reading import parse_date
from monitor.text import BR_RE, LINK_RE, plain, split_sentences

ORDER = ("setting_path", "setting", "form", "link", "email")


@dataclass(frozen=True)
class OptOut:
    """One way to opt out that the new text offers."""

    type: str  # setting_path | setting | form | link | email
    text: str
    url: str | None = None
    subject: str | None = None  # e-mail opt-outs: the subject line they ask for
    detail: str | None = None  # the sentence saying what to do or include

    def to_dict(self) -> dict[str, str | None]:
        """`{type, text, url}` always (url null when the step is prose), subject and detail
        when known."""
        return {k: v for k, v in asdict(self).items() if v is not None or k == "url"}


_WS_RE = re.compile(r"\s+")
_PATH_SEP = r"\s*(?:>|›|→|»|->|&gt;)\s*"
_PATH_RE = re.compile(
    r"((?:Settings|Preferences|Settings & Privacy|Settings and Privacy|Me|Account|Privacy|"
    r"Data privacy)(?:" + _PATH_SEP + r"[A-Z][^.>›→»\n|;:()\[\]]{1,60}?){1,6})"
    r"(?=[.,;:)\n]|\s+(?:and|or|to|then)\s|$)")
_QUOTED_SETTING_RE = re.compile(
    r"[“\"'‘]([^”\"'’]{4,80})[”\"'’]\s+(?:setting|toggle|option|control)"
    r"|(?:setting|toggle|option|control)\s+(?:called|named|labell?ed|titled)\s+[“\"'‘]?"
    r"([A-Z][^”\"'’.,;]{3,80})")
_EMAIL_RE = re.compile(r"(?<![\w.@/])([\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?![\w@])")
# A setting named in capitals before the word "setting": "turn off the Data for Generative AI
# Improvement setting", "your Model Improvement toggle" (the general rule, not a list of names).
_NAMED_SETTING_RE = re.compile(
    r"\b(?:the|your|a)\s+((?:[A-Z][\w&'’-]*)(?:\s+(?:for|of|and|to|the|my|on|[A-Z][\w&'’-]*)){0,7})"
    r"\s+(?:setting|toggle|option|control|switch)s?\b")
# Link texts that name the policy, a date or nothing in particular: never a way out by themselves.
_GENERIC_TEXT_RE = re.compile(
    r"^(?:(?:the|our|this|these|a|[\w.]+[’']s)\s+)*(?:[\w-]+\s+){0,3}?"
    r"(?:policy|policies|notice|agreement|statement|terms(?: of (?:service|use))?|guidelines|"
    r"addendum|faqs?|help(?: center| centre)?(?: article)?|article|page|here|this|link|website|"
    r"learn more|read more|more information|previous versions?)$", re.I)
_ADS_RE = re.compile(r"\bads?\b|advertis|marketing|cookie|\bsale\b|\bsell\b|sharing of personal", re.I)
_STEP_RE = re.compile(r"^(\s*)(?:\d+[.)]|[-*•]|\(?[a-z]\))\s+(.*)$")
_UI_LABEL_RE = re.compile(r"\*\*([^*]{2,60}?)\*\*|“([^”]{2,60})”|\"([^\"]{2,60})\"|‘([^’]{2,60})’")
_ACTION_RE = re.compile(r"\b(?:click|tap|select|choose|go to|open|navigate to|visit|toggle|"
                        r"switch|turn|find|scroll to)\b", re.I)
_NOT_LABEL_RE = re.compile(r"^(?:on|off|yes|no|save|ok|done|next|here)$", re.I)
_SUBJECT_RE = re.compile(
    r"subject(?:\s+line)?(?:\s+(?:of|as|reading|saying|that says))?\s*:?\s*[“\"'‘]([^”\"'’\n]{2,100})[”\"'’]",
    re.I)
_INCLUDE_RE = re.compile(r"\bsubject\b|\binclud\w*|\bstate\b|\bspecify\b|\bwith the words\b|"
                         r"\bin your (?:e-?mail|message|request)\b", re.I)


_SCHEME_RE = re.compile(r"https?://", re.I)
# What screen-reader hints add to a link's text: not part of its name.
_NOISE_RE = re.compile(r"\s*\(?\bopens? in a new (?:window|tab)\)?|\s*\(external link\)", re.I)


def clean_url(url: str) -> str | None:
    """A readable, valid http(s) URL, or None: percent-escapes decoded, trailing junk of broken
    markup cut (`…/solve%22%20/t%20%22_blank` → `…/solve`)."""
    decoded = unquote(url.strip())
    decoded = re.split(r"[\s\"'<>]", decoded, maxsplit=1)[0].rstrip(".,;)")
    # An address wrapped in another (a printable view, a redirector: "…/printable/https://
    # lm.facebook.com/l.php?u=https://help.instagram.com/…") leads to the innermost one.
    inner = [m.start() for m in _SCHEME_RE.finditer(decoded)]
    if inner and inner[-1] > 0:
        decoded = decoded[inner[-1]:]
    parts = urlsplit(decoded)
    if parts.scheme not in ("http", "https") or not parts.hostname or "." not in parts.hostname:
        return None
    return decoded


def _ui_labels(step: str) -> list[str]:
    """The interface labels a step names, after its action verb ("Under X, click **Y**" → Y)."""
    found = [(m.start(), next(g for g in m.groups() if g)) for m in _UI_LABEL_RE.finditer(step)]
    found = [(i, _WS_RE.sub(" ", label).strip(" .,")) for i, label in found
             if not _NOT_LABEL_RE.match(label.strip(" .,"))]
    action = _ACTION_RE.search(step)
    if action is not None:
        after = [label for i, label in found if i >= action.start()]
        if after:
            return after[:1] if len(after) > 1 and ">" not in step else after
    return [label for _, label in found][-1:]


def _menu_label(item: str) -> bool:
    """A nested bullet that is a menu's name: a few capitalised words, no sentence."""
    text = plain(item)
    return 0 < len(text.split()) <= 6 and text[:1].isupper() and not re.search(r"[:.;]$", text)


def steps_paths(text: str) -> list[str]:
    """Settings paths rebuilt from numbered steps ("1. Click **Me**" …) or nested bullets."""
    paths: list[str] = []
    run: list[tuple[int, str]] = []

    def close() -> None:
        if len(run) >= 2:
            nested = all(run[k + 1][0] > run[k][0] for k in range(len(run) - 1))
            if nested:
                if not all(_menu_label(t) or _ACTION_RE.search(t) for _, t in run):
                    run.clear()  # nested prose or a list of rights, not menus
                    return
                labels = [[plain(t)] if _menu_label(t) else _ui_labels(t) for _, t in run]
            else:
                if sum(1 for _, t in run if _ACTION_RE.search(t)) * 2 < len(run):
                    run.clear()  # steps are actions ("Click **Me**"), not a list of rights
                    return
                labels = [_ui_labels(t) for _, t in run]
            path = [label for group in labels for label in group]
            if len(path) >= 2:
                paths.append(" > ".join(path))
        run.clear()

    for line in text.split("\n"):
        m = _STEP_RE.match(line)
        if m:
            run.append((len(m.group(1).expandtabs(4)), m.group(2)))
        elif line.strip():
            close()
    close()
    return paths


# An ability offered to the reader, after which the step itself is written ("you can opt out of
# training through your account settings"; "unless you opt out through your account settings").
_OFFER_RE = re.compile(
    r"\b(?:you (?:can|may|could|might|are able to|will be able to|also can)(?: also| easily| always)?|"
    r"unless you(?: choose to| decide to)?|to)\s+(?=\w)", re.I)
_BY_RE = re.compile(r"\bby\s+(?=\w+ing\b)", re.I)
# Words that say where or how: without one, a prose step is no instruction ("you can opt out of
# our use of your data" says that, not how).
_PLACE_RE = re.compile(r"\b(?:settings?|account|portal|controls?|form|toggle|menu|profile|app|"
                       r"dashboard|page|tag|privacy center|preferences|dropdown)\b", re.I)
# A prose step names the refusal ("opt out", "object", "turn off"…) or the AI use it refuses.
_STEP_NAMES_RE = re.compile(REFUSAL_RE.pattern + r"|\btrain|\bAI\b|\bmodels?\b|\bcontrols?\b", re.I)
_STEP_END_RE = re.compile(r"\s*(?:\((?!e?s\))|;|\.(?:\s|$)|,\s|\s+if\s|\s+unless\s|\s+so that\s|$)")
_FILLER_RE = re.compile(r"\s+(?:at )?any ?time\b|\s+easily\b|\s+also\b", re.I)
_INVISIBLE_RE = re.compile(r"[\u200b-\u200f\u2060-\u2064\ufeff]")
_WHERE_IN_PAGE_RE = re.compile(r"^(?:see )?(?:above|below|this section|that section|earlier|later)$",
                               re.I)
_PATH_HINT_RE = re.compile(r">|›|→|»")  # no separator, no written-out settings path
_BARE_LINK_TEXT_RE = re.compile(
    r"^(?:your |the |our |this |these )?(?:settings?|opt[- ]?out|here|this|link|click here|controls?|"
    r"account(?: settings)?|privacy settings)$", re.I)
_FOLLOWING_RE = re.compile(r"^\W*(?:see|learn|read|visit|for more|more information)\b", re.I)


# Without one of these a sentence names no step (a link, an address, a path, a quoted label, a
# place): "you may object to processing at any time" is a right, not a way to exercise it.
_STEP_MARKS_RE = re.compile(r"\]\(|@|>|›|→|»|“|\"|‘|\*\*")
_PLACES = ("setting", "account", "portal", "control", "form", "toggle", "menu", "profile", "app",
           "dashboard", "page", "tag", "privacy center", "preference", "dropdown", "improvement",
           "model", "train")
AI_CS_HINTS = ("AI", "ML", "LLM", "GPT")  # the case-sensitive hints of AI talk
AI_WINDOW = 2  # paragraphs (lines) up to a way out in which AI use may be named ("… to train
# AI models.\n\nYou can opt out in your settings.")


def ways_out(raw: str, is_way_out: Callable[[str, bool], bool],
             about_ai: Callable[[str], bool], ai_hints: Sequence[str] = ()) -> tuple[OptOut, ...]:
    """Every way to refuse AI use of one's data that a document offers, each once.

    A sentence is a way out when `is_way_out(sentence, True)` says so and AI use is talked
    about in its paragraph, the one before it or the heading above it (`about_ai`; only lines
    holding one of `ai_hints`, lower case, or "AI"/"ML"/"LLM"/"GPT" are asked). Its
    steps are the links, e-mail addresses and settings paths it gives, the numbered steps that
    follow it, or, when it gives none of those, the instruction in its own words ("opt out of
    training through your account settings"), with the link of the next sentence when that one
    only points to where ("See FAQ - Consumer").
    """
    found: dict[tuple[str, str], OptOut] = {}
    tried: list[str] = []  # every step named, also those already found

    def add(kind: str, text: str, url: str | None = None, **extra: str | None) -> None:
        text = _INVISIBLE_RE.sub("", _WS_RE.sub(" ", text)).strip(" *_")
        key = (kind, (url or text).lower())
        tried.append(text)
        if text and key not in found:
            found[key] = OptOut(kind, text, url, **extra)

    lines = raw.split("\n")
    starts = list(itertools.accumulate((len(line) + 1 for line in lines[:-1]), initial=0))
    lowered_raw = raw.lower()
    triggered = _lines_with(lowered_raw, WAY_OUT_WORDS, starts)
    if not triggered:
        return ()
    hinted = _lines_with(lowered_raw, ai_hints, starts) | _lines_with(raw, AI_CS_HINTS, starts)
    heading_at = -1
    before: list[int] = []  # the last non-empty lines: AI use may be named there
    for i, line in enumerate(lines):
        if not line or line.isspace():
            continue
        if line[:1] in "#*" and _is_heading(line.strip()):
            heading_at, before = i, []
        window, before = before, [*before[-(AI_WINDOW - 1):], i]
        if i not in triggered:
            continue  # no word a way out is made of: skip the costlier readings
        near = [j for j in (i, *window, heading_at) if j in hinted]
        if not any(about_ai(lines[j].strip()) for j in near):
            continue  # a way out of what? Nothing about AI in this paragraph or just before
        stripped = line.strip()
        sentences = split_sentences(BR_RE.sub("\n", line))
        following = _following_list(lines, i + 1)
        for k, sentence in enumerate(sentences):
            low = sentence.lower()
            if not any(word in low for word in WAY_OUT_WORDS):
                continue
            if not (_STEP_MARKS_RE.search(sentence) or any(w in low for w in _PLACES)
                    or (following and k == len(sentences) - 1)):
                continue  # names no link, address, path, place or steps: nothing to list
            if not is_way_out(plain(sentence), True):
                continue
            after = sentences[k + 1] if k + 1 < len(sentences) else ""
            offered = len(tried)
            _steps_of(sentence, after, add)
            if len(tried) == offered and after:  # the sentence named no step, even a known one
                _steps_of(after, "", add, links_only=True)  # "…in your settings. See FAQ."
            if stripped.endswith(":") or k == len(sentences) - 1:
                for path in steps_paths("\n".join(following)):
                    add("setting_path", path)
    return _dedupe(list(found.values()))


def _lines_with(text: str, words: Sequence[str], starts: list[int]) -> set[int]:
    """The lines (by index) on which any of `words` occurs: one C-level search per word and
    hit, instead of a test per line in Python."""
    out: set[int] = set()
    for word in words:
        at = text.find(word)
        while at >= 0:
            line = bisect.bisect_right(starts, at) - 1
            out.add(line)
            nxt = starts[line + 1] if line + 1 < len(starts) else len(text)
            at = text.find(word, nxt)  # the next line: one hit a line is enough
    return out


def _is_heading(line: str) -> bool:
    return line.startswith("#") or (line.startswith("**") and line.endswith("**"))


def _following_list(lines: list[str], start: int) -> list[str]:
    """The list right after line `start - 1` (blank lines allowed before and between items)."""
    out: list[str] = []
    for line in lines[start: start + 40]:
        if not line.strip():
            continue
        if not _STEP_RE.match(line):
            break
        out.append(line)
    return out


def _steps_of(sentence: str, after: str, add: Callable[..., None], links_only: bool = False) -> None:
    links = []
    for link in LINK_RE.finditer(sentence) if "](" in sentence else ():
        text, target = _NOISE_RE.sub("", plain(link.group(1))).strip(), link.group(2)
        if target.lower().startswith("mailto:"):
            _add_email(add, target, [sentence])
            continue
        url = clean_url(target)
        if url is None or parse_date(text) is not None or _ADS_RE.search(text + " " + url) \
                or _WHERE_IN_PAGE_RE.match(text):
            continue
        links.append((text, url))
    if links_only:
        for text, url in links:
            _add_link(add, text, url)
        return
    flat = plain(sentence)
    emails = [m.group(1) for m in _EMAIL_RE.finditer(flat)] if "@" in flat else []
    for address in emails:
        _add_email(add, f"mailto:{address}", [sentence])
    paths = [re.sub(_PATH_SEP, " > ", m.group(1)).strip() for m in _PATH_RE.finditer(flat)] \
        if _PATH_HINT_RE.search(flat) else []
    for path in paths:
        add("setting_path", path)
    prose = _prose_step(flat)
    if prose and any(t.lower() in prose.lower() for t, _ in links
                     if not _BARE_LINK_TEXT_RE.match(t)):
        prose = None  # "… with the AI Training Objection Form": the named link is the step
    if prose and not emails and not paths:
        # A link named "settings" or "opt out" is where the prose step leads; a link with a
        # name of its own ("Data Processing Objection Form") is a way out of its own.
        plain_links = [(t, u) for t, u in links if _BARE_LINK_TEXT_RE.match(t)]
        url = plain_links[0][1] if plain_links else None
        if url is None and not links and _FOLLOWING_RE.search(plain(after)):
            url = next((u for m in LINK_RE.finditer(after) if (u := clean_url(m.group(2)))), None)
        add("setting" if url is None else _link_kind(prose, url), prose, url)
        links = [(t, u) for t, u in links if u != url]
    for text, url in links:
        _add_link(add, text, url)
    for m in _QUOTED_SETTING_RE.finditer(flat):
        add("setting", m.group(1) or m.group(2))
    for m in _NAMED_SETTING_RE.finditer(flat):
        add("setting", m.group(1))


def _add_link(add: Callable[..., None], text: str, url: str) -> None:
    """A link as a way out, named by its text unless that only names the policy or "here"."""
    add(_link_kind(text, url), url if _GENERIC_TEXT_RE.match(text) else text, url)


def _link_kind(text: str, url: str) -> str:
    return "form" if re.search(r"\bform\b|/form|/ask/|objection", text + " " + url, re.I) else "link"


def _prose_step(text: str) -> str | None:
    """The instruction in the sentence's own words, when it says where or how."""
    offer = None
    for m in _OFFER_RE.finditer(text):
        rest = text[m.end():]
        if re.match(r"(?:opt|object|turn|switch|adjust|chang|disable|decide|choose|control|tag|"
                    r"use|visit|go|click|select|toggle|manage|withdraw|update|stop)", rest, re.I):
            offer = m
            break
    if offer is None:
        return None
    rest = text[offer.end():]
    by = _BY_RE.search(rest)
    if by is not None:
        rest = rest[by.end():]
    end = _STEP_END_RE.search(rest)
    step = _FILLER_RE.sub("", rest[: end.start()] if end else rest)
    step = step.strip(" .,:;")
    if (step[-1:] in "”\"'’" and step.count(step[-1]) > 1) or (step[-1:] == "”" and "“" in step):
        pass  # a closing quote that closes a quoted label stays: “NoAI”
    else:
        step = step.strip("“”\"'’")
    if len(step.split()) < 2 or not _PLACE_RE.search(step) or not _STEP_NAMES_RE.search(step):
        return None  # "change these settings in your account" names no way out of AI use
    return _shorten(step, 200)


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _add_email(add: Callable[..., None], target: str, sentences: list[str]) -> None:
    parts = urlsplit(target)
    address = unquote(parts.path).strip()
    if not _EMAIL_RE.fullmatch(address):
        return
    subject: str | None = (parse_qs(parts.query).get("subject") or [""])[0] or None
    detail = None
    for sentence in sentences:
        if address in sentence:
            words = plain(sentence)
            if subject is None and (m := _SUBJECT_RE.search(words)):
                subject = m.group(1).strip()
            if _INCLUDE_RE.search(words):
                detail = words[:400]
            break
    add("email", address, None, subject=subject, detail=detail)


def _dedupe(items: list[OptOut]) -> tuple[OptOut, ...]:
    """One entry per way out: a named form or setting that a link or path already gives goes."""
    with_url = {o.text.lower() for o in items if o.url}
    urls: set[str] = set()
    paths = " ".join(o.text.lower() for o in items if o.type == "setting_path")
    out = []
    for o in sorted(items, key=lambda o: ORDER.index(o.type) if o.type in ORDER else len(ORDER)):
        if o.url:
            if o.url.lower() in urls:
                continue
            urls.add(o.url.lower())
        elif o.type in ("form", "setting") and (o.text.lower() in with_url or o.text.lower() in paths
                                                or any(o.text.lower() in p.text.lower()
                                                       and p is not o for p in items)):
            continue  # named again inside a fuller step ("turn off the X setting")
        elif o.type == "setting_path" and any(
                p.type == "setting_path" and p is not o and len(p.text) > len(o.text)
                and p.text.lower().endswith(o.text.lower()) for p in items):
            continue  # the tail of a longer path
        out.append(o)
    return tuple(out)
