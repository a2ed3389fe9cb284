"""The Conveyor app a Django project runs on, found or built once per process:

1. the app ``CONVEYOR["APP"]`` names (``"proj.celery:app"``);
2. else the project's ``conveyor.celery`` app, as Celery finds it: the current one
   (``proj/__init__.py`` imports ``celery_app``, so it is built when the settings load);
3. else one built from ``settings.CONVEYOR``.

In the first two cases that very app object is the project's (its tasks, its store, the
one ``delay()`` writes to) and learns Django's side here (``adopt``); a
``CONVEYOR["BACKEND"]`` that names another store is a check error (conveyor.E007).

Settings (every key optional)::

    CONVEYOR = {
        "APP": "proj.celery:app",  # the project's own app (then BACKEND, ROUTES, ... are its)
        "BACKEND": "postgresql://localhost/mysite",  # default: $CONVEYOR_BACKEND or SQLite
        "DATABASE": "default",   # the Django database the PostgreSQL store shares (see on-commit)
        "ROUTES": {"visits.tasks.*": "hikvision"},
        "SCHEDULES": {"nightly": {"task": "reports.tasks.nightly", "cron": "0 1 * * *"}},
        "WORKERS": {"web": ["default"], "devices": ["hikvision"]},  # worker groups: queues
        "RESULT_TTL": 86400,     # any other key is an App setting (app.conf), upper-cased
    }
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.utils.module_loading import import_string

from conveyor import App, Task
from conveyor.celery import current as celery
from conveyor.context import TaskContext
from conveyor.errors import ConfigurationError, UnknownTask
from conveyor.events import Middleware
from conveyor.loader import load_app

from .compat import Task as DjangoTask
from .compat import task_backends
from .task import DEFAULT_QUEUE_NAME
from .transaction import joined_connection
from .worker import watch_outcomes

#: What ``manage.py conveyor`` passes as ``-A``, and what every worker child imports.
APP_PATH = "conveyor.contrib.django.app:app"
#: Keys of ``settings.CONVEYOR`` that are not App settings.
OWN_KEYS = {"APP", "BACKEND", "DATABASE", "ROUTES", "SCHEDULES", "WORKERS"}
#: Keys of ``settings.CONVEYOR`` that still apply when the project has an app of its own
#: (any other is the app's own configuration: its ``conf``, its CELERY_ settings).
BESIDE_AN_APP = {"APP", "BACKEND", "DATABASE", "WORKERS"}

_lock = threading.Lock()
_app: DjangoApp | None = None


class DjangoApp(App):
    """An ``App`` that knows Django's side: the queues named in ``TASKS``, and the tasks a
    worker has not imported yet (looked up by their import path, as Django names them)."""

    @property
    def command(self) -> str:
        return "python manage.py conveyor"

    def joined_connection(self) -> Any:
        """Django's connection when the caller is inside ``transaction.atomic()`` on the
        PostgreSQL database the jobs live in: every job stored then is written in that
        transaction (conveyor.contrib.django.transaction); None otherwise."""
        return joined_connection(self, conveyor_settings().get("DATABASE"))

    def declared_queues(self) -> list[str]:
        queues = set(super().declared_queues())
        for backend in task_backends.all():
            if getattr(backend, "is_conveyor", False):
                # Django's default queue name is no queue: its tasks go where the routes,
                # else the app's default queue ("celery" on a conveyor.celery app), send them.
                queues.update(q for q in backend.queues if q != DEFAULT_QUEUE_NAME)
        return sorted(queues)

    def get_task(self, name: str) -> Task[Any, Any]:
        try:
            return super().get_task(name)
        except UnknownTask as unknown:
            try:
                found = import_string(name)
            except ImportError:
                # Asked in any process (a worker, the scheduler, the admin, the API), so
                # the advice names none of them.
                raise UnknownTask(
                    f"{unknown}; nor can it be imported: check the import path, that its "
                    "module is importable where the project runs, and that the function is "
                    "decorated with @task"
                ) from None
            if not isinstance(found, DjangoTask):
                raise
            found.get_backend().validate_task(found)  # registers it here
            return super().get_task(name)


class CloseConnections(Middleware):
    """Close Django's database connections that are broken or past ``CONN_MAX_AGE``
    before and after every job, as Django does around each request."""

    def execute(self, context: TaskContext, call_next: Callable[[], Any]) -> Any:
        close_old_connections()
        try:
            return call_next()
        finally:
            close_old_connections()

    async def aexecute(self, context: TaskContext, call_next: Callable[[], Any]) -> Any:
        await sync_to_async(close_old_connections)()
        try:
            return await call_next()
        finally:
            await sync_to_async(close_old_connections)()


def conveyor_settings() -> dict[str, Any]:
    value = getattr(settings, "CONVEYOR", {}) or {}
    if not isinstance(value, dict):
        raise ConfigurationError(f"settings.CONVEYOR must be a dict, not {type(value).__name__}")
    return value


def project_app() -> App | None:
    """The project's own app: ``CONVEYOR["APP"]``, else the current ``conveyor.celery``
    app (Celery's rule), else None."""
    conf = conveyor_settings()
    path = conf.get("APP")
    if path is not None:
        if not isinstance(path, str):
            raise ConfigurationError(
                'settings.CONVEYOR["APP"] is the import path of an app, e.g. "proj.celery:app"'
            )
        found: App | None = load_app(path)
    else:
        found = celery.find_current()
    if found is None:
        return None
    others = sorted(set(conf) - BESIDE_AN_APP)
    if others:
        raise ConfigurationError(
            f"settings.CONVEYOR has {', '.join(others)}, but the project's app "
            f"{describe(found)} has its own configuration: set them there (app.conf, or "
            "its CELERY_ settings)",
            hint=f"Beside the project's app settings.CONVEYOR takes only "
            f"{', '.join(sorted(BESIDE_AN_APP))}: move {', '.join(others)} to the app's "
            "configuration, or drop it there.",
        )
    return found


def describe(app: App) -> str:
    """An app as messages name it: its import path when known, else its kind and name."""
    if app.main and app.main != APP_PATH:
        return app.main
    return f"{type(app).__name__.removeprefix('Django')}({app.name!r})"


def adopt(app: App) -> DjangoApp:
    """Give the project's own app Django's side: ``DjangoApp``'s methods before its
    class's, and the worker groups of ``WORKERS``. On that very object, not a wrapper:
    its tasks, ``delay()`` and ``current_app`` are bound to it, and a second app is what
    left jobs in one store and workers on another."""
    if isinstance(app, DjangoApp):
        return app
    app.__class__ = type(f"Django{type(app).__name__}", (DjangoApp, type(app)), {})
    assert isinstance(app, DjangoApp)
    if conveyor_settings().get("WORKERS"):
        app.conf.worker_groups = [",".join(queues) for queues in worker_groups().values()]
    return app


def build_app() -> DjangoApp:
    """The project's app (``project_app``), else a new one from the settings (``get_app``
    keeps one per process)."""
    found = project_app()
    if found is not None:
        app = adopt(found)
        app.events.use(CloseConnections())
        return app
    conf = conveyor_settings()
    options = {key.lower(): value for key, value in conf.items() if key not in OWN_KEYS}
    if conf.get("ROUTES"):
        options["task_routes"] = conf["ROUTES"]
    if conf.get("SCHEDULES"):
        options["schedule"] = conf["SCHEDULES"]
    if conf.get("WORKERS") and "worker_groups" not in options:
        # ``manage.py conveyor up`` starts one worker child per group of CONVEYOR["WORKERS"]
        options["worker_groups"] = [",".join(queues) for queues in worker_groups().values()]
    try:
        app = DjangoApp("django", conf.get("BACKEND"), **options)
    except TypeError as exc:  # an unknown setting
        raise ConfigurationError(
            f"settings.CONVEYOR: {exc}",
            hint=f"settings.CONVEYOR's own keys are {', '.join(sorted(OWN_KEYS))}; any "
            "other is one of these settings, upper-cased (e.g. RESULT_TTL).",
        ) from None
    app.main = APP_PATH
    app.events.use(CloseConnections())
    return app


def get_app() -> DjangoApp:
    """This process's Conveyor app, built from the settings on first use."""
    global _app
    if _app is None:
        with _lock:
            if _app is None:
                _app = build_app()
                watch_outcomes(_app)
    return _app


def worker_groups() -> dict[str, list[str]]:
    """``CONVEYOR["WORKERS"]``: worker group name -> the queues its workers consume."""
    groups = conveyor_settings().get("WORKERS") or {}
    if not isinstance(groups, dict) or not all(
        isinstance(q, list | tuple) and all(isinstance(n, str) for n in q) for q in groups.values()
    ):
        raise ConfigurationError(
            'settings.CONVEYOR["WORKERS"] must map a group name to a list of queue names, '
            'e.g. {"devices": ["hikvision"]}'
        )
    return {name: list(queues) for name, queues in groups.items()}
