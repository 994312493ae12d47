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
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from monitor.diff import Diff, split_sentences

RULES_PATH = Path(__file__).with_name("rules.toml")
SEVERITIES = ("none", "low", "medium", "high")
LABELS = ("ai_training", "ai_feature_data", "opt_out", "default_on", "region_scope",
          "third_party_ai", "retroactivity", "cosmetic")
MAX_EVIDENCE_PER_LABEL = 5
PAIR_SIMILARITY = 0.45
PAIR_WINDOW = 40

ItemKind = Literal["added", "removed", "modified"]
_LINK_RE = re.compile(r"!?\[([^\]]*)\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
_EMPHASIS_RE = re.compile(r"\*\*|__|(?<!\w)[*_](?!\s)|`")
_BR_RE = re.compile(r"<br\s*/?>", re.I)
_PUNCT_RE = re.compile(r"[^\w\s]", re.UNICODE)
_ENUM_RE = re.compile(r"^\s*(?:\(?[0-9ivxlc]+[.)]|\(?[a-z][.)]|[-*•])\s+", re.I)
_WS_RE = re.compile(r"\s+")


def severity_rank(severity: str | None) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def max_severity(values: Iterable[str | None]) -> str:
    best = "none"
    for value in values:
        if value is not None and severity_rank(value) > severity_rank(best):
            best = value
    return best


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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["matched"] = list(self.matched)
        return d


@dataclass(frozen=True)
class OptOut:
    """One way to opt out, found in the new text near the evidence."""

    type: str  # setting_path | setting | form | link | email | region
    text: str
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels), "severity": self.severity,
            "evidence": [e.to_dict() for e in self.evidence],
            "opt_out": [o.to_dict() for o in self.opt_out],
            "directions": dict(self.directions), "rules_version": self.rules_version,
            "summary": self.summary, "reverted_to": self.reverted_to,
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
            reverted_to=data.get("reverted_to"),
        )


# ---- rules --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # hashed by identity: loaded once, used as a cache key
class Rules:
    version: int
    labels: dict[str, tuple[tuple[re.Pattern[str], ...], ...]]
    vocab: dict[str, re.Pattern[str]]
    descriptions: dict[str, str]
    date: re.Pattern[str]
    noise: re.Pattern[str]
    typo_similarity: float
    typo_max_edits: int
    reword_max_words: int


def _expand(pattern: str, vocab: dict[str, list[str]]) -> str:
    def alternation(name: str) -> str:
        if name == "ai_cs":
            return "(?:" + "|".join(f"(?-i:{p})" for p in vocab[name]) + ")"
        return "(?:" + "|".join(vocab[name]) + ")"

    for name in sorted(vocab, key=len, reverse=True):
        pattern = pattern.replace(f"@{name}", alternation(name))
    return pattern


