"""The Redis backend's connection: the URL and its prefix, the client, each thread's own
connection (retried once when cut), the Lua scripts run on it, and the offset between
our clock and the server's."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ...errors import BackendError, ConfigurationError
from ...version import __version__
from ..base import Backend
from .driver import DriverInfo, NoBackoff, NoScriptError, Retry, hiredis, redis

__all__ = ["CUT", "NoScriptError", "RedisConnection", "retried"]

#: The driver's errors for a connection that is down or was cut.
CUT = (redis.ConnectionError, redis.TimeoutError)
#: The longest a command may take to answer (seconds). Above the longest wait a command
#: blocks for (``backend.MAX_WAIT``, 5 s) and Redis's own script limit (5 s); a server
#: that hangs (stopped, swapping) fails a call after this long, not after 30 s twice.
SOCKET_TIMEOUT = 10.0
#: The client's own retry policy, as ``_run``'s (``retried``).
ONE_RETRY = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))


def retried(exc: Exception) -> bool:
    """Whether a failed call is tried again on a new connection: when the connection was
    cut, not when the server did not answer in time (it would not answer the retry
    either, and the caller would wait twice as long to learn it)."""
    return not isinstance(exc, redis.TimeoutError)


#: Round trips of TIME behind one clock offset (the shortest is taken).
OFFSET_SAMPLES = 3


def _lua(name: str) -> str:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text()


_COMMON = _lua("common")
_LAYOUT = _lua("layout")
_PAGES = _lua("pages")
_TAIL = _lua("tail")
_INDEX = _lua("index")
_ROLLUP = _lua("rollup")
#: Scripts that run without common.lua: defining its functions costs ~10 µs a call.
STANDALONE = frozenset({"enqueue_one"})
#: Standalone scripts that add to the paged sets (job ids, due jobs): layout.lua goes
#: before them, then pages.lua and tail.lua (the tails of the id index and of each
#: queue's due pages) inside ``paged()``, which returns the two folds (rd_fold, ix_fold):
#: their functions are made only by a call that folds. Every other script has layout.lua,
#: pages.lua, tail.lua, index.lua (the rest of the paged sets), then common.lua.
PAGED = frozenset({"enqueue_one"})
#: Scripts that end jobs' runs: rollup.lua (the per-minute rollups) goes before them,
#: after the prelude.
ROLLED = frozenset({"finish", "finish_claim", "rescue"})
#: Scripts made of others: each part runs as a function of its own ARGV, in one call.
COMPOSED = {"finish_claim": ("finish", "claim")}
#: What goes ahead of the prelude (after layout.lua, which every script but the
#: standalone ones that do not page starts with: the due member's form is one source):
#: take.lua (leasing a claimed job) for the scripts that claim, and the idle claim's fast
#: path (claim_idle.lua), which returns before the prelude's definitions run when it can.
FIRST = {"claim": ("take", "claim_idle"), "finish_claim": ("take",)}


class RedisConnection(Backend):
    """The connection half of ``RedisBackend`` (which adds the primitives)."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", **options: Any) -> None:
        super().__init__(url, **options)
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        name = query.pop("prefix", "conveyor")
        if not name or any(c in name for c in "{}"):
            raise ConfigurationError(
                f"prefix {name!r} in {url!r} must be non-empty and free of braces"
            )
        self.prefix = f"conveyor:{{{name}}}"
        self.safe_url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1], query=""))
        clean = urlunsplit(parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())))
        # decode_responses=True makes every reply a str; redis-py's stubs still say
        # bytes | str, so the client is typed loosely here and our methods precisely.
        # One retry on a new connection when one was cut (a restart, an idle connection
        # closed), none after a timeout: a hung server would hold each call for a timeout
        # per try, and redis-py's default retries ten times.
        self.client: Any = redis.Redis.from_url(clean, retry=ONE_RETRY, **self.client_options())
        self.client_url = clean  # the async reads' client connects alike (``aio``)
        self._scripts: dict[str, tuple[str, str]] = {}  # name -> (sha1, body)
        #: name -> EVALSHA's arguments before the script's own (see _run)
        self._heads: dict[str, tuple[str, ...]] = {}
        self._local = threading.local()
        self._own_lock = threading.Lock()
        self._own: list[Any] = []  # every connection handed to a thread, closed by close()

    @staticmethod
    def client_options() -> dict[str, Any]:
        """The options of every client the backend builds, sync and async."""
        return {
            "decode_responses": True,
            "socket_connect_timeout": 5,
            "socket_timeout": SOCKET_TIMEOUT,
            "health_check_interval": 15,
            # Named, not looked up: without a version redis-py reads its package metadata
            # for every new connection (and in a forked pool child, copies the pages).
            "driver_info": DriverInfo(lib_version=redis.__version__).add_upstream_driver(
                "conveyor", __version__
            ),
        }

    def driver_error(self, exc: Exception) -> BackendError | None:
        if isinstance(exc, CUT):
            return self.unreachable(exc)
        if isinstance(exc, redis.ResponseError):
            return BackendError(f"Redis at {self.safe_url} refused a command: {exc}")
        return None

    def unreachable(self, exc: Exception) -> BackendError:
        return BackendError(f"Redis at {self.safe_url} is unreachable: {exc}")

    def _key(self, *parts: str) -> str:
        return ":".join([self.prefix, *parts])

    def _run(self, name: str, *args: Any) -> Any:
        """Run a script by EVALSHA (EVAL when Redis has forgotten it) on this thread's
        own connection: the hot path skips the client's per-command pool and retry
        machinery, which cost more CPU than the script, and packs the command with
        hiredis itself (the client's packer checks every argument in Python first: 2.7
        µs of CPU against 0.9 for a single enqueue's). A dropped connection is retried
        once on a new one, as the client itself does; one that timed out is not."""
        head = self._heads.get(name) or self._head(name)
        packed = _pack((*head, *args))
        for retry in (False, True):
            conn = self._connection()
            try:
                try:
                    conn.send_packed_command(packed)
                    return conn.read_response()
                except NoScriptError:
                    conn.send_packed_command(
                        _pack(("EVAL", self._script(name)[1], *head[2:], *args))
                    )
                    return conn.read_response()
            except CUT as exc:
                conn.disconnect()
                if retry or not retried(exc):
                    raise
        raise AssertionError("unreachable")

    def _head(self, name: str) -> tuple[str, ...]:
        """EVALSHA, the script's sha1 and its one key (the id index, which fixes the
        slot on a cluster), then the prefix every script takes first."""
        head = self._heads[name] = (
            "EVALSHA",
            self._script(name)[0],
            "1",
            self._key("ids"),
            self.prefix,
        )
        return head

    def _script(self, name: str) -> tuple[str, str]:
        """(sha1, body) of a script: layout.lua first, then what ``FIRST`` names, then
        pages.lua, tail.lua, index.lua and common.lua (but for the few hot scripts in
        ``STANDALONE``, which skip the prelude's cost: ``paged()`` only for those in
        ``PAGED``, and no layout.lua for the others), rollup.lua for those in ``ROLLED``,
        the parts ``COMPOSED`` names, then lua/<name>.lua."""
        script = self._scripts.get(name)
        if script is None:
            body = _lua(name)
            if name in COMPOSED:  # its parts as functions of their own ARGV, then its own code
                parts = [
                    f"local function {part}_part(ARGV)\n{_lua(part)}\nend"
                    for part in COMPOSED[name]
                ]
                body = "\n".join([*parts, body])
            if name in ROLLED:
                body = _ROLLUP + "\n" + body
            if name not in STANDALONE:
                body = "\n".join([_PAGES, _TAIL, _INDEX, _COMMON, body])
            elif name in PAGED:
                paged = ["local function paged()", _PAGES, _TAIL, "return rd_fold, ix_fold", "end"]
                body = "\n".join([*paged, body])
            body = "\n".join([*(_lua(first) for first in FIRST.get(name, ())), body])
            if name not in STANDALONE or name in PAGED:
                body = _LAYOUT + "\n" + body
            script = self._scripts[name] = (hashlib.sha1(body.encode()).hexdigest(), body)
        return script

    def _clock_offset(self) -> float:
        """Our clock minus the server's, for scripts that read the server's (``TIME``)
        and must stamp times in ours; measured per thread, again every minute. The
        middle of a round trip is only as exact as half of it: of ``OFFSET_SAMPLES``
        round trips the shortest is taken (one descheduled on a loaded machine was
        milliseconds off, and a short job's start then came after its end)."""
        local = self._local
        if (
            getattr(local, "offset_pid", None) != os.getpid()
            or time.monotonic() > local.offset_until
        ):
            conn = self._connection()
            best: tuple[float, float] | None = None
            for _ in range(OFFSET_SAMPLES):
                before = self.now()
                conn.send_command("TIME")
                seconds, micros = conn.read_response()
                after = self.now()
                offset = (before + after) / 2 - (int(seconds) + int(micros) / 1e6)
                if best is None or after - before < best[0]:
                    best = (after - before, offset)
            assert best is not None
            local.offset = best[1]
            local.offset_pid, local.offset_until = os.getpid(), time.monotonic() + 60
        return float(local.offset)

    def _connection(self) -> Any:
        """This thread's connection (a new one after a fork: sockets are not shared)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.pid, local.conn = (
                os.getpid(),
                self.client.connection_pool.connection_class(
                    **self.client.connection_pool.connection_kwargs
                ),
            )
            with self._own_lock:
                self._own.append(local.conn)
        return local.conn

    def close(self) -> None:
        with self._own_lock:
            own, self._own = self._own, []
        for conn in own:
            conn.disconnect()
        self.client.close()


def _pack(argv: tuple[Any, ...]) -> list[bytes]:
    """A command in Redis's protocol, as ``send_packed_command`` takes it; a value of a
    type Redis cannot take (None, a bool, a list) is refused as the client refuses it."""
    try:
        return [hiredis.pack_command(argv)]
    except TypeError as exc:
        raise redis.DataError(f"a script argument cannot be sent to Redis: {exc}") from None
