"""A diff → labels, severity, quoted evidence and opt-out instructions. Pure.

The unit of meaning is the sentence. Diff hunks are expanded to whole sentences of the old and
new text; a sentence that only moved, or changed only in dates, punctuation, case, numbering,
link targets or a typo, is cosmetic. Remaining sentences are paired (modified) or stand alone
(added, removed), and each is matched against the phrase rules in `rules.toml`. Negation is
read in the clause before a match, so "we do not use your messages to train…" narrows AI
training instead of expanding it.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from functools import cached_property, lru_cache, partial
from pathlib import Path
from typing import Any, Literal

from monitor import clauses, optout, reading
from monitor import verdict as verdicts
from monitor.diff import Diff, split_sentences
from monitor.optout import OptOut
from monitor.reading import BR_RE as _BR_RE
from monitor.reading import EMPHASIS_RE as _EMPHASIS_RE
from monitor.reading import LINK_RE as _LINK_RE
from monitor.reading import Anomaly, Recent, Text, document_title
from monitor.schedule import FLAP_WINDOW
from monitor.wording import LABELS, SEVERITIES, max_severity, severity_rank

__all__ = ["LABELS", "SEVERITIES", "Anomaly", "OptOut", "Recent", "classify", "document_title",
           "max_severity", "recent_versions", "severity_rank"]

RULES_PATH = Path(__file__).with_name("rules.toml")
MAX_EVIDENCE_PER_LABEL = 20  # stored; messages quote 3 a label and count the rest
PAIR_SIMILARITY = 0.45
PAIR_WINDOW = 40
# A change reads every changed sentence one by one (pairing, re-wrap search, every label) up to
# this many sentences, both sides together: a whole rewrite of the longest real policies
# (~2,200 sentences a side) stays under it. Past it the change is a whole-page rewrite and only
# the sentences some rule matches are read one by one, at most READ_MATCHING of them; the rest
# are counted. The cost of classifying a change is then bounded whatever the page.
READ_IN_FULL = 10_000
READ_MATCHING = 1_000

ItemKind = Literal["added", "removed", "modified"]
_PUNCT_RE = re.compile(r"[^\w\s]", re.UNICODE)
_ENUM_RE = re.compile(r"^\s*(?:\(?[0-9ivxlc]+[.)]|\(?[a-z][.)]|[-*•])\s+", re.I)
_WS_RE = re.compile(r"\s+")


# ---- values -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One changed sentence: added, removed, or an old/new pair."""

    kind: ItemKind
    old: str | None
    new: str | None
    block: int  # index of the changed block it came from
    context: tuple[str, ...] = ()  # neighbouring sentences: is AI being talked about here?


@dataclass(frozen=True)
class Evidence:
    label: str
    direction: str  # added | removed | changed | expanded | narrowed
    severity: str
    old: str | None
    new: str | None
    matched: tuple[str, ...]
    why: str
    ai_context: bool = True  # AI is talked about in or around the sentence

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["matched"] = list(self.matched)
        return d


@dataclass(frozen=True)
class Classification:
    labels: tuple[str, ...]
    severity: str
    evidence: tuple[Evidence, ...]
    opt_out: tuple[OptOut, ...]
    directions: dict[str, str] = field(default_factory=dict)
    rules_version: int = 0
    summary: str = ""
    reverted_to: str | None = None  # ISO time the restored version was last seen, for flaps
    anomaly: dict[str, str] | None = None  # {"kind", "why"}: a page artefact, damped to low
    skimmed: int = 0  # changed sentences counted but not read one by one (whole-page rewrite)
    verdict: verdicts.Verdict = verdicts.NO_VERDICT  # what happened, for the reader

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.verdict.to_dict(),
            "labels": list(self.labels), "severity": self.severity,
            "evidence": [e.to_dict() for e in self.evidence],
            "opt_out": [o.to_dict() for o in self.opt_out],
            "directions": dict(self.directions), "rules_version": self.rules_version,
            "summary": self.summary, "reverted_to": self.reverted_to, "anomaly": self.anomaly,
            "skimmed": self.skimmed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Classification:
        return cls(
            labels=tuple(data.get("labels", ())), severity=data.get("severity", "none"),
            evidence=tuple(Evidence(**{**e, "matched": tuple(e.get("matched", ()))})
                           for e in data.get("evidence", ())),
            opt_out=tuple(OptOut(**o) for o in data.get("opt_out", ())),
            directions=dict(data.get("directions", {})),
            rules_version=int(data.get("rules_version", 0)), summary=data.get("summary", ""),
            reverted_to=data.get("reverted_to"), anomaly=data.get("anomaly"),
            skimmed=int(data.get("skimmed", 0)),
            verdict=verdicts.from_dict(data) or verdicts.NO_VERDICT,
        )


# ---- rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Matcher:
    """A compiled rule pattern with the literal words one of which any match must contain.

    Python's case-insensitive alternations scan every position of a sentence; most sentences
    contain none of a rule's words, and `in` on the lower-cased sentence rules that out in a
    fraction of the time. `needles` is None when no such words can be read off the pattern.
    `parts` are the pattern's alternatives, each with its own words: `search` runs only the
    alternatives whose words the sentence holds (a long alternation costs ~100 µs a sentence).
    """

    regex: re.Pattern[str]
    needles: frozenset[str] | None
    parts: tuple[tuple[frozenset[str] | None, re.Pattern[str]], ...] = ()

    @cached_property
    def words(self) -> frozenset[str]:
        """Every word this matcher or one of its alternatives looks for."""
        return frozenset(n for part in (self.needles, *(p for p, _ in self.parts))
                         for n in part or ())

    def possible(self, lowered: str) -> bool:
        return self.needles is None or any(n in lowered for n in self.needles)

    def possible_with(self, present: frozenset[str]) -> bool:
        """`possible`, given which of all the rules' words the sentence holds (see `_prepared`)."""
        return self.needles is None or not self.needles.isdisjoint(present)

    def search(self, text: str, present: frozenset[str] | None = None) -> re.Match[str] | None:
        """The regex's own answer: the leftmost match, and at one position the first
        alternative that matches there, so running alternatives separately changes nothing."""
        if present is None:
            lowered = text.lower()
            present = frozenset(n for n in self.words if n in lowered)
        if not self.possible_with(present):
            return None
        if not self.parts:
            return self.regex.search(text)
        best: re.Match[str] | None = None
        for needles, regex in self.parts:
            if needles is not None and needles.isdisjoint(present):
                continue
            m = regex.search(text)
            if m is not None and (best is None or m.start() < best.start()):
                best = m
        return best

    def fullmatch(self, text: str) -> re.Match[str] | None:
        return self.regex.fullmatch(text) if self.possible(text.lower()) else None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.regex.finditer(text) if self.possible(text.lower()) else iter(())


