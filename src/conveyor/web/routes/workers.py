"""Live workers: host, pid, pool, concurrency, queues, running jobs, heartbeat age, version."""

from typing import Annotated

from fastapi import Path

from ...control import workers as live_workers
from ...records import WorkerInfo
from .. import adapt
from ..context import Api, Section
from ..errors import ApiError
from ..models import WorkerList, WorkerOut

#: The routes' tag in the OpenAPI document.
TAG = "workers"


def routes(api: Api, r: Section) -> None:
    app = api.app

    def read() -> tuple[list[WorkerInfo], float]:
        return live_workers(app), app.backend.now()

    @r.get("/workers", summary="List live workers")
    async def workers() -> WorkerList:
        found, now = await app.aio.call(read)
        return WorkerList(workers=[adapt.worker(w, now) for w in found])

    @r.get("/workers/{worker}", summary="One worker, by name or id")
    async def worker(worker: Annotated[str, Path(min_length=1, max_length=300)]) -> WorkerOut:
        found, now = await app.aio.call(read)
        for info in found:
            if worker in (info.name, info.id):
                return adapt.worker(info, now)
        raise ApiError(404, "worker_not_found", f"no live worker is named {worker!r} or has that id",
                       "list the live workers: GET /workers (a stopped worker leaves the list)")  # fmt: skip
