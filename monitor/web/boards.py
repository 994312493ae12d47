"""The AI data-use board on the web: /board (platforms × questions), /board/<platform> (its
documents and the timeline of its answers), and the same as JSON under /api/board."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from monitor import history
from monitor.board import QUESTION_WORDS, QUESTIONS, end_of_day
from monitor.web.api import NOT_FOUND, paged
from monitor.web.deps import StoreDep, next_page, render

router = APIRouter()
BOARD_PAGE = 100  # platforms per page of /board (a row each)
API_BOARD_PAGE = 20  # and of /api/board, which lists every platform's documents too
AtQuery = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2024-10-01"],
                json_schema_extra={"format": "date"},
                description="The board as the stored versions made it on this day (YYYY-MM-DD).")


def _end_of(day: str | None) -> datetime | None:
    if not day:
        return None
    try:
        return end_of_day(date.fromisoformat(day))
    except ValueError:
        raise RequestValidationError([{"type": "date_from_datetime_parsing", "loc": ("query", "at"),
                                       "msg": f"{day!r} is not a date", "input": day}]) from None


class AnswerOut(BaseModel):
    value: str  # yes | no | promises not to | on | off | removed | changed | not stated | …
    since: str | None
    change_id: int | None
    from_version_id: int | None
    version_id: int | None
    source: str | None
    quote: str | None
    steps: list[dict[str, Any]]  # ways out: {type, text, url}
    names: list[str]  # regions exempt, or who gets the data
    stale: bool  # from a page that can no longer be read


class DocumentOut(BaseModel):
    source: str
    title: str | None
    url: str
    last_check_at: str | None
    failing: bool
    answers: dict[str, AnswerOut]


class BoardOut(BaseModel):
    platform: str
    at: str | None
    answers: dict[str, list[AnswerOut]]  # more than one: the documents disagree
    disagreements: list[str]
    documents: list[DocumentOut]


class TransitionOut(BaseModel):
    at: str | None
    source: str
    question: str
    old: str
    new: str
    change_id: int


class PlatformBoardOut(BoardOut):
    timeline: list[TransitionOut]


@router.get("/api/board", response_model=list[BoardOut], tags=["board"])
def api_board(store: StoreDep, request: Request, response: Response, at: str | None = AtQuery,
              limit: int = Query(API_BOARD_PAGE, ge=1, le=500),
              after: str | None = Query(None, max_length=200)) -> list[BoardOut]:
    """For every platform: does it train AI on your data, since when, on by default, the
    ways out, who is exempt, who else gets the data; each answer with its change. Platforms
    by name, a page at a time (`after`: the last platform of the previous page, as the
    `Link` header gives it); `X-Total-Count` is the number of platforms."""
    found = history.board_page(store, _end_of(at), after, limit)
    paged(request, response, found.total, found.next)
    return [BoardOut(**b.to_dict()) for b in found.boards]


@router.get("/api/board/{platform}", response_model=PlatformBoardOut, tags=["board"],
            responses=NOT_FOUND)
def api_board_platform(store: StoreDep, platform: str, at: str | None = AtQuery
                       ) -> PlatformBoardOut:
    (found,) = history.boards(store, platform, _end_of(at))
    moves = history.board_timeline(store, platform, _end_of(at))
    return PlatformBoardOut(**found.to_dict(), timeline=[TransitionOut(**m.to_dict()) for m in moves])


@router.get("/board", response_class=HTMLResponse, include_in_schema=False)
def board_page(store: StoreDep, request: Request, at: str | None = AtQuery,
               after: str | None = Query(None, max_length=200)) -> HTMLResponse:
    found = history.board_page(store, _end_of(at), after, BOARD_PAGE)
    return render(request, "board.html", boards=found.boards, total=found.total,
                  next_url=next_page(request, found.next),
                  questions=QUESTIONS, words=QUESTION_WORDS, at=at)


@router.get("/board/{platform}", response_class=HTMLResponse, include_in_schema=False)
def board_platform_page(store: StoreDep, request: Request, platform: str,
                        at: str | None = AtQuery) -> HTMLResponse:
    (found,) = history.boards(store, platform, _end_of(at))
    return render(request, "board_platform.html", b=found, questions=QUESTIONS,
                  words=QUESTION_WORDS, at=at,
                  timeline=history.board_timeline(store, platform, _end_of(at)))