def _matcher(patterns: Sequence[str], vocab: dict[str, list[str]],
             vocab_needles: dict[str, frozenset[str] | None], case_sensitive: bool = False
             ) -> Matcher:
    """One Matcher for alternatives `patterns` (which may name vocabularies as @name)."""
    wrapped = [f"(?-i:{p})" if case_sensitive else f"(?:{p})" for p in patterns]
    needles = [_needles(p, vocab_needles) for p in patterns]
    return Matcher(re.compile(_expand("|".join(wrapped), vocab), re.I), _union(needles),
                   tuple((n, re.compile(_expand(w, vocab), re.I))
                         for n, w in zip(needles, wrapped, strict=True)))


_LEADING_ZERO_WIDTH_RE = re.compile(r"^(?:\\b|\^|\(\?<[!=](?:[^()\\]|\\.)*\))+")
_VOCAB_REF_RE = re.compile(r"^@([a-z_]+)")
_ESCAPED_LITERAL = set(".-'’,&/ ")


def _needles(pattern: str, vocab: dict[str, frozenset[str] | None]) -> frozenset[str] | None:
    """The literal words (lower case) a match of `pattern` must start with, if readable."""
    alternatives = _top_level_split(pattern)
    if len(alternatives) > 1:
        return _union(_needles(alt, vocab) for alt in alternatives)
    rest = _LEADING_ZERO_WIDTH_RE.sub("", pattern)
    if rest.startswith("(?:"):  # a leading group: one of its alternatives must be there
        end = _group_end(rest)
        if end is None or rest[end + 1: end + 2] in ("?", "*", "{"):
            return None
        return _union(_needles(alt, vocab) for alt in _top_level_split(rest[3:end]))
    ref = _VOCAB_REF_RE.match(rest)
    if ref:
        return vocab.get(max((n for n in vocab if rest[1:].startswith(n)), key=len, default=""))
    literal = []
    i = 0
    while i < len(rest):
        ch = rest[i]
        if ch == "\\" and i + 1 < len(rest) and rest[i + 1] in _ESCAPED_LITERAL:
            literal.append(rest[i + 1])
            i += 2
            continue
        if ch.isalnum() or ch in " '’-&,":
            literal.append(ch)
            i += 1
            continue
        break
    if i < len(rest) and rest[i] in "?*{" and literal:
        literal.pop()  # the last character is optional
    word = "".join(literal).strip().lower()
    return frozenset({word}) if len(word) >= 2 else None


def _group_end(pattern: str) -> int | None:
    """Index of the ")" closing the group that opens at index 0."""
    depth = 0
    escaped = False
    for i, ch in enumerate(pattern):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def _top_level_split(pattern: str) -> list[str]:
    parts, depth, start, escaped = [], 0, 0, False
    for i, ch in enumerate(pattern):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
    parts.append(pattern[start:])
    return parts


def _union(parts: Iterable[frozenset[str] | None]) -> frozenset[str] | None:
    out: set[str] = set()
    for part in parts:
        if part is None:
            return None
        out |= part
    return frozenset(out)


@dataclass(frozen=True, eq=False)  # hashed by identity: loaded once, used as a cache key
class Rules:
    version: int
    labels: dict[str, tuple[tuple[Matcher, ...], ...]]
    vocab: dict[str, Matcher]
    descriptions: dict[str, str]
    date: re.Pattern[str]
    noise: re.Pattern[str]
    typo_similarity: float
    typo_max_edits: int
    reword_max_words: int
    needles: tuple[str, ...] = ()  # every word any matcher looks for (labels and vocab)


def _expand(pattern: str, vocab: dict[str, list[str]]) -> str:
    def alternation(name: str) -> str:
        if name == "ai_cs":
            return "(?:" + "|".join(f"(?-i:{p})" for p in vocab[name]) + ")"
        return "(?:" + "|".join(vocab[name]) + ")"

    for name in sorted(vocab, key=len, reverse=True):
        pattern = pattern.replace(f"@{name}", alternation(name))
    return pattern


def _bounded(pattern: str) -> str:
    """A rule pattern that matches whole words only: "chats?" is not the end of "Snapchat",
    "train" not the middle of "constraints". A pattern that starts or ends with something
    other than a word (a lookaround, a sign) is left to say so itself."""
    if pattern[:1].isalpha():
        pattern = r"\b" + pattern
    if pattern[-1:].isalpha() or pattern[-1:] in ")?*+]":
        pattern += r"(?!\w)"
    return pattern