@lru_cache(maxsize=4)
def load_rules(path: Path = RULES_PATH) -> Rules:
    """Parse and compile rules.toml once."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    vocab: dict[str, list[str]] = data["vocab"]
    labels: dict[str, tuple[tuple[re.Pattern[str], ...], ...]] = {}
    descriptions: dict[str, str] = {}
    for entry in data["label"]:
        rules = []
        for rule in entry["rules"]:
            rules.append(tuple(re.compile(_expand("|".join(f"(?:{p})" for p in group), vocab), re.I)
                               for group in rule))
        labels[entry["name"]] = tuple(rules)
        descriptions[entry["name"]] = entry.get("description", "")
    compiled_vocab = {name: re.compile(_expand(f"@{name}", vocab), re.I) for name in vocab}
    cosmetic = data["cosmetic"]
    return Rules(
        version=int(data["version"]), labels=labels, vocab=compiled_vocab,
        descriptions=descriptions, date=re.compile(cosmetic["date"], re.I),
        noise=re.compile("|".join(f"(?:{p})" for p in cosmetic["noise"]), re.I),
        typo_similarity=float(cosmetic["typo_similarity"]),
        typo_max_edits=int(cosmetic["typo_max_edits"]),
        reword_max_words=int(cosmetic["reword_max_words"]),
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


def changed_items(diff: Diff, rules: Rules | None = None) -> tuple[list[Item], int]:
    """Sentence-level items of a diff, and how many sentence pairs were only cosmetic."""
    rules = rules or load_rules()
    old_everywhere: Counter[str] = Counter()
    new_everywhere: Counter[str] = Counter()
    blocks = changed_blocks(diff)
    per_block = []
    for block in blocks:
        olds, news = _sentences(block.removed), _sentences(block.added)
        per_block.append((olds, news))
        old_everywhere.update(plain(s) for s in olds)
        new_everywhere.update(plain(s) for s in news)
    items: list[Item] = []
    cosmetic = 0
    for index, (olds, news) in enumerate(per_block):
        block = blocks[index]

        def around(sentence: str | None, side: list[str], block: Block = block) -> list[str]:
            if sentence is None or sentence not in side:
                return []
            i = side.index(sentence)
            out = side[max(0, i - 2): i + 3]
            if i < 2:
                out.append(block.nearby[0])
            if i > len(side) - 3:
                out.append(block.nearby[-1])
            return out

        all_olds, all_news = olds, news
        common = Counter(plain(s) for s in olds) & Counter(plain(s) for s in news)
        olds = _drop(olds, common)
        news = _drop(news, common)
        # A sentence that moved between blocks is not a change of meaning.
        moved = Counter(plain(s) for s in olds) & new_everywhere
        moved_in = Counter(plain(s) for s in news) & old_everywhere
        olds, news = _drop(olds, moved), _drop(news, moved_in)
        pairs, lone_old, lone_new = _pair(olds, news, rules)
        for old, new in pairs:
            if is_cosmetic_pair(old, new, rules):
                cosmetic += 1
            else:
                items.append(Item("modified", old, new, index,
                                  (*around(old, all_olds), *around(new, all_news))))
        for old in lone_old:
            if _cosmetic_key(old, rules) in ("", "date"):
                cosmetic += 1
            else:
                items.append(Item("removed", old, None, index, tuple(around(old, all_olds))))
        for new in lone_new:
            if _cosmetic_key(new, rules) in ("", "date"):
                cosmetic += 1
            else:
                items.append(Item("added", None, new, index, tuple(around(new, all_news))))
    return items, cosmetic


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


def match_label(label: str, sentence: str | None, rules: Rules) -> Hit | None:
    """Whether a sentence counts for a label, with the phrases that made it so."""
    if not sentence:
        return None
    return _match_label(label, sentence, rules)


@lru_cache(maxsize=65536)
def _match_label(label: str, sentence: str, rules: Rules) -> Hit | None:
    text = plain(sentence)
    for rule in rules.labels[label]:
        found = []
        for group in rule:
            m = group.search(text)
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
            return Hit(tuple(m.group(0) for m in found), negated)
    return None


def _negated(text: str, position: int, rules: Rules) -> bool:
    """A negation in the same clause, shortly before the matched phrase."""
    start = max(0, position - 120)
    window = text[start:position]
    # Only the clause the phrase is in: cut at the last clause boundary.
    cut = max(window.rfind(";"), window.rfind(":"), window.rfind(" but "), window.rfind(". "))
    if cut >= 0:
        window = window[cut + 1:]
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

_PATH_SEP = r"\s*(?:>|›|→|»|->|&gt;)\s*"
_PATH_RE = re.compile(
    r"((?:Settings|Preferences|Settings & Privacy|Settings and Privacy|Me|Account|Privacy|"
    r"Data privacy)(?:" + _PATH_SEP + r"[A-Z][^.>›→»\n|;:()\[\]]{1,60}?){1,6})"
    r"(?=[.,;:)\n]|\s+(?:and|or|to|then)\s|$)")
_QUOTED_SETTING_RE = re.compile(
    r"[“\"'‘]([^”\"'’]{4,80})[”\"'’]\s+(?:setting|toggle|option|control)"
    r"|(?:setting|toggle|option|control)\s+(?:called|named|labell?ed|titled)\s+[“\"'‘]?([A-Z][^”\"'’.,;]{3,80})")
_FORM_NAME_RE = re.compile(r"\b((?:[A-Z][\w-]*\s){1,6}(?:Objection|Opt[- ]Out|Request|Consent)\s+Form)\b")
_EMAIL_RE = re.compile(r"(?<![\w.@/])([\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?![\w@])")
_OPT_WORDS = re.compile(r"opt|object|form|setting|preference|consent|privacy|request|ai[-_]?improvement|"
                        r"data-for|mypreferences|choices|control", re.I)
_KNOWN_SETTING_RE = re.compile(r"\b(Data for Generative AI Improvement|Use my data for training[\w ]*|"
                               r"Improve the model for everyone|Model improvement)\b", re.I)


def extract_opt_out(texts: Iterable[str], rules: Rules | None = None) -> tuple[OptOut, ...]:
    """Settings paths and names, forms, links, e-mail addresses and region notes."""
    rules = rules or load_rules()
    found: dict[tuple[str, str], OptOut] = {}

    def add(kind: str, text: str, url: str | None = None) -> None:
        text = _WS_RE.sub(" ", text).strip(" *_")
        key = (kind, (url or text).lower())
        if text and key not in found:
            found[key] = OptOut(kind, text, url)

    for raw in texts:
        for link in _LINK_RE.finditer(raw):
            text, url = link.group(1).strip(), link.group(2)
            if url.startswith("mailto:"):
                add("email", url.removeprefix("mailto:").split("?")[0])
            elif url.startswith(("http://", "https://")) and (_OPT_WORDS.search(text)
                                                               or _OPT_WORDS.search(url)):
                kind = "form" if re.search(r"form|/ask/|objection", text + url, re.I) else "link"
                add(kind, text or url, url)
        flat = plain(raw)
        for m in _PATH_RE.finditer(flat):
            add("setting_path", re.sub(_PATH_SEP, " > ", m.group(1)).strip())
        for m in _QUOTED_SETTING_RE.finditer(flat):
            add("setting", m.group(1) or m.group(2))
        for m in _KNOWN_SETTING_RE.finditer(flat):
            add("setting", m.group(1))
        for m in _FORM_NAME_RE.finditer(flat):
            add("form", m.group(1))
        for m in _EMAIL_RE.finditer(flat):
            add("email", m.group(1))
        for sentence in split_sentences(raw):
            if rules.vocab["region"].search(plain(sentence)) and _OPT_WORDS.search(sentence):
                add("region", plain(sentence))
    return tuple(found.values())


# ---- the classifier ------------------------------------------------------------------------

_LABEL_ORDER = {name: i for i, name in enumerate(LABELS)}
_SUMMARY = {
    "ai_training": {"added": "AI training added", "expanded": "AI training expanded",
                    "narrowed": "AI training narrowed", "removed": "AI training statement removed",
                    "changed": "AI training terms changed"},
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


def document_title(text: str) -> str:
    """The first non-empty line, without heading marks: what the page says it is."""
    for line in text.split("\n"):
        line = line.strip().lstrip("#").strip()
        if line and not set(line) <= set("=-_*"):
            return plain(line)
    return ""


FLAP_WINDOW = timedelta(days=30)


def classify(
    diff: Diff,
    rules: Rules | None = None,
    *,
    title: str | None = None,
    restores: datetime | None = None,
    at: datetime | None = None,
) -> Classification:
    """Labels, severity and evidence of one change, with flaps damped.

    `title` is the document's own title: an AI-training statement added to "LinkedIn European
    Regional Privacy Notice" extends training to that region even if the sentence never says so.
    `restores` is when the new text was last seen before, if it is an earlier version coming
    back. Pages that alternate between two versions (A/B tests, sections that fail to load)
    would otherwise alert on every swing; a return within 30 days counts as low.
    """
    result = _classify(diff, rules or load_rules(), title)
    if restores is None or at is None or at - restores > FLAP_WINDOW or result.severity == "none":
        return result
    when = restores.date().isoformat()
    return replace(
        result,
        severity=min(result.severity, "low", key=severity_rank),
        summary=f"back to the version last seen {when} (the page alternates): {result.summary}",
        reverted_to=restores.isoformat(),
    )


def _classify(diff: Diff, rules: Rules, title: str | None) -> Classification:
    title_region = rules.vocab["region"].search(title or "")
    if not diff.hunks:
        return Classification((), "none", (), (), {}, rules.version, "no change")
    items, _ = changed_items(diff, rules)
    if not items:
        return Classification(("cosmetic",), "none", (), (), {}, rules.version,
                              "only dates, punctuation, formatting or typos changed")
    blocks = changed_blocks(diff)

    evidence: list[Evidence] = []
    relevant_blocks: set[int] = set()  # where to look for opt-out instructions
    for item in items:
        block_ai = _ai_context((item.old, item.new, *item.context), rules)
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
            direction = _direction(old_hit, new_hit)
            if label == "ai_training":
                training = direction
            if label in ("ai_training", "opt_out", "default_on", "region_scope") and block_ai:
                relevant_blocks.add(item.block)
            severity = _severity(label, direction, block_ai)
            if direction == "changed" and reworded:
                severity = "low"
            matched = tuple(dict.fromkeys((*(old_hit.matched if old_hit else ()),
                                           *(new_hit.matched if new_hit else ()))))
            evidence.append(Evidence(label, direction, severity, item.old, item.new, matched,
                                     _why(label, direction, rules, block_ai)))
            if (label == "ai_training" and title_region and direction in ("added", "expanded")
                    and match_label("region_scope", item.new, rules) is None):
                evidence.append(Evidence(
                    "region_scope", "added", "high", item.old, item.new, (title_region.group(0),),
                    f"AI training {direction} in a document for {title_region.group(0)} "
                    f"(“{title}”): it now applies there"))

    evidence = _trim(evidence)
    labels = tuple(sorted({e.label for e in evidence}, key=_LABEL_ORDER.__getitem__))
    severity = max_severity([e.severity for e in evidence] + ["low"])
    directions = _directions(evidence)
    near = ["\n".join(blocks[i].new_side) for i in sorted(relevant_blocks)]
    opt_out = extract_opt_out(near, rules) if near else ()
    return Classification(labels, severity, tuple(evidence), opt_out, directions, rules.version,
                          _summary(labels, directions, items))


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


def _directions(evidence: Sequence[Evidence]) -> dict[str, str]:
    """Per label, the direction of its most severe evidence."""
    out: dict[str, str] = {}
    for e in sorted(evidence, key=lambda e: -severity_rank(e.severity)):
        out.setdefault(e.label, e.direction)
    return out


def _summary(labels: Sequence[str], directions: dict[str, str], items: Sequence[Item]) -> str:
    parts = [_SUMMARY[label][directions[label]] for label in labels
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
