"""The PostgreSQL backend's connections: the URL and its schema, the pool (opened after
one direct connection has checked or migrated the schema), pooled connections checked
alive without the pool's backoff, and ``guarded``: a primitive whose connection was cut
under it runs once more at once, and driver errors become ``BackendError``."""

from __future__ import annotations

import contextlib
import functools
import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

from ...errors import BackendError, ConfigurationError
from .. import common
from ..base import Backend
from ..common import SQL_COLUMNS
from ..sqlfiles import named_queries
from .driver import ConnectionPool, PoolTimeout, psycopg, sql
from .migrations import migrate_or_check, stores, version

T = TypeVar("T")

#: Seconds to wait for a new connection (libpq's minimum is 2).
CONNECT_TIMEOUT = 2


def _alive(conn: psycopg.Connection[Any]) -> bool:
    """Whether a pooled connection can take a statement. One the server closed while it sat
    idle (a restart, ``pg_terminate_backend``, an idle timeout) has the notice or an EOF
    waiting on its socket: only then pay for a round trip; a dead one is closed here."""
    if not _readable(conn.fileno()):
        return True
    try:
        ConnectionPool.check_connection(conn)
    except psycopg.Error:
        conn.close()
        return False
    return True


def _readable(fd: int) -> bool:
    """Whether ``fd`` has something to read, without waiting. poll, not select: select
    fails on a descriptor numbered 1024 or more, which a busy server process reaches."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])  # Windows: no poll, and no such limit


#: The server ends a session of ours left inside a transaction this long (milliseconds).
#: Our transactions take milliseconds; one left open is a worker frozen mid-transaction
#: (SIGSTOP, a VM paused), whose row locks would otherwise keep its jobs from being
#: rescued (the rescue skips locked rows) for as long as it stays frozen.
IDLE_IN_TRANSACTION_MS = 10_000


def _session_options(conninfo: str) -> str:
    """The URL's own ``options`` (if any), plus the idle-in-transaction limit."""
    given = psycopg.conninfo.conninfo_to_dict(conninfo).get("options") or ""
    return f"{given} -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}".strip()


