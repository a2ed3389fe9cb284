"""A Django project's package, as Celery's docs lay it out: the app is ``celery_app``."""

from __future__ import annotations

from .celery_proj import app as celery_app

__all__ = ("celery_app",)
