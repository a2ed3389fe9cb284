"""``ConveyorBackend``: Conveyor as a backend of Django's task API (``django.tasks`` in
Django 6, the ``django-tasks`` backport before)::

    TASKS = {"default": {"BACKEND": "conveyor.contrib.django.ConveyorBackend",
                         "QUEUES": ["default", "hikvision"]}}

Everything the API can flag is supported: ``run_after`` (a job SCHEDULED until then),
``async def`` tasks, results from any process (``get_result``/``aget_result``, read from
Conveyor's records) and priorities (``task.conveyor_priority`` maps Django's -100..100
onto Conveyor's 0..9). Inside ``transaction.atomic()`` on the PostgreSQL database that
also holds the jobs, the enqueue joins the transaction (``transaction.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core import checks
from django.db import transaction
from django.utils import timezone

from conveyor.errors import ConfigurationError, ConveyorError, JobNotFound
from conveyor.names import check_queue_name

from .compat import (
    READY,
    AnyTask,
    BaseTaskBackend,
    InvalidTask,
    TaskResult,
    TaskResultDoesNotExist,
    task_enqueued,
)
from .results import HEADER, to_result
from .runtime import DjangoApp, conveyor_settings, get_app
from .task import DEFAULT_QUEUE_NAME, ConveyorTask, conveyor_priority
from .transaction import join_alias
from .worker import django_task, register


class ConveyorBackend(BaseTaskBackend):
    task_class = ConveyorTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True
    #: Told apart from other backends by ``DjangoApp.declared_queues`` and the checks.
    is_conveyor = True

    @property
    def app(self) -> DjangoApp:
        return get_app()

    def validate_task(self, task: AnyTask) -> None:
        """Django's checks, Conveyor's queue-name rule; then the task is registered on the
        app (Django builds a task at import: a worker that imports it can run it), unless
        the settings refuse to build one."""
        super().validate_task(task)
        if task.queue_name != DEFAULT_QUEUE_NAME:
            try:
                check_queue_name(task.queue_name, "queue_name")
            except ConveyorError as exc:
                raise InvalidTask(str(exc)) from None
        try:
            app = self.app
        except ConfigurationError:
            # Settings Conveyor refuses: the system checks say why (conveyor.E001), in
            # place of a traceback out of the import of every tasks.py.
            return
        register(app, task)

    def call_options(self, task: AnyTask) -> dict[str, Any]:
        """What Conveyor's enqueue takes for ``task``: its queue (unless Django's default,
        which leaves it to ``ROUTES``), priority, eta, and what ``get_result`` needs back."""
        options: dict[str, Any] = {
            "priority": conveyor_priority(task.priority),
            "headers": {HEADER: {"backend": self.alias, "priority": task.priority,
                                 "queue_name": task.queue_name}},
        }  # fmt: skip
        if task.queue_name != DEFAULT_QUEUE_NAME:
            options["queue"] = task.queue_name
        if task.run_after is not None:
            run_after = task.run_after
            if timezone.is_naive(run_after):
                run_after = timezone.make_aware(run_after)
            options["eta"] = run_after
        return options

    def enqueue(self, task: AnyTask, args: Any, kwargs: Any) -> TaskResult[Any]:
        self.validate_task(task)
        using = join_alias(conveyor_settings().get("DATABASE"))
        connection = self.app.joined_connection()
        job = self.app.send_task(
            task.module_path, list(args), dict(kwargs), connection=connection,
            **self.call_options(task),
        )  # fmt: skip
        now = timezone.now()
        result: TaskResult[Any] = TaskResult(
            task=task, id=job.id, status=READY, enqueued_at=now, started_at=None,
            finished_at=None, last_attempted_at=None, args=list(args), kwargs=dict(kwargs),
            backend=self.alias, errors=[], worker_ids=[],
        )  # fmt: skip
        if connection is not None:  # told once the job exists: when the transaction commits
            transaction.on_commit(
                lambda: task_enqueued.send(type(self), task_result=result), using=using
            )
        else:
            task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult[Any]:
        if not isinstance(result_id, str) or not result_id:
            raise TaskResultDoesNotExist(result_id)
        try:
            record = self.app.backend.get(result_id)
        except (JobNotFound, ConveyorError) as exc:
            raise TaskResultDoesNotExist(result_id) from exc
        if HEADER not in record.headers:
            # a Conveyor job, not enqueued through Django's API: still readable if its task is
            record.headers = {**record.headers, HEADER: {"backend": self.alias}}
        try:
            task, alias = django_task(record)
        except ImportError as exc:
            raise TaskResultDoesNotExist(
                f"{result_id}: its task {record.task!r} is not a Django task here"
            ) from exc
        return to_result(record, task, alias)

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        for queue in sorted(self.queues):
            try:
                check_queue_name(queue, "QUEUES")
            except ConveyorError as exc:
                yield checks.Error(
                    f"TASKS[{self.alias!r}]['QUEUES']: {exc}", id="conveyor.E005",
                    hint="Use letters, digits, '.', '-', '_' and ':' in queue names.",
                )  # fmt: skip
        if "conveyor.contrib.django" not in settings.INSTALLED_APPS:
            yield checks.Error(
                f"TASKS[{self.alias!r}] uses ConveyorBackend but 'conveyor.contrib.django' "
                "is not in INSTALLED_APPS",
                hint="Add 'conveyor.contrib.django' to INSTALLED_APPS: it finds your tasks.py "
                "modules and runs Conveyor's checks.",
                id="conveyor.E006",
            )


__all__ = ["ConveyorBackend"]
