"""The AI data-use board: for each platform and document, the answer to each question a
reader asks (does it train on my data, since when, on by default, how to get out, who is
exempt, who else gets my data for AI), each answer traced to the change and version that
established it. Pure: built from the verdicts stored with each change, in the order they
were detected, so the board at any date is what the stored versions said then and nothing is
classified again when it is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from typing import Any

from monitor.wording import iso

QUESTIONS = ("training", "default", "ways_out", "regions_excluded", "sharing",
             "feature_terms", "user_rules")
_EVENTS = ("feature_terms", "user_rules")  # answered by the latest change of each, not a state
QUESTION_WORDS = {
    "training": "trains AI on your data", "default": "on by default",
    "ways_out": "how to get out", "regions_excluded": "who is exempt",
    "sharing": "shares your data for AI", "feature_terms": "AI feature terms",
    "user_rules": "rules for your use of AI",
}
NOT_STATED = "not stated"
# Which verdict word answers "does it train on your data", first match in the verdict's order.
TRAINING = {"trains_on_user_data": "yes", "stops_training": "no",
            "promises_no_training": "promises not to"}
_RECIPIENT_RE = re.compile(
    r"\b(Microsoft|OpenAI|Google|Anthropic|Meta|Amazon|Apple|xAI|Nvidia|Mistral|"
    r"(?:our |its )?parent company|affiliates?|(?:AI |model |trusted )?partners?|"
    r"third[- ]part(?:y|ies)|service providers?|vendors?|licensees?)\b", re.I)
_SHARE_RE = re.compile(r"\b(?:shar\w*|disclos\w*|provid\w*|licens\w*|sell\w*|transfer\w*|"
                       r"make \w* ?available|enable \w+ to)\b", re.I)


@dataclass(frozen=True)
class Fact:
    """One stored change as the board reads it: its verdict and the evidence kept with it."""

    change_id: int
    source: str
    detected_at: datetime
    from_snapshot_id: int
    to_snapshot_id: int
    verdict: tuple[str, ...]
    default: str | None
    regions_excluded: tuple[str, ...]
    opt_out: tuple[dict[str, Any], ...]
    evidence: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Answer:
    """One answer, with where it comes from: the change, its versions and a quote."""

    value: str = NOT_STATED
    since: datetime | None = None
    change_id: int | None = None
    from_version: int | None = None
    version: int | None = None
    source: str | None = None
    quote: str | None = None
    steps: tuple[dict[str, Any], ...] = ()  # ways out: {type, text, url}
    names: tuple[str, ...] = ()  # regions exempt, recipients named
    stale: bool = False  # the page it comes from can no longer be read

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "since": iso(self.since), "change_id": self.change_id,
                "from_version_id": self.from_version, "version_id": self.version,
                "source": self.source, "quote": self.quote, "steps": list(self.steps),
                "names": list(self.names), "stale": self.stale}


@dataclass(frozen=True)
class Page:
    """A watched page the board is built from, and whether it can still be read."""

    source: str
    title: str | None
    url: str
    last_check_at: datetime | None
    failing: bool


@dataclass(frozen=True)
class DocumentBoard:
    page: Page
    answers: dict[str, Answer]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.page.source, "title": self.page.title, "url": self.page.url,
                "last_check_at": iso(self.page.last_check_at), "failing": self.page.failing,
                "answers": {q: a.to_dict() for q, a in self.answers.items()}}


@dataclass(frozen=True)
class PlatformBoard:
    platform: str
    at: datetime | None
    documents: tuple[DocumentBoard, ...]
    # question → the answers of the documents that state one; more than one value: they disagree
    answers: dict[str, tuple[Answer, ...]] = field(default_factory=dict)

    def disagreements(self) -> list[str]:
        return [q for q, found in self.answers.items() if len({a.value for a in found}) > 1]

    def to_dict(self) -> dict[str, Any]:
        return {"platform": self.platform, "at": iso(self.at),
                "answers": {q: [a.to_dict() for a in found] for q, found in self.answers.items()},
                "disagreements": self.disagreements(),
                "documents": [d.to_dict() for d in self.documents]}


def _quote(fact: Fact, labels: Sequence[str], sides: Sequence[str] = ("new",)) -> str | None:
    for e in fact.evidence:
        if e.get("label") in labels and e.get("direction") not in ("removed",):
            for side in sides:
                if e.get(side):
                    return str(e[side])
    return None


def _recipients(fact: Fact) -> tuple[tuple[str, ...], str | None]:
    """Who the evidence says gets the data for AI, and the sentence that says so."""
    for e in fact.evidence:
        text = str(e.get("new") or "")
        if text and e.get("direction") != "removed" and _SHARE_RE.search(text):
            names = {m.group(1).strip() for m in _RECIPIENT_RE.finditer(text)}
            if names:
                proper = sorted(n for n in names if n[:1].isupper() and " " not in n)
                return tuple(proper or sorted(names, key=str.lower)), text
    return (), None


@dataclass(frozen=True)
class Transition:
    """An answer that changed: the timeline of a platform is made of these."""

    at: datetime
    source: str
    question: str
    old: str
    new: str
    change_id: int

    def to_dict(self) -> dict[str, Any]:
        return {"at": iso(self.at), "source": self.source, "question": self.question,
                "old": self.old, "new": self.new, "change_id": self.change_id}


def document_answers(facts: Iterable[Fact], moves: list[Transition] | None = None
                     ) -> dict[str, Answer]:
    """A document's answers from its changes, oldest first: each answer is the one the latest
    change that spoke to it gave, dated from the change where it last took that value. Each
    answer that changed value is added to `moves`, when given."""
    answers = {q: Answer() for q in QUESTIONS}

    def settle(question: str, fact: Fact, value: str, **extra: Any) -> None:
        old = answers[question]
        new = Answer(value, fact.detected_at, fact.change_id, fact.from_snapshot_id,
                     fact.to_snapshot_id, fact.source, **extra)
        if question in _EVENTS or old.value != value:
            if moves is not None:
                moves.append(Transition(fact.detected_at, fact.source, question, old.value,
                                        value, fact.change_id))
        else:  # the same answer again: it holds since the earlier change; the newest words stay
            new = replace(new, since=old.since, change_id=old.change_id,
                          from_version=old.from_version, version=old.version)
        answers[question] = new

    for fact in facts:
        words = fact.verdict
        trained = next((TRAINING[w] for w in words if w in TRAINING), None)
        if trained is not None:
            settle("training", fact, trained, quote=_quote(fact, ("ai_training",)))
        about_ai = any(w != "no_change" for w in words)
        if about_ai and fact.default in ("on", "off"):
            settle("default", fact, fact.default,
                   quote=_quote(fact, ("default_on", "opt_out", "ai_training")))
        if "opt_out_removed" in words:
            settle("ways_out", fact, "removed", quote=_quote(fact, ("opt_out",), ("old",)))
        elif fact.opt_out and (about_ai or answers["ways_out"].value != NOT_STATED):
            settle("ways_out", fact, "yes", steps=fact.opt_out, quote=_quote(fact, ("opt_out",)))
        if about_ai and fact.regions_excluded:
            settle("regions_excluded", fact, ", ".join(fact.regions_excluded),
                   names=fact.regions_excluded, quote=_quote(fact, ("region_scope",)))
        if "shares_for_ai" in words:
            names, quote = _recipients(fact)
            settle("sharing", fact, "yes", names=names,
                   quote=quote or _quote(fact, ("third_party_ai",)))
        for word, question in (("ai_feature_terms", "feature_terms"), ("user_ai_rules", "user_rules")):
            if word in words:
                settle(question, fact, "changed",
                       quote=_quote(fact, ("ai_feature_data", "ai_training")))
    return answers


def _by_source(facts: Iterable[Fact]) -> dict[str, list[Fact]]:
    """Each document's changes, oldest first."""
    by_source: dict[str, list[Fact]] = {}
    for fact in sorted(facts, key=lambda f: (f.detected_at, f.change_id)):
        by_source.setdefault(fact.source, []).append(fact)
    return by_source


