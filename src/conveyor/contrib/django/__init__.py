"""Conveyor for Django (the django extra: ``pip install '/path/to/conveyor[django]'``; docs/django.md).

- ``ConveyorBackend``: the backend of Django's task API (``TASKS`` setting);
- ``"conveyor.contrib.django"`` in ``INSTALLED_APPS``: builds the Conveyor app from
  ``settings.CONVEYOR``, finds ``tasks.py`` modules, adds system checks, the admin pages
  and ``manage.py conveyor``;
- ``enqueue_on_commit``: enqueue once the transaction commits;
- ``get_app()``: the project's Conveyor app (for workflows, control functions, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import ConveyorBackend
    from .runtime import get_app
    from .task import ConveyorTask, conveyor_priority
    from .transaction import enqueue_on_commit

__all__ = ["ConveyorBackend", "ConveyorTask", "conveyor_priority", "enqueue_on_commit", "get_app"]

#: Where each name lives: loaded on first use, so that listing this package in
#: INSTALLED_APPS imports nothing that needs the settings before Django is set up.
_HOMES = {"ConveyorBackend": "backend", "ConveyorTask": "task", "conveyor_priority": "task",
          "enqueue_on_commit": "transaction", "get_app": "runtime"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
