"""Celery's setting names on a Conveyor app's ``conf``.

``CelerySettings`` is Conveyor's ``Settings`` (so everything below reads it as usual)
that also takes Celery's names, each decided one way (docs/migrating-from-celery.md has
the table; every message names the setting as the user wrote it, ``CELERY_X in
django.conf:settings`` when it came from Django's settings):

- mapped: translated when set (``task_routes``, ``task_default_priority``, ...);
- accepted: Conveyor always behaves so, whatever the value (``ACCEPTED``: said at DEBUG),
  or with the values it behaves as (``ALREADY_SO``; another value raises);
- not used: nothing in Conveyor reads it, and dropping it loses nothing (``IGNORED``):
  a warning says so, once per line that set it;
- refused: ``NotSupported`` naming what to do instead (``UNSUPPORTED``);
- anything else: an unknown setting, with the nearest known name.
"""

from __future__ import annotations

import logging
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
from ..control.util import hide_password
from ..errors import ConfigurationError, EnqueueError
from ..names import check_queue_name, did_you_mean
from ..options import MAX_RETRIES_LIMIT, priority_value
from ..routing import check_routes
from .exceptions import NotSupported
from .schedules import to_conveyor

#: Settings whose Celery value is how Conveyor behaves: only these values are accepted
#: (another is refused, or, for a name in ``IGNORED``, said to be unused).
ALREADY_SO: dict[str, tuple[Any, ...]] = {
    "task_serializer": ("json",),
    "result_serializer": ("json",),
    "accept_content": (["json"], ["application/json"], ("json",)),
    "result_accept_content": (["json"], ["application/json"], ("json",)),
    "enable_utc": (True,),
    "task_track_started": (True,),
    "broker_connection_retry_on_startup": (True, False),
    "task_reject_on_worker_lost": (True,),
    "task_acks_on_failure_or_timeout": (True,),
    "worker_cancel_long_running_tasks_on_connection_loss": (False,),
    "worker_hijack_root_logger": (True,),
    "beat_scheduler": (None, "celery.beat:PersistentScheduler", "celery.beat.PersistentScheduler"),
    "task_compression": (None,),
    "result_compression": (None,),
}
#: Why another value of an ``ALREADY_SO`` setting is refused, and what to do (the
#: default: "Conveyor behaves as <first value>", "drop the setting").
OTHER_VALUE: dict[str, tuple[str, str]] = {
    "task_reject_on_worker_lost": (
        "a job whose worker dies is always delivered again, at most max_lost_leases times",
        "drop the setting, and give a task that must never run twice acks_late=False",
    ),
    "task_acks_on_failure_or_timeout": (
        "a job that fails or times out ends FAILURE (acknowledged), as Celery's default",
        "drop the setting; to run a failed job again, use autoretry_for or self.retry()",
    ),
    "beat_scheduler": (
        "the scheduler keeps its schedules in Conveyor's store, editable while it runs; "
        "it does not read django_celery_beat's tables",
        "drop the setting and move the periodic tasks to beat_schedule, or add them in "
        "Conveyor's Schedules (the Django admin, the dashboard, `conveyor schedules add`)",
    ),
    "task_compression": (
        "jobs are stored as JSON, uncompressed",
        "drop the setting; store large data elsewhere and pass its key",
    ),
    "result_compression": (
        "results are stored as JSON, uncompressed",
        "drop the setting; store large results elsewhere and return their key",
    ),
}
#: Settings whose every value is how Conveyor behaves: accepted, said at DEBUG (why).
ACCEPTED: dict[str, str] = {
    "worker_send_task_events": "job and worker events are always recorded (the dashboard "
    "and `conveyor inspect` read them; no Flower -E needed)",
    "task_send_sent_event": "a job's enqueue is always recorded (its record and JobEnqueued event)",
    "result_extended": "job records always keep the task name, args, kwargs, queue, worker "
    "and each attempt",
    "worker_redirect_stdouts": "the worker leaves a task's print() on its stdout/stderr, "
    "as written (no log records are made of it)",
    "worker_redirect_stdouts_level": "the worker leaves a task's print() on its "
    "stdout/stderr, as written (no log records are made of it, at any level)",
}
#: Settings nothing in Conveyor reads, and why dropping them loses nothing: a warning.
IGNORED: dict[str, str] = {
    "broker_pool_limit": "Conveyor manages its own connections to the store",
    "cache_backend": "Conveyor keeps no cache: results are read from the job records",
    "result_backend_transport_options": "results are kept in the job records, in the "
    "broker's store",
    "beat_schedule_filename": "the scheduler keeps its state in the store, not in a file",
    "broker_transport_options": "Conveyor's stores take no transport options",
    # Celery's default is False (Conveyor's behaviour, accepted); True is not done,
    # and nothing is lost by it: the jobs run on
    "worker_cancel_long_running_tasks_on_connection_loss": "a worker does not cancel its "
    "running jobs when the store is unreachable: they run on, and their outcome is stored "
    "when it answers again (docs/worker.md)",
    # True (Celery's default) is what Conveyor does; False is not, and is warned of: a
    # destination the root logger had (Django's LOGGING) is replaced, for that process
    "worker_hijack_root_logger": "the worker, `conveyor up` and `manage.py conveyor` put "
    "their own handler (stderr) on the root logger, in place of the root's handlers "
    "(Django's LOGGING root too); loggers given handlers of their own keep them",
}
#: Why ``broker_transport_options['visibility_timeout']`` is not used (it is not a lease).
VISIBILITY_TIMEOUT = (
    "Conveyor renews a running job's lease while its worker lives, so a long job is never "
    "delivered again, and a dead worker's jobs return after lease_seconds without a "
    "heartbeat (30 s), or at once when its pid is seen dead; set lease_seconds only to "
    "change how soon"
)
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
#: Celery's names that map onto a Conveyor setting (``CelerySettings._mapped``).
MAPPED = ("broker", "task_routes", "task_default_queue", "task_max_retries", "result_expires",
          "task_default_priority")  # fmt: skip


