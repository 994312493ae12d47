"""The web UI and JSON API: read-only, server-rendered, no inline script, strict CSP.

All page text is untrusted: Jinja2 autoescapes it, diffs are built from escaped fragments,
links found in pages are shown as text, and raw pages are only ever served as text/plain
attachments (changedetection.io GHSA-cgj8-g98g-4p9x). The routes live in three routers by
what they serve: pages.py (HTML), feeds.py (Atom) and api.py (JSON); this module makes the
app they share: the store, the templates, the headers and the authentication.
"""

from __future__ import annotations

import base64
import hmac
import html
import logging
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from monitor import config as cfg
from monitor.errors import NotFoundError
from monitor.store import Store
from monitor.text import readable
from monitor.web import api, boards, feeds, metrics, pages
from monitor.web.deps import render
from monitor.wording import plural

log = logging.getLogger("monitor.web")
HERE = Path(__file__).parent
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


class SecurityHeaders(BaseHTTPMiddleware):
    """CSP and friends on every response; authentication for every route when configured."""

    def __init__(self, app: Any, token: str | None) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if self.token and not self._authorised(request):
            response: Response = PlainTextResponse("authentication required", status_code=401,
                                                   headers={"WWW-Authenticate": 'Basic realm="policy-monitor"'})
        else:
            try:
                response = await call_next(request)
            except Exception:  # answered here, so even an unforeseen error carries the headers
                log.exception("%s %s failed", request.method, request.url.path)
                response = PlainTextResponse("internal error", status_code=500)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        assert self.token is not None
        if header.startswith("Bearer "):
            return hmac.compare_digest(header[7:].strip(), self.token)
        if header.startswith("Basic "):
            try:
                _, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return hmac.compare_digest(password, self.token)
        return False


def highlight(sentence: str | None, phrases: list[str] | None) -> Markup:
    """Escape first, then mark the matched phrases: page text can never become markup."""
    text = html.escape(readable(sentence or ""))
    for phrase in sorted(set(phrases or []), key=len, reverse=True):
        escaped = html.escape(phrase)
        if escaped:
            text = re.sub(re.escape(escaped), lambda m: f"<mark>{m.group(0)}</mark>", text, count=1)
    return Markup(text)  # noqa: S704 - built from escaped text above


def create_app(config: cfg.Config, store: Store | None = None) -> FastAPI:
    settings = config.settings
    # No Swagger UI: it needs inline and CDN scripts, which the CSP (and offline hosts) refuse.
    app = FastAPI(title="Policy Monitor API", version="1", docs_url=None, redoc_url=None,
                  description="Read-only access to watched sources, their versions and changes.")
    app.state.store = store or Store(settings.web_database, read_only=True)
    app.state.settings = settings
    app.add_middleware(SecurityHeaders, token=settings.web_token)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.autoescape = True  # every extension, not only .html (GHSA-pwgc-w4x9-gw67)
    templates.env.globals["highlight"] = highlight
    templates.env.filters["plain"] = readable  # Markdown marks out of quoted page text
    templates.env.filters["plural"] = plural  # "1 platform", never "1 platforms"
    app.state.templates = templates

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc)}, status_code=404)
        return render(request, "error.html", 404, status="Not found", message=str(exc))

    app.include_router(pages.router)
    app.include_router(feeds.router)
    app.include_router(api.router)
    app.include_router(boards.router)
    app.include_router(metrics.router)
    return app
