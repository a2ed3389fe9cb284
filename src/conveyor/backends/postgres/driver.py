"""The PostgreSQL driver, imported in one place: a missing one says what to install."""

from ...errors import MissingDependency

try:
    import psycopg
    from psycopg import sql
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - depends on the install
    raise MissingDependency(
        "the PostgreSQL backend needs psycopg: pip install 'conveyor[postgres]'"
    ) from exc

__all__ = ["ConnectionPool", "PoolTimeout", "psycopg", "sql"]