@lru_cache(maxsize=4)
def load_rules(path: Path = RULES_PATH) -> Rules:
    """Parse and compile rules.toml once."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    vocab: dict[str, list[str]] = {name: [_bounded(p) for p in patterns]
                                   for name, patterns in data["vocab"].items()}
    for entry in data["label"]:
        entry["rules"] = [[[_bounded(p) for p in group] for group in rule]
                          for rule in entry["rules"]]
    vocab_needles: dict[str, frozenset[str] | None] = {}
    for name, alternatives in vocab.items():
        vocab_needles[name] = _union(_needles(p, vocab_needles) for p in alternatives)
    labels: dict[str, tuple[tuple[Matcher, ...], ...]] = {}
    descriptions: dict[str, str] = {}
    for entry in data["label"]:
        rules = []
        for rule in entry["rules"]:
            rules.append(tuple(_matcher(group, vocab, vocab_needles) for group in rule))
        labels[entry["name"]] = tuple(rules)
        descriptions[entry["name"]] = entry.get("description", "")
    compiled_vocab = {name: _matcher(vocab[name], vocab, vocab_needles, name == "ai_cs")
                      for name in vocab}
    cosmetic = data["cosmetic"]
    return Rules(
        version=int(data["version"]), labels=labels, vocab=compiled_vocab,
        descriptions=descriptions, date=re.compile(cosmetic["date"], re.I),
        noise=re.compile("|".join(f"(?:{p})" for p in cosmetic["noise"]), re.I),
        typo_similarity=float(cosmetic["typo_similarity"]),
        typo_max_edits=int(cosmetic["typo_max_edits"]),
        reword_max_words=int(cosmetic["reword_max_words"]),
        needles=tuple(sorted({n for group in (*(g for rule_set in labels.values()
                                                 for rule in rule_set for g in rule),
                                               *compiled_vocab.values())
                              for n in group.words})),
    )


# ---- sentences ----------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def plain(sentence: str) -> str:
    """Markdown links reduced to their text, emphasis and list markers removed."""
    text = _LINK_RE.sub(lambda m: m.group(1), sentence)
    text = _EMPHASIS_RE.sub("", text)
    text = _ENUM_RE.sub("", text)
    return _WS_RE.sub(" ", text).strip()


def _sentences(lines: Sequence[str]) -> list[str]:
    text = _BR_RE.sub("\n", "\n".join(lines))
    return [s for s in split_sentences(text) if _PUNCT_RE.sub("", s).strip()]


@lru_cache(maxsize=65536)
def _cosmetic_key(sentence: str, rules: Rules) -> str:
    text = plain(sentence).lower()
    text = rules.noise.sub(" ", text)
    text = rules.date.sub(" date ", text)
    text = _PUNCT_RE.sub("", text)
    return _WS_RE.sub(" ", text).strip()


def is_cosmetic_pair(old: str, new: str, rules: Rules | None = None) -> bool:
    """Same words once dates, punctuation, case, links and numbering are ignored, or a typo."""
    rules = rules or load_rules()
    a, b = _cosmetic_key(old, rules), _cosmetic_key(new, rules)
    if a == b:
        return True
    wa, wb = a.split(), b.split()
    matcher = difflib.SequenceMatcher(None, wa, wb, autojunk=False)
    edits = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if len(edits) > rules.typo_max_edits:
        return False
    for tag, i1, i2, j1, j2 in edits:
        if tag != "replace" or (i2 - i1) != (j2 - j1):
            return False  # a word added or dropped is not a typo
        for x, y in zip(wa[i1:i2], wb[j1:j2], strict=True):
            if x.isdigit() or y.isdigit():
                return False  # "30 days" → "90 days" is substance
            if difflib.SequenceMatcher(None, x, y).ratio() < 0.75:
                return False
    return difflib.SequenceMatcher(None, a, b).ratio() >= rules.typo_similarity


@dataclass(frozen=True)
class Block:
    """A run of changed lines, with the new side of its hunk and the paragraphs around it."""

    removed: list[str]
    added: list[str]
    new_side: list[str]
    nearby: list[str]  # the changed lines plus the nearest unchanged paragraph on each side


def changed_blocks(diff: Diff) -> list[Block]:
    blocks: list[Block] = []
    for hunk in diff.hunks:
        lines = hunk.lines
        new_side = [ln.text for ln in lines if ln.tag != "-"]
        i = 0
        while i < len(lines):
            if lines[i].tag == " ":
                i += 1
                continue
            j = i
            while j < len(lines) and lines[j].tag != " ":
                j += 1
            run = lines[i:j]
            before = next((ln.text for ln in reversed(lines[:i]) if ln.text.strip()), "")
            after = next((ln.text for ln in lines[j:] if ln.text.strip()), "")
            blocks.append(Block(
                removed=[ln.text for ln in run if ln.tag == "-"],
                added=[ln.text for ln in run if ln.tag == "+"],
                new_side=new_side,
                nearby=[before, *(ln.text for ln in run), after],
            ))
            i = j
    return blocks


@dataclass(frozen=True)
class Reading:
    """What reading both versions whole found, beyond the items."""

    added: int = 0  # sentences new to the whole document (modified pairs included)
    removed: int = 0  # sentences gone from the whole document
    restored: int = 0  # additions that stood in a version shown within the flap window
    restored_when: str | None = None
    moved: int = 0  # sentences that only moved, were re-wrapped, or still stand elsewhere
    skimmed: int = 0  # changed sentences only counted, not read one by one (whole-page rewrite)
    unread_matching: int = 0  # of those, sentences some rule matches, past READ_MATCHING


def sides(diff: Diff) -> tuple[str, str]:
    """The two texts as far as the diff shows them (its hunks), when the full texts are not known."""
    old = "\n".join(ln.text for h in diff.hunks for ln in h.lines if ln.tag != "+")
    new = "\n".join(ln.text for h in diff.hunks for ln in h.lines if ln.tag != "-")
    return old, new


def changed_items(
    diff: Diff, rules: Rules | None = None, old: Text | None = None, new: Text | None = None,
    recent: Recent | None = None,
) -> tuple[list[Item], int, Reading]:
    """Sentence-level items of a diff, how many changed sentences were only cosmetic, and counts.

    Every sentence is judged against the whole other version: one that stands anywhere in the
    old text is not added (it moved, or the page shows it twice); one that still stands in the
    new text is not removed; a re-wrapped or split sentence stands as a run of text.
    """
    rules = rules or load_rules()
    if old is None or new is None:
        old_side, new_side = sides(diff)
        old, new = old or reading.read(old_side), new or reading.read(new_side)
    recent = recent or Recent()
    items: list[Item] = []
    cosmetic = added = removed = restored = moved = 0
    restored_when: str | None = None
    twins: _Twins | None = None
    blocks = changed_blocks(diff)
    split = [(_sentences(block.removed), _sentences(block.added)) for block in blocks]
    rewrite = sum(len(o) + len(n) for o, n in split) > READ_IN_FULL
    budget, skimmed, unread = READ_MATCHING, 0, 0
    for index, (block, (all_olds, all_news)) in enumerate(zip(blocks, split, strict=True)):

        first_at: dict[int, dict[str, int]] = {}  # per side: each sentence's first position

        def around(sentence: str | None, side: list[str], block: Block = block,
                   first_at: dict[int, dict[str, int]] = first_at) -> list[str]:
            if sentence is None:
                return []
            where = first_at.get(id(side))
            if where is None:  # built once per side: list.index per item was O(n²) on rewrites
                where = first_at[id(side)] = {}
                for k, text in enumerate(side):
                    where.setdefault(text, k)
            i = where.get(sentence)
            if i is None:
                return []
            out = side[max(0, i - 2): i + 3]
            if i < 2:
                out.append(block.nearby[0])
            if i > len(side) - 3:
                out.append(block.nearby[-1])
            return out

        common = Counter(plain(s) for s in all_olds) & Counter(plain(s) for s in all_news)
        olds = _drop(all_olds, common)
        news = _drop(all_news, common)
        # A sentence standing whole anywhere in the other version only moved (or repeats).
        kept_olds = [s for s in olds if not new.has(reading.key(s), loose=False)]
        kept_news = [s for s in news if not old.has(reading.key(s), loose=False)]
        moved += len(olds) - len(kept_olds) + len(news) - len(kept_news)
        if rewrite:  # counted: new or gone for the whole document, but not read one by one
            kept_olds, rest_olds, over_olds = _matching(kept_olds, rules, budget)
            budget -= len(kept_olds)
            kept_news, rest_news, over_news = _matching(kept_news, rules, budget)
            budget -= len(kept_news)
            removed += len(rest_olds)
            added += len(rest_news)
            skimmed += len(rest_olds) + len(rest_news)
            unread += over_olds + over_news
        pairs, lone_old, lone_new = _pair(kept_olds, kept_news, rules)
        for o, n in pairs:
            if is_cosmetic_pair(o, n, rules):
                cosmetic += 1
            elif new.has(reading.key(o)) and old.has(reading.key(n)):
                moved += 1  # re-wrapped: both halves still stand as runs of text
            else:
                added += 1
                items.append(Item("modified", o, n, index,
                                  (*around(o, all_olds), *around(n, all_news))))
        for o in lone_old:
            if _cosmetic_key(o, rules) in ("", "date"):
                cosmetic += 1
                continue
            k = reading.key(o)
            if new.has(k):
                moved += 1
                continue
            if _mentions_ai(o, rules):
                if twins is None:  # sentences both versions share, as word sets
                    twins = _Twins([frozenset(t.split()) for t in new.keys & old.keys])
                if twins.has(frozenset(k.split())):
                    moved += 1  # an older wording of a sentence the page already showed
                    continue
            removed += 1
            items.append(Item("removed", o, None, index, tuple(around(o, all_olds))))
        for n in lone_new:
            if _cosmetic_key(n, rules) in ("", "date"):
                cosmetic += 1
                continue
            k = reading.key(n)
            if old.has(k):
                moved += 1
                continue
            when = recent.restored_from(k)
            if when is not None:
                restored += 1
                restored_when = max(restored_when or when, when)
                continue
            added += 1
            items.append(Item("added", None, n, index, tuple(around(n, all_news))))
    return items, cosmetic, Reading(added, removed, restored, restored_when, moved, skimmed,
                                    unread)


def _matching(sentences: list[str], rules: Rules, budget: int) -> tuple[list[str], list[str], int]:
    """(sentences some rule matches, at most `budget` of them; the rest; matching ones left out)."""
    read: list[str] = []
    rest: list[str] = []
    over = 0
    for s in sentences:
        if not _matches_any(s, rules):
            rest.append(s)
        elif len(read) < budget:
            read.append(s)
        else:
            rest.append(s)
            over += 1
    return read, rest, over


def _matches_any(sentence: str, rules: Rules) -> bool:
    return any(_match_label(label, sentence, rules) is not None for label in rules.labels)


TWIN_SIMILARITY = 0.6


class _Twins:
    """Sentences both versions share (the current and upcoming copies), as word sets, indexed by
    word so that finding a close variant reads a few candidates, not every shared sentence."""

    def __init__(self, sets: list[frozenset[str]]) -> None:
        self.sets = sets
        self.postings: dict[str, list[int]] = {}
        for i, words in enumerate(sets):
            for w in words:
                self.postings.setdefault(w, []).append(i)

    def has(self, words: frozenset[str]) -> bool:
        """A shared sentence with Jaccard similarity ≥ TWIN_SIMILARITY to `words`.

        Such a sentence holds at least ⌈t·|words|⌉ of the words, so it holds one of any
        |words| − ⌈t·|words|⌉ + 1 of them: the rarest ones are probed, and only their postings
        are compared.
        """
        if not words:
            return False
        size = len(words)
        probes = size - math.ceil(TWIN_SIMILARITY * size - 1e-9) + 1
        rarest = sorted(words, key=lambda w: len(self.postings.get(w, ())))[:probes]
        seen: set[int] = set()
        for w in rarest:
            for i in self.postings.get(w, ()):
                if i in seen:
                    continue
                seen.add(i)
                other = self.sets[i]
                small, large = sorted((size, len(other)))
                if small < TWIN_SIMILARITY * large:
                    continue
                if len(words & other) / len(words | other) >= TWIN_SIMILARITY:
                    return True
        return False


def _drop(sentences: list[str], remove: Counter[str]) -> list[str]:
    budget = Counter(remove)
    out = []
    for s in sentences:
        key = plain(s)
        if budget[key] > 0:
            budget[key] -= 1
        else:
            out.append(s)
    return out


def _pair(
    olds: list[str], news: list[str], rules: Rules
) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """Greedy best-first pairing of old and new sentences by word-set similarity (Jaccard).

    Word sets are cheap to compare and ignore reordering, which is what an edited sentence
    keeps; a character-level ratio cost ~40x more on large rewrites for the same pairs.
    """
    if not olds or not news:
        return [], olds, news
    old_sets = [frozenset(_cosmetic_key(s, rules).split()) for s in olds]
    new_sets = [frozenset(_cosmetic_key(s, rules).split()) for s in news]
    candidates = []
    scale = len(news) / len(olds)
    for i, a in enumerate(old_sets):
        if not a:
            continue
        # Edited sentences stay near their old position; comparing only within a window keeps
        # a whole-document rewrite (hundreds of sentences a side) from costing O(n·m).
        centre = int(i * scale)
        lo, hi = max(0, centre - PAIR_WINDOW), min(len(news), centre + PAIR_WINDOW + 1)
        for j in range(lo, hi):
            b = new_sets[j]
            if not b:
                continue
            small, large = (len(a), len(b)) if len(a) <= len(b) else (len(b), len(a))
            if small < PAIR_SIMILARITY * large:
                continue  # cannot reach the threshold whatever they share
            score = len(a & b) / len(a | b)
            if score >= PAIR_SIMILARITY:
                candidates.append((score, -abs(i - j), i, j))
    candidates.sort(reverse=True)
    used_old: set[int] = set()
    used_new: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _, _, i, j in candidates:
        if i not in used_old and j not in used_new:
            used_old.add(i)
            used_new.add(j)
            pairs.append((i, j))
    pairs.sort(key=lambda p: p[1])
    return ([(olds[i], news[j]) for i, j in pairs],
            [s for i, s in enumerate(olds) if i not in used_old],
            [s for j, s in enumerate(news) if j not in used_new])


# ---- matching -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    matched: tuple[str, ...]
    negated: bool
    at: int = 0  # where the first matched phrase starts in the plain sentence


def match_label(label: str, sentence: str | None, rules: Rules) -> Hit | None:
    """Whether a sentence counts for a label, with the phrases that made it so."""
    if not sentence:
        return None
    return _match_label(label, sentence, rules)


@lru_cache(maxsize=65536)
def _match_label(label: str, sentence: str, rules: Rules) -> Hit | None:
    text, present = _prepared(sentence, rules)
    for rule in rules.labels[label]:
        if not all(group.possible_with(present) for group in rule):
            continue
        found = []
        for group in rule:
            m = group.search(text, present)
            if m is None:
                break
            found.append(m)
        else:
            first = min(found, key=lambda m: m.start())
            if label == "region_scope":
                # An exemption can be worded either way round ("EU members are not included",
                # "not available in the EEA"), so any negation in the sentence counts.
                negated = bool(rules.vocab["negation"].search(text))
            else:
                negated = _negated(text, first.start(), rules)
            return Hit(tuple(m.group(0) for m in found), negated, first.start())
    return None


@lru_cache(maxsize=4096)
def _prepared(sentence: str, rules: Rules) -> tuple[str, frozenset[str]]:
    """The sentence as rules read it, and which of all the rules' words it holds: one pass of
    `in` per word, shared by every label instead of repeated per rule."""
    text = plain(sentence)
    lowered = text.lower()
    return text, frozenset(n for n in rules.needles if n in lowered)


# Where a clause ends: what comes after one of these no longer falls under a negation before it.
_CLAUSE_END_RE = re.compile(
    r";|:\s|\.\s|\s(?:but|however|whereas|unless|except|although|while|and we|and you)\b",
    re.I)
# Words that hold "not" without negating the verb ("including, but not limited to, training").
_FALSE_NEGATION_RE = re.compile(
    r"\bnot limited to\b|\bwhether or not\b|\bnot only\b|\bnot just\b|\bno matter\b|"
    r"\bif not\b|\bno later than\b|\bnot necessarily\b|"
    r"\b(?:do|does|did)(?: not|n[’']t) (?:want|wish|agree|consent|like|prefer)\b|"
    r"\bwould (?:prefer|rather|like) not\b|\bprefer not\b", re.I)
# A conditional clause before the main one: "If you do not opt out, we will use …".
_CONDITION_RE = re.compile(
    r"\b(?:even if|if|when|whenever|once|after|before|where|although|while)\b[^,]{0,200},", re.I)


def _negated(text: str, position: int, rules: Rules) -> bool:
    """A negation that governs the phrase at `position`: in its own clause, before it, and not
    inside a condition or a fixed phrase such as "not limited to"."""
    window = text[:position]
    ends = [m.end() for m in _CLAUSE_END_RE.finditer(window)]
    if ends:
        window = window[ends[-1]:]
    window = _CONDITION_RE.sub(" ", window)
    window = _FALSE_NEGATION_RE.sub(" ", window)
    return bool(rules.vocab["negation"].search(window))


def _minor_rewording(item: Item, rules: Rules) -> bool:
    """A few words changed, none of which any rule cares about."""
    assert item.old is not None
    assert item.new is not None
    a = set(_cosmetic_key(item.old, rules).split())
    b = set(_cosmetic_key(item.new, rules).split())
    changed = a ^ b
    if len(changed) > rules.reword_max_words:
        return False
    words = " ".join(sorted(changed))
    if rules.vocab["ai"].search(words) or rules.vocab["ai_cs"].search(words.upper()):
        return False
    return not any(group.search(words) for rule_set in rules.labels.values()
                   for rule in rule_set for group in rule[:1])


def _direction(old: Hit | None, new: Hit | None) -> str:
    if old is None and new is not None:
        return "narrowed" if new.negated else "added"
    if old is not None and new is None:
        return "expanded" if old.negated else "removed"
    assert old is not None
    assert new is not None
    if old.negated and not new.negated:
        return "expanded"
    if new.negated and not old.negated:
        return "narrowed"
    return "changed"


@lru_cache(maxsize=65536)
def _mentions_ai(sentence: str, rules: Rules) -> bool:
    text = plain(sentence)
    return bool(rules.vocab["ai"].search(text) or rules.vocab["ai_cs"].search(text))


def _ai_context(sentences: Iterable[str | None], rules: Rules) -> bool:
    return any(s and _mentions_ai(s, rules) for s in sentences)


def _severity(label: str, direction: str, ai_context: bool) -> str:
    """The issue's severity table, one place."""
    if label == "ai_training":
        return {"added": "high", "expanded": "high"}.get(direction, "medium")
    if label == "opt_out":
        if not ai_context:
            return "low"
        return "high" if direction in ("removed", "narrowed") else "medium"
    if label == "default_on":
        if not ai_context:
            return "low"
        return "high" if direction in ("added", "expanded", "changed") else "medium"
    if label == "region_scope":
        if not ai_context:
            return "low"
        # An exemption ("does not apply in the EEA") removed is an expansion to that region.
        return "high" if direction == "expanded" else "medium"
    if label == "third_party_ai":
        return "low" if direction == "removed" else "medium"
    if label == "retroactivity":
        return "low" if direction == "removed" or not ai_context else "medium"
    return "low"  # ai_feature_data


