"""``App``: the task registry, configuration, routing and enqueue, bound to one backend."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar, overload

from .aio import AsyncApp
from .backends import Backend, from_url
from .config import Settings
from .errors import EnqueueError, JobNotFound, UnknownTask, in_batch
from .events import EventBus, JobEnqueued
from .job import Job
from .names import check_queue_name, did_you_mean, listed
from .options import Call, CallPlan, check_headers, check_runnable, new_record, plan_call
from .records import JobRecord, Revocation
from .revocation import revoke
from .routing import check_routes, route_for
from .schedules import Schedule, ScheduleBook, ScheduleError, check_schedule
from .stray_queues import StrayQueues
from .task import Signature, Task, task_options
from .workflows.handle import Workflow, is_workflow, load_workflow

F = TypeVar("F", bound=Callable[..., Any])
#: Task names whose plain plans an app keeps (App._plain_plan).
MAX_PLANS = 1024


class App:
    """One per project; producers, workers and the API build it from the same module.

    ``backend`` is a URL (default: ``$CONVEYOR_BACKEND`` or ``sqlite:///./conveyor.db``) or a
    ``Backend``. Nothing connects until the backend is first used.
    """

    def __init__(self, name: str, backend: str | Backend | None = None, **settings: Any) -> None:
        self.name = name
        self.conf = Settings()
        self.conf.update(**settings)
        check_queue_name(self.conf.default_queue, "default_queue")
        check_routes(self.conf.task_routes)
        self._backend: Backend | None = None
        if isinstance(backend, Backend):
            self._backend = backend
            self.conf.backend_url = backend.url
        elif backend is not None:
            self.conf.backend_url = backend
        self.tasks: dict[str, Task[Any, Any]] = {}
        #: The checked plans of calls without options of their own, per task (_plain_plan).
        self._plans: dict[str, tuple[Task[Any, Any] | None, tuple[Any, ...], Any, CallPlan]] = {}
        self._periodic: dict[str, Schedule] = {}
        #: The import path ("package.module:app") worker children use to load this app.
        self.main: str | None = None
        self._backend_lock = threading.Lock()
        #: Subscribers and middleware: see ``conveyor.events``.
        self.events = EventBus()
        self._aio: AsyncApp | None = None
        #: The queues calls named by themselves, each checked once (stray_queues.py).
        self._strays = StrayQueues()

    def __repr__(self) -> str:
        return f"<App {self.name} backend={self.conf.backend_url}>"

    @property
    def command(self) -> str:
        """How a person runs this app's CLI, as advice in messages spells it."""
        return f"conveyor -A {self.main or '<app>'}"

    @property
    def aio(self) -> AsyncApp:
        """Async calls for code on an event loop (ASGI): see ``conveyor.aio``."""
        if self._aio is None:
            with self._backend_lock:
                if self._aio is None:
                    self._aio = AsyncApp(self, self.conf.aio_threads)
        return self._aio

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            with self._backend_lock:
                if self._backend is None:
                    self._backend = from_url(
                        self.conf.backend_url,
                        result_ttl=self.conf.result_ttl,
                        max_lost_leases=self.conf.max_lost_leases,
                    )
        return self._backend

    def use_backend(self, backend: Backend | None) -> Backend | None:
        """Bind the app to ``backend`` (None: build one from ``conf.backend_url`` on next
        use); returns the backend it had, if it had built one. For tests and worker children."""
        with self._backend_lock:
            previous, self._backend = self._backend, backend
            if backend is not None:
                self.conf.backend_url = backend.url
        return previous

    # -- registering tasks -------------------------------------------------------------

    @overload
    def task(self, fn: F, /) -> Task[Any, Any]: ...
    @overload
    def task(
        self, fn: None = None, /, *, name: str | None = None, **options: Any
    ) -> Callable[[F], Task[Any, Any]]: ...

    def task(
        self, fn: Callable[..., Any] | None = None, /, *, name: str | None = None, **options: Any
    ) -> Any:
        """Register a function (sync or ``async def``) as a task; see ``TaskOptions``."""

        def register(func: Callable[..., Any]) -> Task[Any, Any]:
            task_name = name or f"{func.__module__}.{func.__qualname__}"
            task: Task[Any, Any] = Task(self, func, task_name, task_options(task_name, options))
            self.tasks[task_name] = task
            return task

        return register(fn) if fn is not None else register

    def periodic(
        self,
        *,
        cron: str | None = None,
        every: float | timedelta | None = None,
        tz: str = "UTC",
        name: str | None = None,
        schedule_name: str | None = None,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        misfire: str = "once",
        **task_options: Any,
    ) -> Callable[[F], Task[Any, Any]]:
        """Register a task and a schedule that enqueues it (``cron`` in ``tz``, or ``every``).

        ``name`` names the task, as in ``@app.task`` (by default its module and function);
        the schedule is named after the task unless ``schedule_name`` is given. Other
        options are the task's (queue, priority, max_retries, ...).
        """

        def register(func: Callable[..., Any]) -> Task[Any, Any]:
            task: Task[Any, Any] = self.task(name=name, **task_options)(func)
            seconds = every.total_seconds() if isinstance(every, timedelta) else every
            schedule = Schedule(schedule_name or task.name, task.name, cron=cron, every=seconds, tz=tz,
                                args=list(args), kwargs=kwargs or {}, misfire=misfire, source="code")  # fmt: skip
            check_schedule(self, schedule)
            taken = self._periodic.get(schedule.name)
            if taken is not None and taken.task != task.name:
                raise ScheduleError(
                    f"schedule {schedule.name!r} is declared twice (tasks {taken.task} and "
                    f"{task.name}): give one a schedule_name= of its own"
                )
            self._periodic[schedule.name] = schedule
            return task

        return register

    def declared_schedules(self) -> dict[str, Schedule]:
        """Schedules declared in code: ``@app.periodic`` and ``app.conf.schedule`` (each
        checked as ``app.schedules.add`` checks: a task this app registers, arguments that
        fit it)."""
        found = dict(self._periodic)
        for schedule_name, entry in self.conf.schedule.items():
            entry = dict(entry)
            if "task" not in entry:
                raise ScheduleError(f"app.conf.schedule[{schedule_name!r}] needs a 'task'")
            options: dict[str, Any] = {
                k: entry.pop(k) for k in ("queue", "priority", "expires") if k in entry
            }
            schedule = Schedule(
                schedule_name, entry.pop("task"), options=options, source="code", **entry
            )
            check_schedule(self, schedule)
            found[schedule_name] = schedule
        return found

    @property
    def schedules(self) -> ScheduleBook:
        """Schedules stored in the backend: list, add, update, pause, resume, delete."""
        return ScheduleBook(self)

    def declared_queues(self) -> list[str]:
        """Every queue the app's tasks and routes name, plus the default queue."""
        queues = {self.conf.default_queue}
        queues.update(t.options.queue for t in self.tasks.values() if t.options.queue)
        for target in self.conf.task_routes.values():
            queues.add(target if isinstance(target, str) else str(target.get("queue")))
        return sorted(queues)

    def get_task(self, name: str) -> Task[Any, Any]:
        try:
            return self.tasks[name]
        except KeyError:
            raise UnknownTask(
                f"no task named {name!r} is registered on app {self.name!r}; "
                f"{did_you_mean(name, self.tasks)}known: {listed(self.tasks)}"
            ) from None

    # -- enqueue -------------------------------------------------------------------------

    def send_task(
        self,
        name: str,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        connection: Any = None,
        **options: Any,
    ) -> Job:
        """Queue a job by task name (the task need not be importable here).

        ``connection``: enqueue inside the caller's open database transaction (PostgreSQL),
        so the job exists if and only if that transaction commits.
        """
        record = self.build_record(
            Signature(name, tuple(args), kwargs or {}, options), self.backend.now()
        )
        self._store([record], connection)
        return Job(self, record.id)

    def enqueue_many(self, signatures: Iterable[Signature], *, connection: Any = None) -> list[Job]:
        """Queue many jobs in one backend round trip. All are checked before any is stored;
        a refused one is named by its index and task (``errors.in_batch``)."""
        now = self.backend.now()
        records: list[JobRecord] = []
        for index, sig in enumerate(signatures):
            try:
                records.append(self.build_record(sig, now))
            except EnqueueError as exc:
                raise in_batch(exc, index, sig.task) from exc
        self._store(records, connection)
        return [Job(self, r.id) for r in records]

    def joined_connection(self) -> Any:
        """The connection of the caller's open database transaction that jobs stored now
        are written in, so they exist if and only if it commits; None (a plain app): at
        once. An integration's app says otherwise: a Django project's joins
        ``transaction.atomic()`` when the jobs live in its PostgreSQL database."""
        return None

    def _store(self, records: list[JobRecord], connection: Any) -> None:
        """Enqueue through the middleware, then tell subscribers (``JobEnqueued``; with a
        ``connection``, when the insert is made, before the caller's transaction commits).
        Without one, in the transaction ``joined_connection`` names, if any."""
        if connection is None:
            connection = self.joined_connection()
        events = self.events
        if events.has_middleware:
            inserted = events.enqueue(
                records, lambda rs: self.backend.enqueue(rs, connection=connection)
            )
        else:
            inserted = self.backend.enqueue(records, connection=connection)
        if events.wants(JobEnqueued):  # an id that existed (a schedule's tick) was not enqueued
            events.emit_all([JobEnqueued(r.created_at, r.id, r.task, r.queue, r.priority, r.run_at)
                             for r, new in zip(records, inserted, strict=True) if new])  # fmt: skip

    def workflow(self, workflow_id: str) -> Workflow:
        """A handle on a stored workflow; raises ``JobNotFound`` for an unknown id."""
        return load_workflow(self, workflow_id)

    def revoke(
        self, job_id: str, *, terminate: bool = False, reason: str = "cancelled by an operator"
    ) -> Revocation:
        """Cancel a job durably and say what that did (see ``Revocation``): a waiting job
        never runs (and a workflow step's downstream steps are stored as never run), a
        running one is stopped by its worker with ``terminate``, a finished one keeps its
        outcome (the record notes the late revoke)."""
        return revoke(self, job_id, terminate=terminate, reason=reason)

    def job(self, job_id: str) -> Job:
        """A handle on an existing job; raises ``JobNotFound`` if no job has that id."""
        self.record(job_id)
        return Job(self, job_id)

    def record(self, job_id: str) -> JobRecord:
        """The stored record of an existing job, in one backend read; raises
        ``JobNotFound`` if no job has that id (pointing a workflow's id to its handle)."""
        found = self.backend.get_many([job_id]).get(job_id)
        if found is None:
            raise self.not_found(job_id)
        return found

    def not_found(self, job_id: str) -> JobNotFound:
        """The error for an id no job has (``record``'s, and ``aio.record``'s)."""
        if is_workflow(self, job_id):  # a second lookup, only on the way to an error
            return JobNotFound(
                f"{job_id!r} is a workflow's id, not a job's; use app.workflow({job_id!r})"
            )
        if self.joined_connection() is not None:  # a job stored in it is not there yet
            return JobNotFound(
                f"no job has the id {job_id!r} yet: this code runs inside a database "
                "transaction that jobs stored now join, so they exist from its commit on; "
                "read or wait for the job after the transaction (or check the id)"
            )
        return JobNotFound(
            f"no job has the id {job_id!r}; check the id, or it may have been pruned"
        )

    def build_record(
        self, sig: Call | Signature, now: float, *, edge: bool = True, stand_in: bool = False
    ) -> JobRecord:
        """A new job for ``sig``, made at ``now``. ``edge``: a caller's call, refused when
        its arguments do not fit the task's parameters (a task not registered here cannot
        be checked) or when it would expire before it could run. Workflows check every
        step once, at launch; the steps a worker enqueues later skip both (a step whose
        expires instant passed meanwhile is stored, and ends expired, visibly). ``stand_in``:
        the first argument stands in for a parent step's result, so its kind is not checked."""
        if sig.options:
            plan, shift = self._plan(sig.task, sig.options, now), 0.0
        else:
            plan, shift = self._plain_plan(sig.task, now)
        record = new_record(plan, sig.args, sig.kwargs, self.conf, shift)
        if edge:
            task = self.tasks.get(sig.task)
            given = sig.options.get("expires", task and task.options.expires)  # to show
            check_runnable(sig.task, record.run_at, record.expires_at, now, given)
            if task is not None:
                task.check_args(sig.args, sig.kwargs, skip=1 if stand_in else 0)
            if "queue" in sig.options:  # a route's or a task's own queue is declared
                self._strays.check(self, record.queue)
        return record

    def _plain_plan(self, task_name: str, now: float) -> tuple[CallPlan, float]:
        """The plan of a call without options of its own (``delay()``, most of a batch's
        signatures) and the seconds to shift its times by. Its options are checked once
        per task: the plan is made at instant 0 and kept while what it was made from (the
        task registered under that name, the default queue and retries, the routes)
        compares equal, so a changed setting or route takes effect at the next call.
        Options naming an absolute time (an eta or expiry instant in a route) do not
        shift: such a plan is made at ``now`` each time."""
        task, conf = self.tasks.get(task_name), self.conf
        defaults = (conf.default_queue, conf.default_max_retries)
        kept = self._plans.get(task_name)
        if (
            kept is not None
            and kept[0] is task
            and kept[1] == defaults
            and kept[2] == conf.task_routes
        ):
            return kept[3], now
        merged = self._merged(task_name, {})
        if merged.get("eta") is not None or isinstance(merged.get("expires"), datetime | str):
            return self._plan(task_name, {}, now), 0.0
        plan = self._plan(task_name, {}, 0.0)
        if len(self._plans) >= MAX_PLANS:  # names sent by send_task alone are unbounded
            self._plans.clear()
        self._plans[task_name] = (task, defaults, copy.deepcopy(conf.task_routes), plan)
        return plan, now

    def queue_for(self, task_name: str, options: Mapping[str, Any]) -> str:
        """The queue a call of ``task_name`` with ``options`` goes to (as enqueued)."""
        queue = self._merged(task_name, options).get("queue")
        return self.conf.default_queue if queue is None else str(queue)

    def _plan(self, task_name: str, options: Mapping[str, Any], now: float) -> CallPlan:
        merged = self._merged(task_name, options)
        if "headers" in options:  # the caller's: Conveyor's own keys are refused
            merged["headers"] = check_headers(options["headers"])
        task = self.tasks.get(task_name)
        if task is not None and not task.options.acks_late:
            merged["headers"] = {**(merged.get("headers") or {}), "acks_late": False}
        return plan_call(
            task_name, {k: v for k, v in merged.items() if v is not None}, self.conf, now
        )

    def _merged(self, task_name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """Merge options: per-call beats app routes, routes beat the task's own defaults."""
        merged: dict[str, Any] = {}
        task = self.tasks.get(task_name)
        if task is not None:
            opts = task.options
            merged.update(
                queue=opts.queue,
                priority=opts.priority,
                max_retries=opts.max_retries,
                expires=opts.expires,
            )
        merged.update(route_for(task_name, self.conf.task_routes))
        merged.update(options)
        return merged
