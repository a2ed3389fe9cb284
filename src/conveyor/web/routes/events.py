"""A server-sent events stream of job state changes and progress, queues paused,
resumed or purged and workers come or gone, read from the backend's durable event feed
(``Backend.events``), resumable with ``Last-Event-ID``.

One feed query per poll per connected client, whatever the number of jobs: the feed is
polled, never each job."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from ...errors import ConveyorError
from ...records import Event
from ...states import State
from ..context import Api, Section
from ..models import EventOut, Name

log = logging.getLogger("conveyor.web")
#: How long a stream waits before looking at the feed again when it had nothing new.
POLL = 0.2
PAGE = 500


def latest_seq(read: Callable[[int, int], list[Event]]) -> int:
    """The newest event's number (``read`` is ``Backend.events``): where a stream that asks
    for no history starts. The backend has no verb for it, so this pages to the end."""
    cursor = 0
    while True:
        batch = read(cursor, PAGE)
        if not batch:
            return cursor
        cursor = batch[-1].seq
        if len(batch) < PAGE:
            return cursor


def event_out(event: Event) -> EventOut:
    """A feed entry as the stream sends it: the fields its kind has, the others null."""
    if event.kind.startswith("job."):
        return EventOut(seq=event.seq, time=event.time, kind=event.kind, job_id=event.job_id,
                        queue=event.queue, task=event.task, state=State(event.state))  # fmt: skip
    worker = event.job_id if event.kind.startswith("worker.") else None
    return EventOut(seq=event.seq, time=event.time, kind=event.kind, job_id=None,
                    queue=event.queue or None, task=None, state=None, worker=worker)  # fmt: skip


#: The routes' tag in the OpenAPI document.
TAG = "events"


def routes(api: Api, r: Section) -> None:
    app = api.app

    @r.get(
        "/events",
        response_class=EventSourceResponse,
        summary="Stream job, queue and worker events (SSE)",
    )
    async def events(
        after: Annotated[
            int | None, Query(ge=0, description="Start after this event (0: every event kept).")
        ] = None,
        queue: Annotated[list[Name] | None, Query(max_length=50)] = None,
        job: Annotated[
            str | None, Query(max_length=200, description="Only this job's events.")
        ] = None,
        limit: Annotated[
            int | None, Query(ge=1, le=1_000_000, description="End after this many events.")
        ] = None,
        timeout: Annotated[
            float | None, Query(gt=0, le=86_400, description="End after this many seconds.")
        ] = None,
        last_event_id: Annotated[str | None, Header(pattern=r"^\d{1,19}$")] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        """Each event's ``id`` is its number in the feed: a client that reconnects with
        ``Last-Event-ID`` (browsers' ``EventSource`` does) misses nothing the backend
        still keeps. With neither that nor ``after``, the stream starts from now."""
        deadline = None if timeout is None else time.monotonic() + timeout
        sent = 0
        try:
            cursor = int(last_event_id) if last_event_id else after
            if cursor is None:
                cursor = await app.aio.call(latest_seq, app.backend.events)
            while deadline is None or time.monotonic() < deadline:
                batch = await app.aio.call(app.backend.events, cursor, PAGE)
                for event in batch:
                    cursor = event.seq
                    if (queue and event.queue not in queue) or (job and event.job_id != job):
                        continue
                    out = event_out(event)
                    yield ServerSentEvent(data=out, id=str(event.seq), event=event.kind)
                    sent += 1
                    if limit is not None and sent >= limit:
                        return
                if len(batch) < PAGE:
                    await asyncio.sleep(POLL)
        except (ConveyorError, OSError) as exc:  # the store failed: end; EventSource reconnects
            log.warning("event stream ended: %s", exc)
            yield ServerSentEvent(event="error", data={"message": "the backend failed; reconnect"})
