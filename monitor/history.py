"""Read-only views of stored history for the CLI and the web UI. Never writes.

Values come back as frozen dataclasses with `to_dict()` so every listing has a `--json` form
with the same fields as its table form.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select, String, cast, func, literal, or_, select, tuple_
from sqlalchemy.orm import Session, defer

from monitor import board, wording
from monitor.blobstore import DatabaseBlobStore
from monitor.errors import NotFoundError
from monitor.labels import LABELS
from monitor.models import Change, Check, Snapshot, SourceRow
from monitor.sourcelist import NO_FAILURE, failures_of
from monitor.store import Store
from monitor.wording import SEVERITIES, severity_rank
from monitor.wording import iso as _iso

if TYPE_CHECKING:
    from monitor import diff as difflib


@dataclass(frozen=True)
class Version:
    """One entry in a source's history: the baseline, or the result of one change."""

    snapshot_id: int
    seen_at: datetime
    sha256: str
    size: int
    raw_size: int | None
    change_id: int | None
    words_added: int
    words_removed: int
    reextracted: bool
    fetcher: str | None = None  # http | browser: what produced this version

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seen_at"] = _iso(self.seen_at)
        return d


class _Worded:
    """A change whose headline is worded from its verdict when it is read, never stored."""

    verdict: list[str] | None
    default: str | None
    regions_excluded: list[str] | None
    summary: str | None

    @property
    def headline(self) -> str:
        return wording.headline(self.verdict, self.default, self.regions_excluded, self.summary)

    def meaning(self) -> dict[str, Any]:
        """What the change means, as every JSON form gives it."""
        return {"verdict": self.verdict, "default": self.default,
                "regions_excluded": self.regions_excluded, "headline": self.headline}


@dataclass(frozen=True)
class ChangeSummary(_Worded):
    id: int
    source: str
    platform: str
    detected_at: datetime
    from_snapshot_id: int
    to_snapshot_id: int
    words_added: int
    words_removed: int
    sentences_added: int
    sentences_removed: int
    reextracted: bool
    labels: list[str] | None
    severity: str | None
    added_sentences: list[str]
    removed_sentences: list[str]
    summary: str | None = None
    event_id: int | None = None
    opt_out: list[dict[str, Any]] | None = None
    verdict: list[str] | None = None
    default: str | None = None
    regions_excluded: list[str] | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)  # classify.Evidence dicts

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["detected_at"] = _iso(self.detected_at)
        d["headline"] = self.headline
        return d


@dataclass(frozen=True)
class ChangeDetail(_Worded):
    """Everything known about one change: what `explain` prints and alerts will quote."""

    id: int
    source: str
    platform: str
    title: str | None
    kind: str
    url: str
    detected_at: datetime
    from_snapshot_id: int
    to_snapshot_id: int
    reextracted: bool
    labels: list[str]
    severity: str | None
    summary: str
    directions: dict[str, str]
    evidence: list[dict[str, Any]]
    opt_out: list[dict[str, Any]]
    event_id: int | None
    rules_version: int | None
    diff: difflib.Diff
    anomaly: dict[str, str] | None = None  # a page artefact: why the change was damped
    skimmed: int = 0  # changed sentences a whole-page rewrite only counted (see classify)
    verdict: list[str] | None = None
    default: str | None = None
    regions_excluded: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "diff"}
        d["headline"] = self.headline
        d["detected_at"] = _iso(self.detected_at)
        d["stats"] = asdict(self.diff.stats)
        d["diff_simplified"] = self.diff.simplified
        d["sentences_skimmed"] = d.pop("skimmed")
        return d


@dataclass(frozen=True)
class SourceStatus:
    name: str
    platform: str
    enabled: bool
    last_check_at: datetime | None
    last_outcome: str | None
    last_error: str | None
    last_change_at: datetime | None
    consecutive_failures: int
    failing: bool
    next_check_at: datetime | None
    last_failure_kind: str | None = None
    failing_since: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("last_check_at", "last_change_at", "next_check_at", "failing_since"):
            d[key] = _iso(d[key])
        return d


