"""Soak: jobs flowing through real workers and schedulers while faults are injected at
random, then the ledger's invariants (``conveyor.testing.ledger``) checked and printed.

    .venv/bin/python -m benchmarks.soak --backend sqlite --seconds 600
    .venv/bin/python -m benchmarks.soak --backend redis --seconds 60 --seed 7

Faults, one every ``--fault-every`` seconds on average: SIGKILL of a whole worker (it is
started again), SIGKILL of one pool child, SIGSTOP of a worker past its lease then SIGCONT,
SIGKILL of a scheduler (two run; it is started again), and on Redis a SIGKILL and restart
of the server (our own redis-server, AOF with fsync always), on PostgreSQL every
connection of the run terminated with ``pg_terminate_backend``. Exits 1 if an invariant is
broken. Workers use a 2 s lease so a killed one's jobs come back in seconds.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from conveyor import App, State
from conveyor.context import TaskContext
from conveyor.errors import ConveyorError
from conveyor.records import JobQuery
from conveyor.testing.ledger import Fault, Ledger, check, ledger_task

from .redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]
LEASE = 2.0
#: After a backend restart or cut connections, clients reconnect with a backoff (the
#: PostgreSQL pool's grows after repeated failures): a worker can miss renewing a 2 s
#: lease for a few seconds after the fault itself is over. Runs whose lease overlaps
#: this window may be delivered again; seen in the soak: 7 s after three cuts in 0.6 s.
BACKEND_RECOVERY = 10.0

#: Faults here come every few seconds, so one job is often hit several times in a row; a
#: production worker fails a job after 3 lost deliveries (a poison job), the soak after 20.
app = App(
    "soak", lease_seconds=LEASE, heartbeat_interval=0.3, rescue_interval=0.3, max_lost_leases=20
)
work = ledger_task(app, name="soak.work")


@app.periodic(every=1, schedule_name="soak.tick", bind=True)
def tick(self: TaskContext) -> None:
    ledger = Ledger(os.environ["CONVEYOR_SOAK_LEDGER"])
    ledger.write(self.request.id, self.request.attempt, "start")
    ledger.write(self.request.id, self.request.attempt, "end")


@dataclass
class Store:
    """Where the run keeps its jobs, and how to break it (``restart``: None if we can't)."""

    url: str
    restart: Callable[[], None] | None = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)


@contextmanager
def open_store(kind: str, folder: Path, postgres_url: str) -> Iterator[Store]:
    if kind == "sqlite":
        yield Store(f"sqlite:///{folder / 'soak.db'}")
    elif kind == "redis":
        server = RedisServer(folder, persistent=True)
        try:
            yield Store(server.url, restart=server.restart)
        finally:
            server.stop()
    elif kind == "postgres":
        import psycopg

        name = f"conveyor-soak-{os.getpid()}"
        schema = f"soak_{os.getpid()}"
        sep = "&" if "?" in postgres_url else "?"
        url = f"{postgres_url}{sep}schema={schema}&application_name={name}"

        def cut_connections() -> None:
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (name,),
                )

        try:
            yield Store(url, restart=cut_connections)
        finally:
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    else:
        raise SystemExit(f"unknown backend {kind!r}: sqlite, redis or postgres")


