"""``postgresql://``: jobs in PostgreSQL, beside the application's own data.

Claims are one ``UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)`` statement over a
partial index of PENDING rows, so claiming stays fast with millions of finished rows.
Job state changes write their event, and a change to PENDING sends a NOTIFY, from a
trigger in the same transaction; idle workers LISTEN and fall back to polling.

Tables live in a schema (``?schema=``, default ``conveyor``) created and migrated on
first use (``?migrate=false`` to require ``conveyor migrate``), under an advisory lock so
two processes never migrate at once. ``enqueue(..., connection=conn)`` writes on a
connection the caller holds: the job exists if and only if the caller's transaction
commits.
"""

from __future__ import annotations

import dataclasses
import functools
import select
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

import orjson

from ...errors import BackendError, ConfigurationError, MissingDependency
from ...records import Event, HeartbeatReply, JobQuery, JobRecord, Lease, Outcome, Run, WorkerInfo
from ...states import State
from ..base import EVENTS_KEPT, Backend, RevocationWatch
from ..common import lost_delivery_end, revoke_statements, revoked_error
from ..sqlfiles import migrations, named_queries

try:
    import psycopg
    from psycopg import sql
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - depends on the install
    raise MissingDependency(
        "the PostgreSQL backend needs psycopg: pip install 'conveyor[postgres]'"
    ) from exc

T = TypeVar("T")
_COLUMNS = [
    "id", "task", "queue", "priority", "payload", "state", "run_at", "created_at", "max_retries",
    "expires_at", "attempt", "lost_leases", "started_at", "finished_at", "worker", "lease_token",
    "lease_until", "revoke", "progress", "result", "error", "attempts", "parent_id", "root_id",
    "workflow_id", "headers", "keep_until",
]  # fmt: skip