def status(store: Store) -> list[SourceStatus]:
    """What `status` and the systemd STATUS line report, per source."""
    with store.read() as s:
        failures = failures_of(s)
        rows = s.scalars(select(SourceRow).where(SourceRow.in_config.is_(True))
                         .order_by(SourceRow.platform, SourceRow.name)).all()
        return [SourceStatus(
            name=r.name, platform=r.platform, enabled=r.enabled, last_check_at=r.last_check_at,
            last_outcome=r.last_outcome,
            last_error=failures.get(r.id, NO_FAILURE).reason,
            last_change_at=r.last_change_at, consecutive_failures=r.consecutive_failures,
            failing=r.failing, next_check_at=r.next_check_at,
            last_failure_kind=failures.get(r.id, NO_FAILURE).kind,
            failing_since=failures.get(r.id, NO_FAILURE).since) for r in rows]


def versions(store: Store, name: str) -> list[Version]:
    """Baseline first, then one entry per change, in the order they were seen."""
    with store.read() as s:
        row = store.source_row(s, name)
        changes = s.scalars(
            select(Change).where(Change.source_id == row.id, Change.generation == row.generation)
            .order_by(Change.detected_at, Change.id)).all()
        snaps = {sn.id: sn for sn in s.scalars(select(Snapshot).where(
            Snapshot.source_id == row.id, Snapshot.generation == row.generation))}
        out: list[Version] = []
        if not snaps:
            return out
        first = snaps[changes[0].from_snapshot_id] if changes else min(
            snaps.values(), key=lambda sn: (sn.first_seen_at, sn.id))
        out.append(Version(first.id, first.first_seen_at, first.sha256, first.text_size,
                           first.raw_size, None, 0, 0, False, first.fetcher))
        for ch in changes:
            sn = snaps[ch.to_snapshot_id]
            out.append(Version(sn.id, ch.detected_at, sn.sha256, sn.text_size, sn.raw_size, ch.id,
                               ch.words_added, ch.words_removed, ch.reextracted, sn.fetcher))
        return out


def snapshot(store: Store, snapshot_id: int) -> tuple[Snapshot, str]:
    with store.read() as s:
        snap = s.get(Snapshot, snapshot_id)
        if snap is None:
            raise NotFoundError(f"no snapshot with id {snapshot_id}")
        return snap, DatabaseBlobStore(s).get(snap.text_blob).decode("utf-8")


def raw(store: Store, snapshot_id: int) -> tuple[Snapshot, bytes]:
    with store.read() as s:
        snap = s.get(Snapshot, snapshot_id)
        if snap is None:
            raise NotFoundError(f"no snapshot with id {snapshot_id}")
        if snap.raw_blob is None:
            raise NotFoundError(f"snapshot {snapshot_id} has no stored raw body")
        return snap, DatabaseBlobStore(s).get(snap.raw_blob)


_Q = TypeVar("_Q", bound=Select)


def _change_query(s: Session, store: Store, what: _Q, *, source: str | None = None,
                  since: datetime | None = None, include_reextracted: bool = True,
                  labels: Sequence[str] = (), min_severity: str | None = None,
                  event_id: int | None = None) -> _Q | None:
    """`what` narrowed to the changes a listing asks for (None when none can match): one
    filter for a page of changes and for their total."""
    q = (what.join(SourceRow, SourceRow.id == Change.source_id)
         .where(Change.generation == SourceRow.generation))
    if labels:
        # Labels are stored as a JSON list of known names; match the quoted name in SQL so
        # the filter and the limit happen in the database (changes() confirms exactly).
        known = [label for label in labels if label in LABELS]
        if not known:
            return None
        as_text = cast(Change.labels, String)
        q = q.where(or_(*(as_text.like(f'%"{label}"%') for label in known)))
    if source:
        store.source_row(s, source)
        q = q.where(SourceRow.name == source)
    if since:
        q = q.where(Change.detected_at >= since)
    if event_id is not None:
        q = q.where(Change.event_id == event_id)
    if not include_reextracted:
        q = q.where(Change.reextracted.is_(False))
    if min_severity:
        allowed = [sv for sv in SEVERITIES if severity_rank(sv) >= severity_rank(min_severity)]
        q = q.where(Change.severity.in_(allowed))
    return q


