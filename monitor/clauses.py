"""A sentence read clause by clause into the claims a verdict is made of. Pure.

The phrase rules say a sentence is *about* AI training; a reader needs to know whether it says
the company trains, promises not to, forbids users to, or offers a way out. That turns on
who acts (the company, a named third party, the user), on a negation in the clause that
governs the verb (not one 150 characters before, in another clause), on the lead-in of a list
("You may not:" makes each item a rule for users, "We do not:" negates each item), and on
whether the sentence defines a term. The label rules themselves come from the classifier
through `Matchers`, so this module holds only the reading of clauses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from monitor import verdict as v

# (label, clause) -> position of the matched phrase, or None
LabelMatch = Callable[[str, str], int | None]


@dataclass(frozen=True)
class Matchers:
    """What the classifier's rules can tell about a piece of text."""

    match: LabelMatch  # where a label's rule matches, or None
    negated: Callable[[str, int], bool]  # a negation governing the phrase at a position
    mentions_ai: Callable[[str], bool]


# Where a sentence splits into clauses that can each say something of their own.
_SPLIT_RE = re.compile(r";\s+|:\s+(?=[A-Z(])|\s+but\s+|,?\s+however,?\s+|,?\s+whereas\s+", re.I)
# Rules for users: an obligation or prohibition whose subject is the user (or other users).
_USER_RULE_RE = re.compile(
    r"\byou(?: and your \w+)? (?:will|may|must|shall|should|agree|are|promise)(?: not| never)\b|"
    r"\byou (?:must|shall|agree to|are (?:required|responsible))\b|\byou agree not to\b|"
    r"\b(?:other )?(?:users?|members?|third part(?:y|ies)|others|anyone|no one)\b[^.;]{0,80}?\b"
    r"(?:are|is|will be)? ?(?:prohibited|not (?:permitted|allowed|authori[sz]ed))\b|"
    r"^\W*(?:do not|don[’']t|never) (?:use|scrape|mine|crawl|create|generate|misrepresent|"
    r"mislead|remove|train|develop|post|share|upload)\b|"
    r"\bnot (?:allow|permit) any third part|\bmust (?:be )?(?:tag|label|disclose|mark)",
    re.I)
# The company restricting others: a promise, not a rule for users.
_COMPANY_RESTRICTS_RE = re.compile(
    r"\b(?:we|[A-Z][\w.]+)\s+(?:contractually\s+)?(?:restrict|prohibit|forbid|do not (?:allow|permit)|"
    r"don[’']t (?:allow|permit)|require)s?\b[^.;]{0,80}?\b(?:from|not to)\b", re.I)
# A list's lead-in that makes each item a rule for the user, or a negation by the company.
_RULE_LEAD_RE = re.compile(
    r"\byou (?:may|must|will|shall|agree|should|are) not\b|\byou agree not to\b|\bprohibited\b|"
    r"\bnot (?:permitted|allowed) to\b|\bmust not\b|\bshall not\b|\b(?:rules|restrictions)\b|"
    r"\byou (?:represent|warrant|agree|acknowledge|must|shall)\b|^\W*(?:do not|don[’']t|never)\b",
    re.I)
# A lead-in by which the company negates each item: "We do not:", "We will never:".
_COMPANY_NEGATES_RE = re.compile(
    r"\b(?:we|[A-Z][\w.&-]+)\s+(?:do|does|will|shall|would)?\s*(?:not|never|n[’']t)\b[^.:]*:\W*$")
_DEFINITION_RE = re.compile(
    r"^[^.;:]{0,80}?\b(?:means|refers to|shall mean|is defined as|are defined as|include[s]? any)\b"
    r"|^\W*[“\"'‘][^”\"'’]{2,60}[”\"'’]\s*(?:means|refers|is|are)\b", re.I)
