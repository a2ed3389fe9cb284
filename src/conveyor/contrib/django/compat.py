"""Django's task API from where it lives: ``django.tasks`` (Django 6) or the ``django-tasks``
backport (``django_tasks``, Django 4.2 and 5.2). Everything else imports it from here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # typed against the backport (Django's own modules have no types)
    from django_tasks import task_backends
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import Task, TaskContext, TaskError, TaskResult, TaskResultStatus
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.exceptions import TaskResultDoesNotExist
    from django_tasks.signals import task_enqueued, task_finished, task_started

    TASKS_MODULE = "django_tasks"
    #: Any task, whatever its parameters and return type.
    AnyTask = Task[..., Any]
else:
    try:  # Django 6.x
        from django.tasks import task_backends
        from django.tasks.backends.base import BaseTaskBackend
        from django.tasks.base import Task, TaskContext, TaskError, TaskResult, TaskResultStatus
        from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
        from django.tasks.signals import task_enqueued, task_finished, task_started

        TASKS_MODULE = "django.tasks"
    except ImportError:  # the backport, on Django 4.2 and 5.2
        from django_tasks import task_backends
        from django_tasks.backends.base import BaseTaskBackend
        from django_tasks.base import Task, TaskContext, TaskError, TaskResult, TaskResultStatus
        from django_tasks.exceptions import InvalidTaskError as InvalidTask
        from django_tasks.exceptions import TaskResultDoesNotExist
        from django_tasks.signals import task_enqueued, task_finished, task_started

        TASKS_MODULE = "django_tasks"
    AnyTask = Task


def _status(*names: str) -> Any:
    """A status by the first of ``names`` this version has (names moved between versions)."""
    for name in names:
        if hasattr(TaskResultStatus, name):
            return getattr(TaskResultStatus, name)
    raise ImportError(f"TaskResultStatus has none of {names}")  # pragma: no cover


READY = _status("READY", "NEW")
RUNNING = _status("RUNNING")
SUCCESSFUL = _status("SUCCESSFUL", "SUCCEEDED")
FAILED = _status("FAILED")

__all__ = [
    "FAILED",
    "READY",
    "RUNNING",
    "SUCCESSFUL",
    "TASKS_MODULE",
    "AnyTask",
    "BaseTaskBackend",
    "InvalidTask",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]
