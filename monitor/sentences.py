"""The sentences of a version, keyed for the search index. Pure.

Search answers "which pages say X now", "when did X first appear" and "when was it removed".
That needs each distinct sentence once per page, with the versions where it came and went,
not every version's whole text again: a 130 KB page that changes one paragraph adds two or
three sentences to the index, not 13 KB.
"""

from __future__ import annotations

import re
from functools import lru_cache

from monitor.text import index_key, readable, split_sentences

MAX_SENTENCE = 2000  # a runaway "sentence" (a table flattened to one line) is cut for display
_MARKUP_RE = re.compile(r"[*_\[\\`]")  # what readable() would have work to do on


@lru_cache(maxsize=8)  # a new version's sentences are the next version's previous ones
def sentences(text: str) -> dict[str, str]:
    """key → the sentence as a reader should see it, for every indexable sentence of a text.
    A table row is one unit ("Ads | Consent"): its cells mean something together."""
    out: dict[str, str] = {}
    for sentence in split_sentences(text):
        shown = sentence.strip(" |")
        if _MARKUP_RE.search(shown):  # most sentences carry no Markdown: skip the regexes
            shown = readable(shown).strip()
        k = index_key(shown)
        if k is not None and k not in out:
            out[k] = shown[:MAX_SENTENCE]
    return out
