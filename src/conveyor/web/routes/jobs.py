"""Reading, waiting for, cancelling and retrying jobs, one or in bulk."""

import contextlib
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Path, Query, Request

from ...control import cancel_job, cancel_where, describe_record, list_jobs, retry_job, retry_where
from ...control.jobs import MAX_PAGE, ran_on
from ...errors import JobTimeout
from ...states import State
from .. import adapt, audit
from ..context import Api, Section, posix
from ..errors import ApiError
from ..models import (
    BulkCancel,
    BulkResult,
    Cancel,
    Cancelled,
    JobDetail,
    JobFilter,
    JobList,
    JobOutcome,
    JobSummary,
    Name,
    QueryTime,
    Text,
    WorkerId,
)

if TYPE_CHECKING:
    from ...app import App

JobId = Annotated[str, Path(min_length=1, max_length=200)]


def _filters(f: JobFilter) -> dict[str, Any]:
    filters = {"states": [s.value for s in f.states] if f.states else None, "queues": f.queues,
               "tasks": f.tasks, "workers": f.workers, "created_after": posix(f.created_after),
               "created_before": posix(f.created_before), "text": f.text}  # fmt: skip
    if all(v is None for v in filters.values()):
        raise ApiError(400, "no_filter", "a bulk action needs at least one filter",
                       "give states, queues, tasks, workers, created_after/created_before or text")  # fmt: skip
    return filters


#: The routes' tag in the OpenAPI document.
TAG = "jobs"


class WorkerNames:
    """The workers' names a job read shows beside their ids, remembered (an id's name never
    changes): a status read of a job whose workers were named before reads nothing more
    (no hop to a thread, no second round trip). Cleared when it holds ``KEPT``."""

    KEPT = 10_000

    def __init__(self, app: "App") -> None:
        self.app = app
        self.known: dict[str, str] = {}

    async def of(self, workers: list[str]) -> dict[str, str]:
        missing = [w for w in workers if w not in self.known]
        if missing:
            found = await self.app.aio.call(self.app.backend.worker_directory, missing)
            if len(self.known) + len(found) > self.KEPT:
                self.known.clear()
            self.known.update((w.id, w.name) for w in found.values())
        return {w: self.known[w] for w in workers if w in self.known}


def routes(api: Api, r: Section) -> None:
    app = api.app
    call = app.aio.call
    names = WorkerNames(app)

    @r.get("/jobs", summary="List jobs")
    async def jobs(
        state: Annotated[list[State] | None, Query(max_length=7)] = None,
        queue: Annotated[list[Name] | None, Query(max_length=50)] = None,
        task: Annotated[list[Name] | None, Query(max_length=50)] = None,
        worker: Annotated[list[WorkerId] | None, Query(max_length=50)] = None,
        created_after: QueryTime | None = None,
        created_before: QueryTime | None = None,
        text: Text | None = None,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        order: Annotated[
            Literal["newest", "oldest"], Query(description="newest first, or oldest first")
        ] = "newest",
    ) -> JobList:
        """Jobs matching every filter, newest (or oldest) first; pass ``next_cursor`` back
        as ``cursor``, with the same ``order``."""
        page = await call(
            list_jobs, app, states=[s.value for s in state] if state else None, queues=queue,
            tasks=task, workers=worker, created_after=posix(created_after), created_before=posix(created_before),
            text=text, cursor=cursor, limit=limit, oldest_first=order == "oldest",
        )  # fmt: skip
        return JobList(jobs=[adapt.summary(j) for j in page.jobs], next_cursor=page.next_cursor)

    @r.post("/jobs/cancel", summary="Cancel every matching job")
    async def cancel_many(request: Request, body: BulkCancel) -> BulkResult:
        audit.did(request, "terminate" if body.terminate else "cancel")
        ids = await call(cancel_where, app, terminate=body.terminate, **_filters(body))
        audit.affected(request, ids)
        return BulkResult(count=len(ids), ids=ids)

    @r.post("/jobs/retry", summary="Retry every matching FAILURE or REVOKED job")
    async def retry_many(request: Request, body: JobFilter) -> BulkResult:
        ids = await call(retry_where, app, **_filters(body))
        audit.affected(request, ids)
        return BulkResult(count=len(ids), ids=ids)

    @r.get("/jobs/{job_id}", summary="One job in full")
    async def get_job(job_id: JobId) -> JobDetail:
        record = await app.aio.record(job_id)
        return adapt.detail(describe_record(record, await names.of(ran_on(record))))

    @r.get("/jobs/{job_id}/result", summary="Wait for a job's result")
    async def wait(
        job_id: JobId, timeout: Annotated[float, Query(ge=0, le=api.max_wait)] = 30.0
    ) -> JobOutcome:
        """Answers once the job finished or ``timeout`` seconds passed (then ``done`` is
        false): a long poll that holds no thread while it waits."""
        with contextlib.suppress(JobTimeout):  # not done yet: answer with the state so far
            await app.aio.result(job_id, timeout, propagate=False)
        return adapt.outcome(await app.aio.record(job_id))

    @r.post("/jobs/{job_id}/cancel", summary="Cancel a job")
    async def cancel(request: Request, job_id: JobId, body: Cancel | None = None) -> Cancelled:
        """Revoke it durably; ``terminate`` also stops it if it is running."""
        terminate = body.terminate if body else False
        audit.did(request, "terminate" if terminate else "cancel")
        revocation = await call(cancel_job, app, job_id, terminate=terminate)
        return adapt.cancelled(revocation, terminate)

    @r.post("/jobs/{job_id}/retry", summary="Retry a FAILURE or REVOKED job")
    async def retry(job_id: JobId) -> JobSummary:
        return adapt.summary(await call(retry_job, app, job_id))
