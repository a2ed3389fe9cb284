"""The warning a submit answers when no live worker consumes the job's queue: the job is
queued all the same (a worker may start later), but a client should not have to find out
by waiting. The check is doctor's (``control.queues.consumers_of`` over the live
workers); the workers are read at most once every ``seconds``, so a submit costs no
backend read of its own."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..control.queues import consumers_of, live_workers, start_a_worker
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
        self.until = 0.0

    async def warnings(self, queues: set[str]) -> dict[str, list[SubmitWarning]]:
        """Per queue of ``queues``, the warnings for a job submitted to it (none: consumed)."""
        now = time.monotonic()
        if now >= self.until:
            try:
                self.live = await self.app.aio.call(live_workers, self.app)
            except ConveyorError as exc:
                # The job is stored already: a failed hint must not turn its 201 into an
                # error a client would retry (and so submit twice). No hint this time.
                log.warning("could not read the workers for a submit's warnings: %s", exc)
                return {queue: [] for queue in queues}
            self.until = now + self.seconds
        return {
            queue: [] if consumers_of(queue, self.live) else [_unconsumed(queue, self.app.command)]
            for queue in queues
        }


def _unconsumed(queue: str, command: str) -> SubmitWarning:
    return SubmitWarning(
        code="no_consumer",
        message=f"no live worker consumes queue {queue!r}: the job waits there until one does",
        hint=start_a_worker(queue, command),
    )
