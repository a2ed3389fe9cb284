"""Celery's API on Conveyor: change ``from celery import ...`` to
``from conveyor.celery import ...`` (and ``celery.X`` modules to ``conveyor.celery.X``).

A thin layer over Conveyor's own API (no second engine, no kombu, no Celery import);
what maps, what differs and what raises ``NotSupported`` is in docs/migrating-from-celery.md.
"""

from __future__ import annotations

from . import states
from .app import Celery, Signal, shared_task
from .canvas import CelerySignature as Signature
from .canvas import chain, chord, group, signature
from .current import current_app
from .exceptions import NotSupported
from .result import AsyncResult, GroupResult
from .schedules import crontab

__all__ = [
    "AsyncResult", "Celery", "GroupResult", "NotSupported", "Signal", "Signature", "chain",
    "chord", "crontab", "current_app", "group", "shared_task", "signature", "states",
]  # fmt: skip