def count_changes(store: Store, source: str | None = None, labels: Sequence[str] = (),
                  min_severity: str | None = None) -> int:
    """How many changes a listing with these filters has in all, counted by the database."""
    with store.read() as s:
        q = _change_query(s, store, select(func.count()).select_from(Change), source=source,
                          labels=labels, min_severity=min_severity)
        return (s.scalar(q) or 0) if q is not None else 0


def changes(
    store: Store,
    source: str | None = None,
    since: datetime | None = None,
    include_reextracted: bool = True,
    limit: int | None = None,
    labels: Sequence[str] = (),
    min_severity: str | None = None,
    with_sentences: bool = True,
    event_id: int | None = None,
    after: int | None = None,
) -> list[ChangeSummary]:
    """Changes newest first; `labels` keeps changes with any of them; `after` (a change id)
    starts after that change, for keyset pages.

    A re-read history's changes (`reextracted`) are the page's history as extraction reads it
    now, so listings show them; feeds, which announce news, pass include_reextracted=False.

    `with_sentences=False` skips loading each diff (the added/removed sentences come from it),
    for listings that only need labels and counts.
    """
    with store.read() as s:
        # The diff is loaded only for the rows returned: decompressing it is the costly part.
        q = _change_query(s, store, select(Change, SourceRow).options(defer(Change.diff)),
                          source=source, since=since, include_reextracted=include_reextracted,
                          labels=labels, min_severity=min_severity, event_id=event_id)
        if q is None:
            return []
        if after is not None:
            anchor = s.execute(select(Change.detected_at, Change.id)
                               .where(Change.id == after)).first()
            if anchor is None:
                return []
            q = q.where(tuple_(Change.detected_at, Change.id)
                        < tuple_(literal(anchor.detected_at, Change.detected_at.type),
                                 literal(anchor.id)))
        q = q.order_by(Change.detected_at.desc(), Change.id.desc())
        if limit:
            q = q.limit(limit)
        out: list[ChangeSummary] = []
        for ch, src in s.execute(q):
            if labels and not set(labels) & set(ch.labels or []):
                continue
            if limit and len(out) >= limit:
                break
            d = ch.diff if with_sentences else {}
            out.append(ChangeSummary(
                id=ch.id, source=src.name, platform=src.platform, detected_at=ch.detected_at,
                from_snapshot_id=ch.from_snapshot_id, to_snapshot_id=ch.to_snapshot_id,
                words_added=ch.words_added, words_removed=ch.words_removed,
                sentences_added=ch.sentences_added, sentences_removed=ch.sentences_removed,
                reextracted=ch.reextracted, labels=ch.labels, severity=ch.severity,
                added_sentences=list(d.get("added_sentences", [])),
                removed_sentences=list(d.get("removed_sentences", [])),
                summary=(ch.findings or {}).get("summary"), event_id=ch.event_id,
                opt_out=ch.opt_out, verdict=ch.verdict, default=ch.ai_default,
                regions_excluded=ch.regions_excluded,
                evidence=list((ch.findings or {}).get("evidence") or []),
            ))
        return out


def change_detail(store: Store, change_id: int) -> ChangeDetail:
    from monitor import diff as difflib

    with store.read() as s:
        ch = s.get(Change, change_id)
        if ch is None:
            raise NotFoundError(f"no change with id {change_id}")
        src = s.get(SourceRow, ch.source_id)
        assert src is not None
        findings = ch.findings or {}
        return ChangeDetail(
            id=ch.id, source=src.name, platform=src.platform, title=src.title, kind=src.kind,
            url=src.url, detected_at=ch.detected_at, from_snapshot_id=ch.from_snapshot_id,
            to_snapshot_id=ch.to_snapshot_id, reextracted=ch.reextracted,
            labels=list(ch.labels or []), severity=ch.severity,
            summary=findings.get("summary", ""), directions=dict(findings.get("directions", {})),
            evidence=list(findings.get("evidence", [])), opt_out=list(ch.opt_out or []),
            event_id=ch.event_id, rules_version=ch.rules_version,
            diff=difflib.Diff.from_dict(ch.diff), anomaly=findings.get("anomaly"),
            skimmed=int(findings.get("skimmed", 0)), verdict=ch.verdict, default=ch.ai_default,
            regions_excluded=ch.regions_excluded,
        )


