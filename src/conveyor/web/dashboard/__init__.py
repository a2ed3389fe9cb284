"""The dashboard: server-rendered pages (Jinja2) over the control functions, served by
the API's application (``create_api(app, dashboard="/ui")``), live through the API's
own server-sent events route, with plain JavaScript and no build step or CDN.

``mount(service, app, auth, prefix)`` adds the pages, their static files and the event
stream (authenticated by the dashboard's session cookie) to a FastAPI service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ..auth import AuthMode
from ..context import Api, Section
from ..errors import ApiError, as_response, handle
from ..routes import events
from . import pages
from .pages import base
from .session import LoginRequired, Viewer, viewer

if TYPE_CHECKING:
    from ...app import App

STATIC = Path(__file__).parent / "static"


def mount(service: FastAPI, app: App, auth: AuthMode, prefix: str = "/ui") -> None:
    """Serve the dashboard under ``prefix`` (and redirect ``/`` to it)."""

    async def session(request: Request) -> Viewer:
        try:
            return await app.aio.call(viewer, app, auth, request)
        except LoginRequired:
            raise ApiError(
                401,
                "unauthorized",
                "no dashboard session",
                f"log in at {base(request, prefix)}/login",
            ) from None

    service.mount(f"{prefix}/static", StaticFiles(directory=STATIC), name="dashboard-static")
    # The API's own event stream, the one route reused as it is, behind the session.
    section = Section(
        service.router, events.TAG, [Depends(session)], prefix, include_in_schema=False
    )
    events.routes(Api(app), section)
    service.include_router(pages.routes(app, auth, prefix), prefix=prefix)

    @service.get("/", include_in_schema=False)
    async def home(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{base(request, prefix)}/")


def handler(prefix: str) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The app-level error handler when the dashboard is mounted: a refusal under
    ``prefix`` (no such page, a GET of a form's address, a bad query) is a page; the
    event stream, static files and the API keep the API's JSON shape."""

    async def answer(request: Request, exc: Exception) -> Response:
        path, here = request.url.path, base(request, prefix)
        if path.startswith(f"{here}/") and not path.startswith(
            (f"{here}/events", f"{here}/static/")
        ):
            response = as_response(exc)  # the status and message the API gives
            message = orjson.loads(response.body)["error"]["message"]
            return pages.error_page(request, here, response.status_code, message)
        return await handle(request, exc)

    return answer
