"""Which queue (and default priority) a task's jobs go to."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from .errors import ConfigurationError
from .names import check_queue_name


def route_for(task_name: str, routes: dict[str, str | dict[str, Any]]) -> dict[str, Any]:
    """The first route whose glob matches ``task_name``, as {"queue": ..., ...}, or {}."""
    for pattern, target in routes.items():
        if fnmatchcase(task_name, pattern):
            return _route(pattern, target)
    return {}


def check_routes(routes: dict[str, str | dict[str, Any]]) -> None:
    """Refuse a bad route when the app is built, rather than at the first call it matches."""
    for pattern, target in routes.items():
        _route(pattern, target)


def _route(pattern: str, target: str | dict[str, Any]) -> dict[str, Any]:
    where = f"task_routes[{pattern!r}]"
    if not isinstance(target, dict):
        return {"queue": check_queue_name(target, where)}
    if "queue" not in target:
        raise ConfigurationError(f"{where} must be a queue name or a dict with a 'queue' key")
    check_queue_name(target["queue"], where)
    return dict(target)
