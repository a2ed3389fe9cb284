"""Faults checked by the ledger harness (``conveyor.testing.ledger``): after each scenario
the invariants are checked against the ledger, what the test was told, and the store.

Also: the soak command itself, run briefly on every backend.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor import App
from conveyor.errors import BackendError
from conveyor.testing.ledger import LEDGER_TASK, Fault, Ledger, check, ledger_task
from conveyor.worker import Worker

from ..conftest import ROOT
from ..services import postgres_base_url
from ..worker.conftest import wait_until

pytestmark = pytest.mark.slow
Spawn = Callable[..., subprocess.Popen[bytes]]


def start_workers(
    conveyor_proc: Spawn, url: str, count: int, *args: str
) -> list[subprocess.Popen[bytes]]:
    return [
        conveyor_proc(
            "-A",
            "tests.apps.basic:app",
            "worker",
            "-n",
            f"w{i}",
            "-l",
            "warning",
            *args,
            env={"CONVEYOR_BACKEND": url},
        )
        for i in range(count)
    ]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        assert proc.wait(30) == 0, Path(proc.log_path).read_text()  # type: ignore[attr-defined]


def settle(app: App, ids: list[str], timeout: float) -> None:
    def done() -> bool:
        try:
            return all(r.state.finished for r in app.backend.get_many(ids).values())
        except BackendError:  # a look just after the last cut: look again
            return False

    wait_until(done, timeout, f"{len(ids)} jobs to finish")


def test_sigkill_of_one_pool_child_reruns_its_job_only(
    shared_url: str, conveyor_proc: Spawn, tmp_path: Path
) -> None:
    ledger = Ledger(tmp_path / "ledger.txt")
    app = App("producer", backend=shared_url)
    [worker] = start_workers(conveyor_proc, shared_url, 1, "-P", "process", "-c", "2")
    jobs = [app.send_task(LEDGER_TASK, (str(ledger.path), 1.5)) for _ in range(2)]
    running = wait_until(lambda: len(ledger.entries()) == 2 and ledger.entries(), 30, "both jobs")
    victim = running[0]
    killed_at = time.time()
    os.kill(victim.pid, signal.SIGKILL)
    settle(app, [j.id for j in jobs], 30)
    report = check(app.backend, ledger, [j.id for j in jobs],
                   faults=[Fault(killed_at, "SIGKILL child", frozenset([victim.pid]))])  # fmt: skip
    assert report.ok, report.render()
    runs = ledger.executions()
    assert len(runs[victim.job_id]) == 2
    assert runs[victim.job_id][0].ended is None  # the first run died with its child
    assert [len(r) for j, r in runs.items() if j != victim.job_id] == [1]  # the other: once
    assert worker.poll() is None  # the worker replaced its child and went on
    stop([worker])


@pytest.mark.timeout(120)
def test_postgres_connections_terminated_mid_claim_and_mid_ack(
    conveyor_proc: Spawn, tmp_path: Path
) -> None:
    import psycopg

    name = f"conveyor-cut-{os.getpid()}"
    schema = f"t_cut_{os.getpid()}"
    base = postgres_base_url()
    url = f"{base}?schema={schema}&application_name={name}"
    ledger = Ledger(tmp_path / "ledger.txt")
    app = App("producer", backend=url)
    try:
        workers = start_workers(conveyor_proc, url, 2, "-P", "thread", "-c", "4")
        wait_until(lambda: len(app.backend.workers()) == 2, 20, "the workers")
        ids: list[str] = []
        faults: list[Fault] = []
        stopping = threading.Event()

        def produce() -> None:
            while not stopping.is_set():
                try:
                    ids.append(app.send_task(LEDGER_TASK, (str(ledger.path), 0.01)).id)
                except BackendError:  # cut mid-enqueue: not acknowledged
                    time.sleep(0.01)

        producer = threading.Thread(target=produce)
        producer.start()
        with psycopg.connect(base, autocommit=True) as admin:
            # Every 0.15 s (claims, acks and heartbeats all get hit), at least 30 times and
            # until over 100 jobs went in between cuts (a loaded machine enqueues slower).
            deadline = time.monotonic() + 60
            while (len(faults) < 30 or len(ids) <= 100) and time.monotonic() < deadline:
                time.sleep(0.15)
                faults.append(Fault(time.time(), "connections cut"))
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE application_name = %s", (name,))  # fmt: skip
        stopping.set()
        producer.join()
        settle(app, ids, 60)
        report = check(app.backend, ledger, ids, faults=faults)
        assert report.ok, report.render()
        assert len(ids) > 100
        for proc in workers:
            assert proc.poll() is None  # every worker reconnected by itself
        stop(workers)
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run_producers(url: str, ledger: Path, count: int, seconds: float, rate: float = 0.0,
                  folder: Path | None = None) -> list[subprocess.Popen[bytes]]:  # fmt: skip
    folder = folder or ledger.parent
    procs = []
    for i in range(count):
        with (
            open(folder / f"producer-{i}.out", "wb") as out,
            open(folder / f"producer-{i}.err", "wb") as err,
        ):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "tests.faults.producer", url, str(ledger), str(seconds), str(rate)],
                cwd=ROOT, stdout=out, stderr=err,
            ))  # fmt: skip
    return procs


def acknowledged(folder: Path) -> list[str]:
    """Ids the producers printed; a line cut by a kill is not an acknowledgement."""
    ids = []
    for path in folder.glob("producer-*.out"):
        text = path.read_text()
        ids += text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
    return ids


def wait_for_writes(procs: list[subprocess.Popen[bytes]], folder: Path, lines: int) -> None:
    """Wait until the producers have acknowledged ``lines`` ids between them, all still
    running; a producer that exits early fails the test with what it printed."""
    deadline = time.monotonic() + 60
    while len(acknowledged(folder)) < lines:
        for i, proc in enumerate(procs):
            if proc.poll() is not None:
                err = (folder / f"producer-{i}.err").read_text()
                raise AssertionError(f"producer {i} exited {proc.returncode} early:\n{err}")
        if time.monotonic() > deadline:
            counts = [
                len((folder / f"producer-{i}.out").read_bytes().splitlines())
                for i in range(len(procs))
            ]
            raise AssertionError(f"producers wrote {counts} ids in 60 s, wanted {lines}")
        time.sleep(0.01)


def test_sqlite_writers_killed_mid_write_leave_an_intact_store(tmp_path: Path) -> None:
    path = tmp_path / "conveyor.db"
    url = f"sqlite:///{path}"
    ledger = tmp_path / "ledger.txt"
    rng = random.Random(5)
    ids: list[str] = []
    for round_ in range(3):  # three rounds of four writers, each SIGKILLed at a random moment
        folder = tmp_path / f"round-{round_}"
        folder.mkdir()
        procs = run_producers(url, ledger, 4, 30, folder=folder)
        wait_for_writes(procs, folder, 40)
        for proc in procs:
            time.sleep(rng.uniform(0.0, 0.3))
            proc.kill()
            proc.wait()
        ids += acknowledged(folder)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert len(ids) > 300
    app = App("tests", backend=url)
    ledger_task(app)
    assert set(app.backend.get_many(ids)) == set(ids)  # every acknowledged enqueue is there
    Worker(app, pool="thread", concurrency=4, burst=True).run()
    report = check(app.backend, Ledger(ledger), ids)
    assert report.ok, report.render()


SQLITE_CROWD_SECONDS = float(os.environ.get("CONVEYOR_FAULTS_CROWD_SECONDS", "60"))


@pytest.mark.timeout(SQLITE_CROWD_SECONDS + 180)
def test_sqlite_sixteen_workers_and_four_producers_for_a_minute(
    conveyor_proc: Spawn, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'crowd.db'}"
    ledger = tmp_path / "ledger.txt"
    app = App("tests", backend=url)
    app.backend.counts()  # create the file before twenty processes race to
    workers = start_workers(conveyor_proc, url, 16, "-P", "solo")
    wait_until(lambda: len(app.backend.workers()) == 16, 60, "16 workers")
    producers = run_producers(url, ledger, 4, SQLITE_CROWD_SECONDS, rate=100)
    for proc in producers:
        assert proc.wait(SQLITE_CROWD_SECONDS + 60) == 0
    ids = acknowledged(tmp_path)
    settle(app, ids, 90)
    stop(workers)
    errors = "".join(p.read_text() for p in tmp_path.glob("producer-*.err"))
    logs = "".join(Path(w.log_path).read_text() for w in workers)  # type: ignore[attr-defined]
    assert "locked" not in errors + logs
    report = check(app.backend, Ledger(ledger), ids)  # no faults: any second delivery breaks it
    assert report.ok, report.render()
    assert report.executions == len(ids)  # zero double claims
    by_worker = {r.worker for r in app.backend.get_many(ids).values()}
    assert len(by_worker) > 8  # the work really was spread over the crowd
    assert len(ids) > 20 * SQLITE_CROWD_SECONDS


@pytest.mark.parametrize("store", ["sqlite", "redis", "postgres"])
@pytest.mark.timeout(240)
def test_the_soak_command_keeps_every_promise(store: str) -> None:
    extra = ["--postgres-url", postgres_base_url()] if store == "postgres" else []
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--backend", store, "--seconds", "15",
         "--fault-every", "1.5", "--seed", "11", "--rate", "30", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=220,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "invariants: all hold" in done.stdout
    assert "faults injected: 0" not in done.stdout


def test_the_harness_catches_a_lost_job_a_silent_duplicate_and_a_stuck_record(
    tmp_path: Path,
) -> None:
    """The checks can fail: a broken store and ledger are reported, one line per breach."""
    app = App("tests", backend=f"sqlite:///{tmp_path / 'x.db'}")
    ledger_task(app)
    ledger = Ledger(tmp_path / "ledger.txt")
    lost, doubled, stuck = (app.send_task(LEDGER_TASK, (str(ledger.path),)) for _ in range(3))
    Worker(app, pool="solo", burst=True).run()
    ledger.write(doubled.id, 2, "start")  # a second run with no fault to excuse it
    with sqlite3.connect(tmp_path / "x.db") as db:
        db.execute("UPDATE jobs SET state = 'STARTED', lease_until = 0 WHERE id = ?", (stuck.id,))
        db.execute("DELETE FROM jobs WHERE id = ?", (lost.id,))
    report = check(app.backend, ledger, [lost.id, doubled.id, stuck.id])
    assert not report.ok
    text = "\n".join(report.violations)
    assert f"{lost.id}: acknowledged at enqueue, missing from the store" in text
    assert f"{doubled.id}: ran 2 times, but faults struck only 0 of those runs" in text
    assert f"{stuck.id}: left STARTED with no live lease" in text
    with sqlite3.connect(tmp_path / "x.db") as db:
        db.execute("DELETE FROM jobs WHERE id = ?", (stuck.id,))
    first = ledger.executions()[doubled.id][0]
    hit = Fault(first.started, "SIGKILL", frozenset([first.pid]))  # the same pid: both runs
    missed = Fault(first.started, "SIGKILL", frozenset([first.pid + 1]))  # another process
    assert check(app.backend, ledger, [doubled.id], faults=[hit]).ok
    assert not check(app.backend, ledger, [doubled.id], faults=[missed]).ok