def _why(label: str, direction: str, rules: Rules, ai_context: bool) -> str:
    verb = {"added": "a sentence now says", "removed": "a sentence no longer says",
            "changed": "a sentence changed what it says", "expanded": "an exclusion was lifted:",
            "narrowed": "a limit or exclusion was added:"}[direction]
    context = "" if ai_context or label in ("ai_training", "ai_feature_data") else \
        " (no AI context nearby, so it counts as low)"
    return f"{verb} {rules.descriptions[label]}{context}"


# ---- opt-out instructions -------------------------------------------------------------------


def extract_opt_out(text: str, rules: Rules | None = None) -> tuple[OptOut, ...]:
    """The ways out of AI use of one's data that a document offers (see `optout.ways_out`)."""
    rules = rules or load_rules()
    m = matchers(rules)
    return optout.ways_out(text, lambda s, near: clauses.way_out(s, m, context_ai=near),
                           partial(_about_ai_use, rules=rules), _AI_USE_HINTS)


@lru_cache(maxsize=4)
def matchers(rules: Rules) -> clauses.Matchers:
    """The classifier's rules as the clause reader asks them."""

    def match(label: str, text: str) -> int | None:
        hit = _match_label(label, text, rules) if text else None
        return None if hit is None else hit.at

    return clauses.Matchers(match, lambda text, at: _negated(plain(text), at, rules),
                            lambda text: _mentions_ai(text, rules))


