"""The audit trail: who changed what, to what, when and with which outcome, however the
change was made. The REST API (``web/audit.py``), the dashboard's forms and the CLI
write their entries here, one way; ``Backend.audit`` reads them back."""

from __future__ import annotations

import getpass
import logging
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import (
    BackendError,
    ConfigurationError,
    ConveyorError,
    EnqueueError,
    ExpiresBeforeRun,
    InvalidArguments,
    InvalidTransition,
    JobNotFound,
    PayloadTooLarge,
    StepNotRun,
    UnknownTask,
)
from ..records import AuditEntry

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("conveyor.audit")

#: Per error type (most specific first): the status and code an entry's outcome names
#: (the REST API answers the same, ``web/errors.py``).
ERRORS: list[tuple[type[ConveyorError], int, str]] = [
    (JobNotFound, 404, "job_not_found"),
    (UnknownTask, 400, "unknown_task"),
    (PayloadTooLarge, 413, "payload_too_large"),
    (ExpiresBeforeRun, 422, "expires_before_run"),
    (InvalidArguments, 422, "invalid_arguments"),
    (EnqueueError, 400, "invalid_job"),
    (StepNotRun, 409, "step_not_run"),
    (InvalidTransition, 409, "invalid_state"),
    (BackendError, 503, "backend_unavailable"),
    (ConfigurationError, 500, "misconfigured"),
    (ConveyorError, 400, "bad_request"),
]
#: A change to many jobs names this many of their ids (and how many there were).
IDS_SHOWN = 20


def error_of(exc: ConveyorError) -> tuple[int, str]:
    """The status and code of an error (``ERRORS``)."""
    return next((status, code) for kind, status, code in ERRORS if isinstance(exc, kind))


def record_change(
    app: App,
    actor: str,
    actor_id: str,
    action: str,
    target: str,
    outcome: str = "ok",
    status: int = 0,
    detail: dict[str, Any] | None = None,
) -> None:
    """Store one entry; a failure to store it is logged, never the caller's (the change
    stands)."""
    entry = AuditEntry(0, time.time(), actor, actor_id, action, target, outcome, status,
                       detail or {})  # fmt: skip
    try:
        app.backend.record_audit(entry)
    except Exception as exc:
        log.error("could not record %s %s by %s in the audit trail: %s",
                  action, target, actor, exc)  # fmt: skip


def many(ids: Sequence[str], done: Sequence[str] | None = None) -> dict[str, Any]:
    """What a change to many jobs records: how many, and the first ``IDS_SHOWN`` ids
    (``done``: the ids it took effect on, when not all)."""
    detail: dict[str, Any] = {"count": len(ids), "ids": list(ids[:IDS_SHOWN])}
    if done is not None:
        detail["done"] = len(done)
    return detail


def many_target(ids: Sequence[str]) -> str:
    """An entry's target for a change to ``ids``: the id when one, else their count."""
    return ids[0] if len(ids) == 1 else f"{len(ids)} jobs"


def cli_actor() -> str:
    """Who a command-line change is recorded as: ``cli:`` the OS user ``@`` this host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's)
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


@dataclass
class Change:
    """A command-line change being made: its block may set what it was about and did."""

    target: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@contextmanager
def audited(
    app: App, action: str, target: str = "", *, actor: str | None = None, **detail: Any
) -> Iterator[Change]:
    """Record a change made outside HTTP once it ended, by ``actor`` (the CLI's:
    ``cli_actor()``; the Django admin's: ``django:<user>``): ``ok`` (status 0), or the
    code of the ``ConveyorError`` that refused it (status 1, as a command's exit status),
    with its message. Not recorded: a block left by anything else (a question answered no)."""
    change, who = Change(target, detail), actor or cli_actor()
    try:
        yield change
    except ConveyorError as exc:
        record_change(app, who, "", action, change.target, error_of(exc)[1], 1,
                      {**change.detail, "error": str(exc)[:300]})  # fmt: skip
        raise
    record_change(app, who, "", action, change.target, "ok", 0, change.detail)
