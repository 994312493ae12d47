"""Whole-document reading of a change. Pure.

A diff hunk shows where text changed, not whether its meaning did: a sentence that moved to
another section, a paragraph re-wrapped into two lines, a page that shows its text twice, or a
section that failed to load and came back all look like added or removed text. This module
reads both versions whole, so the classifier can ask "does this sentence stand anywhere in
the other version (or in a version the page showed in the last days)?", and it names the page
artefacts that are not changes of the policy at all.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache

from monitor.text import BOUNDARY, EMPHASIS_RE, LINK_RE, flatten, key

# A fragment of a re-wrapped or split sentence is matched inside the other text only when it is
# long enough to be unambiguous; short sentences must match a whole sentence.
LOOSE_MIN_WORDS = 6
PAGE_JOINER = "- - -"  # how multi-page documents are joined (Open Terms Archive, our importer)

_MONTHS = {m: i + 1 for i, m in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"))}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_MONTH = r"(January|February|March|April|May|June|July|August|September|October|November|December|" \
         r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?"
_DATE_RES = (
    (re.compile(_MONTH + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})", re.I), ("m", "d", "y")),
    (re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH + r",?\s+(\d{4})", re.I), ("d", "m", "y")),
    (re.compile(r"(\d{4})-(\d{2})-(\d{2})"), ("y", "m", "d")),
)
_STAMP_RE = re.compile(
    r"\b(?:effective|last\s+(?:updated|modified|revised|changed)|updated|published|revised|"
    r"modified|date)\b[^\n]{0,40}?", re.I)
_DATE_LINE_RE = re.compile(r"^\W*(?:effective|last\s+(?:updated|modified|revised)|updated|"
                           r"published|revised|date)\b", re.I)


def parse_date(text: str) -> date | None:
    """The first date written out in text ("October 29, 2025", "29 October 2025", "2025-10-29")."""
    best: tuple[int, date] | None = None
    for pattern, order in _DATE_RES:
        m = pattern.search(text)
        if not m:
            continue
        parts = dict(zip(order, m.groups(), strict=True))
        month = parts["m"]
        month_no = int(month) if month.isdigit() else _MONTHS.get(month.lower().rstrip("."))
        try:
            found = date(int(parts["y"]), month_no or 0, int(parts["d"]))
        except ValueError:
            continue
        if best is None or m.start() < best[0]:
            best = (m.start(), found)
    return best[1] if best else None


def stated_date(text: str) -> date | None:
    """The date a document says it is effective or was updated, from its first lines."""
    head = text[:4000]
    for m in _STAMP_RE.finditer(head):
        found = parse_date(head[m.start(): m.end() + 40])
        if found is not None:
            return found
    return None


def document_title(text: str) -> str:
    """The first non-empty line, without heading marks: what the page says it is.

    A line that is only links ("[European Regional Privacy Notice](…)" in a page's navigation)
    is not a title: read as one, it made an AI statement of a global policy regional."""
    for line in text.split("\n"):
        line = line.strip().lstrip("#").strip()
        if line and not set(line) <= set("=-_* ") and not _ONLY_LINKS_RE.fullmatch(line):
            t = LINK_RE.sub(lambda m: m.group(1), line)
            return " ".join(EMPHASIS_RE.sub("", t).split())
    return ""


_ONLY_LINKS_RE = re.compile(r"(?:[-*|•·>]*\s*!?\[[^\]]*\]\([^)]*\)\s*[|•·,]*\s*)+")


@dataclass(frozen=True, eq=False)
class Text:
    """One version read whole: its comparison form and what it says about itself."""

    raw: str
    flat: str  # " <NUL> sentence <NUL> sentence <NUL> "
    title: str
    stated: date | None

    @cached_property
    def loose(self) -> str:
        """The flat text without sentence boundaries, for fragments of split sentences."""
        return " " + " ".join(self.flat.replace(BOUNDARY, " ").split()) + " "

    @cached_property
    def _cuts(self) -> list[int]:
        """Offsets where a joined page or document starts: page joiners, else date lines after
        the first (computed only when a change is judged, not for every version read)."""
        cuts = [m.start() for m in _JOINER_LINE_RE.finditer(self.raw)]
        return cuts or [m.start() for m in _STAMP_LINE_RE.finditer(self.raw)
                        if _is_stamp(m.group(0))][1:]

    @property
    def parts(self) -> int:
        """Pages joined with the page joiner, or documents each with their own date line."""
        return len(self._cuts) + 1

    @cached_property
    def part_keys(self) -> list[frozenset[str]]:
        """Sentence keys of each joined page or document."""
        bounds = [0, *self._cuts, len(self.raw)]
        out = []
        for lo, hi in itertools.pairwise(bounds):
            flat = flatten(self.raw[lo:hi])
            out.append(frozenset(k for k in (x.strip() for x in flat.split(BOUNDARY)) if k))
        return out

    @cached_property
    def _sentences(self) -> list[str]:
        return [k for k in (s.strip() for s in self.flat.split(BOUNDARY)) if k]

    @cached_property
    def keys(self) -> frozenset[str]:
        return frozenset(self._sentences)

    @property
    def sentence_count(self) -> int:
        return len(self._sentences)

    def has(self, sentence_key: str, *, loose: bool = True) -> bool:
        """Whether a sentence (by key) stands in this text: whole, or as part of a re-wrapped one."""
        if not sentence_key or sentence_key in self.keys:
            return True
        return (loose and sentence_key.count(" ") + 1 >= LOOSE_MIN_WORDS
                and f" {sentence_key} " in self.loose)


@lru_cache(maxsize=16)
def read(text: str) -> Text:
    """A version read whole (cached: the old side of a check is the new side of the last one)."""
    return Text(text, f" {BOUNDARY} {flatten(text)} {BOUNDARY} ", document_title(text),
                stated_date(text))


@dataclass(frozen=True)
class Recent:
    """Versions the page showed within the flap window, and the latest time each was current."""

    texts: tuple[Text, ...] = ()
    until: tuple[str, ...] = ()  # ISO dates, parallel to texts
    stated: frozenset[date] = frozenset()  # dates earlier versions of the page stated, at any age

    def restored_from(self, sentence_key: str) -> str | None:
        """The date of the recent version this sentence comes back from, if any."""
        for text, when in zip(self.texts, self.until, strict=True):
            if text.has(sentence_key):
                return when
        return None


@dataclass(frozen=True)
class Anomaly:
    """A change of what the page shows rather than of the policy: recorded, never alerted."""

    kind: str  # repeated | partial | restored | older_copy | switched | joined
    why: str


_JOINER_LINE_RE = re.compile(rf"^[ \t]*{re.escape(PAGE_JOINER)}[ \t]*$", re.M)
# Candidate date lines, found in one pass over the page; _is_stamp confirms each.
_STAMP_LINE_RE = re.compile(r"^[*_#> \t]*(?:effective|last\s|updated|published|revised|date)\b.*$",
                            re.M | re.I)


def _is_stamp(line: str) -> bool:
    """A date line that heads a document: "Effective March 1, 2025", "Updated: …"."""
    return len(line) < 300 and bool(_DATE_LINE_RE.match(line.strip("*_#> "))) \
        and parse_date(line) is not None


def _only_new_parts(old: Text, new: Text, added_keys: frozenset[str]) -> bool:
    """Every sentence that matters (`added_keys`) sits in whole pages or documents that share
    nothing with the old text."""
    joined = [keys for keys in new.part_keys if keys and len(keys & old.keys) < 0.5 * len(keys)]
    if not joined or len(joined) == len(new.part_keys):
        return False
    elsewhere = [k for k in added_keys if not any(k in keys for keys in joined)]
    return len(elsewhere) <= len(added_keys) // 50


def _real_title(title: str) -> bool:
    return bool(title) and not _DATE_LINE_RE.match(title) and parse_date(title) is None


def judge(old: Text, new: Text, *, added: int, removed: int, restored: int,
          restored_when: str | None = None, added_keys: frozenset[str] = frozenset(),
          stated_before: frozenset[date] = frozenset(),
          removed_keys: frozenset[str] = frozenset()) -> Anomaly | None:
    """The page artefact this change is, if any. `added`/`removed` count sentences that are new
    or gone for the whole document; `restored` counts additions seen in a recent version;
    `added_keys` are the added sentences that carry evidence; `stated_before` the dates earlier
    versions of the page stated.

    Each rule names a way a page can change without its policy changing: a cached or variant
    older copy (its stated date goes back), another document served at the URL, another page
    or document joined to this one (or dropped from it again), whole sections failing to load,
    sections coming back, and the text shown twice.
    """
    old_n, new_n = old.sentence_count, new.sentence_count
    overlap = (len(old.keys & new.keys) / len(old.keys | new.keys)) if old.keys and new.keys else 1.0
    if (old.stated and new.stated and new.stated < old.stated and new.stated in stated_before
            and overlap < 0.5):  # a version the page showed before, not a document new to us
        return Anomaly("older_copy", f"the page shows an older copy (it says {new.stated:%B %-d, %Y}; "
                                     f"the previous text said {old.stated:%B %-d, %Y})")
    if (_real_title(old.title) and _real_title(new.title)
            and key(old.title) != key(new.title) and overlap < 0.05):
        return Anomaly("switched", f"the page now shows another document (“{old.title}” → "
                                   f"“{new.title}”, {overlap:.0%} of sentences in common)")
    if new.parts > old.parts and removed <= max(3, old_n // 50) and _only_new_parts(old, new, added_keys):
        return Anomaly("joined", f"another page or document was joined to this one ({old.parts} → "
                                 f"{new.parts}); its text is not a change of this document")
    if (old.parts > new.parts and added <= max(3, new_n // 50) and removed_keys
            and not added_keys and _only_new_parts(new, old, removed_keys)):  # versions swapped
        return Anomaly("unjoined", f"a page or document joined to this one was dropped again "
                                   f"({old.parts} → {new.parts}); its text going is not a change "
                                   f"of this document")
    if (removed >= max(30, 0.2 * old_n) and added <= 0.1 * removed) or \
            (removed >= max(100, 0.2 * old_n) and added <= 0.25 * removed):
        return Anomaly("partial", f"{removed} of {old_n} sentences vanished in whole sections and "
                                  f"little was added: probably a partial page load")
    if restored >= 10 and restored >= 0.8 * (added + restored):
        when = f" of {restored_when}" if restored_when else ""
        return Anomaly("restored", f"{restored} sentences came back from the version{when}: "
                                   "sections that failed to load, or a page variant")
    if new_n >= 1.6 * old_n and added == 0 and old_n:
        return Anomaly("repeated", f"the page shows its text more than once ({old_n} → {new_n} "
                                   "sentences, none new)")
    return None
