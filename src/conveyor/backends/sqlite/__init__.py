"""The sqlite backend: ``backend`` holds it."""

from .backend import SQLiteBackend

__all__ = ["SQLiteBackend"]
