"""The SQLite backend's connections: the file named by the URL, one connection per
thread and per process (never shared across a fork), set up for WAL and a busy timeout,
the schema migrated on first use, and write transactions taken up front."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ...errors import BackendError, ConfigurationError
from ..base import Backend
from ..rollup import bucket_of
from .migrations import migrate

BUSY_TIMEOUT_MS = 30_000


def parse_path(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc or not path or path == ":memory:":
        raise ConfigurationError(
            f"{url!r} is not a SQLite file URL; use sqlite:///relative/path.db or sqlite:////absolute/path.db "
            "(for an in-process store use memory://)"
        )
    return path, {k: v[-1] for k, v in parse_qs(parts.query).items()}


class SQLiteConnection(Backend):
    """The connection half of ``SQLiteBackend`` (which adds the primitives)."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.path, query = parse_path(url)
        self.synchronous = query.get("synchronous", "normal").upper()
        if self.synchronous not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ConfigurationError(
                f"synchronous={self.synchronous!r} in {url!r}: use normal or full"
            )
        self._local = threading.local()
        self._migrated_pid: int | None = None
        self._migrate_lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        parent = Path(self.path).parent
        if not parent.exists():
            raise ConfigurationError(
                f"the folder {str(parent)!r} for the SQLite file {self.path!r} does not exist"
            )
        try:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                raise BackendError(
                    f"SQLite at {self.path!r} refused WAL mode (is it on a network file system?)"
                )
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            # The rollups' run-time bucket, for the statements that write them (never
            # stored in the schema: another program opening the file needs none of it).
            conn.create_function("conveyor_bucket", 1, bucket_of, deterministic=True)
        except sqlite3.Error as exc:
            raise BackendError(f"cannot open the SQLite database {self.path!r}: {exc}") from exc
        self._local.conn, self._local.pid = conn, os.getpid()
        self._local.data_version = None
        self._ensure_schema(conn)
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        with self._migrate_lock:
            if self._migrated_pid == os.getpid():
                return
            migrate(conn)
            self._migrated_pid = os.getpid()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken up front (``BEGIN IMMEDIATE``)."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise BackendError(
                f"SQLite {self.path!r} stayed locked for {BUSY_TIMEOUT_MS / 1000:.0f}s: {exc}"
            ) from exc
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _read(self, sql: str, params: Any = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise BackendError(f"SQLite {self.path!r}: {exc}") from exc

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local = threading.local()
