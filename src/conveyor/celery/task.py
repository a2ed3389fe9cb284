"""Tasks declared the Celery way: ``@app.task(bind=True, ...)`` and ``@shared_task``.

A Celery task is a Conveyor ``Task`` whose function is a small runner: it gives a
``bind=True`` function a ``BoundTask`` as ``self`` (Celery's ``self.request``,
``self.retry``, ``self.update_state``), applies Celery's retry rules (``default_retry_delay``,
``autoretry_for`` without backoff, ``MaxRetriesExceededError``), ``Reject`` and
``ignore_result``, then lets Conveyor's worker do the rest.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from ..context import TaskContext
from ..errors import ConfigurationError, TaskControl
from ..options import MAX_RETRIES_LIMIT
from ..states import State
from ..task import Task, TaskOptions, check_task_options
from .canvas import CelerySignature
from .exceptions import MaxRetriesExceededError, NotSupported, Reject, Retry
from .result import AsyncResult

if TYPE_CHECKING:
    from .app import Celery

#: Task options Celery code passes that this layer honours.
TASK_OPTIONS = frozenset({
    "bind", "queue", "priority", "max_retries", "default_retry_delay", "autoretry_for",
    "retry_kwargs", "retry_backoff", "retry_backoff_max", "retry_jitter", "soft_time_limit",
    "time_limit", "acks_late", "ignore_result", "expires", "serializer", "track_started", "typing",
    "reject_on_worker_lost", "acks_on_failure_or_timeout",
})  # fmt: skip
#: Task options with no Conveyor meaning, and what to do instead.
UNSUPPORTED_OPTIONS: dict[str, tuple[str, str]] = {
    "rate_limit": (
        "Conveyor has no per-task rate limits yet",
        "give the task its own queue and run its worker with -c N",
    ),
    "base": (
        "tasks are functions; Conveyor has no Task subclasses to hook",
        "subscribe to app.events (JobFailed, JobSucceeded, ...) or add a Middleware",
    ),
    "throws": ("every error is stored with its traceback", "drop the option"),
    "shadow": ("a job is shown under its task's name", "name the task with name="),
}
#: ``self.request.hostname``: looked up once, not per job.
HOSTNAME = socket.gethostname()
#: What ``Celery(...).task`` options are accepted with one value only.
#: (A job whose worker dies is always delivered again, at most max_lost_leases times; a
#: job that fails or times out is acknowledged FAILURE: as the app's settings of the names.)
_ONLY = {"serializer": "json", "track_started": True, "typing": True,
         "reject_on_worker_lost": True, "acks_on_failure_or_timeout": True}  # fmt: skip


class Context:
    """``self.request``: Celery's names for the job being run."""

    def __init__(self, ctx: TaskContext | None, task: CeleryTask) -> None:
        request = ctx.request if ctx is not None else None
        self.called_directly = request is None
        self.is_eager = False
        self.id: str | None = request.id if request else None
        self.task = task.name
        self.args = list(request.args) if request else []
        self.kwargs = dict(request.kwargs) if request else {}
        self.retries = request.retries if request else 0
        self.headers = dict(request.headers) if request else {}
        self.parent_id = request.parent_id if request else None
        self.root_id = request.root_id if request else None
        self.correlation_id = self.id
        self.hostname = HOSTNAME
        self.delivery_info = {"exchange": "", "routing_key": request.queue if request else None,
                              "redelivered": bool(request and request.attempt > 1)}  # fmt: skip
        self.timelimit = (task.options.time_limit, task.options.soft_time_limit)


