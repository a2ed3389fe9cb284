"""The worker's side of a Django task: the Conveyor task that runs it (building its
``TaskContext``, sending ``task_started``) and ``task_finished`` once an outcome is stored.

Both signals carry a ``TaskResult`` read from the backend (one read per signal), so it
holds what Django defines: status, attempts, worker ids, errors, return value.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from conveyor import App
from conveyor.context import TaskContext as ConveyorContext
from conveyor.events import JobEvent, JobFailed, JobRevoked, JobSucceeded

from .compat import AnyTask, Task, TaskContext, task_backends, task_finished, task_started
from .results import HEADER, to_result

if TYPE_CHECKING:
    from conveyor.records import JobRecord

log = logging.getLogger("conveyor.django")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConveyorTaskContext(TaskContext):
    """What a ``takes_context=True`` Django task is given: Django's ``TaskContext``
    (``task_result``, ``attempt``) with Conveyor's side of the running job: progress that
    the admin, the dashboard and the REST API show while it runs, and its revocation."""

    conveyor: ConveyorContext

    def update_progress(
        self, percent: float | None = None, message: str | None = None, **meta: Any
    ) -> None:
        """Store progress on the job's record (``conveyor.context.TaskContext``)."""
        self.conveyor.update_progress(percent, message, **meta)

    def is_revoked(self) -> bool:
        """Whether the job was cancelled while it runs: a long task checks it and stops."""
        return self.conveyor.is_revoked()


def register(app: App, task: AnyTask) -> None:
    """Register ``task`` (a Django task) on ``app`` under its import path, once."""
    name = task.module_path
    if name in app.tasks:
        return
    options = task.conveyor_options() if hasattr(task, "conveyor_options") else {}
    # App's own ``task``, whatever the app's class: a conveyor.celery app's ``task`` takes
    # Celery's options and gives ``bind=True`` functions Celery's ``self``.
    App.task(app, name=name, bind=True, **options)(_runner(task))


def _runner(task: AnyTask) -> Callable[..., Any]:
    """The function the worker calls: ``(conveyor context, *args, **kwargs)``; its
    signature is the task's own (the context in place of Django's ``context``), so
    enqueue checks arguments as calling the function would."""
    func, takes_context, path = task.func, task.takes_context, task.module_path
    if inspect.iscoroutinefunction(func):

        async def arun(ctx: ConveyorContext, *args: Any, **kwargs: Any) -> Any:
            result = await asyncio.to_thread(_started, ctx, path)
            await task_started.asend(sender=_sender(result.backend), task_result=result)
            if takes_context:
                return await func(
                    ConveyorTaskContext(task_result=result, conveyor=ctx), *args, **kwargs
                )
            return await func(*args, **kwargs)

        runner: Callable[..., Any] = arun
    else:

        def run(ctx: ConveyorContext, *args: Any, **kwargs: Any) -> Any:
            result = _started(ctx, path)
            task_started.send(sender=_sender(result.backend), task_result=result)
            if takes_context:
                return func(ConveyorTaskContext(task_result=result, conveyor=ctx), *args, **kwargs)
            return func(*args, **kwargs)

        runner = run
    functools.update_wrapper(runner, func)
    params = list(inspect.signature(func).parameters.values())
    if not takes_context:  # the bound context takes the place of Django's ``context``
        params.insert(0, inspect.Parameter("context", inspect.Parameter.POSITIONAL_ONLY))
    runner.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return runner


def _sender(alias: str) -> type:
    return type(task_backends[alias])


def django_task(record: JobRecord) -> tuple[AnyTask, str]:
    """The Django task of a job, as it was enqueued (priority, queue), and its backend."""
    meta = record.headers.get(HEADER) or {}
    alias = str(meta.get("backend", "default"))
    task: AnyTask = import_string(record.task)
    if not isinstance(task, Task):
        raise ImportError(f"{record.task} is not a Django task")
    changes: dict[str, Any] = {}
    if meta.get("priority") is not None and meta["priority"] != task.priority:
        changes["priority"] = meta["priority"]
    if meta.get("queue_name") and meta["queue_name"] != task.queue_name:
        changes["queue_name"] = meta["queue_name"]
    if alias != task.backend:
        changes["backend"] = alias
    return (task.using(**changes) if changes else task), alias


def _started(ctx: ConveyorContext, path: str) -> Any:
    record = ctx.app.backend.get(ctx.request.id)
    task, alias = django_task(record)
    return to_result(record, task, alias)


def watch_outcomes(app: App) -> None:
    """Send ``task_finished`` for every Django job whose outcome is stored, in the
    process that stored it (see ``conveyor.events``)."""

    def finished(event: JobEvent) -> None:
        if event.task not in app.tasks:
            return
        record = app.backend.get(event.job_id)
        if HEADER not in record.headers:
            return
        task, alias = django_task(record)
        task_finished.send(sender=_sender(alias), task_result=to_result(record, task, alias))

    app.events.subscribe(finished, JobSucceeded, JobFailed, JobRevoked)
