"""What every route of one API gets: the app it serves and its limits. Built per
``api_router`` call and closed over by the handlers, so two APIs never share state."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from .errors import ApiError, ApiRoute
from .models import ErrorBody

if TYPE_CHECKING:
    from ..app import App

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
            known = (
                ", ".join(exposed) if exposed else "none (the app's http_tasks setting is empty)"
            )
            raise ApiError(
                400, "unknown_task", f"task {task!r} is not exposed over HTTP; exposed tasks: {known}",
                "use an exposed name, or add a pattern for it to app.conf.http_tasks",
            )  # fmt: skip


def router(tag: str) -> APIRouter:
    """A router whose handlers answer errors in the API's shape."""
    return APIRouter(route_class=ApiRoute, tags=[tag], responses=ERRORS)


def posix(value: float | datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else value
