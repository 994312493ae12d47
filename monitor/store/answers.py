"""The AI data-use board as stored: the answers each change gave (monitor/board.py), written
in the transaction that records the change, so reading the board at any date is a lookup of
the latest answer of each document and question, never a re-classification. Re-extraction,
re-judging and the migration that made the table rebuild a source's answers from its stored
changes with the same rule (`board.apply`) a recorded change goes through."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, delete, func, insert, select

from monitor import board
from monitor.errors import NotFoundError
from monitor.models import BoardAnswer, BoardNews, Change, SourceRow
from monitor.store.database import Database

if TYPE_CHECKING:
    from sqlalchemy import Connection


def _speaks(values: Mapping[str, Any]) -> bool:
    """Does a change say anything the board answers from (judged, and not "no change")?"""
    verdict = tuple(values.get("verdict") or ())
    return bool(verdict) and verdict != ("no_change",)


def fact(name: str, change_id: int, values: Mapping[str, Any]) -> board.Fact | None:
    """A change as the board reads it (`values`: its columns); None when it says nothing the
    board answers from."""
    if not _speaks(values):
        return None
    verdict = tuple(values["verdict"])
    return board.Fact(change_id, name, values["detected_at"], values["from_snapshot_id"],
                      values["to_snapshot_id"], verdict, values.get("ai_default"),
                      tuple(values.get("regions_excluded") or ()),
                      tuple(values.get("opt_out") or ()),
                      tuple((values.get("findings") or {}).get("evidence") or ()))


def _write(conn: Connection, source_id: int, generation: int, found: board.Fact,
           settled: Sequence[board.Settled]) -> None:
    if settled:
        conn.execute(insert(BoardAnswer), [{
            "source_id": source_id, "generation": generation, "question": s.question,
            "change_id": found.change_id, "detected_at": found.detected_at, "old_value": s.old,
            "value": s.answer.value, "moved": s.moved, "answer": s.answer.to_dict()}
            for s in settled])


def _visible() -> ColumnElement[bool]:
    """The sources the board is built from: watched ones, and imported histories."""
    return SourceRow.enabled.is_(True) | SourceRow.in_config.is_(False)


def _current(platform: str | None) -> ColumnElement[bool]:
    """Rows of the sources' current generation (of one platform, any case, when named: its
    sources' rows are found through the index, never by reading every platform's)."""
    cond = ((SourceRow.id == BoardAnswer.source_id)
            & (SourceRow.generation == BoardAnswer.generation))
    if not platform:
        return cond
    return cond & BoardAnswer.source_id.in_(
        select(SourceRow.id).where(func.lower(SourceRow.platform) == platform.lower()))


def latest_answers(conn: Connection, platform: str | None, at: datetime | None
                   ) -> dict[str, dict[str, dict[str, board.Answer]]]:
    """platform → source name → question → the latest answer up to `at`."""
    newest = (select(func.max(BoardAnswer.id)).join(SourceRow, _current(platform))
              .where(_visible())
              .group_by(BoardAnswer.source_id, BoardAnswer.generation, BoardAnswer.question))
    if at is not None:
        newest = newest.where(BoardAnswer.detected_at <= at)
    out: dict[str, dict[str, dict[str, board.Answer]]] = {}
    rows = conn.execute(select(SourceRow.platform, SourceRow.name, BoardAnswer.question,
                               BoardAnswer.answer)
                        .join(SourceRow, SourceRow.id == BoardAnswer.source_id)
                        .where(BoardAnswer.id.in_(newest)))
    for plat, name, question, answer in rows:
        out.setdefault(plat, {}).setdefault(name, {})[question] = board.Answer.from_dict(answer)
    return out


def keep_answers(conn: Connection, source_id: int, generation: int, platform: str,
                 change_id: int, values: Mapping[str, Any]) -> board.AnswerNews | None:
    """Write the answers a just-recorded change gives (the caller's transaction); return the
    platform answers it moved, if any, for an answers subscription."""
    if not _speaks(values):  # most changes: no query at all
        return None
    name = conn.execute(select(SourceRow.name).where(SourceRow.id == source_id)).scalar_one()
    found = fact(name, change_id, values)
    assert found is not None
    before = latest_answers(conn, platform, None).get(platform, {})
    mine = {**board.blank(), **before.get(name, {})}
    settled = board.apply(mine, found)
    _write(conn, source_id, generation, found, settled)
    news = board.news(platform, board.Said(name, found.detected_at, change_id, tuple(settled)),
                      before)
    if news is not None:
        _tell(conn, [news])
    return news


def _tell(conn: Connection, found: Sequence[board.AnswerNews]) -> None:
    if found:
        conn.execute(insert(BoardNews), [{"platform": n.platform, "change_id": n.change_id,
                                          "at": n.at, "news": n.to_dict()} for n in found])


def retell(conn: Connection, platform: str) -> int:
    """Write a platform's news again from its documents' stored answers (after they were
    rebuilt); returns how many changes moved its answers."""
    conn.execute(delete(BoardNews).where(BoardNews.platform == platform))
    found = board.platform_news(platform, (one for _, one in _grouped(conn.execute(
        _said_query(None, None).where(SourceRow.platform == platform)))))
    _tell(conn, found)
    return len(found)


def rebuild(conn: Connection, source_id: int) -> int:
    """Write a source's answers again from its stored changes (current generation), oldest
    first; returns how many changes spoke to the board."""
    name, generation = conn.execute(select(SourceRow.name, SourceRow.generation)
                                    .where(SourceRow.id == source_id)).one()
    conn.execute(delete(BoardAnswer).where(BoardAnswer.source_id == source_id))
    answers = board.blank()
    spoke = 0
    rows = conn.execute(
        select(Change.id, Change.detected_at, Change.from_snapshot_id, Change.to_snapshot_id,
               Change.verdict, Change.ai_default, Change.regions_excluded, Change.opt_out,
               Change.findings)
        .where(Change.source_id == source_id, Change.generation == generation)
        .order_by(Change.detected_at, Change.id))
    for row in rows.mappings().all():
        found = fact(name, row["id"], dict(row))
        if found is None:
            continue
        settled = board.apply(answers, found)
        _write(conn, source_id, generation, found, settled)
        answers.update({s.question: s.answer for s in settled})
        spoke += 1
    return spoke


def rebuild_all(conn: Connection) -> int:
    """Every source's answers and every platform's news again, in the caller's transaction
    (the upgrade that made the tables)."""
    spoke = sum(rebuild(conn, sid) for sid in conn.execute(select(SourceRow.id)).scalars().all())
    for platform in conn.execute(select(SourceRow.platform).distinct()).scalars().all():
        retell(conn, platform)
    return spoke


class Answers(Database):
    """The board's stored answers: kept with each change, read at any date."""

    def rebuild_board(self, names: Iterable[str] | None = None) -> int:
        """Rebuild the answers of the named sources (all when None), each in its own
        transaction, then their platforms' news; returns how many changes spoke to the board."""
        with self.read() as s:
            q = select(SourceRow.id, SourceRow.platform)
            if names is not None:
                q = q.where(SourceRow.name.in_(list(names)))
            ids = {row.id: row.platform for row in s.execute(q.order_by(SourceRow.id))}
        spoke = 0
        for source_id in ids:
            with self.write_conn() as conn:
                spoke += rebuild(conn, source_id)
        for platform in sorted(set(ids.values())):
            with self.write_conn() as conn:
                retell(conn, platform)
        return spoke

    def require_platform(self, platform: str) -> None:
        """NotFoundError unless a visible source has this platform (any case)."""
        with self.reading() as conn:
            if conn.execute(select(SourceRow.id).where(
                    _visible(), func.lower(SourceRow.platform) == platform.lower()).limit(1)
                    ).first() is None:
                raise NotFoundError(f"no platform {platform!r} is watched")

    def board_platforms(self, after: str | None, limit: int) -> tuple[list[str], int]:
        """A keyset page of the board's platforms by name (those after `after`), and how
        many there are in all."""
        with self.reading() as conn:
            q = select(SourceRow.platform).where(_visible()).distinct()
            if after is not None:
                q = q.where(SourceRow.platform > after)
            chosen = list(conn.execute(q.order_by(SourceRow.platform).limit(limit)).scalars())
            total = conn.execute(select(func.count(func.distinct(SourceRow.platform)))
                                 .where(_visible())).scalar_one()
            return chosen, int(total)

    def board_state(self, platform: str | None, at: datetime | None,
                    among: Sequence[str] | None = None
                    ) -> tuple[dict[str, list[board.Page]],
                               dict[str, dict[str, dict[str, board.Answer]]]]:
        """The pages of each platform (or the one named, or those `among`) and their answers
        up to `at`."""
        with self.reading() as conn:
            q = select(SourceRow.platform, SourceRow.name, SourceRow.title, SourceRow.url,
                       SourceRow.last_check_at, SourceRow.failing).where(_visible())
            if platform is not None:
                q = q.where(func.lower(SourceRow.platform) == platform.lower())
            if among is not None:
                q = q.where(SourceRow.platform.in_(among))
            pages: dict[str, list[board.Page]] = {}
            for plat, name, title, url, checked, failing in conn.execute(
                    q.order_by(SourceRow.platform, SourceRow.name)):
                pages.setdefault(plat, []).append(board.Page(name, title, url, checked,
                                                             bool(failing)))
            if platform is not None and not pages:
                raise NotFoundError(f"no platform {platform!r} is watched")
            return pages, latest_answers(conn, platform, at)

    def board_said(self, platform: str | None, at: datetime | None
                   ) -> dict[str, list[board.Said]]:
        """platform → the answers each change gave, in the order they were recorded."""
        with self.reading() as conn:
            out: dict[str, list[board.Said]] = {}
            for plat, group in _grouped(conn.execute(_said_query(platform, at))):
                out.setdefault(plat, []).append(group)
            return out

    def board_news(self, platform: str | None = None, at: datetime | None = None,
                   limit: int = 50) -> list[board.AnswerNews]:
        """The changes that moved a platform's answers (any platform's, or the one named),
        newest first, as they were told."""
        with self.reading() as conn:
            q = select(BoardNews.news).order_by(BoardNews.at.desc(), BoardNews.id.desc())
            if platform is not None:
                q = q.where(func.lower(BoardNews.platform) == platform.lower())
            if at is not None:
                q = q.where(BoardNews.at <= at)
            return [board.AnswerNews.from_dict(n) for n in conn.execute(q.limit(limit)).scalars()]


def _said_query(platform: str | None, at: datetime | None) -> Select[Any]:
    """Every answer of the visible sources' current generations, in the order recorded."""
    q = (select(SourceRow.platform, SourceRow.name, BoardAnswer.change_id,
                BoardAnswer.detected_at, BoardAnswer.question, BoardAnswer.old_value,
                BoardAnswer.answer)
         .join(SourceRow, _current(platform)).where(_visible())
         .order_by(BoardAnswer.detected_at, BoardAnswer.id))
    return q.where(BoardAnswer.detected_at <= at) if at is not None else q


def _grouped(rows: Iterable[Any]) -> Iterator[tuple[str, board.Said]]:
    """Consecutive rows of one change as one `Said`."""
    current: tuple[str, str, int, datetime] | None = None
    settled: list[board.Settled] = []
    for plat, name, change_id, at, question, old, answer in rows:
        if current is not None and current[2] != change_id:
            yield current[0], board.Said(current[1], current[3], current[2], tuple(settled))
            settled = []
        current = (plat, name, change_id, at)
        settled.append(board.Settled(question, board.Answer.from_dict(answer), old))
    if current is not None:
        yield current[0], board.Said(current[1], current[3], current[2], tuple(settled))