def diff_between(
    store: Store, name: str, from_id: int | None = None, to_id: int | None = None
) -> tuple[int, int, difflib.Diff]:
    """The diff of two snapshots of a source; by default its latest change."""
    from monitor import diff as difflib

    with store.read() as s:
        row = store.source_row(s, name)
        if from_id is None and to_id is None:
            latest = s.scalars(select(Change).where(
                Change.source_id == row.id, Change.generation == row.generation)
                .order_by(Change.detected_at.desc(), Change.id.desc()).limit(1)).first()
            if latest is None:
                raise NotFoundError(f"source {name!r} has no changes yet")
            return latest.from_snapshot_id, latest.to_snapshot_id, difflib.Diff.from_dict(latest.diff)
        if to_id is None:
            to_id = row.current_snapshot_id
        if from_id is None:
            prior = s.scalars(select(Change).where(
                Change.source_id == row.id, Change.to_snapshot_id == to_id)
                .order_by(Change.detected_at.desc()).limit(1)).first()
            if prior is None:
                raise NotFoundError(f"snapshot {to_id} has no earlier version to compare with")
            from_id = prior.from_snapshot_id
        blobs = DatabaseBlobStore(s)
        texts = []
        for sid in (from_id, to_id):
            snap = s.get(Snapshot, sid) if sid is not None else None
            if snap is None or snap.source_id != row.id:
                raise NotFoundError(f"snapshot {sid} is not a version of {name!r}")
            texts.append(blobs.get(snap.text_blob).decode("utf-8"))
        assert from_id is not None
        assert to_id is not None
        return from_id, to_id, difflib.compute(texts[0], texts[1])


# ---- views for the web UI -------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineMark:
    """One change on the dashboard's timeline."""

    change_id: int
    platform: str
    page: str
    detected_at: datetime
    severity: str | None
    headline: str | None


TIMELINE_MARKS = 3000  # the newest this many changes in the range: enough for years of history


def timeline(store: Store, since: datetime | None = None) -> list[TimelineMark]:
    """The non-cosmetic changes since `since` (all when None), oldest first, for the chart."""
    q = (select(Change.id, SourceRow.platform, SourceRow.title, SourceRow.name,
                Change.detected_at, Change.severity, Change.findings, Change.verdict,
                Change.ai_default, Change.regions_excluded)
         .join(SourceRow, SourceRow.id == Change.source_id)
         .where(Change.severity != "none", Change.generation == SourceRow.generation)
         .order_by(Change.detected_at.desc()).limit(TIMELINE_MARKS))
    if since is not None:
        q = q.where(Change.detected_at >= since)
    with store.read() as s:
        rows = s.execute(q).all()
    return [TimelineMark(r.id, r.platform, r.title or r.name, r.detected_at, r.severity,
                         wording.headline(r.verdict, r.ai_default, r.regions_excluded,
                                          (r.findings or {}).get("summary")))
            for r in reversed(rows)]


@dataclass(frozen=True)
class CheckRow:
    started_at: datetime
    outcome: str
    http_status: int | None
    duration_ms: int
    error: str | None


def checks(store: Store, name: str, limit: int = 50, offset: int = 0) -> list[CheckRow]:
    with store.read() as s:
        row = store.source_row(s, name)
        return [CheckRow(c.started_at, c.outcome, c.http_status, c.duration_ms, c.error)
                for c in s.scalars(select(Check).where(Check.source_id == row.id)
                                   .order_by(Check.started_at.desc()).limit(limit).offset(offset))]


def neighbours(store: Store, change_id: int) -> tuple[int | None, int | None]:
    """The previous and next change of the same source."""
    with store.read() as s:
        ch = s.get(Change, change_id)
        if ch is None:
            raise NotFoundError(f"no change with id {change_id}")
        base = select(Change.id).where(Change.source_id == ch.source_id,
                                       Change.generation == ch.generation)
        prev = s.scalars(base.where((Change.detected_at < ch.detected_at)
                                    | ((Change.detected_at == ch.detected_at) & (Change.id < ch.id)))
                         .order_by(Change.detected_at.desc(), Change.id.desc()).limit(1)).first()
        nxt = s.scalars(base.where((Change.detected_at > ch.detected_at)
                                   | ((Change.detected_at == ch.detected_at) & (Change.id > ch.id)))
                        .order_by(Change.detected_at, Change.id).limit(1)).first()
        return prev, nxt


