"""Text as the pages give it (normalised Markdown): sentences, plain words and keys. Pure.

One place for how a text is split and compared, so the diff, the reading of both versions,
the classifier, the ways out and the search index agree on what a sentence is:

- `split_sentences`: the sentences of a text, list and heading marks stripped.
- `plain`: a sentence without its Markdown (links keep their text), for matching words.
- `readable`: a sentence as a reader sees it in a message or a terminal (links as "text (url)").
- `key` / `flatten`: the comparison form, in which a sentence's key is a substring of a
  document's exactly when the sentence stands in it.
- `index_key`: a short hash of a sentence's words, the search index's identity of a sentence
  (stored in the database, so it never changes with the comparison form).
"""

from __future__ import annotations

import hashlib
import re
import string
from functools import lru_cache

# A sentence ends at . ! ? and the like, except after abbreviations: "e.g.", "i.e.", "No. 5" and
# "cf." never end one; "etc.", "Inc.", "U.S." and other initials only when a capital follows.
_AFTER_END = (
    # Never a sentence end (one look-behind per width keeps the scan fast).
    r"(?<!\bcf\.|\bvs\.|\bNo\.|\bno\.|\bpp\.|\bMr\.|\bMs\.|\bDr\.)"
    r"(?<!\be\.g\.|\bi\.e\.|\bE\.g\.|\bI\.e\.|\bviz\.|\bNos\.|\bArt\.|\bSec\.|\bMrs\.)"
    r"(?<!\bpara\.|\bProf\.)"
    # After initials and company or list abbreviations, only when a capital follows.
    r"(?:(?<!\b[A-Za-z]\.)(?<!\betc\.|\bInc\.|\bLtd\.|\bLLC\.)(?<!\bCorp\.)(?<!\bCo\.|\bSt\.|\bJr\.)"
    r"(?<!\bapprox\.)"
    r"|(?=[\"'”’)\]*_]*\s+[\"'“‘(\[*_]*[A-Z]))"
    r"[\"'”’)\]*_]*\s+"  # closing quotes, brackets and emphasis ("**Lead-in.** Text") stay
)
SENTENCE_END_RE = re.compile(r"(?<=[.!?。।])" + _AFTER_END)
# The same boundary with its punctuation consumed: much faster to scan a whole document with.
SENTENCE_BREAK_RE = re.compile(r"[.!?。।]" + _AFTER_END)
_MARKUP_RE = re.compile(r"^\s*(?:#{1,6}\s+|[-*]\s+|\d+\.\s+|\|\s*)")
_WORD_RE = re.compile(r"\w+", re.UNICODE)
LINK_RE = re.compile(r"!?\[([^\]]*)\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
EMPHASIS_RE = re.compile(r"\*\*|__|(?<!\w)[*_](?!\s)|`")
BR_RE = re.compile(r"<br\s*/?>", re.I)
_LINE_START_RE = re.compile(r"\n[ \t]*(?:#{1,6}\s+|[-*]\s+|\d+\.\s+|\|\s*)?")
# Punctuation and emphasis marks dropped in one C-level pass. Anything not listed stays,
# identically in sentences and documents, which is all a comparison key needs. str.translate is
# fastest on ASCII text, but on text with any other character (a curly quote will do) it falls
# back to a per-character lookup that is ~5x slower than the regular expression.
_PUNCTUATION = string.punctuation + "“”‘’«»‹›„‚—–‐‑…•·¡¿§†‡′″"
_FLAT_DROP = str.maketrans("", "", _PUNCTUATION)
_FLAT_DROP_RE = re.compile(f"[{re.escape(_PUNCTUATION)}]+")
BOUNDARY = "\x00"  # ASCII, so str.translate keeps its fast path; never in page text
_ENUM_RE = re.compile(r"^\s*(?:\(?[0-9ivxlc]+[.)]|\(?[a-z][.)]|[-*•])\s+", re.I)
_WS_RE = re.compile(r"\s+")
_MD_LINK_RE = re.compile(r"\[([^\]\n]{1,300})\]\((https?://[^)\s]{1,2000})\)")
_PAIRED_EMPHASIS_RE = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ESCAPE_RE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")
MIN_LETTERS = 3  # "1.", "|", "—" are not sentences anyone searches for


def split_sentences(text: str) -> list[str]:
    """Sentences of normalised text; list markers and heading marks stripped."""
    out: list[str] = []
    for line in text.split("\n"):
        line = _MARKUP_RE.sub("", line).strip()
        if not line:
            continue
        # The boundary found by its punctuation, not by a look-behind tried at every position
        # (SENTENCE_END_RE.split): the same cuts, about three times faster.
        start = 0
        for m in SENTENCE_BREAK_RE.finditer(line):
            piece = line[start:m.start() + 1].strip()
            if piece:
                out.append(piece)
            start = m.end()
        piece = line[start:].strip()
        if piece:
            out.append(piece)
    return out


def flatten(text: str) -> str:
    """Lower-case words only, sentences separated by a NUL boundary: the form in which texts are compared.

    Links keep their text, emphasis and list markers go, punctuation goes; the same function
    serves a whole document and a single sentence, so a sentence's key is a substring of the
    document's exactly when the sentence stands in it.
    """
    t = LINK_RE.sub(lambda m: m.group(1), text) if "](" in text else text
    t = BR_RE.sub("\n", t) if "<" in t else t
    t = _LINE_START_RE.sub(f" {BOUNDARY} ", "\n" + t)  # line breaks, list and heading marks
    t = SENTENCE_BREAK_RE.sub(f" {BOUNDARY} ", t)  # emphasis marks go with the punctuation
    t = t.lower()
    return " ".join((t.translate(_FLAT_DROP) if t.isascii() else _FLAT_DROP_RE.sub("", t)).split())


def key(sentence: str) -> str:
    """The comparison key of one sentence."""
    return flatten(sentence).replace(BOUNDARY, " ").strip()


@lru_cache(maxsize=65536)
def plain(sentence: str) -> str:
    """Markdown links reduced to their text, line breaks (`<br>`) to spaces, emphasis and
    list markers removed."""
    text = LINK_RE.sub(lambda m: m.group(1), sentence)
    if "<" in text:
        text = BR_RE.sub(" ", text)
    text = EMPHASIS_RE.sub("", text)
    text = _ENUM_RE.sub("", text)
    return _WS_RE.sub(" ", text).strip()


def readable(text: str) -> str:
    """A quoted sentence as a reader should see it: the Markdown that extraction wrote
    (`**bold**`, `\\-` escapes, `[text](url)` links) taken out, links kept as "text (url)" so
    they stay readable in a message or a terminal."""
    text = _ESCAPE_RE.sub(r"\1", _PAIRED_EMPHASIS_RE.sub(r"\2", text))
    return _MD_LINK_RE.sub(lambda m: m.group(1) if m.group(1) == m.group(2)
                           else f"{m.group(1)} ({m.group(2)})", text)


def index_key(sentence: str) -> str | None:
    """16 hex digits of the sentence's words, case-folded (punctuation, emphasis and spacing
    ignored), or None for a fragment with too few letters to be worth indexing."""
    words = _WORD_RE.findall(sentence.casefold())
    # Letters in words that are not all digits, counted in C (a generator here cost more
    # than the hash).
    if sum(map(len, words)) - sum(map(len, filter(str.isdigit, words))) < MIN_LETTERS:
        return None
    return hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=8).hexdigest()


def sha256(data: bytes) -> str:
    """The digest texts and blobs are keyed and compared by, everywhere."""
    return hashlib.sha256(data).hexdigest()
