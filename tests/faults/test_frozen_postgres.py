"""A PostgreSQL worker frozen (SIGSTOP: a paused VM, a stopped container) in the middle of
a statement leaves no transaction open, so no other worker waits on what it held.

The window: the worker's session caught executing a statement of its pruner (a batch of
deletes) or of its heartbeat (the lease renewal), and the worker's whole process group
stopped right then. The server finishes that statement and commits it without the
client; a statement of a transaction, or of a pipeline still waiting for its Sync, would
stay open, with its row locks, for as long as the worker stays frozen (a pipeline is not
"idle in transaction", so the server's idle timeout never ends it).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conveyor import App, State

from ..conftest import backend_url, discard
from ..services import postgres_base_url
from ..worker.conftest import ledger_lines, wait_until

pytestmark = pytest.mark.slow
Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    store = backend_url("postgres", tmp_path)
    yield store
    discard(store)


@pytest.fixture
def admin() -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(postgres_base_url(), autocommit=True) as conn:
        yield conn


def spawner(conveyor_proc: Spawn, url: str) -> Callable[[str], subprocess.Popen[bytes]]:
    def start(name: str) -> subprocess.Popen[bytes]:
        return conveyor_proc("-A", "tests.apps.basic:app", "worker", "-n", name, "-P", "thread",
                             "-c", "1", env={"CONVEYOR_BACKEND": url})  # fmt: skip

    return start


def freeze_when_running(
    admin: psycopg.Connection[Any], schema: str, proc: subprocess.Popen[bytes], statement: str
) -> int:
    """SIGSTOP ``proc``'s process group the moment one of its store's sessions is seen
    executing a statement whose text holds ``statement``; that session's pid."""
    find = ("SELECT pid FROM pg_stat_activity WHERE application_name = %s AND state = 'active' "
            "AND position(%s in query) > 0 AND pid <> pg_backend_pid()")  # fmt: skip
    while True:  # bounded by the test's timeout; a worker does this many times a second
        row = admin.execute(find, (f"conveyor:{schema}", statement)).fetchone()
        if row is not None:
            os.killpg(proc.pid, signal.SIGSTOP)
            return int(row[0])


def settles_alone(admin: psycopg.Connection[Any], pid: int) -> str | None:
    """Wait for the frozen client's session to end its transaction by itself: its state
    once it has, which must be plain 'idle' (a session left in its transaction stays
    'idle in transaction' or 'active', and is ended by the server's idle timeout at best)."""
    query = "SELECT state, xact_start IS NULL FROM pg_stat_activity WHERE pid = %s"

    def settled() -> str | None:
        row = admin.execute(query, (pid,)).fetchone()
        if row is None:
            return "ended by the server"  # the idle-in-transaction timeout cut it
        return str(row[0]) if row[1] else None

    return str(wait_until(settled, 8, "the frozen session's transaction to end"))


def beat_since(app: App, name: str, since: float) -> bool:
    return any(w.name == name and w.last_seen > since for w in app.backend.workers())


def expired_records(admin: psycopg.Connection[Any], schema: str, n: int) -> None:
    """``n`` finished records whose ``keep_until`` has passed: the pruner's work."""
    admin.execute(
        f'INSERT INTO "{schema}".jobs (id, task, queue, priority, payload, state, run_at, '
        "created_at, finished_at, keep_until) "
        "SELECT 'old-' || i, 't.add', 'default', 0, '\\x00', 'SUCCESS', 0, 0, 0, 1 "
        "FROM generate_series(1, %s) AS i",
        (n,),
    )


def test_a_worker_frozen_mid_prune_holds_no_lock_and_another_works_on(
    url: str, admin: psycopg.Connection[Any], conveyor_proc: Spawn, tmp_path: Path
) -> None:
    producer = App("producer", backend=url)
    schema = url.rsplit("schema=", 1)[1]
    producer.backend.counts()  # the schema, migrated
    expired_records(admin, schema, 50_000)  # some 50 batches: it is deleting for seconds
    spawn = spawner(conveyor_proc, url)
    pruning = spawn("w0")
    pid = freeze_when_running(admin, schema, pruning, f'DELETE FROM "{schema}".jobs')
    assert settles_alone(admin, pid) == "idle"
    fresh = spawn("w1")
    ledger = tmp_path / "ledger.txt"
    job = producer.send_task("t.ledger", (str(ledger), 0.0))
    wait_until(lambda: job.state is State.SUCCESS, 30, "the other worker to claim and ack")
    assert [line[0] for line in ledger_lines(ledger)] == ["start", "end"]
    resumed = producer.backend.now()
    os.killpg(pruning.pid, signal.SIGCONT)
    # Stop it once it runs again: a SIGTERM sent while its threads still wake from the
    # stop can be taken by a thread other than the main one, which never wakes for it.
    wait_until(lambda: beat_since(producer, "w0", resumed), 20, "the resumed worker's heartbeat")
    for proc in (pruning, fresh):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_a_worker_frozen_mid_heartbeat_has_its_job_delivered_again(
    url: str, admin: psycopg.Connection[Any], conveyor_proc: Spawn, tmp_path: Path
) -> None:
    producer = App("producer", backend=url)
    schema = url.rsplit("schema=", 1)[1]
    spawn = spawner(conveyor_proc, url)
    ledger = tmp_path / "ledger.txt"
    stalled = spawn("w0")
    job = producer.send_task("t.ledger", (str(ledger), 1.0))
    wait_until(lambda: ledger_lines(ledger), 20, "the job to start")
    # The renewal commits without waiting for its WAL flush, so it runs for microseconds:
    # a lock on the job's row holds it running (waiting for the row) until after the
    # freeze; released, the server ends the statement without its client.
    with psycopg.connect(postgres_base_url()) as locker:
        locker.execute(f'SELECT 1 FROM "{schema}".jobs WHERE id = %s FOR UPDATE', (job.id,))
        pid = freeze_when_running(admin, schema, stalled, "SET lease_until = $1")
        locker.rollback()
    assert settles_alone(admin, pid) == "idle"
    fresh = spawn("w1")  # rescues the job once its lease (2 s) has run out, and runs it
    wait_until(lambda: job.state is State.SUCCESS, 30, "the second delivery to finish")
    assert [line[0] for line in ledger_lines(ledger)] == ["start", "start", "end"]
    os.killpg(stalled.pid, signal.SIGKILL)
    fresh.send_signal(signal.SIGTERM)
    assert fresh.wait(20) == 0
