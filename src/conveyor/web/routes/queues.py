"""Queues: depth by state, consumers, paused flag, oldest waiting age; pause, resume, purge."""

from typing import Annotated

from fastapi import Path

from ...control import pause_queue, purge_queue, queue_stats, resume_queue
from .. import adapt
from ..context import Api, Section
from ..errors import ApiError
from ..models import Purged, QueueChanged, QueueInfo, QueueList
from ..models import QueueName as QueueNameText

QueueName = Annotated[QueueNameText, Path()]


#: The routes' tag in the OpenAPI document.
TAG = "queues"


def routes(api: Api, r: Section) -> None:
    app = api.app
    call = app.aio.call

    @r.get("/queues", summary="List queues")
    async def queues() -> QueueList:
        """Every queue the app declares, holds jobs in, is paused, or has a consumer for."""
        return QueueList(queues=[adapt.queue(q) for q in await call(queue_stats, app)])

    @r.get("/queues/{name}", summary="One queue")
    async def queue(name: QueueName) -> QueueInfo:
        for stats in await call(queue_stats, app):
            if stats.name == name:
                return adapt.queue(stats)
        raise ApiError(404, "queue_not_found", f"no queue {name!r} is declared, holds jobs or is consumed",
                       "list the queues: GET /queues")  # fmt: skip

    @r.post("/queues/{name}/pause", summary="Pause a queue")
    async def pause(name: QueueName) -> QueueChanged:
        """Workers stop claiming from it (persisted); running jobs go on."""
        warning = await call(pause_queue, app, name)
        return QueueChanged(queue=name, paused=True, warning=warning)

    @r.post("/queues/{name}/resume", summary="Resume a queue")
    async def resume(name: QueueName) -> QueueChanged:
        await call(resume_queue, app, name)
        return QueueChanged(queue=name, paused=False)

    @r.post("/queues/{name}/purge", summary="Revoke every waiting job of a queue")
    async def purge(name: QueueName) -> Purged:
        """Running jobs are left alone; the revoked records stay until pruned."""
        return Purged(queue=name, purged=await call(purge_queue, app, name))