def _dump(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _brief(error: dict[str, Any] | None) -> str | None:
    return (
        None
        if error is None
        else _dump({"type": error.get("type"), "message": error.get("message")})
    )


def _record(row: Sequence[Any]) -> JobRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["state"] = State(values["state"])
    values["payload"] = bytes(values["payload"])
    return JobRecord(**values)


#: Columns of a new job taken as they are from its record.
_PLAIN_COLUMNS = ("id", "task", "queue", "priority", "payload", "run_at", "created_at",
                  "max_retries", "expires_at", "parent_id", "root_id", "workflow_id",
                  "finished_at", "keep_until")  # fmt: skip


def _job_columns(jobs: Sequence[JobRecord]) -> dict[str, list[Any]]:
    """New jobs' columns as the insert queries take them: one list per column, built a
    column at a time (cheaper than a dict per job and then lists out of the dicts)."""
    columns = {name: [getattr(job, name) for job in jobs] for name in _PLAIN_COLUMNS}
    columns["state"] = [job.state.value for job in jobs]
    columns["headers"] = [_dump(job.headers or None) for job in jobs]  # NULL: the default {}
    columns["error"] = [_dump(job.error) for job in jobs]
    return columns


def _each_returned(cur: Any, query: str, params: list[dict[str, Any]]) -> list[bool]:
    """Run ``query`` (with RETURNING) for each parameter set in one pipelined batch; per
    set, whether it returned a row."""
    if not params:
        return []
    cur.executemany(query, params, returning=True)
    found = []
    while True:
        found.append(cur.fetchone() is not None)
        if not cur.nextset():
            return found


#: Seconds to wait for a new connection (libpq's minimum is 2).
CONNECT_TIMEOUT = 2


def _alive(conn: psycopg.Connection[Any]) -> bool:
    """Whether a pooled connection can take a statement. One the server closed while it sat
    idle (a restart, ``pg_terminate_backend``, an idle timeout) has the notice or an EOF
    waiting on its socket: only then pay for a round trip; a dead one is closed here."""
    if not select.select([conn.fileno()], [], [], 0)[0]:
        return True
    try:
        ConnectionPool.check_connection(conn)
    except psycopg.Error:
        conn.close()
        return False
    return True


def _safe_url(url: str) -> str:
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
#: second would count twice (``_incr``) or answer as if nothing had been done.
_RUN_ONCE = frozenset({"_incr", "_requeue", "_unlock", "_kv_delete", "_schedule_delete"})


def _run(fn: Callable[..., T], self: PostgresBackend, *args: Any, **kwargs: Any) -> T:
    """Run a primitive, once more at once if its connection was cut under it (a restart,
    ``pg_terminate_backend``): the callers that matter (claim, ack, heartbeat) would
    retry after a pause anyway, and a fresh connection is there by now."""
    try:
        return fn(self, *args, **kwargs)
    except psycopg.OperationalError as exc:
        if fn.__name__ in _RUN_ONCE or isinstance(exc, PoolTimeout | psycopg.errors.QueryCanceled):
            raise
    return fn(self, *args, **kwargs)


def guarded(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn driver errors into BackendError (workers log and retry)."""

    @functools.wraps(fn)
    def wrapper(self: PostgresBackend, *args: Any, **kwargs: Any) -> T:
        try:
            return _run(fn, self, *args, **kwargs)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise BackendError(f"PostgreSQL at {self.safe_url} is unreachable: {exc}") from exc
        except psycopg.errors.Error as exc:
            raise BackendError(f"PostgreSQL at {self.safe_url} refused a statement: {exc}") from exc
        except TimeoutError as exc:  # the pool had no connection in time
            raise BackendError(
                f"PostgreSQL at {self.safe_url}: no connection available: {exc}"
            ) from exc

    return wrapper


class PostgresBackend(Backend):
    def __init__(self, url: str = "postgresql://localhost/postgres", **options: Any) -> None:
        super().__init__(url, **options)
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.schema = query.pop("schema", "conveyor")
        self.auto_migrate = query.pop("migrate", "true").lower() not in {"false", "0", "no"}
        if not self.schema.replace("_", "").isalnum():
            raise ConfigurationError(
                f"schema {self.schema!r} in {url!r}: use letters, digits and _"
            )
        self.safe_url = _safe_url(url)
        # Names this store's connections in pg_stat_activity (an operator can tell them
        # apart, and cut them); a name in the URL wins.
        query.setdefault("application_name", f"conveyor:{self.schema}")
        self.conninfo = urlunsplit(
            parts._replace(
                scheme="postgresql", query="&".join(f"{k}={v}" for k, v in query.items())
            )
        )
        schema = sql.Identifier(self.schema).as_string(None)
        self._q = {name: text.replace("{schema}", schema).replace("{columns}", ", ".join(_COLUMNS))
                   .replace("{jcolumns}", ", ".join(f"j.{c}" for c in _COLUMNS))
                   for name, text in named_queries("postgres").items()}  # fmt: skip
        self.channel = f"{self.schema}.jobs"
        #: Notified with a job's id when it is revoked with terminate while running.
        self.revoke_channel = f"{self.schema}.revoked"
        self._pool: ConnectionPool[Any] | None = None
        self._pool_lock = threading.Lock()
        self._listener = threading.local()

    # -- connections -----------------------------------------------------------------

    @property
    def pool(self) -> ConnectionPool[Any]:
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = self._open_pool()
        return self._pool

    def _open_pool(self) -> ConnectionPool[Any]:
        # One direct connection first: an unreachable server is reported at once and once,
        # in one line (the pool would retry for its whole timeout, logging each attempt).
        # The same connection checks (or migrates) the schema.
        try:
            with psycopg.connect(
                self.conninfo, connect_timeout=CONNECT_TIMEOUT, autocommit=True
            ) as conn:
                self._migrate_or_check(conn)
        except psycopg.OperationalError as exc:
            raise BackendError(unreachable(self.safe_url, exc)) from exc
        pool: ConnectionPool[Any] = ConnectionPool(
            self.conninfo, min_size=1, max_size=10, open=False, timeout=10,
            kwargs={"connect_timeout": CONNECT_TIMEOUT, "autocommit": True},
            name=f"conveyor-{self.schema}",
        )  # fmt: skip
        pool.open(wait=False)
        return pool

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

    # -- migrations --------------------------------------------------------------------

    def _migrate_or_check(self, conn: psycopg.Connection[Any]) -> None:
        current = self._version(conn)
        latest = migrations("postgres")[-1][0]
        if current < latest:
            if not self.auto_migrate:
                raise ConfigurationError(
                    f"the schema {self.schema!r} is at version {current}, this Conveyor needs {latest}: "
                    "run `conveyor migrate` (automatic migration is off: ?migrate=false)"
                )
            self._apply(conn)

    def _version(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'migrations'",
            (self.schema,),
        ).fetchone()
        if row is None:
            return 0
        found = conn.execute(
            sql.SQL("SELECT max(version) FROM {}.migrations").format(sql.Identifier(self.schema))
        ).fetchone()
        return int(found[0] or 0) if found else 0

    @guarded
    def migrate(self) -> list[int]:
        """Apply pending migrations (under an advisory lock); returns the versions applied."""
        with psycopg.connect(self.conninfo, connect_timeout=CONNECT_TIMEOUT) as conn:
            return self._apply(conn)

    def _apply(self, conn: psycopg.Connection[Any]) -> list[int]:
        schema = sql.Identifier(self.schema)
        applied = []
        with conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"conveyor-migrate:{self.schema}",)
            )
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.migrations (version INTEGER PRIMARY KEY, "
                                 "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())").format(schema))  # fmt: skip
            current = self._version(conn)
            for number, script in migrations("postgres"):
                if number > current:
                    conn.execute(script.replace("{schema}", schema.as_string(conn)).encode())
                    conn.execute(
                        sql.SQL("INSERT INTO {}.migrations (version) VALUES (%s)").format(schema),
                        (number,),
                    )
                    applied.append(number)
        return applied

    # -- primitives ----------------------------------------------------------------------

    def enqueue_on(self, connection: Any, jobs: Sequence[JobRecord]) -> list[bool]:
        """Enqueue on the caller's connection, inside the caller's transaction."""
        self.pool  # noqa: B018 - the schema must exist before the caller's transaction uses it
        return self._insert_on(connection, jobs)

    @guarded
    def _insert(self, jobs: Sequence[JobRecord]) -> list[bool]:
        # One statement on an autocommit connection: it commits by itself, so a single
        # enqueue costs one round trip (a BEGIN/COMMIT pair would add two).
        with self._connection() as conn:
            return self._insert_on(conn, jobs)

    def _insert_on(self, conn: Any, jobs: Sequence[JobRecord]) -> list[bool]:
        if len(jobs) == 1:
            params = {name: values[0] for name, values in _job_columns(jobs).items()}
            row = conn.execute(self._q["insert_one"], params).fetchone()
            return [row is not None]
        rows = conn.execute(self._q["insert"], _job_columns(jobs)).fetchall()
        inserted = {row[0] for row in rows}
        # A repeated id within one batch is inserted once: only its first entry says so.
        answer = []
        for job in jobs:
            answer.append(job.id in inserted)
            inserted.discard(job.id)
        return answer

    @guarded
    def _get(self, job_ids: list[str]) -> dict[str, JobRecord]:
        with self._tx() as conn:
            rows = conn.execute(self._q["get"], {"ids": job_ids}).fetchall()
        return {row[0]: _record(row) for row in rows}

    @guarded
    def _claim(
        self, queues: list[str], worker: str, limit: int, now: float, lease_until: float
    ) -> list[JobRecord]:
        with self._tx() as conn:
            conn.execute(self._q["promote"], {"now": now})
            rows = conn.execute(self._q["claim"], {"queues": queues, "worker": worker, "now": now,
                                                   "lease_until": lease_until, "limit": limit}).fetchall()  # fmt: skip
        return [_record(row) for row in rows]

    @guarded
    def _renew(self, leases: list[Lease], now: float, lease_until: float) -> HeartbeatReply:
        reply = HeartbeatReply()
        params = [
            {"id": lease.job_id, "token": lease.token, "lease_until": lease_until}
            for lease in leases
        ]
        with self._tx() as conn, conn.cursor() as cur:
            cur.executemany(self._q["renew"], params, returning=True)
            for lease in leases:
                row = cur.fetchone()
                if row is None:
                    reply.lost.add(lease.job_id)
                elif row[0] == "terminate":
                    reply.terminate.add(lease.job_id)
                cur.nextset()
        return reply

    @guarded
    def _finish(self, outcomes: list[Outcome], now: float, keep_until: float) -> list[str]:
        retries = [o for o in outcomes if o.state is State.RETRY]
        ends = [o for o in outcomes if o.state is not State.RETRY]
        rejected = []
        with self._tx() as conn, conn.cursor() as cur:
            for batch, name in ((ends, "finish"), (retries, "snooze")):
                params = [{
                    "id": o.job_id, "token": o.token, "now": now, "error": _dump(o.error), "brief": _brief(o.error),
                    "state": o.state.value, "keep_until": keep_until, "run_at": o.run_at or now,
                    "result": orjson.dumps(o.result).decode() if o.state is State.SUCCESS else None,
                } for o in batch]  # fmt: skip
                done = _each_returned(cur, self._q[name] + "\nRETURNING id", params)
                rejected += [o.job_id for o, ok in zip(batch, done, strict=True) if not ok]
        return rejected

    @guarded
    def _release(self, leases: list[Lease], now: float, interrupted: dict[str, Any] | None) -> None:
        query = self._q["release" if interrupted is None else "release_interrupted"]
        brief = _brief(interrupted)
        with self._tx() as conn, conn.cursor() as cur:
            cur.executemany(
                query,
                [{"id": x.job_id, "token": x.token, "now": now, "brief": brief} for x in leases],
            )

    @guarded
    def _expire(self, leases: list[Lease]) -> None:
        with self._tx() as conn, conn.cursor() as cur:
            cur.executemany(
                self._q["expire"], [{"id": lease.job_id, "token": lease.token} for lease in leases]
            )

    @guarded
    def _next_due(self, queues: list[str]) -> float | None:
        with self._tx() as conn:
            row = conn.execute(self._q["next_due"], {"queues": queues}).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    @guarded
    def _set_progress(self, job_id: str, token: str, progress: dict[str, Any], now: float) -> bool:
        with self._tx() as conn:
            return (
                conn.execute(
                    self._q["set_progress"],
                    {"id": job_id, "token": token, "progress": _dump(progress)},
                ).rowcount
                == 1
            )

    @guarded
    def _cancel(
        self, job_id: str, terminate: bool, reason: str, now: float, keep_until: float
    ) -> tuple[JobRecord, State] | None:
        with self._tx() as conn:
            found = conn.execute(self._q["cancel_find"], {"id": job_id}).fetchone()
            if found is None:
                return None
            was = State(found[0])
            error = _dump(revoked_error(reason))
            for name, params in revoke_statements(was, job_id, terminate, error, now, keep_until):
                conn.execute(self._q[name], {**params, "channel": self.revoke_channel})
            (row,) = conn.execute(self._q["get"], {"ids": [job_id]}).fetchall()
        return _record(row), was

    @guarded
    def _rescue(self, now: float, max_lost: int, keep_until: float) -> list[str]:
        touched = []
        with self._tx() as conn:
            for job_id, revoke, lost, acks_early in conn.execute(
                self._q["expired_leases"], {"now": now}
            ).fetchall():
                params: dict[str, Any] = {"id": job_id, "now": now, "keep_until": keep_until}
                ending = lost_delivery_end(bool(revoke), bool(acks_early), lost + 1, max_lost)
                if ending is not None:
                    state, error = ending
                    params.update(state=state.value, error=_dump(error), brief=_brief(error))
                    conn.execute(self._q["end_lost"], params)
                else:
                    conn.execute(self._q["requeue_lost"], params)
                touched.append(job_id)
        return touched

    @guarded
    def _prune(self, now: float, limit: int) -> int:
        with self._tx() as conn:
            deleted = conn.execute(self._q["prune_jobs"], {"now": now, "limit": limit}).rowcount
            conn.execute(self._q["prune_events"], {"keep": EVENTS_KEPT})
            conn.execute(self._q["prune_kv"], {"now": now})
            conn.execute(self._q["prune_groups"], {"now": now})
        return int(deleted)

    @guarded
    def _requeue(self, job_id: str, now: float) -> tuple[JobRecord | None, bool]:
        with self._tx() as conn:
            changed = conn.execute(self._q["requeue"], {"id": job_id, "now": now}).rowcount == 1
            row = conn.execute(self._q["get"], {"ids": [job_id]}).fetchone()
        return (None if row is None else _record(row)), changed

    @guarded
    def _purge(self, queue: str, reason: str, now: float, keep_until: float) -> int:
        params = {
            "queue": queue,
            "now": now,
            "keep_until": keep_until,
            "error": _dump(revoked_error(reason)),
        }
        total = 0
        while True:
            with self._tx() as conn:
                done = conn.execute(self._q["purge_batch"], params).rowcount
            total += done
            if done == 0:
                return total

    @guarded
    def _list(self, query: JobQuery) -> list[JobRecord]:
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("id < %s", query.before),
            ("created_at >= %s", query.created_after),
            ("created_at < %s", query.created_before),
            ("position(%s in payload) > 0", None if query.text is None else query.text.encode()),
            ("state = ANY(%s)", None if query.states is None else [str(s) for s in query.states]),
            ("queue = ANY(%s)", query.queues),
            ("task = ANY(%s)", query.tasks),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        text = (
            f"SELECT {', '.join(_COLUMNS)} FROM {sql.Identifier(self.schema).as_string(None)}.jobs"
        )
        text += f" {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id DESC LIMIT %s"
        with self._tx() as conn:
            rows = conn.execute(text.encode(), (*params, query.limit)).fetchall()
        return [_record(row) for row in rows]

    def _rows(self, name: str, params: dict[str, Any] | None = None) -> list[Any]:
        with self._tx() as conn:
            return conn.execute(self._q[name], params or {}).fetchall()

    @guarded
    def _counts(self) -> dict[tuple[str, State], int]:
        return {(queue, State(state)): n for queue, state, n in self._rows("counts")}

    @guarded
    def _recent_runs(self, since: float, limit: int) -> list[Run]:
        return [Run(*row) for row in self._rows("recent_runs", {"since": since, "limit": limit})]

    @guarded
    def _oldest_waiting(self, now: float) -> dict[str, float]:
        return {queue: oldest for queue, oldest in self._rows("oldest_waiting", {"now": now})}

    @guarded
    def _waiting_tasks(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for queue, task in self._rows("waiting_tasks"):
            found.setdefault(queue, set()).add(task)
        return found

    @guarded
    def _set_paused(self, queue: str, paused: bool) -> None:
        with self._tx() as conn:
            conn.execute(self._q["pause" if paused else "resume"], {"queue": queue})
            if not paused:
                conn.execute("SELECT pg_notify(%s, %s)", (self.channel, queue))

    @guarded
    def _paused(self) -> set[str]:
        return {row[0] for row in self._rows("paused")}

    @guarded
    def _worker_put(self, info: WorkerInfo) -> None:
        with self._tx() as conn:
            conn.execute(
                self._q["worker_put"],
                {
                    "id": info.id,
                    "last_seen": info.last_seen,
                    "info": _dump(dataclasses.asdict(info)),
                },
            )

    @guarded
    def _worker_delete(self, worker_id: str) -> None:
        with self._tx() as conn:
            conn.execute(self._q["worker_delete"], {"id": worker_id})

    @guarded
    def _workers(self) -> list[WorkerInfo]:
        return [WorkerInfo(**row[0]) for row in self._rows("workers")]

    @guarded
    def _events(self, after: int, limit: int) -> list[Event]:
        return [Event(*row) for row in self._rows("events", {"after": after, "limit": limit})]

    @guarded
    def _lock(self, name: str, owner: str, now: float, until: float) -> bool:
        return bool(self._rows("lock", {"name": name, "owner": owner, "now": now, "until": until}))

    @guarded
    def _unlock(self, name: str, owner: str) -> bool:
        with self._tx() as conn:
            return conn.execute(self._q["unlock"], {"name": name, "owner": owner}).rowcount == 1

    @guarded
    def _incr(self, key: str, amount: int) -> int:
        return int(self._rows("incr", {"key": key, "amount": amount})[0][0])

    @guarded
    def _kv_set(self, key: str, value: Any, until: float | None) -> None:
        with self._tx() as conn:
            conn.execute(
                self._q["kv_set"],
                {"key": key, "value": orjson.dumps(value).decode(), "until": until},
            )

    @guarded
    def _kv_get(self, key: str, now: float, default: Any) -> Any:
        rows = self._rows("kv_get", {"key": key, "now": now})
        return rows[0][0] if rows else default

    @guarded
    def _kv_delete(self, key: str) -> bool:
        with self._tx() as conn:
            return conn.execute(self._q["kv_delete"], {"key": key}).rowcount == 1

    @guarded
    def _join(
        self, group_id: str, index: int, size: int, result: Any, keep_until: float
    ) -> list[Any] | None:
        with self._tx() as conn:
            conn.execute(self._q["join_lock"], {"group_id": group_id})
            conn.execute(self._q["join"], {"group_id": group_id, "idx": index,
                                           "result": orjson.dumps(result).decode(), "keep_until": keep_until})  # fmt: skip
            rows = conn.execute(self._q["group_results"], {"group_id": group_id}).fetchall()
        return [row[0] for row in rows] if len(rows) >= size else None

    @guarded
    def _schedule_put(self, name: str, spec: dict[str, Any]) -> None:
        with self._tx() as conn:
            conn.execute(self._q["schedule_put"], {"name": name, "spec": _dump(spec)})

    @guarded
    def _schedule_state(self, name: str, state: dict[str, Any]) -> None:
        with self._tx() as conn:
            conn.execute(self._q["schedule_state"], {"name": name, "state": _dump(state)})

    @guarded
    def _schedules(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        return {name: (spec, state) for name, spec, state in self._rows("schedules")}

    @guarded
    def _schedule_delete(self, name: str) -> bool:
        with self._tx() as conn:
            return conn.execute(self._q["schedule_delete"], {"name": name}).rowcount == 1

    def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None:
        """LISTEN on the schema's channel; any notification (or the timeout) returns.
        Notifications can be lost (a reconnect): callers poll at least every timeout."""
        if timeout <= 0:
            return
        try:
            conn = getattr(self._listener, "conn", None)
            if conn is None or conn.closed:
                self.pool  # noqa: B018 - the schema (and its trigger) must exist
                conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                self._listener.conn = conn
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                pass
        except (psycopg.Error, BackendError):
            if getattr(self._listener, "conn", None) is not None:
                self._listener.conn.close()
                self._listener.conn = None

    def watch_revocations(self) -> RevocationWatch:
        return _ListenWatch(self)


class _ListenWatch(RevocationWatch):
    """LISTENs, on a connection of its own, to the channel ``_cancel`` notifies when a
    running job is revoked with terminate. A notification sent while the connection was
    down is lost: the worker's heartbeat still brings that revocation."""

    def __init__(self, backend: PostgresBackend) -> None:
        self.backend = backend
        self.conn: psycopg.Connection[Any] | None = None
        self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed:
            self.backend.pool  # noqa: B018 - the schema must exist
            try:
                conn = psycopg.connect(self.backend.conninfo, autocommit=True, connect_timeout=5)
                conn.execute(
                    sql.SQL("LISTEN {}").format(sql.Identifier(self.backend.revoke_channel))
                )
            except psycopg.Error as exc:
                raise self._unreachable(exc) from exc
            self.conn = conn
        return self.conn

    def wait(self, timeout: float) -> bool:
        conn = self._connect()
        try:
            if not any(True for _ in conn.notifies(timeout=max(0.001, timeout), stop_after=1)):
                return False
            while any(True for _ in conn.notifies(timeout=0.0001, stop_after=1)):
                pass  # one heartbeat answers for every revocation waiting
        except psycopg.Error as exc:
            self.close()  # the next wait connects again
            raise self._unreachable(exc) from exc
        return True

    def _unreachable(self, exc: Exception) -> BackendError:
        return BackendError(f"PostgreSQL at {self.backend.safe_url} is unreachable: {exc}")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