class BoundTask:
    """``self`` in a ``bind=True`` task: the task, plus the job being run."""

    def __init__(self, task: CeleryTask, ctx: TaskContext | None) -> None:
        self._task, self._ctx = task, ctx
        self.request = Context(ctx, task)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)

    def retry(
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: datetime | None = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> NoReturn:
        """Run the job again after ``countdown`` (default ``default_retry_delay``). When its
        retries are used up, raise ``exc`` (or ``MaxRetriesExceededError``), as Celery does."""
        if args is not None or kwargs is not None:
            raise NotSupported("self.retry(args=..., kwargs=...)", "a retry runs the same job "
                               "with its arguments", "queue a new job with task.apply_async")  # fmt: skip
        if not throw:
            raise NotSupported("self.retry(throw=False)", "a retry ends the attempt",
                               "raise self.retry(...)")  # fmt: skip
        if options:
            raise NotSupported(f"self.retry({', '.join(sorted(options))}=...)",
                               "a retry runs on the job's own queue with its options",
                               "queue a new job with task.apply_async")  # fmt: skip
        if self._ctx is None:  # called directly, as in Celery: no job to run again
            raise exc or Retry("Task can be retried", None)
        request = self._ctx.request
        limit = (
            request.max_retries if max_retries is None else min(max_retries, request.max_retries)
        )
        if request.retries >= limit:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"Can't retry {self._task.name}[{request.id}] args:{request.args} kwargs:{request.kwargs}"
            )
        if countdown is None and eta is not None:
            raise Retry(exc=exc, when=eta)
        raise Retry(
            exc=exc, when=self._task.default_retry_delay if countdown is None else countdown
        )

    def update_state(
        self, task_id: str | None = None, state: str | None = None, meta: Any = None, **_: Any
    ) -> None:
        """Report progress: ``state`` (e.g. "PROGRESS") and ``meta`` become the job's progress;
        ``AsyncResult.state`` / ``.info`` read them back while it runs."""
        if self._ctx is None or (task_id is not None and task_id != self._ctx.request.id):
            raise NotSupported("update_state for another job (or outside a worker)",
                               "a job reports only its own progress", "call it from the job")  # fmt: skip
        if state is not None and state in {State.SUCCESS, State.FAILURE, State.REVOKED}:
            raise NotSupported(f"update_state(state={state!r})", "a job's outcome is what it "
                               "returns or raises", "return the value or raise")  # fmt: skip
        percent = None
        if isinstance(meta, dict):
            done, total = meta.get("current"), meta.get("total")
            if isinstance(done, int | float) and isinstance(total, int | float) and total > 0:
                percent = round(100.0 * done / total, 2)
        self._ctx.update_progress(percent, state, celery_state=state or "PROGRESS", info=meta,
                                  celery_attempt=self._ctx.request.attempt)  # fmt: skip

    def is_revoked(self) -> bool:
        return self._ctx is not None and self._ctx.is_revoked()


def check_options(name: str, options: dict[str, Any]) -> None:
    for key, value in options.items():
        if key in UNSUPPORTED_OPTIONS:
            raise NotSupported(f"task {name}: {key}=", *UNSUPPORTED_OPTIONS[key])
        if key not in TASK_OPTIONS:
            raise ConfigurationError(
                f"task {name}: unknown option {key!r}; conveyor.celery takes {', '.join(sorted(TASK_OPTIONS))}"
            )
        if key in _ONLY and value != _ONLY[key]:
            raise NotSupported(f"task {name}: {key}={value!r}",
                               f"Conveyor always behaves as {key}={_ONLY[key]!r}", "drop it")  # fmt: skip
    extra = set(options.get("retry_kwargs") or {}) - {"max_retries", "countdown"}
    if extra:
        raise NotSupported(f"task {name}: retry_kwargs {', '.join(sorted(extra))}",
                           "an automatic retry takes max_retries and countdown", "drop them")  # fmt: skip


