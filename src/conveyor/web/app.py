"""The factories: ``create_api(app)``, a whole ASGI app, and ``api_router(app)``, the
same routes for a FastAPI service of your own. Each call builds new objects; nothing is
kept at module level, so two APIs in one process never see each other."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from ..version import __version__
from .auth import TOKEN_CACHE, AuthMode, authorizer
from .context import MAX_WAIT, Api
from .dashboard import handler as dashboard_errors
from .dashboard import mount as mount_dashboard
from .errors import ApiRoute, handle
from .routes import (
    audit,
    events,
    health,
    jobs,
    queues,
    schedules,
    stats,
    submit,
    workers,
    workflows,
)

if TYPE_CHECKING:
    from ..app import App


def api_router(
    app: App,
    *,
    auth: AuthMode = "required",
    max_wait: float = MAX_WAIT,
    token_cache: float = TOKEN_CACHE,
) -> APIRouter:
    """Every route of the API, for ``service.include_router(api_router(app), prefix=...)``.

    ``auth``: ``"required"`` (bearer tokens from ``conveyor tokens create``),
    ``"until-first-token"`` or ``"off"`` (your service authenticates); see ``web.auth``.
    ``max_wait``: the longest a result wait may hold a request (seconds).
    ``token_cache``: how long a token found valid is trusted without a backend read
    (seconds; a revoked token stops working within it; 0: read on every request).
    """
    api = Api(app, max_wait)
    guard = [Depends(authorizer(app, auth, token_cache=token_cache))]
    router = APIRouter(route_class=ApiRoute)
    router.include_router(health.routes(api))  # no token: probes must answer
    for module in (submit, jobs, workflows, queues, workers, stats, events, audit):
        router.include_router(module.routes(api), dependencies=guard)
    admin = [Depends(authorizer(app, auth, write_role="admin", token_cache=token_cache))]
    router.include_router(schedules.routes(api), dependencies=admin)
    return router


def create_api(
    app: App,
    *,
    auth: AuthMode = "required",
    prefix: str = "/api",
    max_wait: float = MAX_WAIT,
    token_cache: float = TOKEN_CACHE,
    dashboard: str | None = "/ui",
) -> FastAPI:
    """The REST API as an ASGI app: routes under ``prefix``, the OpenAPI 3.1 document at
    ``{prefix}/openapi.json``, interactive docs at ``{prefix}/docs``; the dashboard under
    ``dashboard`` (None: no dashboard), with the same auth."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        app.aio.close()  # the threads the handlers ran on; a later call starts them again

    service = FastAPI(
        title=f"Conveyor API: {app.name}",
        version=__version__,
        openapi_url=f"{prefix}/openapi.json",
        docs_url=f"{prefix}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    router = api_router(app, auth=auth, max_wait=max_wait, token_cache=token_cache)
    service.include_router(router, prefix=prefix)
    answer: Callable[[Request, Exception], Awaitable[Response]] = handle
    if dashboard is not None:
        mount_dashboard(service, app, auth, dashboard)
        answer = dashboard_errors(dashboard)  # pages answer refusals as pages
    # Outside the routes (an unknown path, a wrong method): the same error shape.
    service.add_exception_handler(HTTPException, answer)
    service.add_exception_handler(RequestValidationError, answer)
    return service
