"""One JSON shape for every error the API answers, and the one place exceptions become it.

    {"error": {"code": "job_not_found", "message": "...", "hint": "what to do"}}

``ApiRoute`` wraps every handler of the API's routers, so the shape holds where the
router is mounted in someone else's FastAPI service too (exception handlers belong to
the app, which a router cannot set). A bug answers a 500 of the same shape, logged with
its traceback here and never sent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi import routing as fastapi_routing
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive

from ..control.audit import error_of
from ..errors import ConveyorError
from . import audit
from .explain import Operation, problems
from .lean import lean_read

log = logging.getLogger("conveyor.web")

#: Per error code (``control.audit.ERRORS``: its status per exception type): the hint.
_HINTS = {
    "job_not_found": "check the id; finished jobs are pruned after result_ttl",
    "unknown_task": "use one of the task names listed in the message",
    "payload_too_large": "pass a reference to large data, not the data",
    "expires_before_run": "send an expires after the run time: in seconds it counts from "
    "submission, not from the countdown, so give more than the countdown (or a later time)",
    "invalid_job": "fix the field the message names and submit again",
    "invalid_arguments": "fix the argument details[0].field names; the message shows the task's "
    "parameters",
    "step_not_run": "retry the failed step the message names",
    "invalid_state": "read the job's state first (GET /jobs/{id})",
    "backend_unavailable": "retry later; check the backend server",
    "misconfigured": "the server's configuration needs fixing; see its log",
    "bad_request": "fix the request as the message says",
}
_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               413: "body_too_large", 415: "unsupported_media_type"}  # fmt: skip
_HTTP_HINTS = {
    404: "see the API's routes at {docs}",
    405: "see the API's routes and their methods at {docs}",
    413: "send a smaller body (split a batch)",
}
#: Where the service documents itself: ``create_api``'s (a service of your own says its
#: own: its ``docs_url`` and ``openapi_url``).
DOCS, SCHEMA = "/api/docs", "/api/openapi.json"


class ApiError(Exception):
    """A client mistake answered as ``status`` with the error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        hint: str,
        headers: dict[str, str] | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.hint = status, code, message, hint
        self.headers, self.field = headers, field

    def in_batch(self, index: int) -> ApiError:
        """This error, refusing the job at ``index`` (from 0) of a batch, said so, with
        the field under ``jobs.<index>`` (as ``errors.in_batch`` says an enqueue's)."""
        field = f"jobs.{index}" + (f".{self.field}" if self.field else "")
        message = f"job {index} of the batch (from 0): {self.message}"
        return ApiError(self.status, self.code, message, self.hint, self.headers, field)


def error_response(
    status: int,
    code: str,
    message: str,
    hint: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"code": code, "message": message, "hint": hint, **extra}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


#: FastAPI's detail when it cannot parse a body it took for JSON (a user's own 400 keeps
#: its own message, cause or not).
_BODY_UNPARSED = "There was an error parsing the body"


def as_response(
    exc: Exception, docs: str = DOCS, schema: str = SCHEMA, request: Request | None = None
) -> JSONResponse:
    """The error shape for any exception a handler raised (hints name ``docs``, the
    interactive docs, and ``schema``, the OpenAPI document; an invalid field of
    ``request`` is described as the document describes it)."""
    if isinstance(exc, ApiError):
        if exc.field:
            where = {"location": f"body.{exc.field}", "field": exc.field, "message": exc.message}
            return error_response(
                exc.status, exc.code, exc.message, exc.hint, exc.headers, details=[where]
            )
        return error_response(exc.status, exc.code, exc.message, exc.hint, exc.headers)
    if isinstance(exc, RequestValidationError):
        return _validation(exc, schema, _operation(request) if request is not None else None)
    if isinstance(exc, HTTPException) and exc.detail == _BODY_UNPARSED and exc.__cause__:
        return _unreadable(exc.__cause__)
    if isinstance(exc, HTTPException):
        return error_response(
            exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail),
            _HTTP_HINTS.get(exc.status_code, "see {docs}").format(docs=docs), dict(exc.headers or {}),
        )  # fmt: skip
    if isinstance(exc, ConveyorError):
        status, code = error_of(exc)
        if status >= 500:
            log.error("API request failed: %s", exc)
        hint = getattr(exc, "hint", None) or _HINTS[code]
        field = exc.context.get("field")
        if isinstance(field, str):  # a job's argument (in a batch: under jobs.<index>)
            where = {"location": f"body.{field}", "field": field, "message": str(exc)}
            return error_response(status, code, str(exc), hint, details=[where])
        return error_response(status, code, str(exc), hint)
    log.exception("API request failed")  # a bug: its traceback goes to the log, not the client
    return error_response(
        500, "internal_error", "the server failed to answer this request", "retry; if it persists, see the server log"
    )  # fmt: skip


