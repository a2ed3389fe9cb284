"""A queue a call names that nothing may ever consume, said once, not refused.

``apply_async(queue="defualt")`` is stored like any call: the job waits in a queue no
worker reads, and nothing says so until ``doctor`` is asked. Refusing it is not right
either: a queue may be one that workers on other hosts are configured to consume (their
``-Q``, not this app's code), and those workers may not run yet. So the producer warns,
once per queue name in the process: when a call names a queue by itself (``queue=``)
that the app neither declares (its default queue, a task's own queue) nor routes to,
and that no live worker consumes. The first call naming a queue reads the live workers
once; every later call naming it costs a set lookup.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from .errors import ConveyorError
from .names import did_you_mean

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger("conveyor.enqueue")
#: Queue names remembered at most (names from REST API callers are unbounded): past it
#: the memory starts again, and a stray queue may be told once more.
MAX_SEEN = 1024
#: After the workers could not be read (the backend is down), no call checks a queue for
#: this many seconds: each would pay the backend's timeout again before the store's own.
RECHECK_AFTER = 30.0


class StrayQueues:
    """The queue names an app's calls named, each checked once."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._blind_until = 0.0  # time.monotonic() before which no queue is checked

    def check(self, app: App, queue: str) -> None:
        """Warn once if nothing declared, routed or running would consume ``queue``."""
        if queue in self._seen or time.monotonic() < self._blind_until:
            return
        with self._lock:
            if queue in self._seen:
                return
            if len(self._seen) >= MAX_SEEN:
                self._seen.clear()
            self._seen.add(queue)
        declared = app.declared_queues()
        if queue in declared:
            return
        try:
            consumed = {q for worker in app.backend.workers() for q in worker.queues}
        except ConveyorError:
            # No telling (the enqueue itself says what is wrong with the backend): the
            # queue is not marked as told, so a call once the backend is back (after
            # RECHECK_AFTER) checks it.
            with self._lock:
                self._seen.discard(queue)
                self._blind_until = time.monotonic() + RECHECK_AFTER
            return
        if queue in consumed:
            return
        near = did_you_mean(queue, declared)
        log.warning(
            "queue %r is not one app %r declares or routes to (%s), and no live worker "
            "consumes it. %sJobs sent there wait until a worker does (%s worker -Q %s). "
            "Said once per queue in this process.",
            queue, app.name, ", ".join(declared), near[:1].upper() + near[1:], app.command, queue,
        )  # fmt: skip
