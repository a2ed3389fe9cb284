"""Which queue (and default priority) a task's jobs go to."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from .errors import ConfigurationError


def route_for(task_name: str, routes: dict[str, str | dict[str, Any]]) -> dict[str, Any]:
    """The first route whose glob matches ``task_name``, as {"queue": ..., ...}, or {}."""
    for pattern, target in routes.items():
        if fnmatchcase(task_name, pattern):
            if isinstance(target, str):
                return {"queue": target}
            if isinstance(target, dict) and isinstance(target.get("queue"), str):
                return dict(target)
            raise ConfigurationError(
                f"task_routes[{pattern!r}] must be a queue name or a dict with a 'queue' key"
            )
    return {}