def _unreadable(cause: BaseException) -> JSONResponse:
    """A body FastAPI could not parse, though it is JSON in form: say why."""
    why = {RecursionError: "it is nested too deeply", UnicodeDecodeError: "it is not UTF-8"}
    reason = next((w for kind, w in why.items() if isinstance(cause, kind)), None)
    if reason is None and "digits" in str(cause):
        reason = "a number in it has more than 4300 digits"
    return error_response(400, "bad_request", f"the body could not be read as JSON: {reason or 'it is malformed'}",
                          "send a JSON object nested a few levels deep, numbers as JSON carries them")  # fmt: skip


def _validation(exc: RequestValidationError, schema: str, op: Operation | None) -> JSONResponse:
    found = problems(exc.errors(), op)[:20]
    first = found[0]["message"] if found else "the request is not valid"
    return error_response(
        422, "validation_error", first + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""),
        f"fix the fields listed in details; the schema is at {schema}", details=found,
    )  # fmt: skip


#: The largest request body accepted (bytes); a job's own limit is ``max_payload_bytes``.
MAX_BODY = 8 * 1024 * 1024


def _too_large() -> ApiError:
    return ApiError(413, "body_too_large", f"the request body exceeds {MAX_BODY} bytes",
                    "send a smaller body: split a batch, pass references to large data")  # fmt: skip


def _limited(receive: Receive) -> Receive:
    """``receive`` that refuses a body (chunked, with no Content-Length) past ``MAX_BODY``."""
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > MAX_BODY:
            raise _too_large()
        return message

    return limited