def store_url(url: str | None) -> str | None:
    """A Celery broker or result backend URL as the URL of a Conveyor store; None for no
    URL, ``rpc://`` or a URL of something else (``django-db``, ``amqp://``)."""
    if url is None:
        return None
    for prefix in ("db+", "sqla+"):
        url = url.removeprefix(prefix)
    scheme, sep, rest = url.partition("://")
    scheme = scheme.split("+", 1)[0].lower()  # postgresql+psycopg -> postgresql
    if scheme in {"redis", "rediss", "sqlite", "postgres", "postgresql", "memory"} and sep:
        return f"{scheme}://{rest}"
    return None


log = logging.getLogger("conveyor.celery")

#: Conveyor's own source files: a warning about a setting names the first line outside them.
_OWN_FILES = str(Path(__file__).resolve().parent.parent) + os.sep


def _not_used(what: str, why: str) -> None:
    """Warn, once per line that set it, that a setting is not used, and why."""
    if _said_here():
        warnings.warn(f"{what} is not used: {why}; drop the setting to silence this",
                      stacklevel=_caller_level())  # fmt: skip


def _priority(value: Any, written: str) -> int:
    try:
        return priority_value(value)
    except EnqueueError as exc:
        raise ConfigurationError(f"{written}: {exc} (Conveyor's scale: 9 runs first, as on "
                                 "RabbitMQ; on Celery's Redis transport 0 ran first)") from None  # fmt: skip


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
    #: The priority of this app's tasks that set none (None: Conveyor's, 5), on Conveyor's
    #: scale as every priority here: 0-9, higher runs first.
    task_default_priority: int | None = None
    #: How the user wrote the settings that name the store, by Celery's name
    #: (``broker_url``: ``CELERY_BROKER_URL in django.conf:settings``), for their errors;
    #: ``to_write``: how the values about to be set were written (``note_written``), for
    #: every message about one of them.
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
        try:
            for key, value in {**(values or {}), **more}.items():
                setattr(self, key, value)
        finally:
            self.to_write.clear()  # notes of names set directly, or not reached

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def _named(self, key: str) -> str:
        return self.written.get(key, f"the app's conf.{key}")

    def backend_named_by(self) -> str:
        """The Celery setting the store's URL came from, as the user wrote it."""
        for key in ("broker_url", "result_backend"):
            if store_url(getattr(self, key)):
                return self._named(key)
        return super().backend_named_by()

    def note_written(self, names: Mapping[str, str]) -> None:
        """How the user wrote the Celery names about to be set (``{"broker_url": ...}``);
        a name set without a note was set on ``conf``."""
        for key, written in names.items():
            key = "broker_url" if key.lower() == "broker" else key.lower()
            self.to_write[key] = written

    def _wrote(self, key: str) -> str:
        """How the value being set was written (``CELERY_X in django.conf:settings``),
        remembered for the settings that name the store."""
        written = self.to_write.pop(key, f"the app's conf.{key}")
        if key in ("broker_url", "result_backend"):
            self.written[key] = written
        return written

    def set_celery(self, key: str, value: Any) -> None:
        """Set one of Celery's names (see the module docstring)."""
        key = key.lower()
        written = self._wrote("broker_url" if key == "broker" else key)
        if self._mapped(key, value, written):
            pass
        elif key in CELERY_FIELDS:
            object.__setattr__(self, key, _seconds(value))
            if key in ("beat_schedule", "timezone"):
                self._schedules()
        elif not self._taken(key, value, written):
            raise self._unknown(key, written)
        if self.on_change is not None:
            self.on_change()

    def _taken(self, key: str, value: Any, written: str) -> bool:
        """Accept, ignore (with a warning) or refuse a Celery name Conveyor sets nothing
        for; False for a name it does not know."""
        if key in ACCEPTED:
            log.debug("%s (%r): nothing to do, %s", written, value, ACCEPTED[key])
        elif key in ALREADY_SO and (value in ALREADY_SO[key] or key not in IGNORED):
            if value not in ALREADY_SO[key]:
                why, instead = OTHER_VALUE.get(key, (f"Conveyor behaves as {key}="
                                                     f"{ALREADY_SO[key][0]!r}", "drop the setting"))  # fmt: skip
                raise NotSupported(f"{written} ({value!r})", why, instead)
        elif key == "broker_transport_options":
            self._transport_options(value, written)
        elif key in IGNORED:
            _not_used(f"{written} ({value!r})", IGNORED[key])
        elif key in UNSUPPORTED:
            raise NotSupported(written, *UNSUPPORTED[key])
        else:
            return False
        return True

    def _transport_options(self, value: Any, written: str) -> None:
        options = dict(value or {})
        if "visibility_timeout" in options:
            _not_used(f"visibility_timeout ({options.pop('visibility_timeout')!r}) in {written}",
                      f"it is not a lease: {VISIBILITY_TIMEOUT}")  # fmt: skip
        if options:
            _not_used(f"{written} ({options!r})", IGNORED["broker_transport_options"])

    def _unknown(self, key: str, written: str) -> ConfigurationError:
        """An unknown name, with the nearest known one spelled as the user spells names."""
        spelled = written.split(" ")[0] if " in " in written else key
        prefix = spelled[: len(spelled) - len(key)] if spelled.lower().endswith(key) else ""
        known = {*Settings.__dataclass_fields__, *CELERY_FIELDS, *MAPPED, *ACCEPTED,
                 *ALREADY_SO, *IGNORED, *UNSUPPORTED} - {"broker"}  # fmt: skip
        if spelled.isupper():
            known = {f"{prefix}{name.upper()}" for name in known}
        return ConfigurationError(
            f"unknown setting: {written}; {did_you_mean(spelled, known)}"
            "conveyor.celery takes Conveyor's settings and the Celery names in docs/migrating-from-celery.md "
            "(the settings table); fix the name, or drop the setting if it was for a Celery "
            "feature the table does not list"
        )

    def _mapped(self, key: str, value: Any, written: str) -> bool:
        """Set a Celery name that maps onto a Conveyor setting; False for another name."""
        if key in ("broker", "broker_url", "result_backend"):
            key = "broker_url" if key == "broker" else key
            object.__setattr__(self, key, value)
            self._store()
        elif key == "task_default_priority":
            object.__setattr__(self, key, _priority(value, written))
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
        """The store from the broker's URL (or the result backend's when no broker is
        set). A result backend is never refused: results are kept with their jobs, in the
        store, whatever it names, so none is lost by not writing them elsewhere; a
        different one is said to be unused (code reading results from it finds none)."""
        broker = store_url(self.broker_url)
        if self.broker_url is not None and broker is None:
            scheme = self.broker_url.partition("://")[0]  # the rest may hold a password
            raise NotSupported(f"{self._named('broker_url')} ({scheme}://...)", "Conveyor "
                               "keeps jobs in Redis, PostgreSQL or SQLite",
                               "use a redis://, postgresql:// or sqlite:/// URL")  # fmt: skip
        results = store_url(self.result_backend)
        other = results is None or (broker is not None and results != broker)
        if self.result_backend not in (None, "rpc://") and other:
            _not_used(f"{self._named('result_backend')} "
                      f"({hide_password(str(self.result_backend))!r})",
                      "conveyor.celery keeps each job's result in its record, in the broker's "
                      "store (AsyncResult(id) and the dashboard read it there); code that reads "
                      "results from that backend directly finds none")  # fmt: skip
        url = broker or results
        if url is not None:
            self.backend_url = url

    def _schedules(self) -> None:
        """``beat_schedule`` as Conveyor's ``schedule`` (what the scheduler reads)."""
        self.schedule = dict(
            to_conveyor(name, entry, self.timezone) for name, entry in self.beat_schedule.items()
        )
