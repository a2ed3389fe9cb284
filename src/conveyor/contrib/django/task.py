"""``ConveyorTask``: Django's ``Task`` with Conveyor's options, and the priority scale.

The ``ConveyorBackend`` makes ``@task`` build these, so Conveyor's options are keyword
arguments of Django's own decorator (Django 6.1 and later, and the django-tasks backport)::

    @task(queue_name="hikvision", max_retries=5, time_limit=30, autoretry_for=(DeviceError,))
    def enroll_face(visit_id): ...

Django 6.0's ``@task`` takes no keyword beyond its own four and refuses them at import;
this module's ``task`` is the same decorator with Conveyor's options on every version.

and ``.s()`` / ``.si()`` make Conveyor signatures for ``chain``, ``group`` and ``chord``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from conveyor import Signature
from conveyor.errors import ConfigurationError
from conveyor.states import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY
from conveyor.task import TaskOptions

from .compat import Task, task_backends

#: Django's priority range, and its default.
DJANGO_MIN, DJANGO_MAX, DJANGO_DEFAULT = -100, 100, 0
#: Django's default queue name: a task that keeps it goes where ``ROUTES`` (or Conveyor's
#: default queue) sends it.
DEFAULT_QUEUE_NAME = "default"


def conveyor_priority(priority: int) -> int:
    """Django's -100..100 on Conveyor's 0..9 (both: higher runs first), linear on each
    side of the defaults so Django's 0 is Conveyor's 5 (docs/django.md has the table):
    -100 -> 0, -50 -> 3, 0 -> 5, 50 -> 7, 100 -> 9. Priorities closer than about 20 may
    share a step, where jobs run in arrival order."""
    if priority >= DJANGO_DEFAULT:
        step = (MAX_PRIORITY - DEFAULT_PRIORITY) / (DJANGO_MAX - DJANGO_DEFAULT)
    else:
        step = (DEFAULT_PRIORITY - MIN_PRIORITY) / (DJANGO_DEFAULT - DJANGO_MIN)
    return DEFAULT_PRIORITY + round((priority - DJANGO_DEFAULT) * step)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConveyorTask(Task):  # type: ignore[type-arg]
    """A Django task with Conveyor's options (see ``conveyor.task.TaskOptions``)."""

    max_retries: int | None = None
    retry_backoff: bool | float = True
    retry_backoff_max: float | None = None
    retry_jitter: bool = True
    autoretry_for: tuple[type[BaseException], ...] = ()
    soft_time_limit: float | None = None
    time_limit: float | None = None
    expires: float | None = None
    acks_late: bool = True

    def conveyor_options(self) -> dict[str, Any]:
        """This task's options as ``app.task`` takes them."""
        return {name: getattr(self, name) for name in OPTION_NAMES}

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A Conveyor signature of this task (for ``chain``, ``group``, ``chord``)."""
        return self._signature(args, kwargs, immutable=False)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: in a chain it does not receive the previous result."""
        return self._signature(args, kwargs, immutable=True)

    def _signature(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], immutable: bool
    ) -> Signature:
        backend: Any = self.get_backend()
        backend.validate_task(self)
        return Signature(self.module_path, args, kwargs, backend.call_options(self),
                         immutable=immutable, app=backend.app)  # fmt: skip


#: The options of ``TaskOptions`` a Django task takes on its decorator (its queue and
#: priority are Django's own ``queue_name`` and ``priority``; ``bind`` is ``takes_context``).
OPTION_NAMES = tuple(
    f.name for f in fields(TaskOptions) if f.name not in ("queue", "priority", "bind")
)


def task(
    function: Callable[..., Any] | None = None,
    *,
    priority: int = DJANGO_DEFAULT,
    queue_name: str = DEFAULT_QUEUE_NAME,
    backend: str = "default",
    takes_context: bool = False,
    **options: Any,
) -> Any:
    """Django's ``@task`` with Conveyor's options (``max_retries``, ``time_limit``, ...),
    on every Django version: ``from conveyor.contrib.django.task import task``. It builds
    the task as Django 6.1's decorator does (the backend's ``task_class``); Django 6.0's
    own refuses any keyword but ``priority``, ``queue_name``, ``backend`` and
    ``takes_context``."""
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise TypeError(
            f"task() got unknown option(s) {', '.join(unknown)}: a Conveyor task takes "
            f"priority, queue_name, backend, takes_context and {', '.join(OPTION_NAMES)}"
        )

    def build(func: Callable[..., Any]) -> Any:
        task_class = task_backends[backend].task_class
        if options and not issubclass(task_class, ConveyorTask):
            raise ConfigurationError(
                f"task options {', '.join(sorted(options))} of {func.__qualname__} need "
                f"Conveyor's backend, and TASKS[{backend!r}] is "
                f"{type(task_backends[backend]).__name__}: set its BACKEND to "
                "'conveyor.contrib.django.ConveyorBackend' (docs/django.md)"
            )
        return task_class(priority=priority, func=func, queue_name=queue_name, backend=backend,
                          takes_context=takes_context, run_after=None, **options)  # fmt: skip

    return build(function) if function is not None else build
