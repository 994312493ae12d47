"""A diff → labels, severity, quoted evidence and opt-out instructions. Pure.

The unit of meaning is the sentence. Diff hunks are expanded to whole sentences of the old and
new text; a sentence that only moved, or changed only in dates, punctuation, case, numbering,
link targets or a typo, is cosmetic. Remaining sentences are paired (modified) or stand alone
(added, removed), and each is matched against the phrase rules in `rules.toml`. Negation is
read in the clause before a match, so "we do not use your messages to train…" narrows AI
training instead of expanding it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from functools import lru_cache, partial
from typing import Any

from monitor import clauses, optout, reading
from monitor import verdict as verdicts
from monitor.diff import Diff
from monitor.items import READ_MATCHING, Item, Reading, changed_blocks, changed_items, cosmetic_key
from monitor.labels import LABELS
from monitor.labels import phrase as label_phrase
from monitor.matching import (
    Hit,
    ai_context_of,
    direction_of,
    is_negated,
    label_hit,
    match_label,
    mentions_ai,
    severity_of,
    why_note,
)
from monitor.optout import OptOut
from monitor.reading import Anomaly, Recent, Text, document_title
from monitor.rules import Rules, load_rules
from monitor.schedule import FLAP_WINDOW
from monitor.text import LINK_RE as _LINK_RE
from monitor.text import key, plain
from monitor.wording import SEVERITIES, max_severity, severity_rank

__all__ = ["LABELS", "SEVERITIES", "Anomaly", "OptOut", "Recent", "classify", "document_title",
           "max_severity", "recent_versions", "severity_rank"]

MAX_EVIDENCE_PER_LABEL = 20  # stored; messages quote 3 a label and count the rest



# ---- values -------------------------------------------------------------------------------




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






























# ---- matching -----------------------------------------------------------------------------


























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
        hit = label_hit(label, text, rules) if text else None
        return None if hit is None else hit.at

    return clauses.Matchers(match, lambda text, at: is_negated(plain(text), at, rules),
                            lambda text: mentions_ai(text, rules))


@lru_cache(maxsize=65536)
def _about_ai_use(sentence: str, rules: Rules) -> bool:
    lowered = sentence.lower()
    if not (any(w in lowered for w in _AI_USE_HINTS) or _AI_CS_HINT_RE.search(sentence)):
        return False  # most sentences of a long policy: a few substring tests, not the rules
    return mentions_ai(sentence, rules) or match_label("ai_training", sentence, rules) is not None


# Words one of which every AI mention or training phrase of the rules holds (kept broad: they
# only decide whether the rules are asked).
_AI_USE_HINTS = ("artificial", "machine", "generative", "model", "train", "fine", "learning",
                 "neural", "chatbot", "copilot", "gemini", "grok", "claude", "language",
                 "algorithm", "engine", "classifier", "dataset", "develop", "improv", "build",
                 "creat", "chatgpt", "genai")
_AI_CS_HINT_RE = re.compile("|".join(optout.AI_CS_HINTS))


# ---- the classifier ------------------------------------------------------------------------

_LABEL_ORDER = {name: i for i, name in enumerate(LABELS)}
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


def _minor_rewording(item: Item, rules: Rules) -> bool:
    """A few words changed, none of which any rule cares about."""
    assert item.old is not None
    assert item.new is not None
    a = set(cosmetic_key(item.old, rules).split())
    b = set(cosmetic_key(item.new, rules).split())
    changed = a ^ b
    if len(changed) > rules.reword_max_words:
        return False
    words = " ".join(sorted(changed))
    if rules.vocab["ai"].search(words) or rules.vocab["ai_cs"].search(words.upper()):
        return False
    return not any(group.search(words) for rule_set in rules.labels.values()
                   for rule in rule_set for group in rule[:1])


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
                             added_keys=frozenset(key(e.new) for e in evidence if e.new),
                             stated_before=recent.stated if recent is not None else frozenset(),
                             removed_keys=frozenset(key(e.old) for e in evidence
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
        block_ai = ai_context_of((item.old, item.new, *item.context), rules)
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
            direction = direction_of(old_hit, new_hit)
            if label == "ai_training":
                training = direction
            severity = severity_of(label, direction, block_ai)
            why = why_note(label, direction, rules, block_ai)
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
    a = {_stem(w) for w in cosmetic_key(item.old, rules).split() if _content_word(w, rules)}
    b = {_stem(w) for w in cosmetic_key(item.new, rules).split() if _content_word(w, rules)}
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
    return {_stem(w) for w in cosmetic_key(core, rules).split() if _content_word(w, rules)}


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
            label_hit("default_on", text, rules) is not None)


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
    ceiling = severity_of(e.label, net, e.ai_context)
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
    parts = [p for label in shown if label in directions
             and (p := label_phrase(label, directions[label])) is not None]
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
