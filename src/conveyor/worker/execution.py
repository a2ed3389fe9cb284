"""Running one job, in whatever thread or process a pool chose, and deciding its outcome.

Every pool calls ``execute``; nothing else turns a task's behaviour into SUCCESS,
FAILURE, RETRY or REVOKED, so all pools agree on retries, errors and results.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..backends.common import retries_used
from ..context import Request, TaskContext
from ..errors import (
    Retry,
    SerializationError,
    SoftTimeLimitExceeded,
    TaskControl,
    Terminated,
    TimeLimitExceeded,
    UnknownTask,
)
from ..events import JobStarted
from ..records import JobRecord, Outcome
from ..serialization import check_jsonable, decode_payload
from ..states import State
from .backoff import retry_delay
from .limits import UNGUARDED, ThreadRun, Unguarded
from .tracebacks import format_error
from .unknown import unknown_task

if TYPE_CHECKING:
    from ..app import App
    from ..task import Task

_loops = threading.local()


def error_info(exc: BaseException, **extra: Any) -> dict[str, Any]:
    """An error as stored on a record: type, message, traceback."""
    cls = type(exc)
    return {
        "type": cls.__name__,
        "path": f"{cls.__module__}.{cls.__qualname__}",  # the class's import path
        "message": str(exc),
        "traceback": format_error(exc),  # from the user's first frame (tracebacks.py)
        **extra,
    }


def failure(record: JobRecord, error: dict[str, Any]) -> Outcome:
    return Outcome(record.id, record.lease_token or "", State.FAILURE, error=error)


@dataclass
class Prepared:
    """A job ready to call: its task, arguments and context."""

    record: JobRecord
    task: Task[Any, Any]
    context: TaskContext
    args: list[Any]
    kwargs: dict[str, Any]

    @property
    def call_args(self) -> list[Any]:
        return [self.context, *self.args] if self.task.options.bind else self.args


def prepare(app: App, record: JobRecord) -> Prepared | Outcome:
    """Look up the task and decode the arguments; an Outcome (FAILURE) if either fails,
    REVOKED if the job was revoked before this delivery (see below)."""
    if record.revoke is not None:
        # Revoked while an earlier delivery ran, then put back in its queue (a worker's
        # shutdown releases running jobs): the revoke holds, so this delivery never runs it.
        return Outcome(record.id, record.lease_token or "", State.REVOKED, error={
            "type": "Revoked", "message": "revoked while an earlier delivery ran; not run again",
            "traceback": None,
        })  # fmt: skip
    try:
        task = app.get_task(record.task)
    except Exception as exc:  # a Django app imports the task here: its module may raise
        known = isinstance(exc, UnknownTask)
        return failure(record, error_info(unknown_task(app, record.task, exc) if known else exc))
    try:
        args, kwargs = decode_payload(record.payload)
    except ValueError as exc:
        return failure(
            record, {"type": "UndecodablePayload", "message": str(exc), "traceback": None}
        )
    request = Request(
        record.id, record.task, record.queue, record.attempt, record.max_retries, args, kwargs,
        record.headers, record.parent_id, record.root_id, retries_used(record.attempts),
    )  # fmt: skip
    context = TaskContext(app, request, record.lease)
    return Prepared(record, task, context, args, kwargs)


#: Told by ``execute`` when a job starts: its id, and what stops it (terminate).
OnStart = Callable[[str, Callable[[], object]], None]


def execute(
    app: App,
    record: JobRecord,
    *,
    thread_limits: tuple[bool, bool] = (True, True),
    on_start: OnStart | None = None,
) -> Outcome:
    """Run ``record``'s task in this thread and return how the delivery ended. Never raises.

    ``thread_limits`` says which of the task's (soft, hard) time limits to enforce in this
    thread; a pool that enforces one another way (killing a child) passes False for it.
    ``on_start`` receives a function that stops the job from any thread (see
    ``limits.ThreadRun``); a pool calls it for ``terminate``.
    """
    job = prepare(app, record)
    if isinstance(job, Outcome):
        return job
    started(app, record)
    if job.task.is_async:
        loop = getattr(_loops, "loop", None)  # one loop per thread, reused across jobs
        if loop is None or loop.is_closed():
            loop = _loops.loop = asyncio.new_event_loop()
        task: asyncio.Task[Outcome] = loop.create_task(await_task(app, job))
        if on_start is not None:
            on_start(record.id, lambda: loop.call_soon_threadsafe(task.cancel))
        return loop.run_until_complete(task)
    opts = job.task.options
    soft = opts.soft_time_limit if thread_limits[0] else None
    hard = opts.time_limit if thread_limits[1] else None
    # A run nothing can raise into (no limit enforced in this thread, nobody to deliver a
    # terminate: a process-pool child's is a kill) needs none of ThreadRun's machinery,
    # ~6 µs of CPU a job (docs/benchmarks.md).
    run: ThreadRun | Unguarded = (
        ThreadRun(soft, hard, record.id) if soft or hard or on_start else UNGUARDED
    )

    def stop() -> None:
        if run.terminate():  # not once the task has returned: then the revoke came too late
            job.context.mark_revoked(terminate=True)

    try:
        with run:
            if on_start is not None:
                on_start(record.id, stop)
            result = call_task(app, job)
    except BaseException as exc:  # every outcome must be recorded, whatever was raised
        run.close()  # again: an exception of the run may have landed in its __exit__
        if isinstance(exc, KeyboardInterrupt):
            raise
        return outcome_of_error(app, job, run.unheeded(exc) or exc)
    return outcome_of_result(app, job, result, run.unheeded(None))


def exit_error(exc: SystemExit) -> dict[str, Any]:
    """The FAILURE error of a task that called ``sys.exit``: in a worker that is no way to
    end a job (it would end the process running it, and every job that process holds
    with it), so it fails that job like any exception and says so."""
    code = exc.code
    return error_info(
        exc,
        message=f"the task called sys.exit({code!r})"
        if code is not None
        else "the task called sys.exit()",
        code=code if code is None or isinstance(code, int) else str(code),
        hint="a task should raise, not exit: raise an exception to fail the job; the worker "
        "process running it goes on",
    )


def call_task(app: App, job: Prepared) -> Any:
    """Call a (synchronous) task, through the app's ``execute`` middleware if it has any."""
    if app.events.has_middleware:
        return app.events.execute(job.context, lambda: job.task.fn(*job.call_args, **job.kwargs))
    return job.task.fn(*job.call_args, **job.kwargs)


