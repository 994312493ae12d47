"""Which sentences changed: a diff's blocks read as whole sentences, moved and cosmetic
edits (dates, punctuation, numbering, link targets, typos) set aside, the rest paired old
with new or left standing alone. Pure; bounded for whole-page rewrites (READ_IN_FULL)."""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from monitor import reading
from monitor.diff import Diff
from monitor.matching import label_hit, mentions_ai
from monitor.reading import Recent, Text
from monitor.rules import Rules, load_rules
from monitor.text import BR_RE as _BR_RE
from monitor.text import key, plain, split_sentences

ItemKind = Literal["added", "removed", "modified"]


_PUNCT_RE = re.compile(r"[^\w\s]", re.UNICODE)


PAIR_SIMILARITY = 0.45


PAIR_WINDOW = 40


# A change reads every changed sentence one by one (pairing, re-wrap search, every label) up to
# this many sentences, both sides together: a whole rewrite of the longest real policies
# (~2,200 sentences a side) stays under it. Past it the change is a whole-page rewrite and only
# the sentences some rule matches are read one by one, at most READ_MATCHING of them; the rest
# are counted. The cost of classifying a change is then bounded whatever the page.
READ_IN_FULL = 10_000


READ_MATCHING = 1_000


@dataclass(frozen=True)
class Item:
    """One changed sentence: added, removed, or an old/new pair."""

    kind: ItemKind
    old: str | None
    new: str | None
    block: int  # index of the changed block it came from
    context: tuple[str, ...] = ()  # neighbouring sentences: is AI being talked about here?


def _sentences(lines: Sequence[str]) -> list[str]:
    text = _BR_RE.sub("\n", "\n".join(lines))
    return [s for s in split_sentences(text) if _PUNCT_RE.sub("", s).strip()]


@lru_cache(maxsize=65536)
def cosmetic_key(sentence: str, rules: Rules) -> str:
    text = plain(sentence).lower()
    text = rules.noise.sub(" ", text)
    text = rules.date.sub(" date ", text)
    text = _PUNCT_RE.sub("", text)
    return " ".join(text.split())


def is_cosmetic_pair(old: str, new: str, rules: Rules | None = None) -> bool:
    """Same words once dates, punctuation, case, links and numbering are ignored, or a typo."""
    rules = rules or load_rules()
    a, b = cosmetic_key(old, rules), cosmetic_key(new, rules)
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
        kept_olds = [s for s in olds if not new.has(key(s), loose=False)]
        kept_news = [s for s in news if not old.has(key(s), loose=False)]
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
            elif new.has(key(o)) and old.has(key(n)):
                moved += 1  # re-wrapped: both halves still stand as runs of text
            else:
                added += 1
                items.append(Item("modified", o, n, index,
                                  (*around(o, all_olds), *around(n, all_news))))
        for o in lone_old:
            if cosmetic_key(o, rules) in ("", "date"):
                cosmetic += 1
                continue
            k = key(o)
            if new.has(k):
                moved += 1
                continue
            if mentions_ai(o, rules):
                if twins is None:  # sentences both versions share, as word sets
                    twins = _Twins([frozenset(t.split()) for t in new.keys & old.keys])
                if twins.has(frozenset(k.split())):
                    moved += 1  # an older wording of a sentence the page already showed
                    continue
            removed += 1
            items.append(Item("removed", o, None, index, tuple(around(o, all_olds))))
        for n in lone_new:
            if cosmetic_key(n, rules) in ("", "date"):
                cosmetic += 1
                continue
            k = key(n)
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
    return any(label_hit(label, sentence, rules) is not None for label in rules.labels)


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
    old_sets = [frozenset(cosmetic_key(s, rules).split()) for s in olds]
    new_sets = [frozenset(cosmetic_key(s, rules).split()) for s in news]
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
