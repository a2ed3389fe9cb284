"""The Conveyor app a Django project runs on, built once from ``settings.CONVEYOR``.

Settings (every key optional)::

    CONVEYOR = {
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
from conveyor.context import TaskContext
from conveyor.errors import ConfigurationError, UnknownTask
from conveyor.events import Middleware

from .compat import Task as DjangoTask
from .compat import task_backends
from .worker import watch_outcomes

#: What ``manage.py conveyor`` passes as ``-A``, and what every worker child imports.
APP_PATH = "conveyor.contrib.django.app:app"
#: Keys of ``settings.CONVEYOR`` that are not App settings.
OWN_KEYS = {"BACKEND", "DATABASE", "ROUTES", "SCHEDULES", "WORKERS"}

_lock = threading.Lock()
_app: DjangoApp | None = None


class DjangoApp(App):
    """An ``App`` that knows Django's side: the queues named in ``TASKS``, and the tasks a
    worker has not imported yet (looked up by their import path, as Django names them)."""

    @property
    def command(self) -> str:
        return "python manage.py conveyor"

    def declared_queues(self) -> list[str]:
        queues = set(super().declared_queues())
        for backend in task_backends.all():
            if getattr(backend, "is_conveyor", False):
                queues.update(backend.queues)
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


def build_app() -> DjangoApp:
    """A new app from the settings (``get_app`` keeps one per process)."""
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
        raise ConfigurationError(f"settings.CONVEYOR: {exc}") from None
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
