"""The sentence index: each distinct sentence of a page once, with when it came and went.

Written in the same transaction as the version that changes a page's text (and by the
migration that backfills it), read by history.search. Plain SQL over a Connection, so the
store, the migration and both backends share one implementation:

Each distinct sentence text is stored once in `sentence_texts`, whichever pages and versions
say it; `sentences` holds, per page, when each came and went.

- SQLite: an FTS5 table over `sentence_texts.text` (external content: the text is stored once).
- PostgreSQL: a GIN index over `to_tsvector('simple', text)` ('simple': no stemming, so
  every language of the watched pages is searched alike).

A new version costs what it changed: sentences it adds are inserted (or, when they come back,
marked present again), sentences it drops are marked removed; the rest is not touched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    bindparam,
    insert,
    literal_column,
    select,
    text,
    update,
)

from monitor.models import Sentence, SentenceText, insert_ignore
from monitor.sentences import sentences

T = TypeVar("T")
CHUNK = 400  # keys per IN (...): under SQLite's parameter limit everywhere


def _chunks(items: Sequence[T]) -> Iterator[list[T]]:
    for i in range(0, len(items), CHUNK):
        yield list(items[i:i + CHUNK])


def _delta(old_text: str | None, new_text: str) -> tuple[dict[str, str], list[str]]:
    """(sentences the new text adds, keys of sentences it drops), looking only at the lines
    that differ: a sentence lies within one line, so the lines both texts share add and drop
    nothing. A sentence of a new line that also stands in a shared line (moved, or repeated)
    is not added, and one of a dropped line that still stands in a shared line is not dropped.
    Exact for our own sentence keys, at the cost of the changed lines, not the page."""
    if old_text is None:
        return sentences(new_text), []
    old_lines, new_lines = old_text.split("\n"), new_text.split("\n")
    old_set, new_set = set(old_lines), set(new_lines)
    plus = sentences("\n".join(ln for ln in new_lines if ln not in old_set))
    minus = sentences("\n".join(ln for ln in old_lines if ln not in new_set))
    if not plus and not minus:
        return {}, []
    shared = [ln for ln in new_lines if ln in old_set and ln.strip()]
    if len(plus) + len(minus) > FEW:  # a rewrite: read the shared lines once, whole
        shared_keys = set(sentences("\n".join(shared)))

        def stands(k: str, sentence: str) -> bool:
            return k in shared_keys
    else:  # a few edits: split only the shared lines that hold the sentence's longest word
        lowered = [ln.lower() for ln in shared]
        split: dict[int, dict[str, str]] = {}

        def stands(k: str, sentence: str) -> bool:
            word = max(_WORD_RE.findall(sentence), key=len, default="").lower()
            for i, low in enumerate(lowered):
                if word in low:
                    if i not in split:
                        split[i] = sentences(shared[i])
                    if k in split[i]:
                        return True
            return False

    added = {k: v for k, v in plus.items() if k not in minus and not stands(k, v)}
    dropped = [k for k, v in minus.items() if k not in plus and not stands(k, v)]
    return added, dropped


_WORD_RE = re.compile(r"\w+")
FEW = 20  # changed sentences up to which shared lines are searched, not all split


# Built once: every new version looks sentences up, and building a statement costs more than
# running it on a small page.
_TEXT_IDS = select(SentenceText.key, SentenceText.id).where(
    SentenceText.key.in_(bindparam("keys", expanding=True)))
_KNOWN_TEXTS = select(Sentence.text_id).where(
    Sentence.source_id == bindparam("sid"), Sentence.generation == bindparam("gen"),
    Sentence.text_id.in_(bindparam("ids", expanding=True)))


def _insert_sentences(rows: str) -> Any:
    """One statement for a version's new sentence rows, whatever their number: the rows differ
    only in their text id, and an executemany of ~400 parameter sets (a page's first version)
    cost ~2 ms of Python per page. The ids come in the page's order, and so do the rows."""
    c = Sentence.__table__.c
    return insert(Sentence).from_select(
        [c.source_id, c.generation, c.text_id, c.first_snapshot_id, c.first_seen_at,
         c.appearances],
        select(bindparam("sid", type_=Integer), bindparam("gen", type_=Integer),
               literal_column("t.id", Integer), bindparam("snap", type_=Integer),
               bindparam("at", type_=c.first_seen_at.type), literal_column("1", Integer))
        .select_from(text(rows)).order_by(literal_column("t.n")))


# Keyed by "is PostgreSQL": SQLite reads the ids from a JSON array, PostgreSQL from an array.
_INSERT_SENTENCES = {
    False: _insert_sentences("(SELECT value AS id, key AS n FROM json_each(:ids)) AS t"),
    True: _insert_sentences("unnest(CAST(:ids AS integer[])) WITH ORDINALITY AS t(id, n)"),
}


def _text_ids(conn: Connection, texts: dict[str, str]) -> dict[str, int]:
    """The ids of these sentence texts (key → text), storing the ones never seen on any page;
    the new ones go into SQLite's full-text index too (PostgreSQL indexes by expression)."""
    st = SentenceText.__table__.c
    ids: dict[str, int] = {}

    def look_up(keys: list[str]) -> None:
        for chunk in _chunks(keys):
            ids.update((k, i) for k, i in conn.execute(_TEXT_IDS, {"keys": chunk}))

    look_up(list(texts))
    fresh = [k for k in texts if k not in ids]
    if fresh:
        # Another writer may store the same text at once: whichever insert lands is the text.
        rows = conn.execute(insert_ignore(conn, SentenceText).returning(st.key, st.id),
                            [{"key": k, "text": texts[k]} for k in fresh]).all()
        inserted: dict[str, int] = {row[0]: row[1] for row in rows}
        if inserted and conn.dialect.name == "sqlite":
            conn.execute(text("INSERT INTO sentence_fts(rowid, text) VALUES (:id, :text)"),
                         [{"id": i, "text": texts[k]} for k, i in inserted.items()])
        ids.update(inserted)
        look_up([k for k in fresh if k not in ids])  # stored by another writer meanwhile
    return ids


def index_version(conn: Connection, source_id: int, generation: int, snapshot_id: int,
                  new_text: str, at: datetime, previous_snapshot_id: int | None,
                  previous_text: str | None) -> None:
    """Record that the page's current text went from `previous_text` to `new_text`."""
    t = Sentence.__table__.c
    new, removed = _delta(previous_text, new_text)
    mine = (t.source_id == source_id) & (t.generation == generation)
    ids_of = _text_ids(conn, new)
    added = [ids_of[k] for k in new]  # in the page's order: rows numbered alike on any backend
    known: set[int] = set()
    # A page's first version has no sentence rows yet: nothing to look up.
    for ids in _chunks(added if previous_snapshot_id is not None else []):
        known.update(conn.execute(_KNOWN_TEXTS, {"sid": source_id, "gen": generation,
                                                 "ids": ids}).scalars())
    for back in _chunks([i for i in added if i in known]):  # they come back
        conn.execute(update(Sentence).where(mine, t.text_id.in_(back), t.removed_at.is_not(None))
                     .values(removed_at=None, last_snapshot_id=None,
                             appearances=t.appearances + 1))
    fresh = [i for i in added if i not in known]
    if fresh:
        postgres = conn.dialect.name == "postgresql"
        conn.execute(_INSERT_SENTENCES[postgres], {
            "sid": source_id, "gen": generation, "snap": snapshot_id, "at": at,
            "ids": fresh if postgres else json.dumps(fresh)})
    st = SentenceText.__table__.c
    for keys in _chunks(removed):
        gone = select(st.id).where(st.key.in_(keys)).scalar_subquery()
        conn.execute(update(Sentence).where(mine, t.text_id.in_(gone), t.removed_at.is_(None))
                     .values(removed_at=at, last_snapshot_id=previous_snapshot_id))


def matching_texts(conn: Connection, query: str) -> Select[int] | None:
    """The ids of the sentence texts that contain every word of the query, as a subquery (so
    counting and paging happen in the database, over every match), or None for no words."""
    terms = [t for t in query.replace('"', " ").split() if t.strip() and "\x00" not in t]
    if not terms:
        return None
    if conn.dialect.name == "sqlite":
        match = " ".join(f'"{t}"' for t in terms)  # each term quoted: no FTS syntax injection
        return (select(literal_column("rowid", Integer)).select_from(text("sentence_fts"))
                .where(text("sentence_fts MATCH :q").bindparams(q=match)))
    st = SentenceText.__table__.c
    return select(st.id).where(text("to_tsvector('simple', sentence_texts.text) @@ "
                                    "plainto_tsquery('simple', :q)").bindparams(q=" ".join(terms)))
