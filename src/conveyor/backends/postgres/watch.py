"""The PostgreSQL backend's revocation watch: a LISTEN on a connection of its own."""

from __future__ import annotations

from typing import Any

from ...errors import BackendError
from ..base import RevocationWatch
from .connection import PostgresConnection
from .driver import psycopg, sql


class ListenWatch(RevocationWatch):
    """LISTENs, on a connection of its own, to the channel ``_cancel`` notifies when a
    running job is revoked with terminate. A notification sent while the connection was
    down is lost: the worker's heartbeat still brings that revocation."""

    def __init__(self, backend: PostgresConnection) -> None:
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