@dataclass(frozen=True)
class EventView:
    id: int
    platform: str
    first_at: datetime
    last_at: datetime
    severity: str
    labels: list[str]
    changes: list[ChangeSummary]


def event(store: Store, event_id: int) -> EventView:
    from monitor.models import Event

    with store.read() as s:
        ev = s.get(Event, event_id)
        if ev is None:
            raise NotFoundError(f"no event with id {event_id}")
        head = (ev.id, ev.platform, ev.first_at, ev.last_at, ev.severity, list(ev.labels))
    return EventView(*head, changes=changes(store, event_id=event_id))


@dataclass(frozen=True)
class SearchHit:
    """One page's answer to a search: does it say it now, since when, and when it stopped."""

    source: str
    platform: str
    present: bool  # the page's current version says it
    sentence: str  # the matching sentence (the earliest to appear, among those it says now)
    first_seen_at: datetime  # when a matching sentence first appeared on this page
    first_snapshot_id: int
    removed_at: datetime | None  # when the last matching sentence went (None while present)
    last_snapshot_id: int | None  # the last version that had it, once gone
    sentences: int  # how many distinct matching sentences the page has had

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["first_seen_at"], d["removed_at"] = _iso(self.first_seen_at), _iso(self.removed_at)
        return d


@dataclass(frozen=True)
class SearchResults:
    """One page of a search's answer, with exact totals: how many pages say it now and how
    many said it before and no longer do, counted by the database over every match."""

    query: str
    hits: list[SearchHit]
    now: int
    before: int
    next: str | None  # pass as `after` for the next page; None on the last page

    @property
    def total(self) -> int:
        return self.now + self.before


# "present.source id.microseconds since 1970": every string of this shape is a cursor (a
# 16-digit count of microseconds stays within year 2286), so the API can declare the shape
# and never refuse a value it declared valid.
SEARCH_CURSOR = r"^[01]\.[0-9]{1,18}\.[0-9]{1,16}$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _search_cursor(hit: SearchHit, source_id: int) -> str:
    micros = (hit.first_seen_at - _EPOCH) // timedelta(microseconds=1)
    return f"{int(hit.present)}.{source_id}.{micros}"


def _parse_search_cursor(after: str) -> tuple[int, int, datetime]:
    if not re.fullmatch(SEARCH_CURSOR, after):
        raise ValueError(f"not a search cursor: {after[:80]!r} (pass the `next` of a previous "
                         "answer)")
    present, source_id, micros = after.split(".")
    return int(present), int(source_id), _EPOCH + timedelta(microseconds=int(micros))


