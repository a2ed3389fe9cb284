"""What every route of one API gets: the app it serves and its limits. Built per
``api_router`` call and closed over by the handlers, so two APIs never share state."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter

from ..names import did_you_mean, listed
from .errors import ApiError, ApiRoute
from .models import ErrorBody

if TYPE_CHECKING:
    from ..app import App

F = TypeVar("F", bound=Callable[..., Any])

#: The longest a request may wait for a job's result (seconds).
MAX_WAIT = 60.0

#: Documented on every route: every error has one shape.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in [
        (400, "A bad request"), (401, "No valid token"), (403, "The token's role is too low"),
        (404, "Not found"), (409, "The job's state does not allow it"),
        (413, "Too large"), (422, "Invalid fields"), (503, "The backend is unreachable"),
    ]
}  # fmt: skip
#: Documented on the routes that read a JSON body (``errors.ApiRoute`` checks its type).
NOT_JSON: dict[int | str, dict[str, Any]] = {
    415: {"model": ErrorBody, "description": "The body is not sent as application/json"}
}


@dataclass(frozen=True)
class Api:
    app: App
    max_wait: float = MAX_WAIT

    def exposed(self) -> list[str]:
        """Registered task names the app lets HTTP clients enqueue (``http_tasks``)."""
        patterns = self.app.conf.http_tasks
        return sorted(n for n in self.app.tasks if any(fnmatch.fnmatchcase(n, p) for p in patterns))

    def check_exposed(self, task: str) -> None:
        patterns = self.app.conf.http_tasks
        if task in self.app.tasks and any(fnmatch.fnmatchcase(task, p) for p in patterns):
            return
        exposed = self.exposed()
        if task not in exposed:
            known = listed(exposed, "none (the app's http_tasks setting is empty)")
            guess = did_you_mean(task, exposed)
            raise ApiError(
                400, "unknown_task", f"task {task!r} is not exposed over HTTP; {guess}exposed tasks: {known}",
                "use an exposed name, or add a pattern for it to app.conf.http_tasks", field="task",
            )  # fmt: skip


class Section:
    """One resource's routes (``routes(api, section)`` in each module), added straight to
    one router under ``prefix``, never through an included router: FastAPI matches
    included routers level by level on every request (one router per module under the
    API's was about 20 route matches for a status read; now one list). Each route answers
    errors in the API's shape (``ApiRoute``) and documents them."""

    def __init__(
        self,
        router: APIRouter,
        tag: str,
        dependencies: Sequence[Any] = (),
        prefix: str = "",
        include_in_schema: bool = True,
    ) -> None:
        self.router, self.tag, self.dependencies = router, tag, list(dependencies)
        self.prefix, self.include_in_schema = prefix, include_in_schema

    def route(self, method: str, path: str, **options: Any) -> Callable[[F], F]:
        responses = {**ERRORS, **options.pop("responses", {})}

        def add(endpoint: F) -> F:
            endpoint.api_path = path  # type: ignore[attr-defined] # the audit trail's name for it
            self.router.add_api_route(
                self.prefix + path, endpoint, methods=[method], tags=[self.tag],
                dependencies=self.dependencies, responses=responses,
                include_in_schema=self.include_in_schema, route_class_override=ApiRoute,
                **options,
            )  # fmt: skip
            route = self.router.routes[-1]  # the one just added
            if isinstance(route, ApiRoute) and route.body_field is not None:
                # Known only once FastAPI has read the endpoint: added to the fields it
                # built from ``responses`` too (the same ErrorBody field as every error's),
                # so the document gives the 415 its body schema.
                route.responses = {**route.responses, **NOT_JSON}
                route.response_fields = {**route.response_fields, 415: route.response_fields[400]}
            return endpoint

        return add

    def get(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route("POST", path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route("DELETE", path, **options)


def posix(value: float | datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else value
