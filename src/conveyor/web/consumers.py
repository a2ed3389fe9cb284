"""The warnings a submit answers when its job will wait: no live worker consumes the
job's queue, or the queue is paused. The job is queued all the same (a worker may start
later, the queue may be resumed), but a client should not have to find out by waiting.
The checks are doctor's (``control.queues.consumers_of`` over the live workers, the
backend's paused queues, the same hints); both are read at most once every ``seconds``,
so a submit costs no backend read of its own (a pause or a worker started in the last
second may not be seen yet)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..control.queues import consumers_of, live_workers, resume_hint, start_a_worker
from ..errors import ConveyorError
from .models import SubmitWarning

if TYPE_CHECKING:
    from ..app import App
    from ..records import WorkerInfo

log = logging.getLogger("conveyor.web")

#: How long the live workers read for one submit serve the next ones (seconds).
FRESH = 1.0


class Consumers:
    def __init__(self, app: App, seconds: float = FRESH) -> None:
        self.app, self.seconds = app, seconds
        self.live: list[WorkerInfo] = []
        self.paused: set[str] = set()
        self.until = 0.0

    async def warnings(self, queues: set[str]) -> dict[str, list[SubmitWarning]]:
        """Per queue of ``queues``, the warnings for a job submitted to it (none: consumed)."""
        now = time.monotonic()
        if now >= self.until:
            try:
                self.live, self.paused = await self.app.aio.call(_read, self.app)
            except ConveyorError as exc:
                # The job is stored already: a failed hint must not turn its 201 into an
                # error a client would retry (and so submit twice). No hint this time.
                log.warning("could not read the workers for a submit's warnings: %s", exc)
                return {queue: [] for queue in queues}
            self.until = now + self.seconds
        return {queue: self._about(queue) for queue in queues}

    def _about(self, queue: str) -> list[SubmitWarning]:
        found = [] if consumers_of(queue, self.live) else [_unconsumed(queue, self.app.command)]
        if queue in self.paused:
            found.append(_paused(queue, self.app.command))
        return found


def _read(app: App) -> tuple[list[WorkerInfo], set[str]]:
    return live_workers(app), app.backend.paused_queues()


def _unconsumed(queue: str, command: str) -> SubmitWarning:
    return SubmitWarning(
        code="no_consumer",
        message=f"no live worker consumes queue {queue!r}: the job waits there until one does",
        hint=start_a_worker(queue, command),
    )


def _paused(queue: str, command: str) -> SubmitWarning:
    return SubmitWarning(
        code="queue_paused",
        message=f"queue {queue!r} is paused: the job waits there until it is resumed",
        hint=resume_hint(queue, command),
    )
