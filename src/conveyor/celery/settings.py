"""Celery's setting names on a Conveyor app's ``conf``.

``CelerySettings`` is Conveyor's ``Settings`` (so everything below reads it as usual)
that also takes Celery's names: a name that maps is translated when it is set; a name
whose Celery value Conveyor already behaves as is accepted with that value only; any
other name raises, saying what to do instead. Nothing is dropped silently.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ConfigurationError
from ..names import check_queue_name
from ..options import MAX_RETRIES_LIMIT
from ..routing import check_routes
from .exceptions import NotSupported
from .schedules import to_conveyor

#: Settings whose Celery value is how Conveyor behaves: only these values are accepted.
ALREADY_SO: dict[str, tuple[Any, ...]] = {
    "task_serializer": ("json",),
    "result_serializer": ("json",),
    "accept_content": (["json"], ["application/json"], ("json",)),
    "result_accept_content": (["json"], ["application/json"], ("json",)),
    "enable_utc": (True,),
    "task_track_started": (True,),
    "broker_connection_retry_on_startup": (True, False),
    "result_extended": (True, False),
}
#: Celery settings with no Conveyor meaning, and what to do instead.
UNSUPPORTED: dict[str, tuple[str, str]] = {
    "worker_concurrency": ("concurrency is the worker's option", "pass -c N to `conveyor worker`"),
    "task_always_eager": (
        "jobs always go through the store",
        "use conveyor.testing.drain(app) in tests",
    ),
    "task_annotations": (
        "tasks take their options where they are declared",
        "pass the options to @app.task",
    ),
    "task_create_missing_queues": ("queues need no declaring", "drop the setting"),
    "task_queues": (
        "queues need no declaring; a worker consumes what -Q names",
        "use task_routes and `conveyor worker -Q`",
    ),
    "task_default_rate_limit": (
        "Conveyor has no rate limits yet",
        "give the task its own queue and a worker with -c N",
    ),
}
#: Celery's names kept as they are on the Celery app (read by ``conveyor.celery``).
CELERY_FIELDS = ("timezone", "task_soft_time_limit", "task_time_limit", "task_acks_late",
                 "task_default_retry_delay", "task_ignore_result", "broker_url", "result_backend",
                 "beat_schedule")  # fmt: skip


def store_url(url: str | None, what: str) -> str | None:
    """A Celery broker or result backend URL as the URL of a Conveyor store."""
    if url is None or url.startswith("rpc://"):
        return None
    for prefix in ("db+", "sqla+"):
        url = url.removeprefix(prefix)
    scheme, sep, rest = url.partition("://")
    scheme = scheme.split("+", 1)[0].lower()  # postgresql+psycopg -> postgresql
    if scheme in {"redis", "rediss", "sqlite", "postgres", "postgresql", "memory"} and sep:
        return f"{scheme}://{rest}"
    raise NotSupported(f"{what} {url.split('://')[0]}://", "Conveyor keeps jobs in Redis, "
                       "PostgreSQL or SQLite", "use a redis://, postgresql:// or sqlite:/// URL")  # fmt: skip


#: Conveyor's own source files: a warning about a setting names the first line outside them.
_OWN_FILES = str(Path(__file__).resolve().parent.parent) + os.sep


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside Conveyor, as its caller passes it to
    ``warnings.warn``: the user's line that set the value (``Celery(backend=...)``,
    ``app.conf.update``, ``config_from_object``), however many of Conveyor's calls lie
    between it and the warning."""
    level, frame = 1, sys._getframe(1)  # level 1: the frame that calls warnings.warn
    while frame.f_back is not None and _inside(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    return level


def _inside(filename: str) -> bool:
    return str(Path(filename).resolve()).startswith(_OWN_FILES)


def _said_here() -> bool:
    """Whether a warning about the app's settings is said in this process: not in the
    children of a worker or of ``conveyor up`` (started by spawn, forkserver or fork, each
    imports the app again), where the same warning would be printed once per child; the
    process that started them said it already."""
    return multiprocessing.parent_process() is None


def _routes(value: Any) -> dict[str, str | dict[str, Any]]:
    tables = value if isinstance(value, list | tuple) else [value]
    routes: dict[str, str | dict[str, Any]] = {}
    for table in tables:
        if not isinstance(table, Mapping):
            raise NotSupported("task_routes given as a router function", "routes are "
                               "matched by name", "give a dict of {'glob': {'queue': ...}}")  # fmt: skip
        for pattern, target in table.items():
            if isinstance(target, Mapping):
                extra = set(target) - {"queue", "priority"}
                if extra:
                    raise NotSupported(f"task_routes[{pattern!r}] keys {', '.join(sorted(extra))}",
                                       "Conveyor routes by queue name (no exchanges)",
                                       "route with 'queue' (and 'priority')")  # fmt: skip
                target = dict(target)
            routes[pattern] = target
    check_routes(routes)
    return routes


def _seconds(value: Any) -> Any:
    return value.total_seconds() if isinstance(value, timedelta) else value


@dataclass
class CelerySettings(Settings):
    """``app.conf`` of a ``conveyor.celery.Celery`` app: Conveyor's settings and Celery's names."""

    #: Celery's default queue is named "celery": start scripts (``-Q celery``) carry over.
    default_queue: str = "celery"
    timezone: str = "UTC"
    task_soft_time_limit: float | None = None
    task_time_limit: float | None = None
    #: None: Conveyor's default (acknowledge after the task ends: nothing lost on a crash).
    task_acks_late: bool | None = None
    task_default_retry_delay: float = 180.0
    task_ignore_result: bool = False
    broker_url: str | None = None
    result_backend: str | None = None
    beat_schedule: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: How the user wrote the settings that name the store, by Celery's name
    #: (``broker_url``: ``CELERY_BROKER_URL in django.conf:settings``), for their errors;
    #: ``to_write``: how the values about to be set were written (``note_written``).
    written: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    to_write: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    #: Called after a Celery name changed (the app refreshes its tasks' options).
    on_change: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_built", True)

    def __setattr__(self, key: str, value: Any) -> None:
        built = self.__dict__.get("_built", False)
        direct = key in Settings.__dataclass_fields__ and key != "task_routes"  # also Celery's
        if not built or direct or key == "on_change":
            object.__setattr__(self, key, value)
        else:
            self.set_celery(key, value)

    def update(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        for key, value in {**(values or {}), **more}.items():
            setattr(self, key, value)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def backend_named_by(self) -> str:
        """The Celery setting the store's URL came from, as the user wrote it."""
        for key in ("broker_url", "result_backend"):
            if store_url(getattr(self, key), key):
                return self.written.get(key, f"the app's conf.{key}")
        return super().backend_named_by()

    def note_written(self, names: Mapping[str, str]) -> None:
        """How the user wrote the Celery names about to be set (``{"broker_url": ...}``);
        a name set without a note was set on ``conf``."""
        for key, written in names.items():
            key = "broker_url" if key.lower() == "broker" else key.lower()
            if key in ("broker_url", "result_backend"):
                self.to_write[key] = written

    def _wrote(self, key: str) -> None:
        self.written[key] = self.to_write.pop(key, f"the app's conf.{key}")

    def set_celery(self, key: str, value: Any) -> None:
        """Set one of Celery's names (see the module docstring)."""
        key = key.lower()
        if self._mapped(key, value):
            pass
        elif key in CELERY_FIELDS:
            object.__setattr__(self, key, _seconds(value))
            if key in ("beat_schedule", "timezone"):
                self._schedules()
        elif key in ALREADY_SO:
            if value not in ALREADY_SO[key]:
                raise NotSupported(f"{key}={value!r}", "Conveyor behaves as "
                                   f"{key}={ALREADY_SO[key][0]!r}", "drop the setting")  # fmt: skip
            return
        elif key in UNSUPPORTED:
            raise NotSupported(key, *UNSUPPORTED[key])
        else:
            raise ConfigurationError(
                f"unknown setting {key!r} for conveyor.celery; it takes Conveyor's settings "
                f"({', '.join(sorted(Settings.__dataclass_fields__))}) and Celery's names listed "
                "in docs/migrating-from-celery.md"
            )
        if self.on_change is not None:
            self.on_change()

    def _mapped(self, key: str, value: Any) -> bool:
        """Set a Celery name that maps onto a Conveyor setting; False for another name."""
        if key in ("broker", "broker_url", "result_backend"):
            key = "broker_url" if key == "broker" else key
            object.__setattr__(self, key, value)
            self._wrote(key)
            self._store()
        elif key == "task_routes":
            object.__setattr__(self, "task_routes", _routes(value))
        elif key == "task_default_queue":
            self.default_queue = check_queue_name(value, "task_default_queue")
        elif key == "task_max_retries":
            self.default_max_retries = MAX_RETRIES_LIMIT if value is None else value
        elif key == "result_expires":
            self.result_ttl = float(_seconds(value))
        else:
            return False
        return True

    def _store(self) -> None:
        broker = store_url(self.broker_url, "broker")
        results = store_url(self.result_backend, "result_backend")
        if broker and results and broker != results and _said_here():
            warnings.warn(
                f"conveyor.celery keeps results with their jobs, in the broker's store; "
                f"result_backend {results!r} is not used (drop the setting to silence this)",
                stacklevel=_caller_level(),
            )
        url = broker or results
        if url is not None:
            self.backend_url = url

    def _schedules(self) -> None:
        """``beat_schedule`` as Conveyor's ``schedule`` (what the scheduler reads)."""
        self.schedule = dict(
            to_conveyor(name, entry, self.timezone) for name, entry in self.beat_schedule.items()
        )
