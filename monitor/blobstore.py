"""Content-addressed storage of compressed texts and raw bodies, keyed by sha256.

A small interface so an object-store backend can replace the database one without the
pipeline noticing. Each version is zstd-compressed with its predecessor as a raw-content
dictionary, so a 150 KB page with a one-sentence edit costs a few hundred bytes, not 30 KB.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import zstandard
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from monitor.models import Blob

MAX_DELTA_DEPTH = 32  # bounds the work to read a blob: at most this many decompressions
LEVEL = 3  # higher levels need ~10 MB more working memory per call for little gain on deltas


class BlobStore(Protocol):
    """What the pipeline needs from blob storage."""

    def put(self, data: bytes, base: str | None = None) -> str:
        """Store bytes (as a delta against `base` when useful); return their sha256 key."""
        ...

    def get(self, key: str) -> bytes:
        """The exact bytes stored under `key`; raises KeyError if missing."""
        ...


def insert_ignore(session: Session, model: type[Blob]) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING in the session's dialect (SQLite and PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model).on_conflict_do_nothing()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DatabaseBlobStore:
    """Blobs in the `blobs` table, inside the caller's transaction (atomic with the rows)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._cache: dict[str, bytes] = {}

    def put(self, data: bytes, base: str | None = None) -> str:
        key = sha256(data)
        if key in self._cache or self.session.get(Blob, key) is not None:
            return key
        codec, payload, depth = "zstd", zstandard.ZstdCompressor(level=LEVEL).compress(data), 0
        base_row = self.session.get(Blob, base) if base and base != key else None
        if base_row is not None and base_row.depth < MAX_DELTA_DEPTH:
            dictionary = zstandard.ZstdCompressionDict(
                self.get(base_row.sha256), dict_type=zstandard.DICT_TYPE_RAWCONTENT
            )
            delta = zstandard.ZstdCompressor(level=LEVEL, dict_data=dictionary).compress(data)
            if len(delta) < len(payload):
                codec, payload, depth = "zstd-delta", delta, base_row.depth + 1
        else:
            base_row = None
        # Two processes may store the same bytes at once (two sources with one text): the
        # content is the key, so whichever insert lands first is the blob, and the other is a
        # no-op rather than an IntegrityError that would fail its whole check.
        self.session.execute(insert_ignore(self.session, Blob).values(
            sha256=key, codec=codec, size=len(data),
            base=base_row.sha256 if base_row is not None and codec == "zstd-delta" else None,
            depth=depth, data=payload,
        ))
        self._cache[key] = data
        return key

    def get(self, key: str) -> bytes:
        if key in self._cache:
            return self._cache[key]
        row = self.session.get(Blob, key)
        if row is None:
            raise KeyError(key)
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
        return data
