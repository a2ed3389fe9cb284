"""Every error Conveyor raises on purpose derives from ``ConveyorError``.

The tree::

    ConveyorError
    ├── ConfigurationError        bad settings, URL or app path
    │   └── MissingDependency     an optional driver is not installed
    ├── EnqueueError              a job was refused at the edge; nothing was stored
    │   ├── SerializationError    an argument does not survive JSON
    │   ├── PayloadTooLarge       the encoded job exceeds ``max_payload_bytes``
    │   ├── InvalidArguments      the arguments do not fit the task's parameters
    │   └── ExpiresBeforeRun      the job would expire before it could run
    ├── UnknownTask               no task registered under that name
    ├── JobNotFound               no job has that id (never reported as PENDING)
    ├── BackendError              the store could not be reached or answered badly
    ├── LeaseLost                 a worker's lease was taken over; its write was refused
    ├── InvalidTransition         the job is not in a state that allows the operation
    │   └── StepNotRun            a workflow step stored as never run cannot be retried itself
    ├── JobFailed                 ``job.get()`` on a job that ended FAILURE
    ├── JobRevoked                ``job.get()`` on a job that ended REVOKED
    ├── JobTimeout                ``job.get(timeout=...)`` ran out of time (also a TimeoutError)
    └── TaskControl               raised inside tasks to steer the worker (not a failure)
        ├── Retry                 ``self.retry()``: run again later
        ├── SoftTimeLimitExceeded the soft time limit fired; the task may clean up
        ├── TimeLimitExceeded     the hard time limit fired
        └── Terminated            the job was revoked with ``terminate=True``

Each class's docstring is its default message.
"""

from __future__ import annotations

from typing import Any


class ConveyorError(Exception):
    """Conveyor failed."""

    def __init__(self, message: str | None = None, **context: Any) -> None:
        self.context = context
        super().__init__(message or (self.__doc__ or self.__class__.__name__).strip())


class ConfigurationError(ConveyorError):
    """Conveyor is not configured correctly."""


class MissingDependency(ConfigurationError):
    """An optional dependency is not installed."""


class EnqueueError(ConveyorError):
    """The job was refused and nothing was stored."""


class SerializationError(EnqueueError):
    """An argument cannot be carried as JSON."""


class PayloadTooLarge(EnqueueError):
    """The encoded job is larger than the configured maximum (max_payload_bytes)."""


class InvalidArguments(EnqueueError):
    """The job's arguments do not fit its task's parameters (their number, names, or the
    kind of value an annotated scalar parameter takes); nothing was stored. ``field``
    (in ``context``) names the argument: ``args.0``, ``kwargs.seconds``; in a batch,
    ``jobs.2.kwargs.seconds``."""


class ExpiresBeforeRun(EnqueueError):
    """The job's expires is not after its run time, so it could never run; nothing was stored."""


class UnknownTask(ConveyorError):
    """No task is registered under that name."""


class JobNotFound(ConveyorError):
    """No job has that id; check the id, or the job's record may have been pruned."""


class BackendError(ConveyorError):
    """The backend could not be reached or gave an unexpected answer."""


class LeaseLost(ConveyorError):
    """This worker no longer holds the job's lease; another delivery owns it now."""


class InvalidTransition(ConveyorError):
    """The job is not in a state that allows this operation."""


class StepNotRun(InvalidTransition):
    """This workflow step never ran because a step before it failed; retry that step, and
    the workflow resumes from it."""

    def __init__(self, message: str | None = None, hint: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.hint = hint


class JobFailed(ConveyorError):
    """The job ended FAILURE."""


class JobRevoked(ConveyorError):
    """The job was revoked and will not produce a result."""


class JobTimeout(ConveyorError, TimeoutError):
    """Waiting for the job timed out; it may still finish later."""


class TaskControl(ConveyorError):
    """Raised inside a task to steer the worker."""


class Retry(TaskControl):
    """The task asked to be retried."""

    def __init__(
        self,
        message: str | None = None,
        *,
        countdown: float | None = None,
        exc: BaseException | None = None,
    ) -> None:
        super().__init__(message or (f"retry requested: {exc!r}" if exc else None))
        self.countdown = countdown
        self.exc = exc


class SoftTimeLimitExceeded(TaskControl):
    """The task ran past its soft time limit."""


class TimeLimitExceeded(TaskControl):
    """The task ran past its hard time limit and was stopped."""


class Terminated(TaskControl):
    """The job was revoked while running and was stopped: raised into the task by a
    terminate, or raised by a task that saw ``self.is_revoked()`` to stop there (the job
    ends REVOKED either way; docs/worker.md)."""


def in_batch(exc: EnqueueError, index: int, task: str) -> EnqueueError:
    """``exc``, refusing the job at ``index`` (from 0) of a batch, said so: its message
    names the job and its task, its ``field`` (``context``) is under ``jobs.<index>``.
    Raised ``from exc``, so ``__cause__`` says it for a batch whose jobs are all alike
    (a schedule's ticks)."""
    inner = exc.context.get("field")
    field = f"jobs.{index}" + (f".{inner}" if inner else "")
    context = {**exc.context, "field": field, "index": index, "task": task}
    return type(exc)(f"job {index} of the batch (from 0; task {task!r}): {exc}", **context)
