"""The AI data-use board: for each platform and document, the answer to each question a
reader asks (does it train on my data, since when, on by default, how to get out, who is
exempt, who else gets my data for AI), each answer traced to the change and version that
established it. Pure: `apply` gives the answers one change of a document gives, from the
verdict stored with it; the store keeps them as the change is recorded
(monitor/store/answers.py), so the board at any date is what the stored versions said then
and nothing is classified again when it is read. `news` says which of a platform's answers a
change moved: what an answers subscription is told.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote

from monitor.text import readable
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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Answer:
        """An answer as stored (`to_dict`); `stale` is the page's state when read, never kept."""
        since = d.get("since")
        return cls(str(d.get("value") or NOT_STATED),
                   datetime.fromisoformat(since.replace("Z", "+00:00")) if since else None,
                   d.get("change_id"), d.get("from_version_id"), d.get("version_id"),
                   d.get("source"), d.get("quote"), tuple(d.get("steps") or ()),
                   tuple(d.get("names") or ()))


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


@dataclass(frozen=True)
class Settled:
    """An answer a change gave to one question of its document, and the value it replaced:
    what the store keeps, one row each, so the board is read and never re-derived."""

    question: str
    answer: Answer
    old: str

    @property
    def moved(self) -> bool:
        """The answer changed value (each change of an event-like question is news)."""
        return self.question in _EVENTS or self.old != self.answer.value


def apply(answers: dict[str, Answer], fact: Fact) -> list[Settled]:
    """The answers one change of a document gives, after the document's `answers` so far:
    each is the one the change gave, dated from the change where it last took that value
    (the same answer again holds since the earlier change; the newest words stay)."""
    settled: list[Settled] = []

    def settle(question: str, value: str, **extra: Any) -> None:
        old = answers.get(question, Answer())
        new = Answer(value, fact.detected_at, fact.change_id, fact.from_snapshot_id,
                     fact.to_snapshot_id, fact.source, **extra)
        if question not in _EVENTS and old.value == value:
            new = replace(new, since=old.since, change_id=old.change_id,
                          from_version=old.from_version, version=old.version)
        settled.append(Settled(question, new, old.value))

    words = fact.verdict
    trained = next((TRAINING[w] for w in words if w in TRAINING), None)
    if trained is not None:
        settle("training", trained, quote=_quote(fact, ("ai_training",)))
    about_ai = any(w != "no_change" for w in words)
    if about_ai and fact.default in ("on", "off"):
        settle("default", fact.default, quote=_quote(fact, ("default_on", "opt_out", "ai_training")))
    if "opt_out_removed" in words:
        settle("ways_out", "removed", quote=_quote(fact, ("opt_out",), ("old",)))
    elif fact.opt_out and (about_ai or answers.get("ways_out", Answer()).value != NOT_STATED):
        settle("ways_out", "yes", steps=fact.opt_out, quote=_quote(fact, ("opt_out",)))
    if about_ai and fact.regions_excluded:
        settle("regions_excluded", ", ".join(fact.regions_excluded),
               names=fact.regions_excluded, quote=_quote(fact, ("region_scope",)))
    if "shares_for_ai" in words:
        names, quote = _recipients(fact)
        settle("sharing", "yes", names=names, quote=quote or _quote(fact, ("third_party_ai",)))
    for word, question in (("ai_feature_terms", "feature_terms"), ("user_ai_rules", "user_rules")):
        if word in words:
            settle(question, "changed", quote=_quote(fact, ("ai_feature_data", "ai_training")))
    return settled


def blank() -> dict[str, Answer]:
    """A document's answers before any change spoke: every question not stated."""
    return {q: Answer() for q in QUESTIONS}


def path(platform: str) -> str:
    """Where a platform's board is on the web (and, under /api, as JSON)."""
    return "/board/" + quote(platform.lower(), safe="")


def end_of_day(day: date) -> datetime:
    """The board "on 2024-10-01" includes that day's changes (UTC)."""
    return datetime.combine(day, time.max, tzinfo=UTC)


def build(platform: str, at: datetime | None, pages: Sequence[Page],
          answers: Mapping[str, dict[str, Answer]]) -> PlatformBoard:
    """The board of one platform from its pages and each page's stored answers."""
    documents = []
    for page in pages:
        found = {**blank(), **answers.get(page.source, {})}
        if page.failing:  # an answer from a page we can no longer read is not current
            found = {q: replace(a, stale=True) if a.change_id else a for q, a in found.items()}
        documents.append(DocumentBoard(page, found))
    return PlatformBoard(platform, at, tuple(documents), summary(d.answers for d in documents))


def summary(documents: Iterable[Mapping[str, Answer]]) -> dict[str, tuple[Answer, ...]]:
    """The platform's answer to each question: one answer per value its documents state.
    Several copies of one policy that say the same thing are one answer, dated from the first
    to say it; two values are a disagreement, shown both."""
    docs = list(documents)
    out: dict[str, tuple[Answer, ...]] = {}
    for q in QUESTIONS:
        stated = [a for d in docs if (a := d.get(q, Answer())).value != NOT_STATED]
        seen: dict[str, Answer] = {}
        for a in sorted(stated, key=lambda a: (a.since or datetime.min.replace(tzinfo=UTC),
                                               a.change_id or 0),
                        reverse=q in _EVENTS):  # a state: since the first; an event: the last
            seen.setdefault(a.value, a)
        out[q] = tuple(seen.values())
    return out


def timeline(moves: Iterable[Transition]) -> list[Transition]:
    """When each document's answers changed, oldest first."""
    return sorted(moves, key=lambda m: (m.at, m.source, QUESTIONS.index(m.question)))