class CeleryTask(Task[Any, Any]):
    """A task declared with Celery's options (``@app.task``)."""

    def __init__(
        self, app: Celery, fn: Callable[..., Any], name: str, options: dict[str, Any]
    ) -> None:
        check_options(name, options)
        self.run, self.celery_options = fn, dict(options)
        self.bind, self.name = bool(options.get("bind")), name
        super().__init__(app, _runner(self), name, TaskOptions(bind=True))
        self.app: Celery = app
        self.refresh()

    def refresh(self) -> None:
        """Work out Conveyor's options from the task's and the app's (called again when
        the app's configuration changes)."""
        o, conf = self.celery_options, self.app.conf
        retry_kwargs = o.get("retry_kwargs") or {}
        max_retries = retry_kwargs.get("max_retries", o.get("max_retries", -1))
        backoff = o.get("retry_backoff", False)
        self.default_retry_delay = float(retry_kwargs.get("countdown",
                                         o.get("default_retry_delay", conf.task_default_retry_delay)))  # fmt: skip
        self.ignore_result = bool(o.get("ignore_result", conf.task_ignore_result))
        #: autoretry_for without retry_backoff retries after default_retry_delay (the runner's
        #: job); with backoff, Conveyor's worker retries with exponential backoff.
        self.manual_autoretry: tuple[type[BaseException], ...] = (
            () if backoff else tuple(o.get("autoretry_for", ()))
        )
        acks_late = o.get("acks_late", conf.task_acks_late)
        self.options = TaskOptions(
            queue=o.get("queue"), priority=o.get("priority", conf.task_default_priority),
            max_retries=None if max_retries == -1 else (MAX_RETRIES_LIMIT if max_retries is None else max_retries),
            retry_backoff=backoff, retry_backoff_max=o.get("retry_backoff_max"),
            retry_jitter=o.get("retry_jitter", True),
            autoretry_for=tuple(o.get("autoretry_for", ())) if backoff else (),
            soft_time_limit=o.get("soft_time_limit", conf.task_soft_time_limit),
            time_limit=o.get("time_limit", conf.task_time_limit), expires=o.get("expires"),
            acks_late=True if acks_late is None else bool(acks_late), bind=True,
        )  # fmt: skip
        check_task_options(self.name, self.options)

    # Celery's task attributes, which task code reads (``self.max_retries``, ...)
    @property
    def max_retries(self) -> int:
        found = self.options.max_retries
        return self.app.conf.default_max_retries if found is None else found

    @property
    def acks_late(self) -> bool:
        return self.options.acks_late

    @property
    def soft_time_limit(self) -> float | None:
        return self.options.soft_time_limit

    @property
    def time_limit(self) -> float | None:
        return self.options.time_limit

    @property
    def queue(self) -> str | None:
        return self.options.queue

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function here, as Celery does (``self.request.called_directly``)."""
        return (
            self.run(BoundTask(self, None), *args, **kwargs)
            if self.bind
            else self.run(*args, **kwargs)
        )

    def __repr__(self) -> str:
        return f"<@task: {self.name} of {self.app.name}>"

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:  # type: ignore[override]
        return self.apply_async(args, kwargs)

    def apply_async(  # type: ignore[override]
        self, args: Any = None, kwargs: Any = None, **options: Any
    ) -> AsyncResult:
        """Queue a job: queue, priority, countdown, eta, expires, task_id, link,
        link_error, headers (Celery's names); other options raise ``NotSupported``."""
        return self.signature(args or (), kwargs or {}, **options).apply_async()

    def signature(self, args: Any = (), kwargs: Any = None, **options: Any) -> CelerySignature:
        sig = CelerySignature(self.name, tuple(args or ()), dict(kwargs or {}), app=self.app)
        return sig.set(**options)

    def s(self, *args: Any, **kwargs: Any) -> CelerySignature:
        return CelerySignature(self.name, args, kwargs, app=self.app)

    def si(self, *args: Any, **kwargs: Any) -> CelerySignature:
        return CelerySignature(self.name, args, kwargs, immutable=True, app=self.app)

    def AsyncResult(self, task_id: str) -> AsyncResult:
        return AsyncResult(task_id, app=self.app)

    def apply(self, *_: Any, **__: Any) -> NoReturn:
        raise NotSupported("task.apply() (run eagerly)", "every job goes through the store",
                           "call the task directly, or drain(app) from conveyor.testing in tests")  # fmt: skip


def _runner(task: CeleryTask) -> Callable[..., Any]:
    """The function Conveyor's worker calls (with a ``TaskContext`` first)."""

    def run(ctx: TaskContext, *args: Any, **kwargs: Any) -> Any:
        try:
            if task.bind:
                result = task.run(BoundTask(task, ctx), *args, **kwargs)
            else:
                result = task.run(*args, **kwargs)
        except TaskControl:
            raise
        except Reject as exc:
            if exc.requeue:
                raise Retry(exc=exc, when=0) from exc
            raise
        except task.manual_autoretry as exc:
            BoundTask(task, ctx).retry(exc=exc)
        return None if task.ignore_result else result

    params = list(inspect.signature(task.run).parameters.values())
    context = inspect.Parameter("_context", inspect.Parameter.POSITIONAL_ONLY)
    if task.bind:
        if not params:
            raise ConfigurationError(f"task {task.name}: bind=True needs a first parameter (self)")
        params = params[1:]
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [context, *(p.replace(annotation=p.empty) for p in params)]
    )
    run.__name__ = run.__qualname__ = task.name
    return run
