"""One label's phrase rules against one sentence: the hit, whether the clause that governs
it is negated, which way a pair moved (added, expanded, narrowed, removed) and how severe
that is. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from monitor.rules import Rules
from monitor.text import plain


@dataclass(frozen=True)
class Hit:
    matched: tuple[str, ...]
    negated: bool
    at: int = 0  # where the first matched phrase starts in the plain sentence


def match_label(label: str, sentence: str | None, rules: Rules) -> Hit | None:
    """Whether a sentence counts for a label, with the phrases that made it so."""
    if not sentence:
        return None
    return label_hit(label, sentence, rules)


@lru_cache(maxsize=65536)
def label_hit(label: str, sentence: str, rules: Rules) -> Hit | None:
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
                negated = is_negated(text, first.start(), rules)
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


def is_negated(text: str, position: int, rules: Rules) -> bool:
    """A negation that governs the phrase at `position`: in its own clause, before it, and not
    inside a condition or a fixed phrase such as "not limited to"."""
    window = text[:position]
    ends = [m.end() for m in _CLAUSE_END_RE.finditer(window)]
    if ends:
        window = window[ends[-1]:]
    window = _CONDITION_RE.sub(" ", window)
    window = _FALSE_NEGATION_RE.sub(" ", window)
    return bool(rules.vocab["negation"].search(window))


def direction_of(old: Hit | None, new: Hit | None) -> str:
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
def mentions_ai(sentence: str, rules: Rules) -> bool:
    text = plain(sentence)
    return bool(rules.vocab["ai"].search(text) or rules.vocab["ai_cs"].search(text))


def ai_context_of(sentences: Iterable[str | None], rules: Rules) -> bool:
    return any(s and mentions_ai(s, rules) for s in sentences)


def severity_of(label: str, direction: str, ai_context: bool) -> str:
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


def why_note(label: str, direction: str, rules: Rules, ai_context: bool) -> str:
    verb = {"added": "a sentence now says", "removed": "a sentence no longer says",
            "changed": "a sentence changed what it says", "expanded": "an exclusion was lifted:",
            "narrowed": "a limit or exclusion was added:"}[direction]
    context = "" if ai_context or label in ("ai_training", "ai_feature_data") else \
        " (no AI context nearby, so it counts as low)"
    return f"{verb} {rules.descriptions[label]}{context}"