# A way out offered to the reader: an instruction or an ability, not "even if you opt out".
_OFFER_RE = re.compile(
    r"\byou (?:can|may|could|might|are able to|will be able to|have the (?:right|option|ability|"
    r"choice) to)\b|\bunless you\b|\byou(?:['’]re| are) in control\b|\bto opt[- ]?out\b|"
    r"\b(?:choose|decide|control) whether\b|\bif you (?:do not|don[’']t|would prefer not|prefer not)"
    r" (?:want|wish|like|to)\b|\bif you (?:enable|turn on|use|select|switch to|turn off|disable)\b|"
    r"^\W*(?:please\s+)?(?:opt|object|turn|switch|go to|visit|click|select|toggle|adjust|"
    r"contact|email|e-mail|write|follow|use)\b|\bto (?:opt[- ]?out|turn (?:it |this )?off|stop|disable|"
    r"object)\b|^\W*how (?:do I|to|can I|you can)\b", re.I)
# "… will not appear in your history or be used to improve our models" after "If you enable X"
_NOT_USED_RE = re.compile(r"\b(?:not|n[’']t)\b[^.;]{0,60}?\bbe used to (?:train|improve|develop)",
                          re.I)
# A sentence that only points elsewhere ("For more information on how we train …, see …")
# describes another document; it states no use of its own.
_POINTER_RE = re.compile(r"^\W*(?:for (?:more |further )?(?:information|details)|to learn more|"
                         r"learn more|more information (?:on|about)|please see|see|read)\b"
                         r"|\b(?:read|learn|find) more\b"
                         r"|\b(?:is|are) (?:available|described|explained) (?:on|at|in)\b|"
                         r"\bcan be found (?:on|at|in)\b", re.I)
# Sharing needs a recipient: "share … with our Affiliates, including Microsoft", "license …
# to third parties"; "as part of providing the AI services, Microsoft will process" is not.
_SHARE_RE = re.compile(
    r"\b(?:shar\w*|disclos\w*|licens\w*|sell\w*|sold|transfer\w*|provid\w*|send\w*|"
    r"make \w+ (?:\w+ )?available|giv\w*)\b[^.;]{0,160}?\b(?:with|to)\s+(?:\w+\s+){0,3}?"
    r"(?:affiliates?|partners?|third[- ]part\w+|parent company|companies|group|providers?|"
    r"developers|researchers|vendors|licensees|(?-i:[A-Z][\w.&-]+))", re.I)
_CHOICE_RE = re.compile(r"\b(?:control|decide|choose|choice|say) (?:of |over )?(?:whether|if)\b|"
                        r"\bin control of (?:whether|if|how)\b", re.I)
# The user as the one who shares: "you can share ChatGPT conversations with other users".
_USER_SHARES_RE = re.compile(r"\byou (?:may |can |might |choose to |decide to |are able to )?(?:also )?"
                             r"(?:share|send|connect|post|publish|disclose)\b", re.I)
# Words without one of which no sentence is a way out (the rules' opt-out phrases, "not … be
# used to train", "NoAI"): substring tests before the readings that cost more.
WAY_OUT_WORDS = ("opt", "object", "turn", "switch", "setting", "choose", "choice", "decide",
                 "control", "consent", "withdraw", "refus", "declin", "disabl", "stop", "exclu",
                 "exempt", "prohibit", "toggle", "preference", "be used", "noai")
# What makes a control a way out: refusing, stopping or choosing, not merely "access these".
REFUSAL_RE = re.compile(
    r"\bopt(?:ing)?[- ]?out|\bobject|\b(?:turn|switch)(?:ing)? (?:it |this |that )?off|"
    r"\bdisabl|\bdeclin|\brefus|\bwithdraw|\bstop\b|\b(?:choose|decide|control|say|choice)\b|"
    r"\bin control\b|\bnot\b[^.;]{0,60}\bbe used\b|\bprohibited from\b|\bexclu|\bNoAI\b|"
    r"\bopt(?:ing)?[- ]?in\b|\bconsent\b", re.I)
_OWN_SUBJECT_RE = re.compile(r"\b(?:we|our|us|you|they|it)\b", re.I)
_SECTION_REF_RE = re.compile(r"\bsections?\b[^.;]{0,20}\b(?:below|above)\b|"
                             r"\b(?:below|above)\b[^.;]{0,20}\bsections?\b", re.I)