def search(store: Store, query: str, limit: int = 50, after: str | None = None
           ) -> SearchResults:
    """Pages whose text says (or said) every word of the query, by sentence: those that say it
    now first, each with when it first appeared; then those that stopped, with when. Paged by
    keyset (`after` is the previous page's `next`), so a later page starts exactly where the
    last one ended; the totals count every matching page, never a cut of them."""
    from sqlalchemy import and_, case

    from monitor.models import Sentence, SentenceText
    from monitor.search import matching_texts

    key = _parse_search_cursor(after) if after else None
    with store.read() as s:
        texts = matching_texts(s.connection(), query)
        if texts is None:
            return SearchResults(query, [], 0, 0, None)
        matching = (Sentence.text_id.in_(texts.scalar_subquery())
                    & (SourceRow.id == Sentence.source_id)
                    & (SourceRow.generation == Sentence.generation))
        pages = (select(Sentence.source_id.label("source_id"),
                        func.max(case((Sentence.removed_at.is_(None), 1), else_=0))
                        .label("present"),
                        func.min(Sentence.first_seen_at).label("first"))
                 .select_from(Sentence).join(SourceRow, matching)
                 .group_by(Sentence.source_id).subquery())
        counts: dict[int, int] = dict(s.execute(select(pages.c.present, func.count())
                                .group_by(pages.c.present)).all())
        ordered = select(pages.c.source_id).order_by(pages.c.present.desc(), pages.c.first,
                                                     pages.c.source_id).limit(limit + 1)
        if key is not None:
            present, source_id, at = key
            ordered = ordered.where((pages.c.present < present) | and_(
                pages.c.present == present,
                (pages.c.first > at) | ((pages.c.first == at) & (pages.c.source_id > source_id))))
        ids = list(s.scalars(ordered))
        more = len(ids) > limit
        ids = ids[:limit]
        rows = s.execute(select(Sentence, SentenceText.text, SourceRow.name, SourceRow.platform)
                         .select_from(Sentence).join(SourceRow, matching & SourceRow.id.in_(ids))
                         .join(SentenceText, SentenceText.id == Sentence.text_id)
                         .order_by(Sentence.first_seen_at, Sentence.id)).all() if ids else []
    by_source: dict[int, list[Any]] = {}
    for row in rows:
        by_source.setdefault(row.Sentence.source_id, []).append(row)
    hits = [_hit(by_source[i]) for i in ids]  # in the database's order, the cursor's order
    return SearchResults(query, hits, counts.get(1, 0), counts.get(0, 0),
                         _search_cursor(hits[-1], ids[-1]) if more else None)


def _hit(found: list[Any]) -> SearchHit:
    """One page's answer from its matching sentences, oldest first."""
    present = [r for r in found if r.Sentence.removed_at is None]
    shown = (present or found)[0]
    first = found[0].Sentence
    gone = None if present else max(found, key=lambda r: r.Sentence.removed_at).Sentence
    return SearchHit(found[0].name, found[0].platform, bool(present), shown.text,
                     first.first_seen_at, first.first_snapshot_id,
                     gone.removed_at if gone else None, gone.last_snapshot_id if gone else None,
                     len(found))


def boards(store: Store, platform: str | None = None, at: datetime | None = None
           ) -> list[board.PlatformBoard]:
    """The AI data-use board of each platform (or the one named, any case), as the stored
    changes detected up to `at` made it: the answers kept with each change, never re-judged."""
    pages, answers = store.board_state(platform, at)
    return [board.build(p, at, pages[p], answers.get(p, {})) for p in pages]


@dataclass(frozen=True)
class BoardPage:
    """A keyset page of the board: its platforms' boards, how many platforms there are, and
    the cursor (the last platform shown) of the next page, None on the last."""

    boards: list[board.PlatformBoard]
    total: int
    next: str | None


def board_page(store: Store, at: datetime | None = None, after: str | None = None,
               limit: int = 100) -> BoardPage:
    """The board of `limit` platforms after `after`, by name: a watch list of a million
    sites is a million platforms, and the board is read a page at a time like every list."""
    chosen, total = store.board_platforms(after, limit + 1)
    shown = chosen[:limit]
    pages, answers = store.board_state(None, at, among=shown) if shown else ({}, {})
    boards_ = [board.build(p, at, pages[p], answers.get(p, {})) for p in shown if p in pages]
    return BoardPage(boards_, total, shown[-1] if len(chosen) > limit else None)


def board_timeline(store: Store, platform: str, at: datetime | None = None
                   ) -> list[board.Transition]:
    """When each of a platform's answers changed, in each of its documents."""
    store.require_platform(platform)  # an unknown platform is an error, not an empty timeline
    said = [one for found in store.board_said(platform, at).values() for one in found]
    return board.timeline(board.Transition(one.at, one.source, s.question, s.old, s.answer.value,
                                           one.change_id)
                          for one in said for s in one.settled if s.moved)


def board_news(store: Store, platform: str | None = None, at: datetime | None = None,
               limit: int = 50) -> list[board.AnswerNews]:
    """Every change that moved a platform's answers (of each platform, or the one named),
    newest first: the board's feed."""
    if platform is not None:
        store.require_platform(platform)  # an unknown platform is an error, not an empty feed
    return store.board_news(platform, at, limit)
