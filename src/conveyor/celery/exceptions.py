"""Celery's exceptions, as task code raises and catches them (``celery.exceptions``).

``SoftTimeLimitExceeded`` and ``TimeLimitExceeded`` are Conveyor's own classes, so an
``except SoftTimeLimitExceeded`` in a task catches what Conveyor's worker raises.
``TaskRevokedError`` and ``TimeoutError`` are what ``AsyncResult.get()`` raises.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import (
    ConfigurationError,
    JobRevoked,
    JobTimeout,
    SoftTimeLimitExceeded,
    TimeLimitExceeded,
)
from ..errors import Retry as _Retry

__all__ = [
    "CeleryError", "MaxRetriesExceededError", "NotSupported", "Reject", "Retry",
    "SoftTimeLimitExceeded", "TaskRevokedError", "TimeLimitExceeded", "TimeoutError",
]  # fmt: skip

TaskRevokedError = JobRevoked
TimeoutError = JobTimeout


class NotSupported(ConfigurationError):
    """A Celery feature that Conveyor does not offer; the message names the alternative."""

    def __init__(self, what: str, why: str, instead: str) -> None:
        super().__init__(f"{what} is not supported by conveyor.celery: {why}; {instead} "
                         "(see docs/migrating-from-celery.md)")  # fmt: skip
        self.what = what


class CeleryError(Exception):
    """Celery's root for task-side errors."""


class MaxRetriesExceededError(CeleryError):
    """``self.retry()`` with no ``exc`` when the task's retries are used up."""


class Reject(CeleryError):
    """Reject the job: ``requeue=False`` ends it FAILURE at once (no retry); ``requeue=True``
    runs it again at once (Conveyor counts that against ``max_retries``)."""

    def __init__(self, reason: Any = None, requeue: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.requeue = reason, requeue


class Retry(_Retry):
    """Celery's ``Retry(message, exc, when)``: ``when`` is seconds or an aware datetime."""

    def __init__(
        self,
        message: str | None = None,
        exc: BaseException | None = None,
        when: float | datetime | None = None,
    ) -> None:
        if isinstance(when, datetime):
            if when.tzinfo is None:
                raise ConfigurationError("Retry(when=...) needs an aware datetime")
            when = max(0.0, when.timestamp() - datetime.now(when.tzinfo).timestamp())
        super().__init__(message, countdown=when, exc=exc)
        self.when = when