# After a share: the recipient as the one who trains ("so that it can train its models",
# "for its AI training purposes", "to develop their services").
_RECIPIENT_TRAINS_RE = re.compile(
    r"\b(?:so that|so|in order that)\s+(?:it|they|[A-Z][\w.&-]+)\s+(?:can|may|could|will)\b|"
    r"\b(?:its|their)\s+(?:own\s+)?(?:AI|artificial intelligence|machine learning|model|"
    r"training|generative)", re.I)
_EVEN_IF_RE = re.compile(r"\beven if you\b|\beven when you\b|\bafter you opt", re.I)
_NOT_AI_WAY_OUT_RE = re.compile(
    r"\bads?\b|advertis|marketing|cookie|promotional|newsletter|arbitration|class action|"
    r"communications?\b|\bsale of\b|\bsell(?:ing)?\b|push notifications?|\bemails? from us\b", re.I)
_NARROW_RE = re.compile(r"\b(?:applicable|certain|some|eligible|depending on|where available|"
                        r"only (?:for|in|if|where))\b", re.I)
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_CHANNELS = (
    ("email", _EMAIL_RE), ("email", re.compile(r"\bcontact(?:ing)? us\b|\be-?mail", re.I)),
    ("settings", re.compile(r"\bsettings?\b|\bcontrols?\b|\btoggle\b|\bpreferences\b", re.I)),
    ("form", re.compile(r"\bform\b", re.I)),
    ("link", re.compile(r"\]\(https?://|https?://", re.I)),
)
GUIDELINES_RE = re.compile(r"guidelines|acceptable use|usage polic|prohibited use|community "
                           r"(?:standards|rules)|code of conduct", re.I)


def split(text: str) -> list[str]:
    """The clauses of a sentence that can each make a claim of their own."""
    parts = [p for p in _SPLIT_RE.split(text) if p and p.strip()]
    return parts or [text]


def claims(sentence: str | None, m: Matchers, *, lead_in: str | None = None,
           context_ai: bool = False, guidelines: bool = False) -> frozenset[str]:
    """What one sentence says, as verdict claims (see `monitor.verdict`).

    `lead_in` is the line that introduces the list the sentence is an item of; `context_ai`
    that AI is talked about in the sentences around it; `guidelines` that the document is a
    set of rules for users (community guidelines, an acceptable-use policy).
    """
    if not sentence:
        return frozenset()
    out: set[str] = set()
    nearest = (lead_in or "").split(" / ")[0]
    lead_company_negates = bool(_COMPANY_NEGATES_RE.search(nearest))
    lead_rule = lead_in is not None and not lead_company_negates and \
        bool(_RULE_LEAD_RE.search(lead_in))
    ai = m.mentions_ai(sentence)
    definition = ai and bool(_DEFINITION_RE.search(sentence))
    pointer = bool(_POINTER_RE.search(sentence))
    # "You shall not use NoAI Content (i) in datasets …; (ii) in the development of AI": the
    # obligation governs the clauses after it that have no subject of their own.
    sentence_rule = bool(_USER_RULE_RE.search(sentence))
    restricts = bool(_COMPANY_RESTRICTS_RE.search(sentence))  # a clause can only if it does
    offers_way_out = way_out(sentence, m, context_ai=context_ai or ai)
    for clause in split(sentence) if not pointer else ():
        clause_restricts = restricts and bool(_COMPANY_RESTRICTS_RE.search(clause))
        rule = (lead_rule or (sentence_rule and (bool(_USER_RULE_RE.search(clause))
                                                 or not _OWN_SUBJECT_RE.search(clause)))) \
            and not clause_restricts
        at = m.match("ai_training", clause)
        if at is not None and _inside_condition(clause, at):
            at = None  # "If you do not want us to use your Content to train …" is an offer
        refusal = REFUSAL_RE.search(clause) if offers_way_out else None
        if at is not None and refusal is not None and refusal.start() < at:
            at = None  # "you can object to the use of your data to train …": what is refused
        share = m.match("third_party_ai", clause)
        sharing = share is not None and not rule and _SHARE_RE.search(clause) is not None and \
            not _USER_SHARES_RE.search(clause)
        if at is not None and sharing and share is not None and share < at and \
                _RECIPIENT_TRAINS_RE.search(clause):
            at = None  # "share … with Microsoft so that it can train its models": theirs
        if at is not None:
            if clause_restricts or lead_company_negates:
                out.add(v.NO_TRAIN)
            elif rule:
                out.add(v.RULE)
            elif m.negated(clause, at):
                out.add(v.NO_TRAIN)
            elif definition:
                out.add(v.FEATURE)
            else:
                out.add(v.TRAIN)
        if sharing and share is not None:
            out.add(v.NO_TRAIN if m.negated(clause, share) or lead_company_negates else v.SHARE)
    if ai and (lead_rule or guidelines or sentence_rule) and not out & {
            v.TRAIN, v.NO_TRAIN, v.SHARE} and not restricts:
        out.add(v.RULE)
    if offers_way_out:
        out.add(v.WAY_OUT)
        if _NARROW_RE.search(sentence):
            out.add(v.NARROW)
        out.update(v.CHANNEL + name for name, pattern in _CHANNELS if pattern.search(sentence))
    if (ai or (pointer and m.match("ai_training", sentence) is not None)) and not out:
        out.add(v.FEATURE)  # an AI feature, its inputs and outputs, or a definition
    return frozenset(out)


