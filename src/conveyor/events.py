"""Lifecycle events, and the hooks that see them: ``app.events``.

Every transition of a job, a worker or a queue is one typed event, emitted once, by the
process that made the transition:

=================  ===========================================  ==========================
event              when                                         emitted in
=================  ===========================================  ==========================
``JobEnqueued``    a job is stored (PENDING or SCHEDULED)       the producer
``JobStarted``     a worker starts an attempt                   the process running it
``JobProgressed``  the task reports progress                    the process running it
``JobSucceeded``   an attempt returned, its outcome stored      the process that stored it
``JobFailed``      an attempt failed for good, stored           the process that stored it
``JobRetried``     an attempt failed and will run again         the process that stored it
``JobRevoked``     a job ended REVOKED                          whoever revoked or ran it
``JobLost``        a delivery was lost with its worker/child    the worker that saw it
``WorkerUp/Down``  a worker registered / left                   the worker
``QueuePaused``    a queue was paused / resumed                 the caller of the control
``QueueResumed``                                                function (CLI, API, code)
=================  ===========================================  ==========================

"The process running it" is a pool child for the process pool, which also stores its
outcomes (the worker stores those of a child it killed): subscribe at import time of the
app's module (as tasks are registered), so children have the same subscribers. Who emits
what, exactly: docs/architecture.md.

Subscribers (``app.events.subscribe(callback, JobFailed, ...)``) are for metrics,
tracing and error reporting: they run synchronously, so keep them quick; an exception
in one is logged and never changes the job. Middleware (``app.events.use(m)``) wraps
enqueue and execution, e.g. to add a trace header at enqueue and open a span around the
task. The backend keeps a durable feed of job state changes for live views
(``Backend.events``), readable from any process; these hooks are the in-process side.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from .context import TaskContext
    from .records import JobRecord

log = logging.getLogger("conveyor.events")


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event; ``kind`` names it as the durable feed and the API do."""

    kind: ClassVar[str] = "event"
    #: When it happened, in the backend's clock (seconds since the epoch).
    at: float


@dataclass(frozen=True, slots=True)
class JobEvent(Event):
    job_id: str
    task: str
    queue: str


@dataclass(frozen=True, slots=True)
class JobEnqueued(JobEvent):
    kind: ClassVar[str] = "job.enqueued"
    priority: int = 0
    #: When it may run; later than ``at`` for a countdown or eta.
    run_at: float = 0.0


@dataclass(frozen=True, slots=True)
class JobStarted(JobEvent):
    kind: ClassVar[str] = "job.started"
    attempt: int = 1
    #: Seconds the job waited since it was due.
    waited: float = 0.0


@dataclass(frozen=True, slots=True)
class JobProgressed(JobEvent):
    kind: ClassVar[str] = "job.progressed"
    percent: float | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class JobSucceeded(JobEvent):
    kind: ClassVar[str] = "job.succeeded"
    attempt: int = 1
    runtime: float = 0.0


@dataclass(frozen=True, slots=True)
class JobFailed(JobEvent):
    kind: ClassVar[str] = "job.failed"
    attempt: int = 1
    runtime: float = 0.0
    error_type: str = ""
    error_message: str = ""


@dataclass(frozen=True, slots=True)
class JobRetried(JobEvent):
    kind: ClassVar[str] = "job.retried"
    attempt: int = 1
    runtime: float = 0.0
    retry_at: float = 0.0
    error_type: str = ""
    error_message: str = ""


@dataclass(frozen=True, slots=True)
class JobRevoked(JobEvent):
    kind: ClassVar[str] = "job.revoked"
    reason: str = ""
    #: True when it was stopped while running, False when it never started.
    was_running: bool = False


@dataclass(frozen=True, slots=True)
class JobLost(JobEvent):
    kind: ClassVar[str] = "job.lost"
    reason: str = ""
    #: True when the job was given up on (too many lost deliveries), else it runs again.
    failed: bool = False


@dataclass(frozen=True, slots=True)
class WorkerEvent(Event):
    worker_id: str
    name: str
    queues: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkerUp(WorkerEvent):
    kind: ClassVar[str] = "worker.up"


@dataclass(frozen=True, slots=True)
class WorkerDown(WorkerEvent):
    kind: ClassVar[str] = "worker.down"


@dataclass(frozen=True, slots=True)
class QueueEvent(Event):
    queue: str


@dataclass(frozen=True, slots=True)
class QueuePaused(QueueEvent):
    kind: ClassVar[str] = "queue.paused"


@dataclass(frozen=True, slots=True)
class QueueResumed(QueueEvent):
    kind: ClassVar[str] = "queue.resumed"


#: Every concrete event type, for documentation, the API's schema and tests.
EVENT_TYPES: tuple[type[Event], ...] = (
    JobEnqueued, JobStarted, JobProgressed, JobSucceeded, JobFailed, JobRetried, JobRevoked,
    JobLost, WorkerUp, WorkerDown, QueuePaused, QueueResumed,
)  # fmt: skip

