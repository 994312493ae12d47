"""One check of one source: fetch, extract, judge (monitor/judge.py), then one guarded write.

Nothing raises out of `check_source`: every failure becomes a recorded failed check, so a bad
page can never take down the daemon or a batch of checks.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from monitor import judge, routing, schedule
from monitor.config import Settings, Source, Subscription
from monitor.errors import ExtractError, FailureKind, FetchError, StoreError
from monitor.extract import Page, extract, reading_key
from monitor.fetchers import Fetchers
from monitor.robots import blocked_error
from monitor.schedule import Policy
from monitor.store.trouble import TROUBLE, DatabaseTrouble
from monitor.store.values import Claim, Completion, NewVersion, SourceState
from monitor.text import sha256
from monitor.wording import plural

if TYPE_CHECKING:
    from monitor import diff as difflib
    from monitor.classify import Classification
    from monitor.models import Snapshot
    from monitor.store import Store

# Diffing and classifying (and their rules) are imported by the checks that find a change:
# a one-shot `check` of unchanged or failing pages does not pay for them at start-up.

log = logging.getLogger("monitor.check")


@dataclass(frozen=True)
class CheckResult:
    """What happened, in the words the CLI prints."""

    source: str
    outcome: str  # baseline | changed | unchanged | failed | postponed (the host's rest)
    detail: str = ""
    change_id: int | None = None
    snapshot_id: int | None = None
    failure_kind: FailureKind | None = None
    retry_after: float | None = None
    recorded: bool = True  # False when nothing could be written (lost lease, database down)
    trouble: str | None = None  # not recorded because of the database (trouble.ADVICE's kinds)
    fetcher: str = "http"  # which fetcher produced the result: http or browser

    def line(self) -> str:
        if self.outcome == "baseline":
            return f"{self.source}: first snapshot"
        if self.outcome == "changed":
            return f"{self.source}: changed ({self.detail})"
        if self.outcome in ("failed", "postponed"):
            return f"{self.source}: {self.outcome}: {self.detail}"
        return f"{self.source}: unchanged"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CheckContext:
    """What a check needs besides the source: timing policy, clock, randomness, lease."""

    policy: Policy = field(default_factory=lambda: Policy(6 * 3600.0, 300.0, 5.0))
    clock: Callable[[], datetime] = _now
    rng: random.Random = field(default_factory=random.Random)
    failure_threshold: int = 3
    subscriptions: tuple[Subscription, ...] = ()  # instant alerts are queued with the change
    event_window: timedelta = timedelta(minutes=15)  # an event's first alert waits for siblings

    @classmethod
    def of(cls, settings: Settings, subscriptions: tuple[Subscription, ...] = (),
           clock: Callable[[], datetime] = _now) -> CheckContext:
        """The context the settings give: the daemon and a one-shot `check` build it here."""
        return cls(policy=settings.policy, clock=clock, failure_threshold=settings.failure_threshold,
                   subscriptions=subscriptions, event_window=timedelta(seconds=settings.event_window))


def check_source(
    store: Store,
    fetchers: Fetchers,
    source: Source,
    clock: Callable[[], datetime] | None = None,
    *,
    ctx: CheckContext | None = None,
    claim: Claim | None = None,
) -> CheckResult:
    """Fetch one source and record the outcome in one transaction. Never raises.

    Page and network problems become a recorded failed check; a lost lease or a shutdown
    mid-check writes nothing at all (the source is simply checked again later).
    """
    ctx = ctx or CheckContext()
    if clock is not None:
        ctx = replace(ctx, clock=clock)
    try:
        return _check(store, fetchers, source, ctx, claim)
    except DatabaseTrouble as exc:  # the deployment's problem: logged once, not per check
        TROUBLE.report(exc)
        return CheckResult(source.name, "failed", str(exc), failure_kind=FailureKind.TRANSIENT,
                           recorded=False, trouble=exc.kind)
    except StoreError as exc:
        log.warning("source=%s outcome=not-recorded reason=%s", source.name, exc)
        return CheckResult(source.name, "failed", str(exc), failure_kind=FailureKind.TRANSIENT,
                           recorded=False)


def _check(store: Store, fetchers: Fetchers, source: Source, ctx: CheckContext,
           claim: Claim | None) -> CheckResult:
    started = ctx.clock()
    t0 = time.monotonic()
    state = store.state(source.name)

    def elapsed_ms() -> int:
        return int((time.monotonic() - t0) * 1000)

    crawl_delay = state.crawl_delay

    def done(ok: bool, retry_after: float | None = None,
             kind: FailureKind | None = None) -> Completion:
        finished = ctx.clock()
        failures = 0 if ok else state.consecutive_failures + 1
        interval = source.interval or state.interval or ctx.policy.interval
        next_at = schedule.next_check(finished, interval, ctx.policy.jitter, failures, ctx.rng,
                                      transient=kind is FailureKind.TRANSIENT,
                                      ladder=ctx.policy.retry_ladder)
        if retry_after:
            next_at = max(next_at, finished + timedelta(seconds=retry_after))
        host_at = schedule.host_next_allowed(finished, ctx.policy.per_host_delay,
                                             crawl_delay, retry_after)
        return Completion(next_at, host_at, claim.token if claim else None, ctx.failure_threshold,
                          routing.alert_outbox(ctx.subscriptions, source.platform, source.name))

    try:
        if fetchers.robots is not None:
            verdict = fetchers.robots.check(source.url)
            crawl_delay = max(crawl_delay or 0.0, verdict.crawl_delay or 0.0) or None
            if not verdict.allowed:
                raise blocked_error(verdict)
        fetched = fetchers.fetch(source, state)
        result, used, prepared = fetched.result, fetched.used, fetched.text
    except FetchError as exc:
        store.record_failure(state, started, elapsed_ms(), exc.kind, exc.reason, exc.status,
                             done=done(False, exc.retry_after, exc.kind),
                             fetcher=fetchers.kind(source))
        log.debug("source=%s outcome=failed kind=%s reason=%s", source.name, exc.kind, exc.reason)
        return CheckResult(source.name, "failed", exc.reason, failure_kind=exc.kind,
                           retry_after=exc.retry_after, fetcher=fetchers.kind(source))

    change = None
    classification = None
    try:
        if result.not_modified:
            stored = store.record_unchanged(state, started, elapsed_ms(), 304, 0, None, None, None,
                                            done=done(True), fetcher=used)
            return CheckResult(source.name, "unchanged", "not modified",
                               snapshot_id=stored.snapshot_id)

        state = reread(store, source, state)
        page = Page(result.body, result.content_type, result.charset, source, result.url)
        fp = page.fingerprint
        if fp == state.fingerprint and state.current_snapshot_id is not None:
            stored = store.record_unchanged(state, started, elapsed_ms(), result.status,
                                            len(result.body), result.etag, result.last_modified, fp,
                                            done=done(True), fetcher=used)
            return CheckResult(source.name, "unchanged", snapshot_id=stored.snapshot_id)

        text = prepared if prepared is not None else page.text()
        digest = sha256(text.encode("utf-8"))
        if digest == state.current_sha256:
            stored = store.record_unchanged(state, started, elapsed_ms(), result.status,
                                            len(result.body), result.etag, result.last_modified, fp,
                                            done=done(True), fetcher=used)
            return CheckResult(source.name, "unchanged", snapshot_id=stored.snapshot_id)

        old_text: str | None = None
        if state.current_text_blob is not None:
            refused = judge.refusal(state.current_text_size or 0, len(text.encode("utf-8")),
                                    f"(text {digest[:12]})", store.last_failure(state))
            if refused is not None:
                store.record_failure(state, started, elapsed_ms(), FailureKind.ANOMALOUS,
                                     refused, result.status, done=done(False), fetcher=used)
                log.debug("source=%s outcome=failed kind=anomalous %s", source.name, refused)
                return CheckResult(source.name, "failed", refused,
                                   failure_kind=FailureKind.ANOMALOUS)
            old_text = store.text_of(state.current_text_blob)
        judged = judge.judge(old_text, text, digest, started, judge.StorePast(store, state))
        change, classification = judged.diff, judged.classification
        version = NewVersion(
            text=text, sha256=digest, raw=result.body, content_type=result.content_type,
            charset=result.charset, url=result.url, etag=result.etag,
            last_modified=result.last_modified, fingerprint=fp, diff=change,
            classification=classification, fetcher=used, previous_text=old_text,
            outbox=routing.instant_outbox(
                ctx.subscriptions, source.platform, source.name, classification.labels,
                classification.severity) if classification is not None else (),
            answer_outbox=routing.answer_outbox(ctx.subscriptions, source.platform, source.name),
            event_window=ctx.event_window,
        )
        stored = store.record_version(state, started, elapsed_ms(), result.status, version,
                                      done=done(True))
    except ExtractError as exc:
        store.record_failure(state, started, elapsed_ms(), FailureKind.PERMANENT, str(exc),
                             result.status, done=done(False), fetcher=used)
        log.debug("source=%s outcome=failed kind=extract reason=%s", source.name, exc)
        return CheckResult(source.name, "failed", str(exc), failure_kind=FailureKind.PERMANENT)
    except StoreError:
        raise
    except Exception as exc:  # a bug must cost one check, not the daemon; it is logged in full
        log.exception("source=%s outcome=failed kind=internal", source.name)
        reason = f"internal error: {type(exc).__name__}: {exc}"
        store.record_failure(state, started, elapsed_ms(), FailureKind.TRANSIENT, reason,
                             result.status, done=done(False), fetcher=used)
        return CheckResult(source.name, "failed", reason, failure_kind=FailureKind.TRANSIENT)

    detail = change.stats.summary() if change is not None else ""
    if classification is not None and classification.labels:
        detail += f"; {', '.join(classification.labels)} — {classification.severity}"
    log.info("source=%s outcome=%s %s", source.name, stored.outcome, detail)
    return CheckResult(source.name, stored.outcome, detail, change_id=stored.change_id,
                       snapshot_id=stored.snapshot_id, fetcher=used)


def reread(store: Store, source: Source, state: SourceState) -> SourceState:
    """The source's state once its stored history is read the way a check reads the page now.

    After an upgrade that changes extraction, or an edit of select/remove/ignore, the stored
    texts were read differently from the page about to be compared with them: the history is
    first rebuilt from its raw pages (a new generation whose changes are marked re-extracted:
    history, never alerted), so that only what changed on the page is news. A history whose
    newest version has no raw page (imported as text) cannot be read again and is compared
    as it is.
    """
    key = reading_key(source)
    if state.extraction_key == key:
        return state
    if state.current_raw_blob is not None and state.current_snapshot_id is not None:
        try:
            result = reextract_source(store, source)
        except StoreError as exc:  # not one stored raw page extracts under the current rules
            log.warning("source=%s stored history not re-read: %s", source.name, exc)
        else:
            log.info("source=%s re-read %s from stored pages (extraction rules changed)",
                     source.name, plural(result.versions, "stored version"))
            return store.state(source.name)
    store.keep_reading(state.id, key)
    return replace(state, extraction_key=key)


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
    past = judge.MemoryPast()  # the rebuilt history, judged as a live check would judge it
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
        digest = sha256(text.encode("utf-8"))
        judged = judge.judge(previous_text, text, digest, snap.first_seen_at, past)
        rebuilt.append((snap, text, judged.diff, judged.classification))
        past.keep(text, digest, snap.first_seen_at, judged.classification)
        previous_text = text
    if not rebuilt:
        raise StoreError(f"no stored raw body of {source.name!r} could be re-extracted")
    generation = store.replace_history(source.name, reading_key(source), rebuilt, skipped)
    return ReextractResult(source.name, generation, len(rebuilt), skipped)


@dataclass(frozen=True)
class Trial:
    """What a check of a source would see and record now, written nowhere (`sources test`)."""

    source: Source
    url: str  # the address fetched, after the server's redirects
    status: int
    fetcher: str
    text: str
    fingerprint: str
    sha256: str
    previous_snapshot_id: int | None  # the stored version compared against, if any
    outcome: str  # baseline | unchanged | changed | refused
    would_record: str
    diff: difflib.Diff | None = None
    classification: Classification | None = None

    @property
    def headline(self) -> str | None:
        from monitor import wording

        c = self.classification
        return None if c is None else wording.headline(
            c.verdict.verdict, c.verdict.default, c.verdict.regions_excluded, c.summary)

    def to_dict(self) -> dict[str, object]:
        c = self.classification
        return {
            "source": self.source.name, "url": self.url, "status": self.status,
            "fetcher": self.fetcher, "fingerprint": self.fingerprint, "sha256": self.sha256,
            "previous_snapshot_id": self.previous_snapshot_id, "outcome": self.outcome,
            "would_record": self.would_record, "text": self.text,
            "diff": self.diff.to_dict() if self.diff is not None else None,
            "labels": list(c.labels) if c else [], "severity": c.severity if c else None,
            "headline": self.headline,
            "opt_out": [o.to_dict() for o in c.opt_out] if c else [],
        }


def try_source(store: Store | None, fetchers: Fetchers, source: Source,
               clock: Callable[[], datetime] = _now) -> Trial:
    """Fetch, extract and judge as `check_source` would, against the last stored version (with
    `store`, opened read-only), and say what a check would record. Raises FetchError and
    ExtractError: a trial has no failed check to record them in."""
    if fetchers.robots is not None:
        verdict = fetchers.robots.check(source.url)
        if not verdict.allowed:
            raise blocked_error(verdict)
    state: SourceState | None = None
    if store is not None:
        with contextlib.suppress(StoreError):  # not in the database yet: a first version
            state = store.state(source.name)
    blank = SourceState(0, None, None, None, None, None, None, None, 0)
    # no validators: a 304 would show nothing to try
    fetched = fetchers.fetch(source, replace(state or blank, etag=None, last_modified=None))
    result = fetched.result
    page = Page(result.body, result.content_type, result.charset, source, result.url)
    text = fetched.text if fetched.text is not None else page.text()
    digest = sha256(text.encode("utf-8"))
    seen = functools.partial(Trial, source, result.url, result.status, fetched.used, text,
                             page.fingerprint, digest)
    if state is None or store is None or state.current_text_blob is None:
        return seen(previous_snapshot_id=None, outcome="baseline",
                     would_record="the first version (a baseline: no change, no alert)")
    previous = state.current_snapshot_id
    old_text, first = store.text_of(state.current_text_blob), ""
    if state.extraction_key != reading_key(source) and state.current_raw_blob is not None \
            and previous is not None:
        # A check would first re-read the stored history (see reread); its newest version,
        # read again, is what the page is compared with.
        snap, body = store.raw_version(previous)
        if body is not None:
            with contextlib.suppress(ExtractError):
                old_text = extract(body, snap.content_type or "", snap.charset, source, snap.url)
                first = "a re-read of the stored history (history, no alert), then "
    if text == old_text:
        return seen(previous_snapshot_id=previous, outcome="unchanged",
                     would_record=first + "an unchanged check (no new version)")
    refused = judge.refusal(len(old_text.encode("utf-8")), len(text.encode("utf-8")),
                            f"(text {digest[:12]})", store.last_failure(state))
    if refused is not None:
        return seen(previous_snapshot_id=previous, outcome="refused",
                     would_record=f"{first}a failed check (anomalous): {refused}")
    judged = judge.judge(old_text, text, digest, clock(), judge.StorePast(store, state))
    what = judged.diff.stats.summary() if judged.diff is not None else ""
    c = judged.classification
    if c is not None and c.labels:
        what += f"; {', '.join(c.labels)} — {c.severity}"
    return seen(previous_snapshot_id=previous, outcome="changed",
                 would_record=f"{first}a new version and a change ({what})", diff=judged.diff,
                 classification=c)
