"""What a change means for a reader: a verdict in a closed vocabulary. Pure.

Labels say which rules a changed sentence met; a reader needs the sentence an analyst would
write: "now trains AI on your data", "promises not to", "a new way out". Each changed sentence
is read clause by clause into claims (the classifier does the reading, `claims` here names the
words), the claims of the old and new sentence are compared, and the verdict is the list of
what happened, most important first. Importance is a fixed order, not a count: one new
training statement outweighs ten reworded feature sentences.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# The vocabulary of ../shared/eval/meaning-spec.md, most important first.
VERDICTS = ("trains_on_user_data", "opt_out_removed", "shares_for_ai", "stops_training",
            "opt_out_added", "promises_no_training", "user_ai_rules", "ai_feature_terms",
            "no_change")
DEFAULTS = ("on", "off", "n/a")

REPLACED = "opt_out_replaced"  # a way-out sentence gone while the document still offers one

# Claims a clause can make.
TRAIN = "train"  # the company (or its group) uses users' data to train or improve AI
NO_TRAIN = "no_train"  # ... does not, or restricts its providers from doing so
SHARE = "share"  # users' data goes to another company for its AI
RULE = "rule"  # what users may or must do with AI (no scraping to train, label AI content)
FEATURE = "feature"  # AI features, their inputs and outputs, AI definitions
WAY_OUT = "way_out"  # a way for the reader to refuse AI use of their data
NARROW = "narrow"  # the way out applies to fewer products or people ("applicable", "certain")
CHANNEL = "channel:"  # prefix: how the way out is reached (e-mail, link, settings, form)


@dataclass(frozen=True)
class Verdict:
    """The verdict of one change, and where it came from."""

    verdict: tuple[str, ...]
    default: str = "n/a"
    regions_excluded: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"verdict": list(self.verdict), "default": self.default,
                "regions_excluded": list(self.regions_excluded)}


NO_VERDICT = Verdict(("no_change",))


@dataclass(frozen=True)
class Reading:
    """One changed sentence as read: its claims before and after, and whether the words that
    carry them changed in substance (a rewording keeps its meaning)."""

    old: frozenset[str]
    new: frozenset[str]
    substantive: bool
    old_text: str | None
    new_text: str | None
    widened: int = 0  # content words the new wording adds (more data, purposes, people)


WIDER = 1  # new content words (not verbs of improving) that make a training statement wider


def words_for(reading: Reading, still_offered: bool = False) -> list[str]:
    """What one changed sentence did, in verdict words (may be empty: nothing about AI).

    `still_offered`: the new document still gives a way out, so a way-out sentence that went
    (a summary line, an older wording) removed nothing.
    """
    old, new = reading.old, reading.new
    out: list[str] = []
    if TRAIN in new and TRAIN not in old:
        out.append("trains_on_user_data")
    elif TRAIN in old and TRAIN not in new:
        out.append("promises_no_training" if NO_TRAIN in new else "stops_training")
    elif TRAIN in old and TRAIN in new and reading.substantive and reading.widened >= WIDER:
        out.append("trains_on_user_data")  # more data, purposes, people or regions
    if NO_TRAIN in new and NO_TRAIN not in old and TRAIN not in new:
        out.append("promises_no_training")
    if SHARE in new and (SHARE not in old or reading.substantive):
        out.append("shares_for_ai")
    if WAY_OUT in new and WAY_OUT not in old:
        out.append("opt_out_added")
    elif WAY_OUT in old and WAY_OUT not in new:
        # gone from here while the document still offers a way out: replaced, not removed
        out.append(REPLACED if still_offered else "opt_out_removed")
    elif WAY_OUT in old and WAY_OUT in new:
        if NARROW in new and NARROW not in old:
            out.append("opt_out_removed")
        elif _channels(new) - _channels(old):
            out.append("opt_out_added")  # a new way to reach it (settings where only e-mail was)
    if (RULE in new and (RULE not in old or reading.substantive)) or (RULE in old and RULE not in new):
        out.append("user_ai_rules")
    if (FEATURE in new and (FEATURE not in old or reading.substantive)) \
            or (FEATURE in old and FEATURE not in new):
        out.append("ai_feature_terms")
    if not out and (old | new) & {TRAIN, NO_TRAIN, SHARE, WAY_OUT, RULE, FEATURE}:
        out.append("no_change")  # reworded, moved or re-rendered: the same meaning
    return out


def _moved(readings: list[Reading]) -> list[Reading]:
    """A sentence removed in one place and a close rewording of it added in another is one
    modified sentence, not a statement gone and a new one: pair them up (word overlap)."""
    gone = [r for r in readings if r.new_text is None and r.old]
    new = [r for r in readings if r.old_text is None and r.new]
    if not gone or not new:
        return readings
    out = [r for r in readings if r not in gone and r not in new]
    used: set[int] = set()
    for g in gone:
        words = _words(g.old_text or "")
        best, score = None, MOVED_SIMILARITY
        for i, n in enumerate(new):
            if i in used or n.new != g.old:
                continue
            other = _words(n.new_text or "")
            s = len(words & other) / max(1, len(words | other))
            # an item rewritten at length keeps most of its old words ("Improve our AI
            # technologies, such as translations" → "… and support AI research, such as …")
            kept = len(words & other) / max(1, min(len(words), len(other)))
            if kept >= MOVED_CONTAINED and min(len(words), len(other)) >= 3:
                s = max(s, score)
            if s >= score:
                best, score = i, s
        if best is None:
            out.append(g)
            continue
        used.add(best)
        n = new[best]
        widened = widening(g.old_text or "", n.new_text or "")
        out.append(Reading(g.old, n.new, widened >= WIDER, g.old_text, n.new_text, widened))
    out.extend(n for i, n in enumerate(new) if i not in used)
    return out


# Verbs of improving and testing: "training, testing and improving" says how, not on what data.
HOW_WORDS_RE = re.compile(r"(?:train|test|develop|improv|build|creat|mak|evaluat|fine|tun|"
                          r"enhanc|refin|maintain|provid|operat|research|analy[sz]|with|that|this|"
                          r"from|such|other|these|those|which|their|your|ours?)", re.I)
MOVED_SIMILARITY = 0.5
MOVED_CONTAINED = 0.75


def widening(old: str, new: str) -> int:
    """Content words a rewording adds, when it grows (at least GROWTH more words): a swap of
    one word for another ("products" → "Services") widens nothing."""
    before, after = re.findall(r"[a-z0-9]+", old.lower()), re.findall(r"[a-z0-9]+", new.lower())
    if len(after) - len(before) < GROWTH:
        return 0
    return len({w for w in set(after) - set(before) if len(w) > 3 and not HOW_WORDS_RE.match(w)})


GROWTH = 3


def _words(text: str) -> frozenset[str]:
    return frozenset(w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2)


def _channels(claims: frozenset[str]) -> frozenset[str]:
    return frozenset(c for c in claims if c.startswith(CHANNEL))


def judge(readings: Iterable[Reading], *, still_offered: bool = False) -> Verdict:
    """The verdict of a change from its changed sentences, most important word first (its
    default and regions are read by the classifier, which has the rules for them)."""
    found: dict[str, list[str]] = {}
    for reading in _moved(list(readings)):
        for word in words_for(reading, still_offered):
            sentence = reading.new_text or reading.old_text
            found.setdefault(word, [])
            if sentence and sentence not in found[word]:
                found[word].append(sentence)
    for more_word, fewer_words in (("trains_on_user_data", ("stops_training",)),
                                   ("opt_out_added", ("opt_out_removed", REPLACED))):
        fewer_word = next((w for w in fewer_words if w in found), None)
        if more_word in found and fewer_word is not None:
            # Statements of one kind both added and gone: a section rewritten, a way out
            # replaced by another. The balance decides; an even one is neither.
            more = len(found[more_word])
            fewer = sum(len(found.get(w, ())) for w in fewer_words)
            if more <= fewer:
                del found[more_word]
            if fewer <= more:
                for w in fewer_words:
                    found.pop(w, None)
    found.pop(REPLACED, None)
    ordered = tuple(w for w in VERDICTS if w in found) or ("no_change",)
    if len(ordered) > 1 and ordered[-1] == "no_change":
        ordered = ordered[:-1]  # something did change; rewordings beside it are not news
    return Verdict(ordered)


def from_dict(data: dict[str, object] | None) -> Verdict | None:
    """A stored verdict, or None for a change judged before verdicts existed."""
    words_in = data.get("verdict") if data else None
    if not data or not isinstance(words_in, list):
        return None
    words = tuple(str(w) for w in words_in if w in VERDICTS)
    default = str(data.get("default") or "n/a")
    regions = data.get("regions_excluded") or []
    return Verdict(words or ("no_change",), default if default in DEFAULTS else "n/a",
                   tuple(str(r) for r in regions) if isinstance(regions, list) else ())