def _check_body(request: Request, takes_body: bool) -> None:
    """Refuse a body over ``MAX_BODY`` by its Content-Length, and one a route reads as
    JSON but that says it is something else, or says nothing (``curl -d`` sends a form's
    type): 415, naming the header to send, rather than a field error on the whole body."""
    headers = request.headers
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise _too_large()
    if not takes_body or (length in ("", "0") and "transfer-encoding" not in headers):
        return
    sent = headers.get("content-type", "")
    media = sent.partition(";")[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    said = f"as {sent[:100]!r}" if sent else "without a Content-Type"
    raise ApiError(415, "unsupported_media_type", f"the body was sent {said}; this endpoint reads JSON only",
                   "send the header Content-Type: application/json with a JSON body (curl: -H 'Content-Type: application/json')")  # fmt: skip


Guard = Callable[[Request], Awaitable[Any]]


class ApiRoute(APIRoute):
    """Every route of the API: whatever its handler raises is answered in the error shape,
    and bodies are bounded (here, not by Starlette's limit, which answers in plain text).

    A dependency marked as the route's guard (``guard``: the token check) stays in the
    route's dependencies, so the OpenAPI document names its security scheme, but is
    called here, before the handler, not by FastAPI's dependency solving: that resolved
    every parameter of the route and of the dependency again, a third of a status read's
    CPU, to call one function of the request."""

    #: Answered the short way (``lean.lean_read``): a read by path alone.
    lean = False

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler, check = self._handler_and_guard()
        takes_body = self.body_field is not None
        audited = getattr(self.endpoint, "audited", True)
        # audited as the API names it, whatever prefix it is served under (``Section``)
        route = getattr(self.endpoint, "api_path", self.path)

        async def guarded(request: Request) -> Response:
            try:
                if check is not None:
                    await check(request)
                _check_body(request, takes_body)
                response = await handler(Request(request.scope, _limited(request.receive)))
            except Exception as exc:
                response = as_response(exc, *documented_at(request), request)
            # A route recorded on the job itself (a submit) leaves no job when it is
            # refused for the token's role: that refusal is audited like any other.
            refused = response.status_code == 403
            if (audited or refused) and request.method not in ("GET", "HEAD"):
                await audit.record(request, response, route)
            return response

        return guarded

    def _handler_and_guard(
        self,
    ) -> tuple[Callable[[Request], Coroutine[Any, Any, Response]], Guard | None]:
        """FastAPI's handler built without the guard dependency, and the guard. The route
        FastAPI builds for is this one, or, for a router included in a service, the
        inclusion's copy of it (its dependant holds the service's dependencies too)."""
        context = getattr(fastapi_routing, "_effective_route_context_var", None)
        current = context.get() if context is not None else None
        built: Any = current if getattr(current, "original_route", None) is self else self
        full = built.dependant
        guards = [d for d in full.dependencies if getattr(d.call, "guard", False)]
        if not guards:
            return super().get_route_handler(), None
        rest = [d for d in full.dependencies if not getattr(d.call, "guard", False)]
        built.dependant = replace(full, dependencies=rest)
        try:
            handler = super().get_route_handler()
            short = lean_read(built, handler)
            self.lean = short is not None  # a read by path alone (``lean``)
            handler = short or handler
        finally:
            built.dependant = full  # the OpenAPI document reads it
        (guard,) = guards
        return handler, guard.call


def documented_at(request: Request) -> tuple[str, str]:
    """Where the service serving ``request`` documents itself: (docs, schema)."""
    service = request.scope.get("app")
    docs, schema = getattr(service, "docs_url", None), getattr(service, "openapi_url", None)
    return docs or DOCS, schema or SCHEMA


def use_error_shape(
    service: FastAPI, answer: Callable[[Request, Exception], Awaitable[Response]] | None = None
) -> None:
    """Answer what a service's own routes refuse (validation, ``HTTPException``: 401, 404,
    405, ...) in the API's error shape, as ``create_api`` does. For a FastAPI service that
    mounts ``api_router`` and has routes of its own."""
    service.add_exception_handler(HTTPException, answer or handle)
    service.add_exception_handler(RequestValidationError, answer or handle)


async def handle(request: Request, exc: Exception) -> Response:
    """The app-level handler ``create_api`` installs: unknown paths, wrong methods."""
    response = as_response(exc, *documented_at(request), request)
    if response.status_code == 405:
        # Starlette names the methods of the first route that matched the path only (GET
        # and POST /jobs are two routes): name every method the document has for it.
        response.headers["Allow"] = _documented_methods(request)
    return response


def _documented_methods(request: Request) -> str:
    _, operations = _documented(request)
    return ", ".join(sorted(method.upper() for method in operations))


def _documented(request: Request) -> tuple[str, dict[str, Any]]:
    """The OpenAPI document's path template ``request`` is on, and its operations (by
    method): a literal path before a template (``/jobs/batch``, not ``/jobs/{job_id}``)."""
    paths = request.app.openapi()["paths"]
    path = request.url.path.removeprefix(request.scope.get("root_path", "").rstrip("/"))
    if path in paths:
        return path, paths[path]
    for template, operations in paths.items():
        pattern = "[^/]+".join(re.escape(part) for part in re.split(r"\{[^}]+\}", template))
        if re.fullmatch(pattern, path):
            return template, operations
    return "", {}


def _operation(request: Request) -> Operation | None:
    """What the document says the operation ``request`` called takes (None: a service
    without a document, or a route left out of it)."""
    try:
        template, _ = _documented(request)
        return Operation.of(request.app.openapi(), template, request.method)
    except Exception:  # a service whose document cannot be built: plain messages then
        log.debug("no OpenAPI document to explain a validation error with", exc_info=True)
        return None