@lru_cache(maxsize=65536)
def _about_ai_use(sentence: str, rules: Rules) -> bool:
    lowered = sentence.lower()
    if not (any(w in lowered for w in _AI_USE_HINTS) or _AI_CS_HINT_RE.search(sentence)):
        return False  # most sentences of a long policy: a few substring tests, not the rules
    return _mentions_ai(sentence, rules) or match_label("ai_training", sentence, rules) is not None


# Words one of which every AI mention or training phrase of the rules holds (kept broad: they
# only decide whether the rules are asked).
_AI_USE_HINTS = ("artificial", "machine", "generative", "model", "train", "fine", "learning",
                 "neural", "chatbot", "copilot", "gemini", "grok", "claude", "language",
                 "algorithm", "engine", "classifier", "dataset", "develop", "improv", "build",
                 "creat", "chatgpt", "genai")
_AI_CS_HINT_RE = re.compile("|".join(optout.AI_CS_HINTS))


# ---- the classifier ------------------------------------------------------------------------

_LABEL_ORDER = {name: i for i, name in enumerate(LABELS)}
_SUMMARY = {
    "ai_training": {"added": "AI training added", "expanded": "AI training expanded",
                    "narrowed": "AI training narrowed", "removed": "AI training statement removed",
                    "changed": "AI training terms changed"},
    "ai_feature_data": {"added": "AI feature data use added", "expanded": "AI feature data use expanded",
                        "narrowed": "AI feature data use narrowed",
                        "removed": "AI feature data statement removed",
                        "changed": "AI feature data terms changed"},
    "opt_out": {"added": "opt-out added", "removed": "opt-out removed", "changed": "opt-out changed",
                "narrowed": "opt-out restricted", "expanded": "opt-out widened"},
    "default_on": {"added": "on by default", "removed": "default-on removed",
                   "changed": "default changed", "narrowed": "default narrowed",
                   "expanded": "default widened"},
    "region_scope": {"added": "regional scope added", "removed": "regional scope removed",
                     "changed": "regional scope changed", "expanded": "regional exemption removed",
                     "narrowed": "regional exemption added"},
    "third_party_ai": {"added": "AI data sharing added", "removed": "AI data sharing removed",
                       "changed": "AI data sharing changed", "expanded": "AI data sharing expanded",
                       "narrowed": "AI data sharing narrowed"},
    "retroactivity": {"added": "statement on data already used", "removed":
                      "statement on data already used removed", "changed": "retroactivity changed",
                      "expanded": "retroactivity changed", "narrowed": "retroactivity changed"},
}