class Processes:
    """The workers and schedulers of the run, each in its own session so a signal reaches
    a worker's pool children too; a killed one is started again in its slot."""

    def __init__(self, url: str, ledger: Path, logs: Path) -> None:
        self.env = {**os.environ, "CONVEYOR_BACKEND": url, "CONVEYOR_SOAK_LEDGER": str(ledger)}
        self.logs, self.starts = logs, 0
        self.slots: dict[str, tuple[list[str], subprocess.Popen[bytes]]] = {}

    def start(self, slot: str, *args: str) -> None:
        self.starts += 1
        log = open(self.logs / f"{slot}-{self.starts}.log", "wb")  # noqa: SIM115 - the child owns it
        cmd = [sys.executable, "-m", "conveyor", "-A", "benchmarks.soak:app", *args]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        log.close()
        self.slots[slot] = (list(args), proc)

    def tree(self, slot: str) -> frozenset[int]:
        proc = self.slots[slot][1]
        with suppress(psutil.Error):
            return frozenset(
                [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]
            )
        return frozenset([proc.pid])

    def pool_children(self, slot: str) -> list[int]:
        """The processes that run tasks: leaves of the tree (not the zygote or fork server,
        whose death takes its children with it, nor multiprocessing's resource tracker)."""
        found = []
        with suppress(psutil.Error):
            for proc in psutil.Process(self.slots[slot][1].pid).children(recursive=True):
                with suppress(psutil.Error):
                    if not proc.children() and "resource_tracker" not in " ".join(proc.cmdline()):
                        found.append(proc.pid)
        return sorted(found)

    def kill(self, slot: str) -> frozenset[int]:
        """SIGKILL the slot's process group and start it again; returns the pids killed."""
        args, proc = self.slots[slot]
        pids = self.tree(slot)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self.start(slot, *args)
        return pids

    def signal(self, slot: str, signum: int) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.slots[slot][1].pid, signum)

    def stop_all(self, kind: str = "") -> None:
        """Stop every process whose slot starts with ``kind`` (all by default)."""
        group = [proc for slot, (_, proc) in self.slots.items() if slot.startswith(kind)]
        for proc in group:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in group:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


class Producer(threading.Thread):
    """Enqueues jobs at about ``rate`` per second and cancels some waiting ones; keeps the
    ids the backend acknowledged and the time each acknowledged cancel returned."""

    def __init__(self, url: str, ledger: Path, rate: float, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.app = App("soak-producer", backend=url)
        self.ledger, self.rate, self.rng = str(ledger), rate, rng
        self.acknowledged: list[str] = []
        self.cancelled: dict[str, float] = {}
        self.refused = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.rng.expovariate(self.rate)):
            seconds = self.rng.choice([0, 0, 0, 0.01, 0.05, 0.2, 0.5, 3 * LEASE / 2])
            countdown = self.rng.choice([None] * 8 + [0.5, 2 * LEASE])
            try:
                job = self.app.send_task("soak.work", (self.ledger, seconds), countdown=countdown)
            except ConveyorError:
                self.refused += 1  # not acknowledged: the producer would retry or report
                continue
            self.acknowledged.append(job.id)
            if countdown and self.rng.random() < 0.3:
                try:
                    revoked = job.revoke().state is State.REVOKED
                except ConveyorError:  # no answer (the backend restarting): it may have taken
                    revoked = False
                # Revoked while waiting: it must never start after now. Otherwise (it had
                # started, or the answer was lost) it may end REVOKED or SUCCESS, at any time.
                self.cancelled[job.id] = time.time() if revoked else math.inf


def inject(
    procs: Processes, store: Store, kind: str, pools: dict[str, str], rng: random.Random
) -> Fault | None:
    workers = [s for s in procs.slots if s.startswith("worker")]
    if kind == "kill-worker":
        slot = rng.choice(workers)
        at = time.time()
        return Fault(at, f"SIGKILL {slot}", procs.kill(slot))
    if kind == "kill-child":
        slot = rng.choice([s for s in workers if pools[s] == "process"])
        children = procs.pool_children(slot)
        if not children:
            return None
        child = rng.choice(children)
        at = time.time()
        with suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
        return Fault(at, f"SIGKILL one child of {slot}", frozenset([child]))
    if kind == "stop-worker":
        slot = rng.choice(workers)
        pids, at = procs.tree(slot), time.time()
        procs.signal(slot, signal.SIGSTOP)
        time.sleep(LEASE + 1)
        procs.signal(slot, signal.SIGCONT)
        # It lasts the whole stop: a claim the worker pipelined behind its blocking wait
        # before it was stopped still runs in the backend, and that lease goes unrenewed.
        return Fault(at, f"SIGSTOP {slot} for {LEASE + 1:.0f}s", pids, lasting=LEASE + 1)
    if kind == "kill-scheduler":
        slot = rng.choice([s for s in procs.slots if s.startswith("scheduler")])
        at = time.time()
        return Fault(at, f"SIGKILL {slot}", procs.kill(slot))
    assert store.restart is not None
    at = time.time()
    store.restart()
    what = "backend restart" if store.url.startswith("redis") else "connections cut"
    return Fault(at, what, lasting=BACKEND_RECOVERY)