def masked_url(url: str) -> str:
    """The URL to show: its password masked, its query (which may hold one) left out."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    netloc = f"{user}{':***' if colon else ''}{at}{hostport}"
    return urlunsplit(parts._replace(netloc=netloc, query=""))


def unreachable(safe_url: str, exc: psycopg.Error) -> str:
    """One line for a failed connect, from the driver's message (which runs over several
    lines, one per address tried): what happened, and what to check."""
    text = " ".join(str(exc).split())
    reason = text.rsplit(" failed: ", 1)[-1].split(" Is the server running")[0].rstrip(".")
    if reason.startswith("FATAL"):  # the server answered, and said no
        return (
            f"PostgreSQL at {safe_url} refused the connection: {reason.removeprefix('FATAL:').strip()}; "
            "check the user, password and database in the backend URL"
        )
    return (
        f"PostgreSQL at {safe_url} is unreachable: {reason[:1].lower()}{reason[1:]}; is the server "
        "running and accepting TCP/IP connections there? Check the backend URL "
        "(CONVEYOR_BACKEND, or the app's backend=)"
    )


#: Primitives never run twice: if a first run committed before its connection was cut, a
#: second would count twice (``_incr``) or answer as if nothing had been done — and the
#: caller acts on that answer: a revoke's workflow follow-ups (``_cancel``), a rescue's
#: (``_rescue``), a purge's count (``_purge``).
_RUN_ONCE = frozenset({"_incr", "_requeue", "_rerun", "_unlock", "_kv_delete", "_schedule_delete",
                       "_cancel", "_rescue", "_purge"})  # fmt: skip


def guarded(fn: Callable[..., T]) -> Callable[..., T]:
    """``common.guarded``, and a primitive whose connection was cut under it (a restart,
    ``pg_terminate_backend``) runs once more at once: the callers that matter (claim,
    ack, heartbeat) would retry after a pause anyway, and a fresh connection is there by
    now. Not those in ``_RUN_ONCE``."""
    if fn.__name__ in _RUN_ONCE:
        return common.guarded(fn)

    @functools.wraps(fn)
    def once_more(self: PostgresConnection, *args: Any, **kwargs: Any) -> T:
        try:
            return fn(self, *args, **kwargs)
        except psycopg.OperationalError as exc:
            if isinstance(exc, PoolTimeout | psycopg.errors.QueryCanceled):
                raise
        # A cut (a restart, pg_terminate_backend) usually took every idle pooled
        # connection with it, and the retry would draw another dead one: the pool checks
        # its idle connections first and replaces the broken ones (a round trip each).
        with contextlib.suppress(Exception):
            self.pool.check()
        return fn(self, *args, **kwargs)

    return common.guarded(once_more)


class PostgresConnection(Backend):
    """The connection half of ``PostgresBackend`` (which adds the primitives)."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.schema = query.pop("schema", "conveyor")
        self.auto_migrate = query.pop("migrate", "true").lower() not in {"false", "0", "no"}
        if not self.schema.replace("_", "").isalnum():
            raise ConfigurationError(
                f"schema {self.schema!r} in {url!r}: use letters, digits and _"
            )
        self.safe_url = masked_url(url)
        # Names this store's connections in pg_stat_activity (an operator can tell them
        # apart, and cut them); a name in the URL wins.
        query.setdefault("application_name", f"conveyor:{self.schema}")
        # Values encoded again (parse_qs decoded them): an ``options=-c%20name%3Dvalue``
        # passed on as ``-c name=value`` made libpq refuse the URL ("extra key/value
        # separator").
        self.conninfo = urlunsplit(
            parts._replace(scheme="postgresql", query=urlencode(query, quote_via=quote))
        )
        schema = sql.Identifier(self.schema).as_string(None)
        self._q = {name: text.replace("{schema}", schema).replace("{columns}", ", ".join(SQL_COLUMNS))
                   .replace("{jcolumns}", ", ".join(f"j.{c}" for c in SQL_COLUMNS))
                   for name, text in named_queries("postgres").items()}  # fmt: skip
        self.channel = f"{self.schema}.jobs"
        #: Notified with a job's id when it is revoked with terminate while running.
        self.revoke_channel = f"{self.schema}.revoked"
        self._pool: ConnectionPool[Any] | None = None
        self._pool_lock = threading.Lock()
        self._listener = threading.local()

    def driver_error(self, exc: Exception) -> BackendError | None:
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return BackendError(f"PostgreSQL at {self.safe_url} is unreachable: {exc}")
        if isinstance(exc, psycopg.Error):
            return BackendError(f"PostgreSQL at {self.safe_url} refused a statement: {exc}")
        if isinstance(exc, TimeoutError):  # the pool had no connection in time
            return BackendError(f"PostgreSQL at {self.safe_url}: no connection available: {exc}")
        return None

    @property
    def pool(self) -> ConnectionPool[Any]:
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = self._open_pool()
        return self._pool

    def missing_store(self) -> str | None:
        """A schema with no Conveyor store (``?schema=`` mistyped): the first use would
        create one. Asked on a direct connection, as the pool's first one migrates."""
        if self._pool is not None:  # opened: the schema was checked or migrated then
            return None
        try:
            with psycopg.connect(
                self.conninfo, connect_timeout=CONNECT_TIMEOUT, autocommit=True
            ) as conn:
                if version(conn, self.schema) > 0:
                    return None
                found = stores(conn)
        except psycopg.Error:
            return None
        return (
            f"no Conveyor store in schema {self.schema!r} of {self.safe_url}; stores there: "
            f"{', '.join(repr(s) for s in found) or 'none'}; a worker or `conveyor migrate` "
            "creates one. If the workers use another, point ?schema= in CONVEYOR_BACKEND (or "
            "App(backend=...)) at it"
        )

    def _open_pool(self) -> ConnectionPool[Any]:
        # One direct connection first: an unreachable server is reported at once and once,
        # in one line (the pool would retry for its whole timeout, logging each attempt).
        # The same connection checks (or migrates) the schema.
        try:
            with psycopg.connect(
                self.conninfo, connect_timeout=CONNECT_TIMEOUT, autocommit=True
            ) as conn:
                migrate_or_check(conn, self.schema, self.auto_migrate)
        except psycopg.OperationalError as exc:
            raise BackendError(unreachable(self.safe_url, exc)) from exc
        pool: ConnectionPool[Any] = ConnectionPool(
            self.conninfo, min_size=1, max_size=10, open=False, timeout=10,
            kwargs={"connect_timeout": CONNECT_TIMEOUT, "autocommit": True,
                    "options": _session_options(self.conninfo)},
            configure=self._configure, name=f"conveyor-{self.schema}",
        )  # fmt: skip
        pool.open(wait=False)
        return pool

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        """Called by the pool on each new connection before its first use (in the pool's
        thread): nothing here; ``PostgresBackend`` warms it up once asked to."""

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection that is alive. Not the pool's own ``check``: after a failed
        check it sleeps a backoff (1 s, 2 s, 4 s...) before the next connection, so a few
        connections cut at once stalled every caller for up to 10 s. Here each dead one is
        closed (the pool replaces it at once) and the next is taken without waiting; the
        loop ends, since the pool holds at most ``max_size`` connections to discard."""
        pool = self.pool
        for _ in range(pool.max_size + 1):
            with pool.connection() as conn:
                if _alive(conn):
                    yield conn
                    return
        raise BackendError(f"PostgreSQL at {self.safe_url}: every connection was closed")

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection in a transaction, committed on success. (Pooled connections are in
        autocommit mode, so a single statement can also run without one.)"""
        with self._connection() as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        conn = getattr(self._listener, "conn", None)
        if conn is not None:
            conn.close()
            self._listener.conn = None