def end_of_day(day: date) -> datetime:
    """The board "on 2024-10-01" includes that day's changes (UTC)."""
    return datetime.combine(day, time.max, tzinfo=UTC)


def build(platform: str, at: datetime | None, pages: Sequence[Page],
          facts: Sequence[Fact]) -> PlatformBoard:
    """The board of one platform from its pages and their changes (detected up to `at`)."""
    by_source = _by_source(facts)
    documents = []
    for page in pages:
        answers = document_answers(by_source.get(page.source, ()))
        if page.failing:  # an answer from a page we can no longer read is not current
            answers = {q: replace(a, stale=True) if a.change_id else a for q, a in answers.items()}
        documents.append(DocumentBoard(page, answers))
    summary: dict[str, tuple[Answer, ...]] = {}
    for q in QUESTIONS:
        stated = [d.answers[q] for d in documents if d.answers[q].value != NOT_STATED]
        # One answer per value: several copies of one policy that say the same thing are one
        # answer, dated from the first to say it; two values are a disagreement, shown both.
        seen: dict[str, Answer] = {}
        for a in sorted(stated, key=lambda a: (a.since, a.change_id),
                        reverse=q in _EVENTS):  # a state: since the first; an event: the last
            seen.setdefault(a.value, a)
        summary[q] = tuple(seen.values())
    return PlatformBoard(platform, at, tuple(documents), summary)


def timeline(facts: Sequence[Fact]) -> list[Transition]:
    """When each document's answers changed, oldest first."""
    moves: list[Transition] = []
    for items in _by_source(facts).values():
        document_answers(items, moves)
    return sorted(moves, key=lambda m: (m.at, m.source, QUESTIONS.index(m.question)))