def started(app: App, record: JobRecord) -> None:
    """Tell subscribers an attempt starts (its task is about to be called): ``JobStarted``."""
    if app.events.wants(JobStarted):
        at = app.backend.now()
        waited = max(0.0, at - record.run_at)  # since it was due: in the queue, then held
        app.events.emit(
            JobStarted(at, record.id, record.task, record.queue, record.attempt, waited)
        )


async def await_task(app: App, job: Prepared) -> Outcome:
    """Run an ``async def`` task; its time limit cancels it (the first limit set fires)."""
    opts = job.task.options
    exc_type: type[SoftTimeLimitExceeded | TimeLimitExceeded] = SoftTimeLimitExceeded
    limit = opts.soft_time_limit
    if limit is None:
        limit, exc_type = opts.time_limit, TimeLimitExceeded
    try:
        async with asyncio.timeout(limit):
            result: Any = await (
                app.events.aexecute(job.context, lambda: job.task.fn(*job.call_args, **job.kwargs))
                if app.events.has_middleware
                else job.task.fn(*job.call_args, **job.kwargs)
            )
    except TimeoutError:
        name = "soft" if exc_type is SoftTimeLimitExceeded else "hard"
        return outcome_of_error(
            app,
            job,
            exc_type(f"the {name} time limit of {limit}s fired; the coroutine was cancelled"),
        )
    except asyncio.CancelledError:
        return outcome_of_error(
            app, job, Terminated("the job was revoked while running and cancelled")
        )
    except (Exception, SystemExit) as exc:  # SystemExit: the task's failure, as below
        return outcome_of_error(app, job, exc)
    return outcome_of_result(app, job, result)


def outcome_of_result(
    app: App, job: Prepared, result: Any, unheeded: TaskControl | None = None
) -> Outcome:
    """SUCCESS, unless the job was stopped or ``unheeded`` (see ``ThreadRun.unheeded``)."""
    record = job.record
    if unheeded is None and job.context.terminate_requested:
        unheeded = Terminated(
            "the job was revoked while running; the task saw it (self.is_revoked()) and "
            "returned, so its result is discarded"
        )
    if unheeded is not None:
        return outcome_of_error(app, job, unheeded)
    try:
        check_jsonable(result, "the task's return value")
    except SerializationError as exc:
        return failure(record, error_info(exc, hint="return only JSON types from tasks"))
    return Outcome(record.id, record.lease_token or "", State.SUCCESS, result=result)


