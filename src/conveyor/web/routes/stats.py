"""Overall statistics and ``doctor`` findings."""

from ...control import diagnose, overview
from .. import adapt
from ..context import Api, Section
from ..models import Doctor, Overview

#: The routes' tag in the OpenAPI document.
TAG = "statistics"


def routes(api: Api, r: Section) -> None:
    app = api.app

    @r.get("/stats", summary="Counts by state, queues, workers, recent throughput")
    async def stats() -> Overview:
        return adapt.overview(await app.aio.call(overview, app))

    @r.get("/doctor", summary="Why work is stuck, each finding with its fix")
    async def doctor() -> Doctor:
        return adapt.doctor(await app.aio.call(diagnose, app))
