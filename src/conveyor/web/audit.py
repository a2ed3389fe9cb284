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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from ..control.audit import many, many_target, record_change

if TYPE_CHECKING:
    from ..app import App

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


def affected(request: Request, ids: Sequence[str], done: Sequence[str] | None = None) -> None:
    """Say which jobs a change to many touched (``ids``; ``done``: those it took effect
    on): the entry records how many and the first ids (``control.audit.many``)."""
    request.state.audit_ids = (ids, done)  # read when the entry is stored, after the change


def action_of(request: Request, action: str, detail: dict[str, Any]) -> str:
    """``action`` with what the handler said it did (``did``), also put in ``detail``,
    with the jobs it touched (``affected``)."""
    ids = getattr(request.state, "audit_ids", None)
    if ids is not None:
        detail.update(many(*ids))
    what = getattr(request.state, "audit_did", None)
    if what is None:
        return action
    detail["did"] = what
    return f"{action} ({what})"


def target_of(request: Request, params: dict[str, str]) -> str:
    """What an entry is about: the path's first parameter (a job, queue or schedule), or
    the jobs a change to many touched."""
    if params:
        return next(iter(params.values()))
    ids = getattr(request.state, "audit_ids", None)
    return many_target(ids[0]) if ids is not None else ""


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
    await app.aio.call(record_change, app, actor, actor_id, action, target_of(request, params),
                       outcome, response.status_code, detail)  # fmt: skip


def error_code(response: Response) -> str:
    """The error code an error response carries (what an entry's outcome names)."""
    try:
        return str(json.loads(bytes(response.body))["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}"
