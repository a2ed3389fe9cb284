"""A read by path alone (``GET /jobs/{id}``, a workflow's status) answered without
FastAPI's request handler, which for every request resolves the route's path, query,
header and cookie parameters, parses the query string and cookies, and opens telemetry
and endpoint contexts: a sixth of a status read's CPU for one validated path segment.

Only the common case takes the short way: every path parameter valid. Anything else
(a parameter too long, say) goes to FastAPI's handler, which answers it as before, so
the validation errors keep their shape. The response is validated and serialized by
the route's own response field, as FastAPI does (``serialize_response``'s JSON path).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.datastructures import DefaultPlaceholder

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def lean_read(route: Any, handler: Handler) -> Handler | None:
    """The short handler for ``route`` (an ``APIRoute``, or its inclusion in a service)
    whose ``dependant`` no longer holds the guard; None where it does not apply:
    anything but a GET whose only inputs are path parameters, answered as JSON by a
    response model with no include/exclude options."""
    dependant, field = route.dependant, route.response_field
    call = dependant.call
    plain = (
        route.methods == {"GET"}
        and dependant.path_params
        and not (dependant.query_params or dependant.header_params or dependant.cookie_params)
        and not (dependant.body_params or dependant.dependencies)
        and all(getattr(dependant, f"{name}_param_name") is None for name in _SPECIAL)
        and field is not None
        and isinstance(route.response_class, DefaultPlaceholder)
        and route.status_code in (None, 200)
        and route.response_model_include is None
        and route.response_model_exclude is None
        and not (route.response_model_exclude_unset or route.response_model_exclude_defaults)
        and not route.response_model_exclude_none
        and inspect.iscoroutinefunction(call)
    )
    if not plain:
        return None
    params = [(p.name, p.alias, p) for p in dependant.path_params]
    by_alias = route.response_model_by_alias

    async def read(request: Request) -> Response:
        values: dict[str, Any] = {}
        given = request.path_params
        for name, alias, param in params:
            value, errors = param.validate(given.get(alias), values, loc=("path", alias))
            if errors:
                return await handler(request)  # FastAPI answers the invalid parameter
            values[name] = value
        content = await call(**values)
        if isinstance(content, Response):
            return content
        value, errors = field.validate(content, {}, loc=("response",))
        if errors:
            return await handler(request)  # FastAPI reports it (a bug: answered as a 500)
        return Response(
            field.serialize_json(value, by_alias=by_alias), media_type="application/json"
        )

    return read


_SPECIAL = ("request", "websocket", "http_connection", "response", "background_tasks",
            "security_scopes")  # fmt: skip