E = TypeVar("E", bound=Event)
Subscriber = Callable[[Any], None]
#: Stores records; returns, per record, whether it was inserted (``Backend.enqueue``).
Store = Callable[["list[JobRecord]"], list[bool]]


class Middleware:
    """Wraps enqueue and execution; override either method and call ``call_next``.

    ``enqueue`` sees the records about to be stored (in the producer) and may change
    their headers; it returns what ``call_next`` returned (per record, whether it was
    inserted: an existing id is not); ``execute`` runs around one attempt of a synchronous
    task and ``aexecute`` (awaiting ``call_next()``) around one of an ``async def`` task, on
    the loop that runs it, both in the process running the job; each returns what
    ``call_next()`` returned, or raises what it raised.
    """

    def enqueue(self, records: list[JobRecord], call_next: Store) -> list[bool]:
        return call_next(records)

    def execute(self, context: TaskContext, call_next: Callable[[], Any]) -> Any:
        return call_next()

    async def aexecute(self, context: TaskContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        """``execute`` for an ``async def`` task, on the loop that runs it."""
        return await call_next()


@dataclass
class EventBus:
    """An app's subscribers and middleware. Cheap when unused: ``emit`` is a dict lookup."""

    _subscribers: dict[type[Event], list[Subscriber]] = field(default_factory=dict)
    _middleware: list[Middleware] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def subscribe(self, callback: Subscriber, *types: type[Event]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event of ``types`` (all when none is given);
        returns a function that unsubscribes it."""
        wanted = tuple(types) or EVENT_TYPES
        for kind in wanted:
            if not (isinstance(kind, type) and issubclass(kind, Event)):
                raise TypeError(f"subscribe() takes event types, not {kind!r}")
        with self._lock:  # copy on write: emit() reads without the lock
            subscribers = {k: list(v) for k, v in self._subscribers.items()}
            for kind in _concrete(wanted):
                subscribers.setdefault(kind, []).append(callback)
            self._subscribers = subscribers

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = {
                    k: [c for c in v if c is not callback] for k, v in self._subscribers.items()
                }

        return unsubscribe

    def on(self, *types: type[Event]) -> Callable[[Callable[[E], None]], Callable[[E], None]]:
        """Decorator form of ``subscribe``: ``@app.events.on(JobFailed)``."""

        def register(callback: Callable[[E], None]) -> Callable[[E], None]:
            self.subscribe(callback, *types)
            return callback

        return register

    @property
    def has_middleware(self) -> bool:
        return bool(self._middleware)

    def wants(self, kind: type[Event]) -> bool:
        """Whether anyone listens for ``kind``: emitters skip building unwanted events."""
        return kind in self._subscribers and bool(self._subscribers[kind])

    def emit(self, event: Event) -> None:
        for callback in self._subscribers.get(type(event), ()):
            try:
                callback(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", callback, event.kind)

    def emit_all(self, events: Sequence[Event]) -> None:
        for event in events:
            self.emit(event)

    # -- middleware ------------------------------------------------------------------------

    def use(self, middleware: Middleware) -> Middleware:
        """Add middleware; the first added is the outermost."""
        if not isinstance(middleware, Middleware):
            raise TypeError(f"use() takes a conveyor.events.Middleware, not {middleware!r}")
        with self._lock:
            self._middleware = [*self._middleware, middleware]
        return middleware

    def enqueue(self, records: list[JobRecord], store: Store) -> list[bool]:
        """Store ``records`` through every middleware's ``enqueue``."""
        chain = store
        for middleware in reversed(self._middleware):
            chain = _bind_enqueue(middleware, chain)
        return chain(records)

    def execute(self, context: TaskContext, call: Callable[[], Any]) -> Any:
        """Run one attempt through every middleware's ``execute``."""
        chain = call
        for middleware in reversed(self._middleware):
            chain = _bind_execute(middleware, context, chain)
        return chain()

    async def aexecute(self, context: TaskContext, call: Callable[[], Awaitable[Any]]) -> Any:
        """Run one attempt of an ``async def`` task through every middleware's ``aexecute``."""
        chain = call
        for middleware in reversed(self._middleware):
            chain = _bind_aexecute(middleware, context, chain)
        return await chain()


def _bind_enqueue(middleware: Middleware, call_next: Store) -> Store:
    return lambda records: middleware.enqueue(records, call_next)


def _bind_execute(
    middleware: Middleware, context: TaskContext, call_next: Callable[[], Any]
) -> Callable[[], Any]:
    return lambda: middleware.execute(context, call_next)


def _bind_aexecute(
    middleware: Middleware, context: TaskContext, call_next: Callable[[], Awaitable[Any]]
) -> Callable[[], Awaitable[Any]]:
    return lambda: middleware.aexecute(context, call_next)


def _concrete(types: Sequence[type[Event]]) -> list[type[Event]]:
    """The concrete event types ``types`` cover (a base such as JobEvent covers several)."""
    return [t for t in EVENT_TYPES if any(issubclass(t, wanted) for wanted in types)]
