"""System checks (``manage.py check``, and before ``runserver``/``migrate``):

- conveyor.E001 ``settings.CONVEYOR`` or the backend URL is wrong (an error: nothing
  can be enqueued). Settings Conveyor refuses do not stop Django's start with a
  traceback (``ConveyorBackend.validate_task`` registers no task then): they are this
  error, which ``manage.py check``, ``runserver`` and ``migrate`` print;
- conveyor.W002 the backend cannot be reached (a warning: it may start later);
- conveyor.W003 a queue that tasks, ``ROUTES`` or ``TASKS["QUEUES"]`` name is consumed
  by no worker group of ``CONVEYOR["WORKERS"]``: its jobs would wait forever;
- conveyor.E007 two Conveyor apps of the project keep their jobs in different stores
  (``CONVEYOR["BACKEND"]`` beside the project's own app, or a ``conveyor.celery`` app
  that is not the one ``manage.py conveyor`` and the admin use): what one enqueues, the
  other's workers never see.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks

from conveyor import App
from conveyor.celery import current as celery
from conveyor.control.util import hide_password
from conveyor.errors import BackendError, ConveyorError

from .runtime import conveyor_settings, describe, get_app, worker_groups


def check_conveyor(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> Iterable[checks.CheckMessage]:
    try:
        app = get_app()
        groups = worker_groups()
        backend = app.backend
    except ConveyorError as exc:
        return [checks.Error(
            str(exc), id="conveyor.E001",
            hint=exc.context.get("hint") or 'Fix settings.CONVEYOR: "BACKEND" is a URL such '
            "as sqlite:///conveyor.db, redis://localhost:6379/0 or postgresql://localhost/mydb.",
        )]  # fmt: skip
    found: list[checks.CheckMessage] = list(one_store(app))
    try:
        backend.workers()
    except (BackendError, ConveyorError, OSError) as exc:
        found.append(checks.Warning(
            f"Conveyor's backend {hide_password(app.conf.backend_url)} cannot be reached: {exc}",
            hint="Start it, or fix settings.CONVEYOR['BACKEND']; jobs cannot be enqueued until it answers.",
            id="conveyor.W002",
        ))  # fmt: skip
    if groups:
        consumed = {queue for queues in groups.values() for queue in queues}
        for queue in app.declared_queues():
            if queue not in consumed:
                found.append(checks.Warning(
                    f"queue {queue!r} has no consumer: no worker group in "
                    f"settings.CONVEYOR['WORKERS'] ({', '.join(sorted(groups))}) consumes it",
                    hint=f"Add {queue!r} to a group's queues and run its workers "
                    f"(manage.py conveyor worker -Q {queue}), or route its tasks elsewhere.",
                    id="conveyor.W003",
                ))  # fmt: skip
    return found


def one_store(app: App) -> Iterable[checks.CheckMessage]:
    """conveyor.E007: every Conveyor app of the project keeps its jobs where ``app`` (the
    one ``manage.py conveyor``, the admin and ``django.tasks`` use) does."""
    url = app.conf.backend_url
    named = conveyor_settings().get("BACKEND")
    if named and named != url:
        yield checks.Error(
            f"settings.CONVEYOR['BACKEND'] is {hide_password(str(named))}, but the project's "
            f"app {describe(app)} keeps its jobs in {hide_password(url)}: two stores",
            hint="The project's app sets the store (CELERY_BROKER_URL for a conveyor.celery "
            "app): drop CONVEYOR['BACKEND'], or make it the same URL.",
            id="conveyor.E007",
        )
    for other in celery.apps():
        if other is not app and other.conf.backend_url != url:
            yield checks.Error(
                f"the conveyor.celery app {describe(other)} keeps its jobs in "
                f"{hide_password(other.conf.backend_url)}, but manage.py conveyor, the admin "
                f"and django.tasks use {describe(app)}, in {hide_password(url)}: its jobs "
                "would wait for workers that never read them",
                hint="Have one app: import it in your project package's __init__.py as "
                "Celery's guide does (from .celery import app as celery_app), or name it "
                "in settings.CONVEYOR['APP'] (e.g. 'proj.celery:app').",
                id="conveyor.E007",
            )
