"""Backends: where jobs live. ``from_url`` picks one by URL scheme, importing lazily."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from .base import AsyncReads, Backend

__all__ = ["AsyncReads", "Backend", "from_url"]


def from_url(url: str, **options: Any) -> Backend:
    """Build a backend from ``memory://``, ``sqlite:///path``, ``redis://`` or ``postgresql://``."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        from .memory import MemoryBackend

        return MemoryBackend(url, **options)
    if scheme == "sqlite":
        from .sqlite import SQLiteBackend

        return SQLiteBackend(url, **options)
    if scheme in {"redis", "rediss"}:
        from .redis import RedisBackend

        return RedisBackend(url, **options)
    if scheme in {"postgres", "postgresql"}:
        from .postgres import PostgresBackend

        return PostgresBackend(url, **options)
    raise ConfigurationError(
        f"unknown backend URL {url!r}; expected memory://, sqlite:///path.db, redis://host or postgresql://host/db"
    )