# Page artefacts that are not a change of the policy: recorded and browsable, never alerted.
DAMPED_ANOMALIES = ("older_copy", "switched", "joined", "unjoined", "partial", "restored",
                    "repeated")


def classify(
    diff: Diff,
    rules: Rules | None = None,
    *,
    title: str | None = None,
    restores: datetime | None = None,
    at: datetime | None = None,
    old_text: str | None = None,
    new_text: str | None = None,
    recent: Recent | None = None,
) -> Classification:
    """Labels, severity and evidence of one change, with flaps and page artefacts damped.

    `old_text`/`new_text` are the two whole versions: sentences are judged against the whole
    other version, not only the diff hunk (without them, only the hunks are read). `recent`
    holds versions the page showed within the flap window, so sections that come back are not
    news. `title` is the document's own title: an AI-training statement added to "LinkedIn
    European Regional Privacy Notice" extends training to that region even if the sentence
    never says so. `restores` is when the new text was last seen before, if it is an earlier
    version coming back: a return within 30 days counts as low.
    """
    rules = rules or load_rules()
    old = reading.read(old_text) if old_text is not None else None
    new = reading.read(new_text) if new_text is not None else None
    if title is None and new_text is not None:
        title = document_title(new_text)
    result = _classify(diff, rules, title, old, new, recent)
    if result.severity == "none":
        return result
    if restores is not None and at is not None and at - restores <= FLAP_WINDOW:
        when = restores.date().isoformat()
        return replace(
            result,
            severity=min(result.severity, "low", key=severity_rank),
            summary=f"back to the version last seen {when} (the page alternates): {result.summary}",
            reverted_to=restores.isoformat(),
            anomaly={"kind": "reverted", "why": f"an exact return to the version last seen {when}"},
        )
    return result


def _classify(diff: Diff, rules: Rules, title: str | None, old: Text | None, new: Text | None,
              recent: Recent | None) -> Classification:
    title_region = rules.vocab["region"].search(title or "")
    if not diff.hunks:
        return Classification((), "none", (), (), {}, rules.version, "no change")
    items, _, read = changed_items(diff, rules, old, new, recent)

    def judge(evidence: Sequence[Evidence]) -> Anomaly | None:
        if old is None or new is None:
            return None
        return reading.judge(old, new, added=read.added, removed=read.removed,
                             restored=read.restored, restored_when=read.restored_when,
                             added_keys=frozenset(reading.key(e.new) for e in evidence if e.new),
                             stated_before=recent.stated if recent is not None else frozenset(),
                             removed_keys=frozenset(reading.key(e.old) for e in evidence
                                                    if e.old and not e.new))

    if not items:
        anomaly = judge(())
        summary = "only dates, punctuation, formatting or typos changed"
        if read.moved or read.restored:
            summary = "no sentence of substance is new or gone (text moved, repeated or came back)"
        if anomaly is not None:
            summary = anomaly.why
        if read.skimmed:
            summary = _skim_note(read)
        return Classification(("cosmetic",) if not read.skimmed else (), "none", (), (), {},
                              rules.version, summary, anomaly=_anomaly_dict(anomaly),
                              skimmed=read.skimmed)

    evidence: list[Evidence] = []
    readings: list[verdicts.Reading] = []
    guidelines = bool(clauses.GUIDELINES_RE.search(title or ""))
    for item in items:
        block_ai = _ai_context((item.old, item.new, *item.context), rules)
        reading_ = _reading(item, rules, old, new, block_ai, guidelines)
        if reading_ is not None:
            readings.append(reading_)
        prohibition = any(text and rules.vocab["user_prohibition"].search(plain(text))
                          for text in (item.old, item.new))
        reworded = item.kind == "modified" and _minor_rewording(item, rules)
        training = None
        for label in rules.labels:
            old_hit = match_label(label, item.old, rules)
            new_hit = match_label(label, item.new, rules)
            if old_hit is None and new_hit is None:
                continue
            if label == "ai_feature_data" and training is not None:
                continue  # training already covers it
            if label == "region_scope" and not block_ai:
                continue  # a region named in passing, nothing about AI nearby
            if label in ("ai_training", "third_party_ai") and prohibition:
                continue  # "you may not use our content to train models" binds the user
            if label == "third_party_ai" and any(
                    text and rules.vocab["user_action"].search(plain(text))
                    for text in (item.old, item.new)):
                continue  # "you may share conversations with other users": the user shares
            direction = _direction(old_hit, new_hit)
            if label == "ai_training":
                training = direction
            severity = _severity(label, direction, block_ai)
            why = _why(label, direction, rules, block_ai)
            if (label == "ai_feature_data" and direction in _POSITIVE and not prohibition
                    and item.new and rules.vocab["specific_data"].search(plain(item.new))):
                severity = "medium"  # an AI feature now takes a named kind of the user's content
                why += " (it names the user's content an AI feature uses)"
            elif (label == "ai_feature_data" and direction in _POSITIVE and item.new
                  and reading_ is not None and _PRODUCES_RE.search(plain(item.new))
                  and reading_.new & {verdicts.RULE, verdicts.FEATURE}):
                severity = "medium"  # AI output terms or rules on AI use: what users make with it
                why += " (terms or rules for what the AI feature produces)"
            if direction == "changed" and (reworded or _same_meaning(item, rules,
                                                                     (old_hit, new_hit))):
                severity = "low"
                why = f"reworded without a change of actor, data, purpose, negation, region or " \
                      f"default: {rules.descriptions[label]}"
            matched = tuple(dict.fromkeys((*(old_hit.matched if old_hit else ()),
                                           *(new_hit.matched if new_hit else ()))))
            evidence.append(Evidence(label, direction, severity, item.old, item.new, matched, why,
                                     block_ai))
            if (label == "ai_training" and title_region and direction in ("added", "expanded")
                    and match_label("region_scope", item.new, rules) is None):
                evidence.append(Evidence(
                    "region_scope", "added", "high", item.old, item.new, (title_region.group(0),),
                    f"AI training {direction} in a document for {title_region.group(0)} "
                    f"(“{title}”): it now applies there"))

    anomaly = judge(evidence)
    directions = _net_directions(evidence)
    evidence = [_agree(e, directions[e.label]) for e in evidence]
    evidence = _trim(evidence)
    labels = tuple(sorted({e.label for e in evidence}, key=_LABEL_ORDER.__getitem__))
    severity = max_severity([e.severity for e in evidence] + ["low"])
    summary = _summary(labels, directions, items, evidence)
    if anomaly is not None and anomaly.kind in DAMPED_ANOMALIES:
        severity = min(severity, "low", key=severity_rank)
        summary = f"{anomaly.why}; {summary}"
    if read.skimmed:
        summary = f"{_skim_note(read)}; {summary}"
    about_ai = _alerting(evidence) or any(r.old | r.new for r in readings)
    whole_new = new.raw if new is not None else "\n".join(
        "\n".join(b.new_side) for b in changed_blocks(diff))
    opt_out = extract_opt_out(whole_new, rules) if about_ai else ()
    found = verdicts.judge(readings, still_offered=bool(opt_out))
    found = replace(found, default=_default(found, readings, opt_out, rules),
                    regions_excluded=_regions_excluded(readings, rules))
    return Classification(labels, severity, tuple(evidence), opt_out, directions, rules.version,
                          summary, anomaly=_anomaly_dict(anomaly), skimmed=read.skimmed,
                          verdict=found)


