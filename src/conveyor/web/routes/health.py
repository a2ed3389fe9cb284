"""Liveness and readiness, for load balancers and orchestrators: no token needed, so
they say no more than whether the API can work (no URLs, no queue names)."""

import logging

from fastapi.responses import JSONResponse

from ...control import Readiness, readiness
from ..context import Api, Section
from ..models import BackendHealth, Live, Ready

log = logging.getLogger("conveyor.web")


#: The routes' tag in the OpenAPI document.
TAG = "health"


def routes(api: Api, r: Section) -> None:
    app = api.app

    @r.get("/health/live", summary="The API process answers (liveness: touches no backend)")
    async def live() -> Live:
        return Live(status="ok")

    @r.get("/health/ready", summary="The backend answers (200), or not (503)", response_model=Ready,
           responses={503: {"model": Ready, "description": "The backend is unreachable"}})  # fmt: skip
    async def ready() -> JSONResponse:
        """Ready when the backend answers one cheap read (whatever the number of jobs: a
        probe for an orchestrator); the body gives its latency and how many workers are
        alive (no live worker does not make the API unready: it can still queue jobs).
        ``GET /doctor`` runs the full checks."""
        try:
            report = await app.aio.call(readiness, app)
            if report.error:
                log.warning("readiness: the backend failed: %s", report.error)
        except Exception as exc:  # any failure to reach the store is "not ready", never a 500
            log.warning("readiness: the backend failed: %s", exc)
            report = Readiness(False, None, 0, str(exc))
        backend = BackendHealth(reachable=report.reachable, latency_ms=report.latency_ms)
        body = Ready(ready=backend.reachable, backend=backend, workers_alive=report.workers_alive)
        return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)
