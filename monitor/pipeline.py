"""One check of one source: fetch, extract, then store + diff in one transaction.

Nothing raises out of `check_source`: every failure becomes a recorded failed check, so a bad
page can never take down the daemon or a batch of checks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor import diff as difflib
from monitor.blobstore import sha256
from monitor.classify import Classification, classify, document_title
from monitor.config import Source
from monitor.errors import ExtractError, FailureKind, FetchError, StoreError
from monitor.extract import extract, fingerprint
from monitor.fetch import Fetcher
from monitor.models import Snapshot
from monitor.store import NewVersion, Store

log = logging.getLogger("monitor.check")


@dataclass(frozen=True)
class CheckResult:
    """What happened, in the words the CLI prints."""

    source: str
    outcome: str  # baseline | changed | unchanged | failed
    detail: str = ""
    change_id: int | None = None
    snapshot_id: int | None = None
    failure_kind: FailureKind | None = None
    retry_after: float | None = None

    def line(self) -> str:
        if self.outcome == "baseline":
            return f"{self.source}: first snapshot"
        if self.outcome == "changed":
            return f"{self.source}: changed ({self.detail})"
        if self.outcome == "failed":
            return f"{self.source}: failed: {self.detail}"
        return f"{self.source}: unchanged"


def _now() -> datetime:
    return datetime.now(UTC)


def check_source(
    store: Store,
    fetcher: Fetcher,
    source: Source,
    clock: Callable[[], datetime] = _now,
) -> CheckResult:
    """Fetch one source and record the outcome. Never raises for page or network problems."""
    started = clock()
    t0 = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - t0) * 1000)

    try:
        state = store.state(source.name)
    except StoreError as exc:
        return CheckResult(source.name, "failed", str(exc), failure_kind=FailureKind.TRANSIENT)

    try:
        result = fetcher.fetch(
            source.url,
            etag=state.etag if state.current_snapshot_id else None,
            last_modified=state.last_modified if state.current_snapshot_id else None,
            headers=dict(source.headers),
            locale=source.locale,
        )
    except FetchError as exc:
        store.record_failure(state, started, elapsed_ms(), exc.kind, exc.reason, exc.status)
        log.info("source=%s outcome=failed kind=%s reason=%s", source.name, exc.kind, exc.reason)
        return CheckResult(source.name, "failed", exc.reason, failure_kind=exc.kind,
                           retry_after=exc.retry_after)

    try:
        if result.not_modified:
            stored = store.record_unchanged(state, started, elapsed_ms(), 304, 0, None, None, None)
            return CheckResult(source.name, "unchanged", "not modified",
                               snapshot_id=stored.snapshot_id)

        fp = fingerprint(result.body, result.content_type, result.charset, source)
        if fp == state.fingerprint and state.current_snapshot_id is not None:
            stored = store.record_unchanged(state, started, elapsed_ms(), result.status,
                                            len(result.body), result.etag, result.last_modified, fp)
            return CheckResult(source.name, "unchanged", snapshot_id=stored.snapshot_id)

        text = extract(result.body, result.content_type, result.charset, source, result.url)
        digest = sha256(text.encode("utf-8"))
        if digest == state.current_sha256:
            stored = store.record_unchanged(state, started, elapsed_ms(), result.status,
                                            len(result.body), result.etag, result.last_modified, fp)
            return CheckResult(source.name, "unchanged", snapshot_id=stored.snapshot_id)

        change = None
        classification = None
        if state.current_text_blob is not None:
            change = difflib.compute(store.text_of(state.current_text_blob), text)
            classification = classify(change, title=document_title(text),
                                      restores=store.last_seen(state, digest), at=started)
        version = NewVersion(
            text=text, sha256=digest, raw=result.body, content_type=result.content_type,
            charset=result.charset, url=result.url, etag=result.etag,
            last_modified=result.last_modified, fingerprint=fp, diff=change,
            classification=classification,
        )
        stored = store.record_version(state, started, elapsed_ms(), result.status, version)
    except ExtractError as exc:
        store.record_failure(state, started, elapsed_ms(), FailureKind.PERMANENT, str(exc),
                             result.status)
        log.info("source=%s outcome=failed kind=extract reason=%s", source.name, exc)
        return CheckResult(source.name, "failed", str(exc), failure_kind=FailureKind.PERMANENT)
    except StoreError as exc:
        log.warning("source=%s outcome=failed kind=store reason=%s", source.name, exc)
        return CheckResult(source.name, "failed", str(exc), failure_kind=FailureKind.TRANSIENT)
    except Exception as exc:  # a bug must cost one check, not the daemon; it is logged in full
        log.exception("source=%s outcome=failed kind=internal", source.name)
        reason = f"internal error: {type(exc).__name__}: {exc}"
        try:
            store.record_failure(state, started, elapsed_ms(), FailureKind.TRANSIENT, reason,
                                 result.status)
        except Exception:
            log.exception("source=%s could not record the failure", source.name)
        return CheckResult(source.name, "failed", reason, failure_kind=FailureKind.TRANSIENT)

    detail = change.stats.summary() if change is not None else ""
    if classification is not None and classification.labels:
        detail += f"; {', '.join(classification.labels)} — {classification.severity}"
    log.info("source=%s outcome=%s %s", source.name, stored.outcome, detail)
    return CheckResult(source.name, stored.outcome, detail, change_id=stored.change_id,
                       snapshot_id=stored.snapshot_id)


@dataclass(frozen=True)
class ReextractResult:
    source: str
    generation: int
    versions: int
    skipped: int


def reextract_source(store: Store, source: Source) -> ReextractResult:
    """Rebuild a source's text history from stored raw bodies under its current selectors.

    The rebuilt changes are marked `reextracted`, and the next check diffs against the
    rebuilt latest version, so new selectors never show up as a page change.
    """
    rebuilt: list[tuple[Snapshot, str, difflib.Diff | None, Classification | None]] = []
    skipped = 0
    previous_text: str | None = None
    for snap, body in store.raw_versions(source.name):
        if body is None:
            skipped += 1
            continue
        try:
            text = extract(body, snap.content_type or "", snap.charset, source, snap.url)
        except ExtractError:
            skipped += 1
            continue
        if text == previous_text:
            continue  # the new selectors make this version identical to the one before
        change = difflib.compute(previous_text, text) if previous_text is not None else None
        rebuilt.append((snap, text, change,
                        classify(change, title=document_title(text)) if change is not None else None))
        previous_text = text
    if not rebuilt:
        raise StoreError(f"no stored raw body of {source.name!r} could be re-extracted")
    generation = store.replace_history(source.name, source.extraction_key(), rebuilt, skipped)
    return ReextractResult(source.name, generation, len(rebuilt), skipped)