def soak(args: argparse.Namespace) -> int:
    logging.getLogger("psycopg").setLevel(logging.ERROR)  # cut connections are the point here
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="conveyor-soak-"))
    ledger_path = folder / "ledger.txt"
    with open_store(args.backend, folder, args.postgres_url) as store:
        App("soak-setup", backend=store.url).backend.counts()  # create / migrate the store
        procs = Processes(store.url, ledger_path, folder)
        pools = {f"worker{i}": ("process" if i % 2 == 0 else "thread") for i in range(args.workers)}
        for slot, pool in pools.items():
            procs.start(slot, "worker", "-n", slot, "-P", pool, "-c", "2", "-l", "warning")
        for i in range(2):
            procs.start(f"scheduler{i}", "scheduler", "--lock-ttl", "2", "-l", "warning")
        kinds = ["kill-worker", "kill-child", "stop-worker", "kill-scheduler"]
        kinds += ["backend"] * (store.restart is not None)
        producer = Producer(store.url, ledger_path, args.rate, rng)
        producer.start()
        faults: list[Fault] = []
        injected: Counter[str] = Counter()
        print(f"soak: {args.backend}, {args.seconds:.0f}s, {args.workers} workers, "
              f"~{args.rate:.0f} jobs/s, a fault every ~{args.fault_every:.1f}s; in {folder}", flush=True)  # fmt: skip
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            time.sleep(
                min(rng.expovariate(1 / args.fault_every), max(0.0, deadline - time.monotonic()))
            )
            if time.monotonic() >= deadline:
                break
            kind = rng.choice(kinds)
            fault = inject(procs, store, kind, pools, rng)
            if fault:
                faults.append(fault)
                injected[kind] += 1
                pids = " ".join(map(str, sorted(fault.pids or ())))
                print(f"  {fault.at:.3f} {fault.what} {pids}".rstrip(), flush=True)
        producer.stopping.set()
        producer.join()
        backend = App("soak-check", backend=store.url).backend
        pending = set(producer.acknowledged)
        drain_until = time.monotonic() + args.drain_timeout
        while pending and time.monotonic() < drain_until:
            with suppress(ConveyorError):
                done = backend.get_many(list(pending))
                pending -= {i for i, r in done.items() if r.state.finished}
            time.sleep(0.2)
        # Schedulers first, then what their last ticks enqueued, then workers: a tick
        # left waiting after the workers stopped would count as a job no worker took.
        procs.stop_all("scheduler")
        while time.monotonic() < drain_until:
            with suppress(ConveyorError):
                if not backend.list_jobs(JobQuery(states=[State.PENDING], limit=1)):
                    break
            time.sleep(0.2)
        procs.stop_all()
        report = check(
            backend, Ledger(ledger_path), producer.acknowledged,
            cancelled=producer.cancelled, faults=faults, ack_window=2 * LEASE,
        )  # fmt: skip
        locked = sum(
            p.read_text(errors="replace").count("database is locked") for p in folder.glob("*.log")
        )
        print("faults: " + ", ".join(f"{kind} {n}" for kind, n in sorted(injected.items())))
        print(f"enqueues refused while the backend was down: {producer.refused}")
        print(f"'database is locked' in worker logs: {locked}")
        print(report.render())
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        return 0 if report.ok and not locked else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "redis", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=300.0, help="how long faults are injected")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument(
        "--rate",
        type=float,
        default=10.0,
        help="jobs enqueued per second (jobs average ~0.5 s: 3 workers x 2 slots keep up with ~12/s)",
    )
    parser.add_argument(
        "--fault-every", type=float, default=3.0, help="mean seconds between faults"
    )
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--keep", action="store_true", help="keep the ledger and logs")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    print(f"seed {args.seed} (rerun with --seed {args.seed})")
    sys.exit(soak(args))


if __name__ == "__main__":
    main()
