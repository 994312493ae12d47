"""Content-addressed storage of compressed texts and raw bodies, keyed by sha256.

A small interface so an object-store backend can replace the database one without the
pipeline noticing. Versions are zstd-compressed against a neighbour as a raw-content
dictionary, so a 150 KB page with a one-sentence edit costs a few hundred bytes, not 30 KB.

Texts are stored `newest` first: a history's newest text is kept whole, and when a newer one
arrives the previous newest becomes a delta against it. Reading the current text, which
every check and every page view does, is one decompression; an older version is a short
walk forward (at most MAX_DELTA_DEPTH, after which a version is left whole as a keyframe).
Raw pages, read rarely, are forward deltas against the page before.
"""

from __future__ import annotations

import threading

import zstandard
from cachetools import LRUCache
from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from monitor.models import Blob, insert_ignore
from monitor.text import sha256

MAX_DELTA_DEPTH = 32  # bounds the work to read a blob: at most this many decompressions
CLEAR_DELTA = 32  # a delta under 1/32 of the bytes beats compressing them alone, in practice
LEVEL = 3  # higher levels need ~10 MB more working memory per call for little gain on deltas


class BlobCache:
    """Recently read blobs of one database, shared by its transactions and threads.

    A page's versions are deltas of one another, so the texts a check reads (the current
    one, the recent ones it may flap back to) share one chain of decompressions; reading it
    once per check instead of once per question saves most of that work. Blobs never change
    (the key is the content's hash), so a cached one is never stale.
    """

    def __init__(self, max_bytes: int = 16 << 20) -> None:
        self._lru: LRUCache[str, bytes] = LRUCache(maxsize=max_bytes, getsizeof=len)
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._lru.get(key)

    def add(self, key: str, data: bytes) -> None:
        if len(data) <= self._lru.maxsize:
            with self._lock:
                self._lru[key] = data


class DatabaseBlobStore:
    """Blobs in the `blobs` table, inside the caller's transaction (atomic with the rows)."""

    def __init__(self, session: Session | Connection, shared: BlobCache | None = None) -> None:
        self.session = session
        self.shared = shared
        # What this transaction wrote or read. Only this decides that a blob need not be
        # written: the shared cache may hold one whose insert was rolled back.
        self._cache: dict[str, bytes] = {}

    decompressions = 0  # per store, counted for the tests of what a read costs

    def put(self, data: bytes, base: str | None = None, base_data: bytes | None = None,
            *, newest: bool = False) -> str:
        """`base_data`, when the caller has the base's bytes at hand, saves decompressing it.

        `newest`: `data` follows `base` as a history's newest text: it is stored whole and
        `base` becomes a delta against it (see the module's docstring).
        """
        key = sha256(data)
        if newest:
            return self._put_newest(key, data, base, base_data)
        if key in self._cache or self.session.execute(
                select(Blob.sha256).where(Blob.sha256 == key)).first() is not None:
            return key
        codec, payload, depth, based_on = "zstd", b"", 0, None
        base_depth = self.session.execute(select(Blob.depth).where(Blob.sha256 == base)).scalar() \
            if base and base != key else None
        if base_depth is not None and base_depth < MAX_DELTA_DEPTH:
            assert base is not None
            if base_data is None:
                base_data = self.get(base)
            else:
                self._cache[base] = base_data
            dictionary = zstandard.ZstdCompressionDict(base_data,
                                                       dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            delta = zstandard.ZstdCompressor(level=LEVEL, dict_data=dictionary).compress(data)
            codec, payload, depth, based_on = "zstd-delta", delta, base_depth + 1, base
        if not payload or len(payload) > len(data) // CLEAR_DELTA:
            # No base, or a delta that is not clearly small: compress the bytes alone and
            # keep whichever is smaller. (An edit's delta is a few hundred bytes of a 100 KB
            # page: compressing the whole page too would only confirm it.)
            whole = zstandard.ZstdCompressor(level=LEVEL).compress(data)
            if not payload or len(whole) <= len(payload):
                codec, payload, depth, based_on = "zstd", whole, 0, None
        # Two processes may store the same bytes at once (two sources with one text): the
        # content is the key, so whichever insert lands first is the blob, and the other is a
        # no-op rather than an IntegrityError that would fail its whole check.
        self.session.execute(insert_ignore(self.session, Blob).values(
            sha256=key, codec=codec, size=len(data), base=based_on, depth=depth, data=payload,
        ))
        self._cache[key] = data
        return key

    def _put_newest(self, key: str, data: bytes, base: str | None,
                    base_data: bytes | None) -> str:
        row = self.session.execute(select(Blob.codec, Blob.run).where(Blob.sha256 == key)).first()
        previous = None if base is None or base == key else self.session.execute(
            select(Blob.codec, Blob.run).where(Blob.sha256 == base)).first()
        run = previous.run + 1 if previous is not None and previous.codec == "zstd" else 0
        if run >= MAX_DELTA_DEPTH:
            run = 0  # the previous newest stays whole: a keyframe the chains behind it end at
        if row is None:
            whole = zstandard.ZstdCompressor(level=LEVEL).compress(data)
            self.session.execute(insert_ignore(self.session, Blob).values(
                sha256=key, codec="zstd", size=len(data), base=None, depth=0, data=whole,
                run=run))
        elif row.codec != "zstd":  # an earlier text came back: it is the newest again
            whole = zstandard.ZstdCompressor(level=LEVEL).compress(data)
            self.session.execute(update(Blob).where(Blob.sha256 == key).values(
                codec="zstd", base=None, depth=0, data=whole, run=run))
        self._cache[key] = data
        if previous is not None and previous.codec == "zstd" and run:
            assert base is not None
            old = base_data if base_data is not None else self.get(base)
            dictionary = zstandard.ZstdCompressionDict(data,
                                                       dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            delta = zstandard.ZstdCompressor(level=LEVEL, dict_data=dictionary).compress(old)
            self.session.execute(update(Blob).where(Blob.sha256 == base).values(
                codec="zstd-delta", base=key, depth=1, data=delta, run=0))
            self._cache[base] = old
        return key

    def get(self, key: str) -> bytes:
        if key in self._cache:
            return self._cache[key]
        if self.shared is not None and (known := self.shared.get(key)) is not None:
            return known
        row = self.session.execute(select(Blob.codec, Blob.base, Blob.size, Blob.data)
                                   .where(Blob.sha256 == key)).first()
        if row is None:
            raise KeyError(key)
        self.decompressions += 1
        if row.codec == "zstd":
            data = zstandard.ZstdDecompressor().decompress(row.data, max_output_size=row.size)
        elif row.codec == "zstd-delta" and row.base:
            dictionary = zstandard.ZstdCompressionDict(
                self.get(row.base), dict_type=zstandard.DICT_TYPE_RAWCONTENT
            )
            data = zstandard.ZstdDecompressor(dict_data=dictionary).decompress(
                row.data, max_output_size=row.size
            )
        else:
            raise ValueError(f"blob {key} has unknown codec {row.codec!r}")
        if sha256(data) != key:
            raise ValueError(f"blob {key} is corrupt: its content hashes differently")
        self._cache[key] = data
        if self.shared is not None:
            self.shared.add(key, data)
        return data
