"""Submitting jobs: one, or a batch in one backend round trip."""

from typing import Any

from fastapi import Request

from ...app import App
from ...control import enqueue_by_name
from ...task import Signature
from ..audit import not_audited, submitter
from ..consumers import Consumers
from ..context import Api, Section
from ..errors import ApiError
from ..models import BatchSubmit, BatchSubmitted, JobSubmit, Submitted, SubmitWarning


def _options(job: JobSubmit, submitted_by: str) -> dict[str, Any]:
    """The job's enqueue options; its headers name who submitted it (the audit trail's
    record of a submission, stored with the job: ``web.audit``)."""
    headers = {**(job.headers or {}), "submitted_by": submitted_by}
    options = {"queue": job.queue, "priority": job.priority, "countdown": job.countdown,
               "eta": job.eta, "expires": job.expires, "headers": headers}  # fmt: skip
    return {k: v for k, v in options.items() if v is not None}


#: The routes' tag in the OpenAPI document.
TAG = "jobs"


def _queue(app: App, job: JobSubmit) -> str:
    return app.queue_for(job.task, {"queue": job.queue} if job.queue else {})


def routes(api: Api, r: Section) -> None:
    app = api.app
    consumers = Consumers(app)

    def submitted(
        request: Request, job_id: str, task: str, warnings: list[SubmitWarning]
    ) -> Submitted:
        # GET /jobs/{id} sits beside POST /jobs and /jobs/batch (this router): its URL
        # follows from this request's, without url_for's walk over every route.
        jobs = str(request.url.replace(query=""))
        jobs = jobs.removesuffix("/batch") if request.url.path.endswith("/batch") else jobs
        return Submitted(id=job_id, task=task, url=f"{jobs}/{job_id}", warnings=warnings)

    @r.post("/jobs", status_code=201, summary="Submit a job")
    @not_audited
    async def submit(request: Request, job: JobSubmit) -> Submitted:
        """Queue one job of a task the app exposes over HTTP (``http_tasks``). Its
        ``submitted_by`` header names the token that submitted it. ``warnings`` says why
        it may not run soon (no live worker consumes its queue)."""
        api.check_exposed(job.task)
        options = _options(job, submitter(request))
        queued = await app.aio.call(enqueue_by_name, app, job.task, job.args, job.kwargs, **options)
        queue = _queue(app, job)
        return submitted(request, queued.id, job.task, (await consumers.warnings({queue}))[queue])

    @r.post("/jobs/batch", status_code=201, summary="Submit many jobs at once")
    @not_audited
    async def submit_batch(request: Request, batch: BatchSubmit) -> BatchSubmitted:
        """Queue every job or none: all are checked before any is stored."""
        for index, job in enumerate(batch.jobs):
            try:
                api.check_exposed(job.task)
            except ApiError as exc:  # which of a thousand jobs: the caller must find it
                raise exc.in_batch(index) from None
        who = submitter(request)
        signatures = [
            Signature(j.task, tuple(j.args), j.kwargs, _options(j, who)) for j in batch.jobs
        ]
        queued = await app.aio.enqueue_many(signatures)
        queues = [_queue(app, j) for j in batch.jobs]
        warnings = await consumers.warnings(set(queues))
        return BatchSubmitted(jobs=[
            submitted(request, q.id, j.task, warnings[queue])
            for q, j, queue in zip(queued, batch.jobs, queues, strict=True)
        ])  # fmt: skip
