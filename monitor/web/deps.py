"""What every router of the web UI shares: the store the app was made with, its page
renderer, and the limits on ids and page sizes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi import Path as FastAPIPath
from fastapi.responses import HTMLResponse
from starlette.datastructures import URL

from monitor.store import Store

PAGE = 50
# Database ids are signed 64-bit: a larger number must be a 422, not an overflow and a 500
# (found by schemathesis).
MAX_ID = 2**63 - 1  # ids and page numbers past a 64-bit integer are 422, not an OverflowError
Id = Annotated[int, FastAPIPath(ge=1, le=MAX_ID)]
# The `after` of a list paged by id (sources, versions, changes): every value of this shape is
# a cursor, so a schema-valid request is never refused (schemathesis).
ID_CURSOR = r"^[0-9]{1,18}$"


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(_store)]


def render(request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
    """A page from the app's templates (autoescaped: page text is untrusted)."""
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, name, context, status_code=code)
    return response


def relative(url: URL) -> str:
    """A link to this server without its host: right behind a proxy that renames it."""
    return f"{url.path}?{url.query}" if url.query else url.path


def next_page(request: Request, cursor: str | None) -> str | None:
    """A page's link to the next one (this request with `after=cursor`), None on the last."""
    return relative(request.url.include_query_params(after=cursor)) if cursor else None
