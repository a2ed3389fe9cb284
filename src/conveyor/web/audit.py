"""The audit trail: every change made through the API (each request but GET and HEAD
that passed authentication, or was refused for its role) is stored in the backend with
who made it (the token's name and id), what (method and route), to what (the job,
queue or schedule), when, and how it ended (``ok`` or the error code answered).

Job submissions are the exception: who submitted a job is stamped on the job itself
(its ``submitted_by`` header), in the write that stores it, so a submit costs one write;
a submit refused for the token's role stores no job, so that refusal is audited here.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from ..records import AuditEntry

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("conveyor.web")
F = TypeVar("F", bound=Callable[..., Any])


def not_audited(endpoint: F) -> F:
    """Mark a handler whose changes are recorded some other way (on the job itself)."""
    endpoint.audited = False  # type: ignore[attr-defined]
    return endpoint


def identify(request: Request, app: App, actor: str, actor_id: str = "") -> None:
    """Say who this request is (the authorizer calls it): its changes are then audited."""
    request.state.audit = (app, actor, actor_id)


def did(request: Request, what: str) -> None:
    """Say what a change did when its route alone does not (a cancel that terminates):
    the entry's action names it, and its detail keeps it as ``did``."""
    request.state.audit_did = what


def action_of(request: Request, action: str, detail: dict[str, Any]) -> str:
    """``action`` with what the handler said it did (``did``), also put in ``detail``."""
    what = getattr(request.state, "audit_did", None)
    if what is None:
        return action
    detail["did"] = what
    return f"{action} ({what})"


def submitter(request: Request) -> str:
    """What a job submitted by this request records as its ``submitted_by``."""
    _, actor, actor_id = getattr(request.state, "audit", (None, "service", ""))
    return f"{actor} ({actor_id})" if actor_id else actor


async def record(request: Request, response: Response, route: str) -> None:
    """Store the entry for a change this request made or tried (after it is answered
    for, so the outcome is known); a failure to store it is logged, never the caller's."""
    who = getattr(request.state, "audit", None)
    if who is None:  # not authenticated: nothing was changed, nobody to name
        return
    app, actor, actor_id = who
    params = {k: str(v) for k, v in request.path_params.items()}
    outcome, detail = "ok", {"params": params}
    if response.status_code >= 400:
        outcome = error_code(response)
    action = action_of(request, f"{request.method} {route}", detail)
    entry = AuditEntry(0, time.time(), actor, actor_id, action,
                       next(iter(params.values()), ""), outcome, response.status_code, detail)  # fmt: skip
    try:
        await app.aio.call(app.backend.record_audit, entry)
    except Exception as exc:  # the change stands; say loudly that its record is missing
        log.error("could not record %s %s by %s in the audit trail: %s",
                  entry.action, entry.target, actor, exc)  # fmt: skip


def error_code(response: Response) -> str:
    """The error code an error response carries (what an entry's outcome names)."""
    try:
        return str(json.loads(bytes(response.body))["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}"
