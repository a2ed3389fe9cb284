"""``app.control`` and ``app.control.inspect()`` in Celery's shapes, answered from
Conveyor's records and worker registry through the control functions every surface
calls (``conveyor.control``), not by broadcasting to workers.

Replies are ``{worker name: ...}`` for the live workers (heartbeats on time), as Celery
gives one reply per worker; None when no worker is alive, as Celery's when none replies.
"""

from __future__ import annotations

import signal as signals
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from ..control import cancel_job, pause_queue, purge_queue, resume_queue
from ..control.queues import known_queues, live_workers
from ..errors import ConveyorError, JobNotFound
from ..records import JobQuery, JobRecord, Revocation, WorkerInfo
from ..serialization import decode_payload
from ..states import State
from ..workflows.handle import is_workflow, load_workflow
from .exceptions import NotSupported

if TYPE_CHECKING:
    from ..app import App

#: Signals a revoke with terminate may name: both mean "stop it now", which is what
#: Conveyor's worker does (a process-pool child is killed, a thread is interrupted).
STOP_SIGNALS = {None, "SIGTERM", "TERM", "SIGKILL", "KILL", signals.SIGTERM, signals.SIGKILL}
UNSUPPORTED_CONTROL: dict[str, tuple[str, str]] = {
    "shutdown": ("workers stop on SIGTERM", "signal the worker process (or its service manager)"),
    "pool_grow": ("a worker's concurrency is fixed when it starts", "restart it with -c N"),
    "pool_shrink": ("a worker's concurrency is fixed when it starts", "restart it with -c N"),
    "autoscale": ("a worker's concurrency is fixed when it starts", "restart it with -c N"),
    "rate_limit": ("Conveyor has no rate limits yet", "use a queue with a worker of -c N"),
    "time_limit": ("time limits are the task's", "set time_limit on the task and redeploy"),
    "enable_events": ("events are always stored", "read them with app.backend.events()"),
    "disable_events": ("events are always stored", "drop the call"),
    "broadcast": ("there is no broadcast channel", "use conveyor.control's functions"),
}


def _task(record: JobRecord, worker: str) -> dict[str, Any]:
    """A job in the shape of Celery's request dict."""
    try:
        args, kwargs = decode_payload(record.payload)
    except ValueError:
        args, kwargs = [], {}
    return {
        "id": record.id, "name": record.task, "type": record.task, "args": list(args),
        "kwargs": dict(kwargs), "hostname": worker, "time_start": record.started_at,
        "acknowledged": True, "worker_pid": None,
        "delivery_info": {"exchange": "", "routing_key": record.queue, "priority": record.priority,
                          "redelivered": record.attempt > 1},
    }  # fmt: skip


class Inspect:
    """``app.control.inspect(destination=None)``: who runs what."""

    def __init__(self, app: App, destination: list[str] | str | None = None) -> None:
        self.app = app
        self.destination = [destination] if isinstance(destination, str) else destination

    def _workers(self) -> list[WorkerInfo]:
        live = live_workers(self.app)
        return sorted((w for w in live if not self.destination or w.name in self.destination),
                      key=lambda w: w.name)  # fmt: skip

    def _reply(self, answer: Callable[[WorkerInfo], Any]) -> dict[str, Any] | None:
        return {w.name: answer(w) for w in self._workers()} or None

    def active(self) -> dict[str, list[dict[str, Any]]] | None:
        """The jobs each worker holds (running, or prefetched under its lease)."""
        workers = self._workers()
        found = self.app.backend.get_many([i for w in workers for i in w.running])
        return {w.name: [_task(found[i], w.name) for i in w.running if i in found
                         and found[i].state is State.STARTED] for w in workers} or None  # fmt: skip

    def reserved(self) -> dict[str, list[dict[str, Any]]] | None:
        """Empty lists: a job a worker prefetched is leased to it, so ``active`` lists it."""
        return self._reply(lambda w: [])

    def scheduled(self) -> dict[str, list[dict[str, Any]]] | None:
        """Jobs waiting for an eta or a retry delay, each under the first live worker (by
        name) consuming its queue: in Conveyor they wait in the store, not in a worker."""
        workers = self._workers()
        if not workers:
            return None
        replies: dict[str, list[dict[str, Any]]] = {w.name: [] for w in workers}
        jobs = self.app.backend.list_jobs(
            JobQuery(states=[State.SCHEDULED, State.RETRY], limit=500)
        )
        for record in jobs:
            owner = next((w.name for w in workers if record.queue in w.queues), None)
            if owner is not None:
                eta = datetime.fromtimestamp(record.run_at, UTC).isoformat()
                replies[owner].append({"eta": eta, "priority": record.priority,
                                       "request": _task(record, owner)})  # fmt: skip
        return replies

    def registered(self) -> dict[str, list[str]] | None:
        return self._reply(lambda w: sorted(w.tasks))

    registered_tasks = registered

    def active_queues(self) -> dict[str, list[dict[str, Any]]] | None:
        return self._reply(lambda w: [
            {"name": q, "routing_key": q, "exchange": {"name": q, "type": "direct"},
             "durable": True, "exclusive": False, "auto_delete": False, "no_ack": False}
            for q in w.queues
        ])  # fmt: skip

    def stats(self) -> dict[str, dict[str, Any]] | None:
        now = self.app.backend.now()
        scheme = self.app.conf.backend_url.split("://", 1)[0]
        return self._reply(lambda w: {
            "pid": w.pid, "hostname": w.host, "uptime": round(now - w.started_at),
            "pool": {"implementation": w.pool, "max-concurrency": w.concurrency},
            "broker": {"transport": scheme}, "clock": str(round(w.last_seen)),
            "prefetch_count": None, "total": {},
        })  # fmt: skip

    def ping(self) -> dict[str, dict[str, str]] | None:
        return self._reply(lambda w: {"ok": "pong"})

    def revoked(self) -> NoReturn:
        raise NotSupported("inspect().revoked()", "a revoke is stored on the job itself",
                           "list REVOKED jobs with conveyor.control.list_jobs(states=['REVOKED'])")  # fmt: skip


