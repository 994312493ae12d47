"""The sentences of a version, keyed for the search index. Pure.

Search answers "which pages say X now", "when did X first appear" and "when was it removed".
That needs each distinct sentence once per page, with the versions where it came and went,
not every version's whole text again: a 130 KB page that changes one paragraph adds two or
three sentences to the index, not 13 KB.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from itertools import islice

from monitor.diff import split_sentences
from monitor.reading import key as comparison_key
from monitor.wording import plain_text

MIN_LETTERS = 3  # "1.", "|", "—" are not sentences anyone searches for
MAX_SENTENCE = 2000
_LETTER_RE = re.compile(r"[^\W\d_]")  # a runaway "sentence" (a table flattened to one line) is cut for display


def sentence_key(sentence: str) -> str | None:
    """16 hex digits of the sentence's comparison key (case, punctuation, emphasis and link
    targets ignored), or None for a fragment with too few letters to be worth indexing."""
    flat = comparison_key(sentence)
    if sum(1 for _ in islice(_LETTER_RE.finditer(flat), MIN_LETTERS)) < MIN_LETTERS:
        return None
    return hashlib.blake2b(flat.encode("utf-8"), digest_size=8).hexdigest()


@lru_cache(maxsize=8)  # a new version's sentences are the next version's previous ones
def sentences(text: str) -> dict[str, str]:
    """key → the sentence as a reader should see it, for every indexable sentence of a text.
    A table row is one unit ("Ads | Consent"): its cells mean something together."""
    out: dict[str, str] = {}
    for sentence in split_sentences(text):
        shown = plain_text(sentence.strip(" |")).strip()
        k = sentence_key(shown)
        if k is not None and k not in out:
            out[k] = shown[:MAX_SENTENCE]
    return out