def _reading(item: Item, rules: Rules, old: Text | None, new: Text | None, block_ai: bool,
             guidelines: bool) -> verdicts.Reading | None:
    """One changed sentence read clause by clause, before and after; None when neither side
    says anything about AI."""
    if not block_ai and not guidelines:
        block_ai = any(s and _about_ai_use(s, rules) for s in (item.old, item.new, *item.context))
        if not block_ai:
            return None
    m = matchers(rules)

    def read_side(sentence: str | None, text: Text | None) -> frozenset[str]:
        if not sentence:
            return frozenset()
        lead = clauses.lead_in(text.raw, sentence) if text is not None else None
        return clauses.claims(plain(sentence), m, lead_in=lead, context_ai=block_ai,
                              guidelines=guidelines)

    before, after = read_side(item.old, old), read_side(item.new, new)
    if not before and not after:
        return None
    substantive, widened = True, 0
    if item.kind == "modified" and item.old is not None and item.new is not None:
        hits = (match_label("ai_training", item.old, rules), match_label("ai_training", item.new, rules))
        substantive = not (_minor_rewording(item, rules) or _same_meaning(item, rules, hits))
        widened = verdicts.widening(plain(item.old), plain(item.new))
    return verdicts.Reading(before, after, substantive, item.old, item.new, widened)


# An AI feature that produces the user's content, or a rule on it: outputs, generated content.
_PRODUCES_RE = re.compile(r"\boutputs?\b|\bAI[- ]generated\b|\bgenerated (?:by|with|using)\b|"
                          r"\bgenerative AI (?:content|features?|services?|products?|tools?)\b|"
                          r"\bsynthetic\b", re.I)


_OPT_IN_RE = re.compile(r"\bopt(?:ed|s)?[- ]?in\b|\byour (?:explicit |express |prior )?consent\b|"
                        r"\bonly (?:if|when|with) you\b|\bwith your permission\b|"
                        r"\bif you (?:choose|agree|allow|decide) to\b", re.I)
_ON_RE = re.compile(r"\blegitimate interests?\b|\bunless you\b|\bopt(?:ed)?[- ]?out\b|"
                    r"\bby default\b|\bautomatically\b", re.I)


def _default(found: verdicts.Verdict, readings: Sequence[verdicts.Reading],
             opt_out: Sequence[OptOut], rules: Rules) -> str:
    """"on" when the AI use applies unless the user acts (an opt-out, a legitimate-interests
    basis), "off" when it waits for the user's choice, "n/a" when the text does not say."""
    if found.verdict == ("no_change",) and not opt_out:
        return "n/a"
    stated = [r.new_text for r in readings if r.new_text and r.new & {verdicts.TRAIN,
                                                                       verdicts.WAY_OUT}]
    if any(_OPT_IN_RE.search(plain(s)) and not _ON_RE.search(plain(s)) for s in stated):
        return "off"
    if opt_out or any(_ON_RE.search(plain(s)) or match_label("default_on", s, rules)
                      for s in stated):
        return "on"
    return "n/a"


_EXEMPT_RE = re.compile(r"\b(?:not|n[’']t|except|exclud\w*|other than|outside(?: of)?)\b", re.I)


def _regions_excluded(readings: Sequence[verdicts.Reading], rules: Rules) -> tuple[str, ...]:
    """Regions the new text exempts from AI training ("we do not use data of members in the EU,
    EEA or Switzerland to train …"), as written; read from sentences, never from a lone link."""
    out: list[str] = []
    for r in readings:
        if not r.new_text or not r.new & {verdicts.NO_TRAIN, verdicts.TRAIN, verdicts.WAY_OUT}:
            continue
        text = plain(r.new_text)
        if _LINK_RE.fullmatch(r.new_text.strip()) or not _EXEMPT_RE.search(text):
            continue
        if verdicts.NO_TRAIN not in r.new and not re.search(
                r"\b(?:except|exclud\w*|other than|outside)\b", text, re.I):
            continue
        for m in rules.vocab["region"].finditer(text):
            name = m.group(0)
            if name not in out and not name.lower().startswith("outside"):
                out.append(name)
    return tuple(out)


def _skim_note(read: Reading) -> str:
    """What a whole-page rewrite's classification read, so nobody takes a count for a reading."""
    note = (f"whole-page rewrite: {read.skimmed:,} changed sentences no rule matches were "
            f"counted, not read one by one")
    if read.unread_matching:
        note += (f", nor were {read.unread_matching:,} that a rule matches, past the first "
                 f"{READ_MATCHING:,}")
    return note


def recent_versions(texts: Sequence[tuple[str, datetime]],
                    stated: Iterable[date] = ()) -> Recent:
    """Recent earlier versions (text, last time current), and the dates any earlier version
    stated, in the form `classify` reads them."""
    return Recent(tuple(reading.read(t) for t, _ in texts),
                  tuple(when.date().isoformat() for _, when in texts), frozenset(stated))


def _anomaly_dict(anomaly: Anomaly | None) -> dict[str, str] | None:
    return {"kind": anomaly.kind, "why": anomaly.why} if anomaly is not None else None


_AI_LABELS = ("ai_training", "ai_feature_data")
_RELEVANT = (*_AI_LABELS, "opt_out", "default_on", "region_scope")