class Control:
    """``app.control``: revoke, purge, consumers and inspect."""

    def __init__(self, app: App) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:
        if name in UNSUPPORTED_CONTROL:
            raise NotSupported(f"app.control.{name}", *UNSUPPORTED_CONTROL[name])
        raise AttributeError(name)

    def inspect(self, destination: list[str] | str | None = None, timeout: float = 1.0) -> Inspect:
        """``timeout`` is accepted for Celery's sake: the answer comes from the store at once."""
        return Inspect(self.app, destination)

    def revoke(self, task_id: str | list[str], destination: Any = None, terminate: bool = False,
               signal: Any = None, **options: Any) -> Revocation | list[Revocation]:  # fmt: skip
        """Revoke durably (it survives restarts; a job that never started never will) and
        say what that did: a ``Revocation`` per id (a list for a list of ids)."""
        if destination is not None:
            raise NotSupported("revoke(destination=...)", "a revoke is stored on the job, "
                               "whichever worker holds it", "drop destination")  # fmt: skip
        if signal not in STOP_SIGNALS:
            raise NotSupported(f"revoke(signal={signal!r})", "Conveyor stops a job one way",
                               "use terminate=True (SIGTERM or SIGKILL are accepted)")  # fmt: skip
        if set(options) - {"reply", "timeout"}:
            raise NotSupported(f"revoke({', '.join(sorted(options))}=...)", "unknown here",
                               "pass terminate= and signal= only")  # fmt: skip
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        done = [self._revoke_one(i, terminate) for i in ids]
        return done[0] if isinstance(task_id, str) else done

    def _revoke_one(self, task_id: str, terminate: bool) -> Revocation:
        try:
            return cancel_job(self.app, task_id, terminate=terminate, reason="revoked")
        except JobNotFound:
            if not is_workflow(self.app, task_id):
                raise
        workflow = load_workflow(self.app, task_id)
        state = workflow.state
        workflow.revoke(terminate=terminate)
        return Revocation(task_id, state, workflow.state, "revoked",
                          f"workflow {task_id}: every step not finished was revoked")  # fmt: skip

    def terminate(self, task_id: str | list[str], signal: Any = "SIGTERM", **options: Any) -> Any:
        return self.revoke(task_id, terminate=True, signal=signal, **options)

    def purge(self) -> int:
        """Revoke every waiting job of every known queue (kept as REVOKED records, not
        deleted as Celery's purge does); running jobs go on. Returns how many."""
        return sum(purge_queue(self.app, q) for q in sorted(known_queues(self.app)))

    def _consumers(self, queue: str, verb: str, destination: Any, options: dict[str, Any]) -> None:
        if destination is not None:
            raise NotSupported(f"{verb}(destination=...)", "a worker consumes the queues it "
                               "started with", f"restart that worker with -Q including {queue}")  # fmt: skip
        extra = {k for k, v in options.items() if v is not None and k not in ("reply", "timeout")}
        if extra:
            raise NotSupported(f"{verb}({', '.join(sorted(extra))}=...)", "Conveyor routes by "
                               "queue name (no exchanges)", "pass the queue only")  # fmt: skip

    def add_consumer(self, queue: str, exchange: Any = None, exchange_type: Any = None,
                     routing_key: Any = None, options: Any = None, destination: Any = None,
                     **more: Any) -> list[dict[str, Any]]:  # fmt: skip
        """Have the queue consumed again: resume it (``cancel_consumer`` pauses it). A
        queue no live worker was started on cannot be added: start one with ``-Q``."""
        self._consumers(queue, "add_consumer", destination,
                        {"exchange": exchange, "exchange_type": exchange_type,
                         "routing_key": routing_key, "options": options, **more})  # fmt: skip
        consumers = [w for w in Inspect(self.app)._workers() if queue in w.queues]
        if not consumers:
            raise ConveyorError(
                f"no live worker consumes queue {queue!r}; a Conveyor worker consumes the queues "
                f"it starts with: start one with `conveyor worker -Q {queue}`"
            )
        resume_queue(self.app, queue)
        return [{w.name: {"ok": f"add consumer {queue}"}} for w in consumers]

    def cancel_consumer(self, queue: str, destination: Any = None,
                        **more: Any) -> list[dict[str, Any]]:  # fmt: skip
        """Stop every worker taking jobs from ``queue``: pause it (stored, so it holds
        across restarts until ``add_consumer``); running jobs go on."""
        self._consumers(queue, "cancel_consumer", destination, more)
        pause_queue(self.app, queue)
        consumers = [w for w in Inspect(self.app)._workers() if queue in w.queues]
        return [{w.name: {"ok": f"no longer consuming from {queue}"}} for w in consumers]

    def ping(
        self, destination: list[str] | str | None = None, timeout: float = 1.0
    ) -> list[dict[str, dict[str, str]]]:
        return [
            {name: reply} for name, reply in (Inspect(self.app, destination).ping() or {}).items()
        ]
