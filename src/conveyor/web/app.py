"""The factories: ``create_api(app)``, a whole ASGI app, and ``api_router(app)``, the
same routes for a FastAPI service of your own. Each call builds new objects; nothing is
kept at module level, so two APIs in one process never see each other."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, FastAPI, Request, Response

from ..version import __version__
from .auth import TOKEN_CACHE, AuthMode, Authorizer
from .context import MAX_WAIT, Api, Section
from .dashboard import handler as dashboard_errors
from .dashboard import mount as mount_dashboard
from .docs import serve_docs
from .errors import handle, use_error_shape
from .routes import (
    audit,
    events,
    health,
    jobs,
    metrics,
    queues,
    schedules,
    stats,
    submit,
    workers,
    workflows,
)

if TYPE_CHECKING:
    from ..app import App


def serving(app: App) -> Callable[[object], AbstractAsyncContextManager[None]]:
    """The API's lifespan: the backend's reads on the serving loop (``app.aio.open``: a
    status read without a thread hop, on Redis) and, at shutdown, their connections and
    the threads the handlers ran on closed (a later call starts them again)."""

    @asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        await app.aio.open()
        try:
            yield
        finally:
            await app.aio.aclose()
            app.aio.close()

    return lifespan


def add_routes(
    router: APIRouter,
    app: App,
    *,
    auth: AuthMode,
    max_wait: float,
    token_cache: float,
    prefix: str = "",
) -> None:
    """Every route of the API, added to ``router`` under ``prefix`` as one flat list
    (``context.Section``)."""
    api = Api(app, max_wait)
    guard = [Depends(Authorizer(app, auth, token_cache=token_cache))]
    health.routes(api, Section(router, health.TAG, prefix=prefix))  # no token: probes must answer
    for module in (submit, jobs, workflows, queues, workers, stats, events, audit):
        module.routes(api, Section(router, module.TAG, guard, prefix))
    admin = [Depends(Authorizer(app, auth, write_role="admin", token_cache=token_cache))]
    schedules.routes(api, Section(router, schedules.TAG, admin, prefix))
    # Where Prometheus looks by default: the service's root, whatever the API's prefix.
    scrape = [] if app.conf.metrics_open() else guard
    metrics.routes(api, Section(router, metrics.TAG, scrape))


def api_router(
    app: App,
    *,
    auth: AuthMode = "required",
    max_wait: float = MAX_WAIT,
    token_cache: float = TOKEN_CACHE,
) -> APIRouter:
    """Every route of the API, for ``service.include_router(api_router(app), prefix=...)``;
    the router's lifespan (which FastAPI runs with the service's) opens and closes what
    the routes use (``serving``).

    ``auth``: ``"required"`` (bearer tokens from ``conveyor tokens create``),
    ``"until-first-token"`` or ``"off"`` (your service authenticates); see ``web.auth``.
    ``max_wait``: the longest a result wait may hold a request (seconds).
    ``token_cache``: how long a token found valid is trusted without a backend read
    (seconds; a revoked token stops working within it; 0: read on every request).
    """
    router = APIRouter(lifespan=serving(app))
    add_routes(router, app, auth=auth, max_wait=max_wait, token_cache=token_cache)
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
    ``{prefix}/openapi.json``, interactive docs at ``{prefix}/docs`` (with their own files:
    ``web.docs``); the dashboard under ``dashboard`` (None: no dashboard), with the same
    auth."""
    service = FastAPI(
        title=f"Conveyor API: {app.name}",
        version=__version__,
        openapi_url=f"{prefix}/openapi.json",
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN: ours is served here
        redoc_url=None,
        lifespan=serving(app),
    )
    serve_docs(service, f"{prefix}/docs", f"{prefix}/openapi.json")
    # On the service's own router, not an included one: one list of routes to match.
    add_routes(service.router, app, auth=auth, max_wait=max_wait, token_cache=token_cache,
               prefix=prefix)  # fmt: skip
    answer: Callable[[Request, Exception], Awaitable[Response]] = handle
    if dashboard is not None:
        mount_dashboard(service, app, auth, dashboard)
        answer = dashboard_errors(dashboard)  # pages answer refusals as pages
    use_error_shape(service, answer)  # outside the routes (an unknown path, a wrong method)
    return service
