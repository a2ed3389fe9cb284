"""The postgres backend: ``backend`` holds it."""

from .backend import PostgresBackend

__all__ = ["PostgresBackend"]
