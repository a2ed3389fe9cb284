"""System checks (``manage.py check``, and before ``runserver``/``migrate``):

- conveyor.E001 ``settings.CONVEYOR`` or the backend URL is wrong (an error: nothing
  can be enqueued);
- conveyor.W002 the backend cannot be reached (a warning: it may start later);
- conveyor.W003 a queue that tasks, ``ROUTES`` or ``TASKS["QUEUES"]`` name is consumed
  by no worker group of ``CONVEYOR["WORKERS"]``: its jobs would wait forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks

from conveyor.control.util import hide_password
from conveyor.errors import BackendError, ConveyorError

from .runtime import get_app, worker_groups


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
            hint='Fix settings.CONVEYOR: "BACKEND" is a URL such as sqlite:///conveyor.db, '
            "redis://localhost:6379/0 or postgresql://localhost/mydb.",
        )]  # fmt: skip
    found: list[checks.CheckMessage] = []
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
