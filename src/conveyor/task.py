"""Tasks: functions registered on an app. ``task.s(...)`` makes a ``Signature`` (defined
with the workflows that compose them, in ``workflows.canvas``)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from .arguments import parameters
from .errors import ConfigurationError
from .names import did_you_mean
from .options import check_task_defaults
from .workflows.canvas import Signature

if TYPE_CHECKING:
    from .app import App
    from .job import Job

__all__ = ["Signature", "Task", "TaskOptions", "check_task_options", "task_options"]

P = ParamSpec("P")
R = TypeVar("R")
#: Call shapes remembered per task (callers passing ever-new keyword names stay bounded).
MAX_SHAPES = 256


@dataclass(frozen=True)
class TaskOptions:
    """How a task runs. Per-call options (queue, priority, countdown, ...) override these."""

    queue: str | None = None
    priority: int | str | None = None
    max_retries: int | None = None
    #: Exponential backoff between retries: True (base 1s), a base in seconds, or False (none).
    retry_backoff: bool | float = True
    retry_backoff_max: float | None = None
    retry_jitter: bool = True
    #: Exceptions that make the worker retry automatically.
    autoretry_for: tuple[type[BaseException], ...] = ()
    soft_time_limit: float | None = None
    time_limit: float | None = None
    #: Seconds after enqueue (or an aware datetime) after which the job is not started.
    expires: float | None = None
    #: True (default): acknowledge after the task finished; False: when it starts.
    acks_late: bool = True
    #: Pass a ``TaskContext`` as the first argument (``self.retry()``, progress, ...).
    bind: bool = False


def task_options(task_name: str, given: dict[str, Any]) -> TaskOptions:
    """``@app.task``'s options, refused at decoration: a name ``TaskOptions`` does not
    have (with the nearest one); ``Task`` refuses the values enqueue would refuse."""
    known = [f.name for f in fields(TaskOptions)]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigurationError(
            f"task {task_name}: unknown option {unknown[0]!r}; "
            f"{did_you_mean(unknown[0], known)}known: {', '.join(known)}"
        )
    return TaskOptions(**given)


def check_task_options(task_name: str, options: TaskOptions) -> None:
    """Refuse a task's options that enqueue would refuse at every call (the same checks),
    and time limits that would stop every run at once (0, negative, not a number)."""
    check_task_defaults(task_name, queue=options.queue, priority=options.priority,
                        max_retries=options.max_retries, expires=options.expires)  # fmt: skip
    for option in ("soft_time_limit", "time_limit"):
        value = getattr(options, option)
        if value is not None and not (
            isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf
        ):
            raise ConfigurationError(
                f"task {task_name}: {option} must be a number of seconds above 0, or None "
                f"(no limit), not {value!r:.40}"
            )


class Task(Generic[P, R]):
    """A function registered on an ``App``. Calling it runs it here; ``delay`` queues it."""

    def __init__(self, app: App, fn: Callable[..., Any], name: str, options: TaskOptions) -> None:
        check_task_options(name, options)
        self.app, self.fn, self.name, self.options = app, fn, name, options
        self.is_async = inspect.iscoroutinefunction(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        #: What a job's arguments must fit, worked out once: enqueue checks every call.
        self.parameters = parameters(fn, name, options.bind)
        #: Call shapes (positional count, keyword names) that fit: whether arguments fit
        #: depends on nothing else, so each shape is bound once (bulk enqueue checks every job).
        self._fits: set[tuple[Any, ...]] = set()

    def check_args(
        self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any], skip: int = 0
    ) -> None:
        """Refuse arguments the worker could not call the function with, or of the wrong
        kind for a parameter annotated with a scalar type (``arguments``), at the call site;
        the kinds of the first ``skip`` positional ones are not checked (stand-ins)."""
        params = self.parameters
        if params is None:
            return
        shape = (len(args), *kwargs)
        if shape not in self._fits:
            params.bind(args, kwargs)
            if len(self._fits) < MAX_SHAPES:
                self._fits.add(shape)
        if params.kinds:
            params.check_kinds(args, kwargs, skip)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = self.fn(*args, **kwargs)
        return result

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Queue a job with these arguments and the task's default options."""
        return self.app.send_task(self.name, args, kwargs)

    def apply_async(
        self,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Job:
        """Queue a job with per-call options: queue, priority, countdown, eta, expires, job_id, headers."""
        return self.app.send_task(self.name, args, kwargs or {}, **options)

    async def adelay(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """``delay`` for code on an event loop: the enqueue runs off the loop (``app.aio``)."""
        return await self.app.aio.send_task(self.name, args, kwargs)

    async def aapply_async(
        self,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Job:
        """``apply_async`` for code on an event loop (``app.aio``)."""
        return await self.app.aio.send_task(self.name, args, kwargs or {}, **options)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature: this task with these arguments, to enqueue later, in bulk, or in a
        workflow (where it receives the previous step's result as its first argument)."""
        return Signature(self.name, args, kwargs, app=self.app)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: in workflows it does not receive a parent's result."""
        return Signature(self.name, args, kwargs, immutable=True, app=self.app)