# The answers that are states (an answers subscription hears when one of these moves); the
# AI feature terms and rules for users are events, answered by their latest change.
STATES = tuple(q for q in QUESTIONS if q not in _EVENTS)


def values(answers: Mapping[str, Sequence[Answer]]) -> dict[str, tuple[str, ...]]:
    """A platform's answer to each state question as values: ("not stated",) when none."""
    return {q: tuple(sorted({a.value for a in answers.get(q, ())})) or (NOT_STATED,)
            for q in STATES}


@dataclass(frozen=True)
class Move:
    """One platform answer that changed value."""

    question: str
    old: tuple[str, ...]
    new: tuple[str, ...]


@dataclass(frozen=True)
class AnswerNews:
    """A change that moved a platform's answers: what an answers subscription hears and what
    the board's feed lists, with the platform's answers after it (each with its evidence)."""

    platform: str
    at: datetime
    change_id: int
    source: str
    moves: tuple[Move, ...]
    answers: dict[str, tuple[Answer, ...]]

    def headline(self) -> str:
        """`LinkedIn: trains AI on your data: not stated → yes, on by default; way out: …`:
        what moved, with the default and the way out said as they now stand."""
        default = self.answers.get("default", ())
        ways = self.answers.get("ways_out", ())
        context = {"default": len(default) == 1,
                   "ways_out": bool(ways) and all(a.value == "yes" for a in ways)}
        # The default and the way out read as context of another move, or as moves of their own.
        told = [m for m in self.moves if not context.get(m.question)] or list(self.moves)
        text = "; ".join(f"{_MOVE_WORDS.get(m.question, QUESTION_WORDS[m.question])}: "
                         f"{_words(m.question, m.old, ())} → "
                         f"{_words(m.question, m.new, self.answers.get(m.question, ()))}"
                         for m in told)
        shown = {m.question for m in told}
        if context["default"] and "default" not in shown:
            text += f", {default[0].value} by default"
        if context["ways_out"] and "ways_out" not in shown:
            text += f"; way out: {_words('ways_out', ('yes',), ways)}"
        return f"{self.platform}: {text}"

    def to_dict(self) -> dict[str, Any]:
        return {"platform": self.platform, "at": iso(self.at), "change_id": self.change_id,
                "source": self.source, "headline": self.headline(),
                "moves": [{"question": m.question, "old": list(m.old), "new": list(m.new)}
                          for m in self.moves],
                "answers": {q: [a.to_dict() for a in found] for q, found in self.answers.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnswerNews:
        return cls(str(d["platform"]), datetime.fromisoformat(str(d["at"]).replace("Z", "+00:00")),
                   int(d["change_id"]), str(d["source"]),
                   tuple(Move(m["question"], tuple(m["old"]), tuple(m["new"])) for m in d["moves"]),
                   {q: tuple(Answer.from_dict(a) for a in found)
                    for q, found in d["answers"].items()})


def said(question: str, answers: Sequence[Answer]) -> str:
    """A platform's answer to one question in words, each value with the page that says it."""
    return "; ".join(f"{_words(question, (a.value,), (a,))} ({a.source})" for a in answers)


_MOVE_WORDS = {"default": "default", "ways_out": "way out"}


def _step(step: Mapping[str, Any]) -> str:
    """A way out in a line: its words, and where it is when it links somewhere."""
    text, url = readable(str(step.get("text") or "")), str(step.get("url") or "")
    return f"{text} ({url})" if text and url and url not in text else text or url


def _words(question: str, vals: Sequence[str], answers: Sequence[Answer]) -> str:
    """An answer in the words of a message: a way out by its steps, sharing with its names."""
    if question == "ways_out" and answers and all(a.value == "yes" for a in answers):
        steps: dict[str, str] = {}  # one line per way out: the same words with a link win
        for st in (st for a in answers for st in a.steps):
            words = readable(str(st.get("text") or "")) or str(st.get("url") or "")
            if words and (words not in steps or st.get("url")):
                steps[words] = _step(st)
        if steps:
            return " / ".join(steps.values())
    if question == "sharing" and answers:
        names = sorted({n for a in answers for n in a.names})
        if names:
            return f"yes, with {', '.join(names)}"
    return " or ".join(vals)


@dataclass(frozen=True)
class Said:
    """The answers one change gave, as stored: which document, when, and which change."""

    source: str
    at: datetime
    change_id: int
    settled: tuple[Settled, ...]


def news(platform: str, said: Said, before: Mapping[str, Mapping[str, Answer]]
         ) -> AnswerNews | None:
    """What one change of a document did to its platform's answers (`before`: each document's
    answers until then); None when no state answer of the platform moved."""
    after = {source: dict(found) for source, found in before.items()}
    after.setdefault(said.source, blank()).update({s.question: s.answer for s in said.settled})
    old, now = values(summary(before.values())), summary(after.values())
    new = values(now)
    moves = tuple(Move(q, old[q], new[q]) for q in STATES if old[q] != new[q])
    if not moves:
        return None
    return AnswerNews(platform, said.at, said.change_id, said.source, moves, now)


def platform_news(platform: str, said: Iterable[Said]) -> list[AnswerNews]:
    """Every change that moved the platform's answers, oldest first, from the answers each
    change gave in the order they were recorded."""
    docs: dict[str, dict[str, Answer]] = {}
    out = []
    for one in said:
        item = news(platform, one, docs)
        docs.setdefault(one.source, blank()).update({s.question: s.answer for s in one.settled})
        if item is not None:
            out.append(item)
    return out
