"""The Redis driver, imported in one place: a missing one says what to install."""

from ...extras import missing_extra

try:
    import hiredis
    import redis
    import redis.asyncio
    from redis.backoff import NoBackoff
    from redis.driver_info import DriverInfo
    from redis.exceptions import NoScriptError
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - depends on the install
    raise missing_extra("the Redis backend", "redis", exc) from exc

__all__ = ["DriverInfo", "NoBackoff", "NoScriptError", "Retry", "hiredis", "redis"]