def outcome_of_error(app: App, job: Prepared, exc: BaseException) -> Outcome:
    """Decide FAILURE, RETRY (with its delay) or REVOKED for an exception from a task."""
    record, task = job.record, job.task
    token = record.lease_token or ""
    if isinstance(exc, Terminated):
        if _stopped_on_revoke(job, exc):
            return Outcome(record.id, token, State.REVOKED, error=revoked_by_task(exc))
        return Outcome(record.id, token, State.REVOKED, error=error_info(exc, **exc.context))
    if isinstance(exc, SoftTimeLimitExceeded | TimeLimitExceeded):
        limit = "soft" if isinstance(exc, SoftTimeLimitExceeded) else "hard"
        return failure(record, error_info(exc, limit=limit, **exc.context))
    if isinstance(exc, SystemExit):  # the task's own failure: its process goes on
        return failure(record, exit_error(exc))
    retry = exc if isinstance(exc, Retry) else None
    if retry is None and not isinstance(exc, task.options.autoretry_for or ()):
        return failure(record, error_info(exc))
    cause = last_error(exc)
    retries = retries_used(record.attempts)
    if retries >= record.max_retries:
        return failure(record, exhausted_error(exc, cause, record.max_retries, retries))
    opts = task.options
    delay = retry.countdown if retry and retry.countdown is not None else None
    if delay is None:
        cap = (
            opts.retry_backoff_max
            if opts.retry_backoff_max is not None
            else app.conf.retry_backoff_max
        )
        delay = retry_delay(retries, opts.retry_backoff, cap, opts.retry_jitter)
    return Outcome(
        record.id, token, State.RETRY, error=error_info(cause or exc), delay=max(0.0, delay)
    )


def _stopped_on_revoke(job: Prepared, exc: Terminated) -> bool:
    """Whether the task raised ``Terminated`` itself on a revoke it saw (the documented
    cooperative stop): raised (it has a traceback), not raised into it by the worker (no
    ``interrupted``), and the job is revoked. Those the worker builds for a terminate it
    carried out are never raised, or carry ``interrupted``. ``is_revoked`` may read the
    backend: if that fails, the record keeps the ``Terminated`` error (an outcome is still
    stored, and the pool's thread lives on)."""
    if exc.__traceback__ is None or "interrupted" in exc.context:
        return False
    try:
        return job.context.is_revoked()
    except Exception:  # the backend is down, or the job is gone: not known to be revoked
        return False


def revoked_by_task(exc: Terminated) -> dict[str, Any]:
    """The REVOKED error of a task that stopped on its revoke: what it is, not a crash, so
    no traceback; the task's own message, if it gave one, says where it stopped."""
    said = str(exc)
    return {
        "type": "Revoked",
        "message": "revoked while running; the task saw it (self.is_revoked()) and stopped"
        + (f": {said}" if said else ""),
        "traceback": None,
    }


def last_error(exc: BaseException) -> BaseException | None:
    """The real error behind a retry: the ``exc`` given to ``self.retry()``, else the
    exception being handled when it was called (``except ...: self.retry()``); None for a
    retry asked for with no error. Any other exception (autoretry) is its own cause."""
    if not isinstance(exc, Retry):
        return exc
    if exc.exc is not None:
        return exc.exc
    context = exc.__context__
    return None if context is None or isinstance(context, TaskControl) else context


def exhausted_error(
    exc: BaseException, cause: BaseException | None, max_retries: int, retries: int
) -> dict[str, Any]:
    """The FAILURE error of a job out of retries: the last real error's type and traceback,
    and a message that says the budget ran out (never a bare "asked to be retried")."""
    if cause is None:
        what = "the task asked to be retried without an error"
        info = error_info(exc, retries_exhausted=True, retries=retries)
        info["type"] = "MaxRetriesExceeded"
    else:
        what = f"last error: {type(cause).__name__}: {cause}"
        info = error_info(cause, retries_exhausted=True, retries=retries)
    info["message"] = f"max_retries ({max_retries}) exceeded; {what}"
    return info
