"""The PostgreSQL driver, imported in one place: a missing one says what to install."""

from ...extras import missing_extra

try:
    import psycopg
    from psycopg import sql
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - depends on the install
    raise missing_extra("the PostgreSQL backend", "postgres", exc) from exc

__all__ = ["ConnectionPool", "PoolTimeout", "psycopg", "sql"]
