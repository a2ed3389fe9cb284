"""The redis backend: ``backend`` holds it."""

from .backend import RedisBackend

__all__ = ["RedisBackend"]