def way_out(sentence: str, m: Matchers, *, context_ai: bool) -> bool:
    """A way for the reader to refuse AI use of their data: an opt-out the reader is offered,
    beside AI (in the sentence or around it), and not an ads, cookie or marketing control."""
    if not context_ai:
        return False
    lowered = sentence.lower()
    if not any(word in lowered for word in WAY_OUT_WORDS):
        return False  # a few substring tests spare the regular expressions on most sentences
    if _NOT_AI_WAY_OUT_RE.search(sentence) or not REFUSAL_RE.search(sentence):
        return False
    if _SECTION_REF_RE.search(sentence):
        return False  # "as described in the … section below": that section is read itself
    if m.match("opt_out", sentence) is None and not _NOT_USED_RE.search(sentence):
        return False
    if _EVEN_IF_RE.search(sentence) and not _OFFER_RE.search(_EVEN_IF_RE.split(sentence)[0]):
        return False  # "Even if you opt out, we will use …": a limit, not the way out
    return bool(_OFFER_RE.search(sentence)) and len(sentence.split()) >= 4  # not a heading


def _inside_condition(clause: str, at: int) -> bool:
    """Whether position `at` lies in a leading "if …," clause, or in a choice the reader is
    offered ("you are in control of whether your content is used for training")."""
    cond = re.match(r"\W*(?:even )?(?:if|unless|when)\b[^,]*", clause, re.I)
    if cond is not None and at < cond.end():
        return True
    choice = _CHOICE_RE.search(clause, 0, at + 1)
    return choice is not None and choice.start() < at


_LIST_ITEM_RE = re.compile(r"^\s*(?:[-*•]|\d+[.)]|\(?[a-z0-9]{1,4}\))\s+")


def lead_in(raw: str, sentence: str) -> str | None:
    """The lines introducing the list `sentence` is an item of ("You may not:"), if any.

    Walks up from the sentence's line over list items and blank lines, keeping every line that
    ends with a colon (a parent item, the paragraph before the list), nearest first, until the
    first line that is not a list item.
    """
    probe = sentence.strip()[:60]
    at = raw.find(probe) if probe else -1
    if at < 0:
        return None
    line_start = raw.rfind("\n", 0, at) + 1
    end = raw.find("\n", at)
    line = raw[line_start: end if end >= 0 else len(raw)]
    if not _LIST_ITEM_RE.match(line) and not line.lstrip().startswith("|"):
        return None
    leads: list[str] = []
    pos = line_start - 1
    for _ in range(80):
        if pos <= 0:
            break
        prev_start = raw.rfind("\n", 0, pos) + 1
        prev = raw[prev_start:pos].strip()
        pos = prev_start - 1
        if not prev:
            continue
        if prev.rstrip("*_ ").endswith(":"):
            leads.append(prev)
        if prev.startswith("#") or not (_LIST_ITEM_RE.match(prev) or prev.startswith("|")):
            break
    return " / ".join(leads) or None
