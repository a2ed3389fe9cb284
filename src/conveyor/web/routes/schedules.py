"""Schedules: list, create, edit, pause, resume, delete, run now. Changes need ``admin``.

There is no control function for schedules: ``app.schedules`` (the schedule book) is
their one implementation, which ``conveyor schedules`` calls too."""

from typing import Annotated, Any

from fastapi import Path, Request

from ...scheduler import ScheduleView
from .. import adapt
from ..context import Api, Section
from ..errors import ApiError
from ..models import Deleted, ScheduleCreate, ScheduleFields, ScheduleList, ScheduleOut, Submitted

ScheduleName = Annotated[str, Path(min_length=1, max_length=100)]


def _fields(body: ScheduleFields, *given: str) -> dict[str, Any]:
    """The fields set, as ``app.schedules`` takes them (``given``: passed on their own)."""
    fields = body.model_dump(exclude_none=True, exclude={"name", *given})
    if "options" in fields:
        fields["options"] = {k: v for k, v in fields["options"].items() if v is not None}
    return fields


#: The routes' tag in the OpenAPI document.
TAG = "schedules"


def routes(api: Api, r: Section) -> None:  # noqa: C901 - one closure per route
    app = api.app
    call = app.aio.call

    async def find(name: str) -> ScheduleView:
        for view in await call(app.schedules.list):
            if view.schedule.name == name:
                return view
        raise ApiError(404, "schedule_not_found", f"no schedule is named {name!r}",
                       "list the schedules: GET /schedules")  # fmt: skip

    @r.get("/schedules", summary="List schedules")
    async def schedules() -> ScheduleList:
        views = await call(app.schedules.list)
        return ScheduleList(
            schedules=[adapt.schedule(v) for v in sorted(views, key=lambda v: v.schedule.name)]
        )

    @r.get("/schedules/{name}", summary="One schedule")
    async def schedule(name: ScheduleName) -> ScheduleOut:
        return adapt.schedule(await find(name))

    @r.post("/schedules", status_code=201, summary="Create a schedule")
    async def create(body: ScheduleCreate) -> ScheduleOut:
        """Its task must be one the app exposes over HTTP (``http_tasks``)."""
        api.check_exposed(body.task)
        await call(app.schedules.add, body.name, body.task, **_fields(body, "task"))
        return adapt.schedule(await find(body.name))

    @r.patch("/schedules/{name}", summary="Change a schedule (from its next tick)")
    async def edit(name: ScheduleName, body: ScheduleFields) -> ScheduleOut:
        await find(name)
        if body.task is not None:
            api.check_exposed(body.task)
        await call(app.schedules.update, name, **_fields(body))
        return adapt.schedule(await find(name))

    @r.post("/schedules/{name}/pause", summary="Pause a schedule")
    async def pause(name: ScheduleName) -> ScheduleOut:
        await find(name)
        await call(app.schedules.pause, name)
        return adapt.schedule(await find(name))

    @r.post("/schedules/{name}/resume", summary="Resume a schedule")
    async def resume(name: ScheduleName) -> ScheduleOut:
        await find(name)
        await call(app.schedules.resume, name)
        return adapt.schedule(await find(name))

    @r.delete("/schedules/{name}", summary="Delete a schedule")
    async def delete(name: ScheduleName) -> Deleted:
        await find(name)
        await call(app.schedules.delete, name)
        return Deleted(name=name, deleted=True)

    @r.post("/schedules/{name}/run", status_code=201, summary="Run a schedule's job now")
    async def run_now(request: Request, name: ScheduleName) -> Submitted:
        """One job now, with the schedule's arguments and options; its ticks are unchanged."""
        task = (await find(name)).schedule.task
        job = await call(app.schedules.run_now, name)
        return Submitted(id=job.id, task=task, url=str(request.url_for("get_job", job_id=job.id)))