def _alerting(evidence: Sequence[Evidence]) -> bool:
    """Opt-out steps are only worth listing beside AI evidence."""
    return any(e.label in _AI_LABELS
               or (e.label in _RELEVANT and e.ai_context) for e in evidence)


def _same_meaning(item: Item, rules: Rules, hits: Sequence[Hit | None]) -> bool:
    """A reworded sentence that keeps its meaning: the same actor, data, purpose, negation,
    region and default, and its words changed only a little or only outside the phrases the
    rule matched ("including through generative AI features" → "including through our AI
    features"; "see this help center article" → "see our FAQs")."""
    if item.old is None or item.new is None:
        return False
    if _facets(plain(item.old), rules) != _facets(plain(item.new), rules):
        return False
    a = {_stem(w) for w in _cosmetic_key(item.old, rules).split() if _content_word(w, rules)}
    b = {_stem(w) for w in _cosmetic_key(item.new, rules).split() if _content_word(w, rules)}
    changed = a ^ b
    if len(changed) <= REWORD_MAX_CONTENT_WORDS:
        return True
    core = set()
    for sentence, hit in zip((item.old, item.new), hits, strict=True):
        core |= _core_words(plain(sentence), hit, rules)
    return len(changed) <= rules.reword_max_words and not changed & core


def _content_word(word: str, rules: Rules) -> bool:
    return (word not in _STOPWORDS and not rules.vocab["ai"].fullmatch(word)
            and not rules.vocab["ai_cs"].fullmatch(word.upper()))


def _core_words(text: str, hit: Hit | None, rules: Rules) -> set[str]:
    """Stems of the words from the first to the last phrase a rule matched in the sentence."""
    if hit is None:
        return set()
    lowered = text.lower()
    spans = [(i, i + len(p)) for p in hit.matched if (i := lowered.find(p.lower())) >= 0]
    if not spans:
        return set()
    core = text[min(s for s, _ in spans): max(e for _, e in spans)]
    return {_stem(w) for w in _cosmetic_key(core, rules).split() if _content_word(w, rules)}


REWORD_MAX_CONTENT_WORDS = 3
_STOPWORDS = frozenset({
    "a", "an", "the", "and", "or", "of", "to", "for", "in", "on", "at", "by", "with", "from", "as",
    "is", "are", "be", "been", "was", "were", "this", "that", "these", "those", "it", "its", "our",
    "your", "their", "we", "you", "they", "us", "them", "his", "her", "such", "any", "all", "some",
    "which", "who", "whom", "will", "would", "can", "could", "may", "might", "must", "shall",
    "should", "also", "more", "most", "other",
})


@lru_cache(maxsize=8192)
def _facets(text: str, rules: Rules) -> tuple[object, ...]:
    def found(name: str) -> frozenset[str]:
        return frozenset(_stem(m.group(0)) for m in rules.vocab[name].finditer(text))

    return (found("actor"), found("user_data"), found("train") | found("build"), found("region"),
            found("scope"),
            bool(rules.vocab["negation"].search(text)),
            _match_label("default_on", text, rules) is not None)


def _stem(phrase: str) -> str:
    """'your personal data' → 'data', 'Training' → 'train': the part a rule cares about."""
    word = phrase.lower().split()[-1]
    for suffix in ("ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


_POSITIVE = ("added", "expanded")
_NEGATIVE = ("removed", "narrowed")


def _net_directions(evidence: Sequence[Evidence]) -> dict[str, str]:
    """Per label, the net effect of all its evidence: more opt-out sentences after than before
    is never "opt-out removed", whatever single sentence went away. A new limit ("narrowed")
    qualifies an addition beside it rather than cancelling it."""
    out: dict[str, str] = {}
    by_label: dict[str, list[Evidence]] = {}
    for e in evidence:
        by_label.setdefault(e.label, []).append(e)
    for label, group in by_label.items():
        weighty = [e for e in group if e.severity != "low"] or group
        kinds = Counter(e.direction for e in weighty)
        pos, neg = kinds["added"] + kinds["expanded"], kinds["removed"]
        if pos > neg:
            out[label] = "expanded" if kinds["expanded"] and not kinds["added"] else "added"
        elif neg > pos:
            out[label] = "removed"
        elif pos == 0 and kinds["narrowed"]:
            out[label] = "narrowed"
        elif len(kinds) == 1:
            out[label] = next(iter(kinds))
        else:
            out[label] = "changed"
    return out


def _agree(e: Evidence, net: str) -> Evidence:
    """Evidence against the label's net direction cannot make the change more severe than the
    net effect does (one old opt-out sentence gone while steps were added is not "high")."""
    against = (e.direction in _NEGATIVE and net in _POSITIVE) or \
              (e.direction in _POSITIVE and net in _NEGATIVE)
    if not against:
        return e
    ceiling = _severity(e.label, net, e.ai_context)
    if severity_rank(e.severity) <= severity_rank(ceiling):
        return e
    return replace(e, severity=ceiling)


def _trim(evidence: list[Evidence]) -> list[Evidence]:
    """The strongest few pieces of evidence per label, strongest first."""
    by_label: dict[str, list[Evidence]] = {}
    for e in evidence:
        by_label.setdefault(e.label, []).append(e)
    out: list[Evidence] = []
    for label in sorted(by_label, key=_LABEL_ORDER.__getitem__):
        ranked = sorted(by_label[label], key=lambda e: -severity_rank(e.severity))
        out.extend(ranked[:MAX_EVIDENCE_PER_LABEL])
    return out


def _summary(labels: Sequence[str], directions: dict[str, str], items: Sequence[Item],
             evidence: Sequence[Evidence] = ()) -> str:
    """The headline: the labels that matter most first; labels seen only far from any AI talk
    are left out when something about AI changed."""
    best = {label: max((severity_rank(e.severity) for e in evidence if e.label == label),
                       default=0) for label in labels}
    about_ai = {e.label for e in evidence if e.ai_context or e.label in _AI_LABELS}
    shown = [label for label in labels if label in about_ai] or list(labels)
    shown.sort(key=lambda label: (-best.get(label, 0), _LABEL_ORDER[label]))
    parts = [_SUMMARY[label][directions[label]] for label in shown
             if label in _SUMMARY and label in directions]
    if not parts:
        kinds = Counter(i.kind for i in items)
        return ", ".join(f"{n} sentence{'s' if n > 1 else ''} {k}" for k, n in sorted(kinds.items()))
    return ", ".join(parts)


def mark(sentence: str | None, phrases: Sequence[str], left: str = "«", right: str = "»") -> str:
    """The sentence with its matched phrases marked, for `explain` and alerts."""
    if not sentence:
        return ""
    text = plain(sentence)
    for phrase in sorted(set(phrases), key=len, reverse=True):
        text = re.sub(re.escape(phrase), lambda m: f"{left}{m.group(0)}{right}", text, count=1)
    return text
