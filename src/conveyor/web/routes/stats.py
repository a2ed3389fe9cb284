"""Overall statistics and ``doctor`` findings."""

from fastapi import APIRouter

from ...control import diagnose, overview
from .. import adapt
from ..context import Api, router
from ..models import Doctor, Overview


def routes(api: Api) -> APIRouter:
    r = router("statistics")
    app = api.app

    @r.get("/stats", summary="Counts by state, queues, workers, recent throughput")
    async def stats() -> Overview:
        return adapt.overview(await app.aio.call(overview, app))

    @r.get("/doctor", summary="Why work is stuck, each finding with its fix")
    async def doctor() -> Doctor:
        return adapt.doctor(await app.aio.call(diagnose, app))

    return r
