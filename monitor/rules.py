"""The phrase rules of rules.toml compiled: one matcher per label, cheap enough to run on every
sentence of a whole-page rewrite.

Each label's rules are groups of patterns that must all match one sentence (AND of ORs);
`@name` refers to a [vocab] list. Patterns get whole-word edges where they start or end on a
word character, and each matcher keeps the literal words ("needles") a sentence must contain
for any of its patterns to match, so most sentences are dismissed by a substring test before
any regular expression runs.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from monitor.labels import RULES_PATH


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
        if not entry["rules"]:
            continue  # a label given by the cosmetic reading, not by phrases (cosmetic)
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
