"""Real services for tests: the machine's Redis if it answers, else a throwaway server.

Under CI=true a service that can be neither reached nor started fails the run; it is
never skipped. Tests use their own db index (never 0) and key prefixes, and delete only
their own keys.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
#: The db index tests use on a shared Redis: never 0, different per concurrent run.
REDIS_DB = int(os.environ.get("CONVEYOR_TEST_REDIS_DB", str(1 + os.getpid() % 15)))


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis_server(
    port: int | None = None, *extra: str
) -> tuple[subprocess.Popen[bytes], int, str]:
    """A redis-server of our own on a free port; returns (process, port, data dir)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = port or _free_port()
    folder = tempfile.mkdtemp(prefix="conveyor-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--save", "",
                             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 10
    while not _answers("127.0.0.1", port):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"redis-server did not start on port {port}")
        time.sleep(0.02)
    return proc, port, folder


PG_HOST, PG_PORT = "127.0.0.1", 5432
_base: str | None = None
_pg_base: str | None = None


def _pg_answers(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=2).close()
        return True
    except psycopg.Error:
        return False


def start_postgres_server(
    folder: str | None = None, port: int | None = None
) -> tuple[subprocess.Popen[bytes], int, str]:
    """A PostgreSQL of our own (initdb into a temp dir, trust auth) on a free port; pass
    the folder and port of a stopped one to start it again. Returns (process, port, folder)."""
    bindir = next(
        (d for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None
    )
    if bindir is None or not (bindir / "initdb").exists():
        raise RuntimeError(
            "PostgreSQL server binaries are not installed (apt-get install postgresql)"
        )
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if folder is None:
        folder = tempfile.mkdtemp(prefix="conveyor-pg-")
        if run_as:
            shutil.chown(folder, "postgres")
        user = ["--username", "postgres", "--auth", "trust"]
        subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", folder, *user], check=True, capture_output=True
        )
    port = port or _free_port()
    proc = subprocess.Popen(
        [*run_as, str(bindir / "postgres"), "-D", folder, "-p", str(port), "-k", folder,
         "-c", "listen_addresses=127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 30
    while not _pg_answers(url):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"postgres did not start on port {port}")
        time.sleep(0.1)
    return proc, port, folder


def stop_postgres_server(
    proc: subprocess.Popen[bytes], folder: str, *, remove: bool = True
) -> None:
    """Stop a server of start_postgres_server's at once and, unless told not to, delete its
    files. As root ``proc`` is runuser, not the server: killing it would leave the server
    running, so pg_ctl stops it by its data folder."""
    pg_ctl = next(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    # Not checked: it fails harmlessly when the server is stopped already.
    subprocess.run(
        [*run_as, str(pg_ctl), "-D", folder, "stop", "-m", "immediate"], capture_output=True
    )
    proc.wait()
    if remove:
        shutil.rmtree(folder, ignore_errors=True)


def postgres_cluster_state(folder: str) -> str:
    """The data folder's state as pg_controldata reads it: "shut down" after a clean stop,
    "in production" after a crash (the next start runs crash recovery)."""
    pg_controldata = next(Path("/usr/lib/postgresql").glob("*/bin/pg_controldata"))
    out = subprocess.run([str(pg_controldata), "-D", folder], capture_output=True, text=True,
                         check=True, env={**os.environ, "LC_ALL": "C"}).stdout  # fmt: skip
    return out.split("Database cluster state:", 1)[1].splitlines()[0].strip()


def postgres_base_url() -> str:
    """A PostgreSQL URL for this test run (tests use their own schemas in it)."""
    global _pg_base
    if _pg_base is None:
        shared = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"
        if _pg_answers(shared):
            _pg_base = shared
        else:
            try:
                proc, port, folder = start_postgres_server()
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                if os.environ.get("CI") == "true":
                    pytest.fail(f"PostgreSQL is needed under CI and could not be had: {exc}")
                pytest.skip(f"no PostgreSQL: {exc}")
            atexit.register(stop_postgres_server, proc, folder)
            _pg_base = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    return _pg_base


def drop_schema(url: str) -> None:
    import psycopg

    base, _, query = url.partition("?")
    schema = query.rsplit("schema=", 1)[1].split("&")[0]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def redis_base_url() -> str:
    """redis://host:port/db for this test run, starting a server if none answers."""
    global _base
    if _base is None:
        if _answers(REDIS_HOST, REDIS_PORT):
            _base = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
        else:
            try:
                proc, port, _ = start_redis_server()
            except RuntimeError as exc:
                if os.environ.get("CI") == "true":
                    pytest.fail(f"Redis is needed under CI and could not be had: {exc}")
                pytest.skip(f"no Redis: {exc}")
            atexit.register(proc.kill)
            _base = f"redis://127.0.0.1:{port}/{REDIS_DB}"
    return _base


def delete_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url.split("?")[0])
    keys = list(client.scan_iter(match=f"conveyor:{{{prefix}}}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
