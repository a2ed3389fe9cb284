"""The Redis backend's reads on an event loop (``Backend.async_reads``): a job's status
read by the API without the hand-off to a thread and back that ``app.aio`` makes for
every other call.

Like the synchronous hot path (``connection._run``), it sends commands on connections of
its own, not through the client's per-command pool, retry and metrics machinery, which
cost more than the read: a list of idle connections (the loop is single-threaded, so no
lock), a new one when none is idle, and a cut connection retried once on a new one (a
timed-out one is not). The socket timeout is one ``asyncio.timeout`` around the command:
redis-py's own runs each send as a task of its own (``asyncio.wait_for``), one more
wake-up of the loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from ...records import JobRecord
from ..base import AsyncReads
from .codec import pairs, stored
from .connection import CUT, RedisConnection, retried
from .driver import redis


class RedisAsyncReads(AsyncReads):
    backend: RedisConnection

    def __init__(self, backend: RedisConnection) -> None:
        super().__init__(backend)
        options = backend.client_options()
        # the socket timeout is ours (see the module's docstring); None, not a default
        self.timeout, options["socket_timeout"] = options["socket_timeout"], None
        self.pool: Any = redis.asyncio.ConnectionPool.from_url(backend.client_url, **options)
        self.idle: list[Any] = []
        self.open: set[Any] = set()  # every connection made, closed by close()

    async def get(self, job_id: str) -> JobRecord | None:
        reply = await self._command("HGETALL", self.backend._key("job", job_id))
        # RESP2 answers a flat list of fields and values, RESP3 a map
        return stored(reply if isinstance(reply, dict) else pairs(reply), job_id)

    async def kv_get(self, key: str, default: Any = None) -> Any:
        raw = await self._command("HGET", self.backend._key("kv"), key)
        if raw is None:
            return default
        value, until = orjson.loads(raw)
        if until is not None and until <= self.backend.now():
            return default  # expired (the prune script deletes it)
        return value

    async def _command(self, *args: Any) -> Any:
        for retry in (False, True):
            conn = self.idle.pop() if self.idle else self._connection()
            try:
                async with asyncio.timeout(self.timeout):
                    await conn.send_command(*args)
                    reply = await conn.read_response()
            except (*CUT, TimeoutError) as exc:
                await self._drop(conn)
                if retry or not retried(exc) or isinstance(exc, TimeoutError):
                    raise self.backend.unreachable(exc) from exc
                continue
            except BaseException as exc:  # cancelled mid-reply: the connection's state is unknown
                await self._drop(conn)
                error = self.backend.driver_error(exc) if isinstance(exc, Exception) else None
                if error is None:
                    raise
                raise error from exc
            self.idle.append(conn)
            return reply
        raise AssertionError("unreachable")

    def _connection(self) -> Any:
        conn = self.pool.make_connection()
        self.open.add(conn)
        return conn

    async def _drop(self, conn: Any) -> None:
        self.open.discard(conn)
        await conn.disconnect(nowait=True)

    async def close(self) -> None:
        connections = list(self.open)
        self.open.clear()
        self.idle.clear()
        for conn in connections:
            await conn.disconnect()
