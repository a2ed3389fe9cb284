"""video2doc's web service: its own endpoints to turn a video into a document, and
Conveyor's REST API mounted under /api/queue (jobs, workflows, queues, workers,
statistics, events, audit), documented together at /docs.

    uvicorn service:service --port 8000      # from this folder
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from tasks import app, describe, export, extract, summarize, transcribe

from conveyor import JobNotFound, State, chain, group
from conveyor.web import Token, TokenStore, api_router, use_error_shape
from conveyor.web.tokens import allows

service = FastAPI(title="video2doc")
service.include_router(api_router(app), prefix="/api/queue")  # bearer tokens, as below
use_error_shape(service)  # this service's own refusals in the API's shape: {"error": {...}}


def operator(
    credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))
    ],
) -> Token:
    """The same tokens as the mounted API: ``conveyor -A tasks:app tokens create``."""
    token = TokenStore(app.backend).verify(credentials.credentials) if credentials else None
    if token is None:
        raise HTTPException(401, "a bearer token is needed", {"WWW-Authenticate": "Bearer"})
    if not allows(token.role, "operate"):
        raise HTTPException(403, f"token {token.name!r} may only read")
    return token


class DocumentRequest(BaseModel):
    video_url: str = Field(min_length=1, max_length=2000)
    format: Literal["md", "html", "pdf"] = "md"


class DocumentStarted(BaseModel):
    workflow_id: str
    mode: str
    status_url: str


@service.post("/documents/{mode}", status_code=201)
def start(
    mode: Literal["complete", "parallel"],
    body: DocumentRequest,
    request: Request,
    token: Annotated[Token, Depends(operator)],
) -> DocumentStarted:
    """``complete``: one step after another (extract, transcribe, summarize, export).
    ``parallel``: after extraction, transcription and image captions run side by side
    (a chord), then the summary of both and the export."""
    if mode == "complete":
        flow = chain(
            extract.s(body.video_url), transcribe.s(), summarize.s(), export.s(body.format)
        )
    else:
        both = group(transcribe.s(), describe.s())
        flow = chain(extract.s(body.video_url), both, summarize.s(), export.s(body.format))
    workflow = flow.apply_async(headers={"submitted_by": f"{token.name} ({token.id})"})
    url = str(request.base_url).rstrip("/") + f"/api/queue/workflows/{workflow.id}"
    return DocumentStarted(workflow_id=workflow.id, mode=mode, status_url=url)


class StepStatus(BaseModel):
    """What this service's own front end shows of one job (a workflow's step)."""

    state: str
    percent: float | None
    message: str | None
    meta: dict[str, Any]
    result: Any
    error: str | None


@service.get("/documents/steps/{job_id}")
async def step_status(job_id: str, token: Annotated[Token, Depends(operator)]) -> StepStatus:
    """A status endpoint of the service's own: one read of the job's record, off the event
    loop (``app.aio.record``, as the mounted API reads it)."""
    try:
        record = await app.aio.record(job_id)
    except JobNotFound:
        raise HTTPException(404, f"no job has the id {job_id!r}") from None
    progress = record.progress or {}  # what the task last gave self.update_progress()
    return StepStatus(
        state=record.state,
        percent=progress.get("percent"),
        message=progress.get("message"),
        meta=progress.get("meta") or {},
        result=record.result if record.state is State.SUCCESS else None,
        error=f"{record.error['type']}: {record.error['message']}" if record.error else None,
    )
