"""Stored versions read back byte for byte: deltas against the previous version, the shared
cache of decompressed blobs, and a write that rolled back. Real SQLite files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor.blobstore import DatabaseBlobStore, sha256
from monitor.models import Blob
from monitor.store import Store

PAGE = "".join(f"<p>Section {i}: we process your data to run the service.</p>\n" for i in range(2000))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    s.upgrade()
    yield s
    s.close()


def zstd_whole(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


def _fresh(store: Store) -> Store:
    """A second store on the same file: nothing cached in memory, only what was committed."""
    return Store(store.url)


def test_a_version_is_a_small_delta_of_the_one_before_and_reads_back_exactly(store: Store) -> None:
    v1 = PAGE.encode()
    v2 = PAGE.replace("Section 1000:", "Section 1000 (amended): we may train AI models;").encode()
    with store.write() as s:
        blobs = DatabaseBlobStore(s, store.blobs)
        k1 = blobs.put(v1)
        # The caller passes the base's bytes it already holds (the pipeline's previous text).
        k2 = blobs.put(v2, base=k1, base_data=v1)
    other = _fresh(store)
    try:
        assert other.blob(k2) == v2 and other.blob(k1) == v1
        with other.read() as s:
            codec, size = s.execute(select(Blob.codec, Blob.size).where(Blob.sha256 == k2)).one()
            stored = len(s.scalar(select(Blob.data).where(Blob.sha256 == k2)) or b"")
    finally:
        other.close()
    assert codec == "zstd-delta" and size == len(v2)
    assert stored < len(v2) // 100  # an edited paragraph, not another copy of the page


def test_the_shared_cache_serves_reads_and_never_hides_a_write_that_rolled_back(store: Store) -> None:
    data = PAGE.encode()
    key = sha256(data)

    def failing_check() -> None:
        with store.write() as s:
            DatabaseBlobStore(s, store.blobs).put(data)
            raise RuntimeError("the check failed after storing its blob")

    with pytest.raises(RuntimeError):
        failing_check()
    with store.read() as s:
        assert s.scalar(select(Blob.sha256).where(Blob.sha256 == key)) is None
    # Written again by the next try, and found by a process that never saw it in memory.
    with store.write() as s:
        assert DatabaseBlobStore(s, store.blobs).put(data) == key
    assert store.blob(key) == data  # read once: now in the shared cache too
    assert store.blobs.get(key) == data
    other = _fresh(store)
    try:
        assert other.blob(key) == data
    finally:
        other.close()


def test_the_newest_text_reads_in_one_decompression_however_long_the_history(
        store: Store) -> None:
    """A history's newest text is stored whole; older ones are deltas toward it, short
    enough to read, and still a few hundred bytes each."""
    versions = [PAGE.replace("Section 7:", f"Section 7 (edit {n}):").encode() for n in range(80)]
    versions.append(versions[10])  # the page goes back to an earlier text
    keys: list[str] = []
    for data in versions:
        with store.write() as s:
            blobs = DatabaseBlobStore(s)
            keys.append(blobs.put(data, base=keys[-1] if keys else None,
                                  base_data=None, newest=True))
    other = _fresh(store)
    try:
        with other.read() as s:
            blobs = DatabaseBlobStore(s)
            assert blobs.get(keys[-1]) == versions[-1]
            assert blobs.decompressions == 1
            for key, data in zip(keys, versions, strict=True):
                reader = DatabaseBlobStore(s)
                assert reader.get(key) == data
                assert reader.decompressions <= 32  # a keyframe at least every 32 versions
            stored = s.execute(select(Blob.data)).scalars().all()
    finally:
        other.close()
    whole = len(zstd_whole(versions[0]))
    assert sum(len(d) for d in stored) < 3 * whole + 80 * 1000  # deltas, not copies
