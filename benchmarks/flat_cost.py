"""Cost that stays flat as the store grows: enqueue, throughput and pickup latency on an
empty store, with a large backlog waiting, and with many finished records kept; and how
fast pruning deletes finished records, alone and beside a draining worker.

    .venv/bin/python -m benchmarks.flat_cost --backend sqlite
    .venv/bin/python -m benchmarks.flat_cost --backend postgres --size 200000

Each store is built in bulk by ``benchmarks.bulk_store``; the figures come from the same
functions as ``benchmarks.worker`` (a real ``conveyor worker`` subprocess, times from
the job records). The backlog waits in a queue the measuring worker does not consume
(``backlog``): in SQL it shares the jobs table and its claim index with the measured
jobs; on Redis it shares the job hashes and the id index, and has its own ready set.
Results go to the terminal and benchmarks/results/flat_cost_<backend>.json.

Wall-clock figures swing with the machine's load; CPU time per operation moves much less,
so each measure also counts, over its timed part: this process's CPU (the client's,
main thread), the CPU of the worker subprocesses it reaped meanwhile (each with the pool
children it reaped: the whole worker tree), and the server's: on Redis a redis-server of
the run's own (``INFO cpu``); on PostgreSQL the backend processes serving the run's
connections (``pg_stat_activity`` by application name, each one's
``/proc/<pid>/schedstat`` read every 50 ms); SQLite has no server, its engine runs in
the client and in the workers. On Redis each window also counts the commands the server
ran (``INFO commandstats``: calls, a count the load cannot move, and their time inside
Redis, scripts apart).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from conveyor import App, State
from conveyor.task import Signature

from . import bulk_store, worker

ROOT = Path(__file__).resolve().parents[1]


def with_store(store: tuple[App, str]) -> None:
    """Make ``worker.fresh`` give every measure the one ``store`` (the jobs each measure
    adds are few beside it)."""
    worker.fresh = lambda tmp, name: store  # restored by the caller


def build(tmp: Path, label: str, fill: Callable[[App], Any] | None) -> tuple[App, str]:
    store = worker.fresh(tmp, "store")
    if fill is not None:
        print(f"  {label}: built in {fill(store[0]):.0f}s", flush=True)
    return store


class Cpu:
    """CPU seconds spent over named windows: ``client`` (this thread), ``workers`` and
    ``server``. Workers: the subprocesses reaped meanwhile, with the children they reaped;
    or, given a live worker's pid, that process tree's (its processes' ``on_cpu``)."""

    def __init__(
        self, server: Callable[[], float], counts: Callable[[], dict[str, float]] | None = None
    ) -> None:
        self.server = server
        self.counts = counts  # more counters of the server's, e.g. ``redis_commands``
        self.found: dict[str, dict[str, float]] = {}

    def _now(self, tree: int | None) -> dict[str, float]:
        if tree is None:
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            workers = children.ru_utime + children.ru_stime
        else:
            root = psutil.Process(tree)
            workers = sum(on_cpu(p.pid) for p in [root, *root.children(recursive=True)])
        now = {"client": time.thread_time(), "workers": workers, "server": self.server()}
        return {**now, **(self.counts() if self.counts else {})}

    @contextmanager
    def window(self, name: str, tree: int | None = None) -> Iterator[None]:
        before = self._now(tree)
        yield
        after = self._now(tree)
        self.found[name] = {k: after[k] - before[k] for k in after}


def on_cpu(pid: int) -> float:
    """Seconds process ``pid`` has run on a CPU, to the nanosecond (``/proc/<pid>/stat``
    counts 10 ms ticks: too coarse for a backend's share of 2,000 enqueues), every live
    thread of it (``/proc/<pid>/schedstat`` alone is its first thread's: a worker's pruner
    and a pool child's storer thread were left out); 0 if gone."""
    return sum(threads_on_cpu(pid).values())


def threads_on_cpu(pid: int) -> dict[int, float]:
    """``on_cpu`` of each live thread of process ``pid``, by thread id."""
    found = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for tid in tids:
        try:
            found[int(tid)] = (
                int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0]) / 1e9
            )
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
    return found


def redis_commands(url: str) -> Callable[[], dict[str, float]]:
    """Commands a redis-server has run, from ``INFO commandstats``: ``server_calls`` (a
    count the machine's load cannot move) and ``server_usec`` (their time inside Redis),
    of every command and of the scripts alone (``script_calls``, ``script_usec``); in
    millions of calls and seconds, as the CPU figures, so ``cpu_us_per_op`` holds calls
    and µs an operation."""
    import redis

    client = redis.Redis.from_url(url)

    def counted() -> dict[str, float]:
        stats = client.info("commandstats")
        scripts = [
            v for k, v in stats.items() if k.split("_", 1)[1] in ("evalsha", "eval", "fcall")
        ]
        return {
            "server_calls": sum(v["calls"] for v in stats.values()) / 1e6,
            "server_usec": sum(v["usec"] for v in stats.values()) / 1e6,
            "script_calls": sum(v["calls"] for v in scripts) / 1e6,
            "script_usec": sum(v["usec"] for v in scripts) / 1e6,
        }

    return counted


def no_server() -> float:
    return 0.0


def redis_cpu(url: str) -> Callable[[], float]:
    """The CPU a redis-server has used (the run's own: nobody else's work in it)."""
    import redis

    client = redis.Redis.from_url(url)

    def used() -> float:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    return used


class PostgresCpu:
    """The CPU of the PostgreSQL backends serving this run's schemas (their connections
    are named ``conveyor:<schema>``), summed since the sampler started: each backend's
    ``on_cpu`` is read every 50 ms, so a backend's last 50 ms before it exits may be
    missed (the same for every store)."""

    def __init__(self) -> None:
        import psycopg

        self.conn = psycopg.connect(worker.POSTGRES, autocommit=True, application_name="flat-cost")
        self.lock = threading.Lock()
        self.seen: dict[tuple[int, str], tuple[float, float]] = {}  # -> (first, last)
        self.first = True
        self.stopped = threading.Event()
        self.sample()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        names = [f"conveyor:{schema}" for schema in worker._prefixes]
        rows = self.conn.execute(
            "SELECT pid, backend_start::text FROM pg_stat_activity WHERE application_name = ANY(%s)",
            (names,),
        ).fetchall()
        with self.lock:
            for pid, began in rows:
                cpu = on_cpu(pid)
                if not cpu:
                    continue  # ended meanwhile
                first = self.seen.get((pid, began), (0.0 if not self.first else cpu, 0.0))[0]
                self.seen[(pid, began)] = (first, cpu)
            self.first = False

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            self.sample()

    def __call__(self) -> float:
        self.sample()
        with self.lock:
            return sum(last - first for first, last in self.seen.values())

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.conn.close()


def measure(
    tmp: Path,
    store: tuple[App, str],
    n: int,
    server: Callable[[], float],
    counts: Callable[[], dict[str, float]] | None = None,
) -> dict[str, Any]:
    plain = worker.fresh
    with_store(store)
    cpu = Cpu(server, counts)
    try:
        found = {
            "enqueue": worker.bench_enqueue(tmp, n // 5, cpu.window),
            "throughput": worker.bench_throughput(tmp, n, 2, window=cpu.window),
            "pickup": latency(tmp, 100, cpu.window),
        }
        with cpu.window("startup"):  # a worker's start and stop, no job: not a job's cost
            worker.start_worker(store[1], "-P", "process", "-c", "2", "--burst").wait(120)
    finally:
        worker.fresh = plain
    spent = cpu.found
    spent["throughput_net"] = {k: v - spent["startup"][k] for k, v in spent["throughput"].items()}
    ops = {"enqueue_single": n // 5, "enqueue_bulk": n // 5, "throughput": n,
           "throughput_net": n, "pickup": 100, "startup": 1}  # fmt: skip
    found["cpu_us_per_op"] = {
        name: {k: v / ops[name] * 1e6 for k, v in parts.items()} for name, parts in spent.items()
    }
    return found


def latency(tmp: Path, n: int, window: worker.Window = worker.untimed) -> dict[str, float]:
    """``worker.bench_latency``, waiting for its own jobs (a backlog may wait beside them)."""
    app, url = worker.fresh(tmp, "latency")
    ids = pickup(app, url, n, window)
    waits = sorted((r.started_at - r.created_at) * 1000 for r in worker.finished_records(app, ids))
    q = statistics.quantiles(waits, n=100)
    return {"p50_ms": q[49], "p95_ms": q[94], "p99_ms": q[98]}


def pickup(app: App, url: str, n: int, window: worker.Window) -> list[str]:
    """Send ``n`` jobs 10 ms apart to an idle worker; the window spans the sending and
    the wait for the last job, on the live worker tree (idle loop included, start not)."""
    proc = worker.start_worker(url, "-P", "process", "-c", "2")
    try:
        worker.wait_registered(app, proc)
        time.sleep(1.0)  # let the worker settle into its idle wait
        ids = []
        with window("pickup", tree=proc.pid):
            for _ in range(n):
                ids.append(app.send_task("bench.noop").id)
                time.sleep(0.01)
            deadline = time.monotonic() + 60
            while any(r.finished_at is None for r in worker.finished_records(app, ids)):
                if time.monotonic() > deadline:
                    raise RuntimeError("latency jobs did not finish")
                time.sleep(0.05)
    finally:
        worker.stop(proc)
    return ids


def expired_left(app: App) -> int:
    """Finished records left in the store's own queues (the measured jobs use ``default``)."""
    ends = (State.SUCCESS, State.FAILURE, State.REVOKED)
    return sum(
        n for (q, state), n in app.backend.counts().items() if q != "default" and state in ends
    )


def pruning(tmp: Path, size: int, n: int) -> dict[str, Any]:
    """The worker's pruner (``conveyor.worker.pruning``, default settings) over ``size``
    expired records: alone, on a thread of this process until half are gone; then the
    pruner of a worker draining ``n`` jobs, which is what runs in production; and, for
    that worker's throughput, one draining as many on an empty store just before."""
    from conveyor.worker.pruning import Pruner  # here: the rest runs on older code too

    baseline = worker.bench_throughput(tmp, n, 2)["jobs_per_s"]
    app, url = worker.fresh(tmp, "prune")
    bulk_store.build(app, size, 0, keep=-1)
    pruner = Pruner(app.backend, "bench", app.conf)
    thread = threading.Thread(target=pruner.run)
    t0 = time.perf_counter()
    thread.start()
    while pruner.deleted < size // 2 and thread.is_alive():
        time.sleep(0.01)
    alone = pruner.deleted / (time.perf_counter() - t0)
    pruner.stop()
    thread.join()
    jobs = []
    for i in range(0, n, 1000):
        jobs += app.enqueue_many([Signature("bench.noop") for _ in range(min(1000, n - i))])
    samples: list[tuple[float, int]] = []  # (backend time, expired records left)
    proc = worker.start_worker(url, "-P", "process", "-c", "2", "--burst", "--prefetch", "8")
    while proc.poll() is None:
        samples.append((app.backend.now(), expired_left(app)))
        time.sleep(0.05)
    records = worker.finished_records(app, [j.id for j in jobs])
    first, last = min(r.started_at for r in records), max(r.finished_at for r in records)
    during = [left for at, left in samples if first <= at <= last]  # while it drained
    return {
        "alone_deleted_per_s": alone,
        "beside_worker_deleted_per_s": (during[0] - during[-1]) / (last - first),
        "worker_jobs_per_s_while_pruning": n / (last - first),
        "worker_jobs_per_s_empty_store": baseline,
    }


def steady(tmp: Path, n: int, ttl: float = 1.0) -> dict[str, Any]:
    """A worker drains ``n`` jobs whose records expire ``ttl`` seconds after they finish:
    its pruner deletes them as fast as they finish, or the records left grow. The most
    records left during the drain (about finish rate * (ttl + prune_interval) if it keeps
    up), the seconds after the drain until none are left, and the worker's throughput;
    then the same drain with the records kept (nothing to prune), for its throughput."""
    found = drain(tmp, n, ttl)
    kept = drain(tmp, n, None)
    return {**found, "worker_jobs_per_s_records_kept": kept["worker_jobs_per_s"]}


def steady_pairs(tmp: Path, n: int, reps: int, ttl: float = 1.0) -> list[dict[str, Any]]:
    """``reps`` pairs of drains of ``n`` jobs, records kept ``ttl`` seconds (the pruner
    deletes them as they come) and kept a week (it finds nothing), in alternating order:
    on this machine's drifting load, each pair compares the pruner's cost to the worker."""
    pairs = []
    for rep in range(reps):
        order = [ttl, None] if rep % 2 == 0 else [None, ttl]
        found = {}
        for keep in order:
            found["pruned" if keep else "kept"] = {**drain(tmp, n, keep), "load": load()}
        pairs.append(found)
        print(f"  steady pair {rep}: {found}", flush=True)
    return pairs


def drain(tmp: Path, n: int, ttl: float | None) -> dict[str, Any]:
    # A store of its own each time (SQLite's file is named by it): none holds the
    # records an earlier drain kept.
    app, url = worker.fresh(tmp, f"{'steady' if ttl else 'kept'}-{time.monotonic_ns()}")
    jobs = []
    for i in range(0, n, 1000):
        jobs += app.enqueue_many([Signature("bench.noop") for _ in range(min(1000, n - i))])
    worker.analyze(url)
    os.environ["BENCH_RESULT_TTL"] = str(ttl or 7 * 24 * 3600)
    try:
        proc = worker.start_worker(url, "-P", "process", "-c", "2", "--prefetch", "8")
    finally:
        del os.environ["BENCH_RESULT_TTL"]
    left: list[tuple[float, int]] = []  # (time, finished records left), while it drains
    began = drained = None  # when the first job started, when none waits or runs any more
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            counts, now = app.backend.counts(), time.monotonic()
            queued = counts.get(("default", State.PENDING), 0)
            waiting = queued + counts.get(("default", State.STARTED), 0)
            began = began if began is not None or queued == n else now
            drained = drained if drained is not None or waiting else now
            left.append((now, counts.get(("default", State.SUCCESS), 0)))
            if drained is not None and (ttl is None or left[-1][1] == 0):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("the pruner did not catch up within 120 s")
    finally:
        worker.stop(proc)
    if began is None or drained is None:
        raise RuntimeError("the worker did not drain its jobs")
    return {
        "jobs": n,
        "ttl_s": ttl,
        "most_records_left": max(x for _, x in left),
        "seconds_after_drain_until_none_left": left[-1][0] - drained,
        "worker_jobs_per_s": n / (drained - began),
    }


def keeping_up(
    tmp: Path, n: int, rate: int = 10_000, seconds: float = 30.0, prune: bool = True
) -> dict[str, Any]:
    """Records expiring at ``rate`` a second, as a store finishing that many jobs a second
    would see (finished records written in bulk, already past their ``keep_until``: this
    machine cannot run 10,000 jobs a second on SQL; written by ``FEEDERS`` processes of
    their own in transactions of ``FEED_CHUNK``), for ``seconds``, beside an idle
    worker whose pruner must delete them as they come; ``n`` jobs enqueued after 5 s
    are drained by that worker meanwhile. Sampled: the expired records left (bounded if
    the pruner keeps up), the seconds after the feed until none is left (None, and what
    is left, when that takes over 120 s), the worker's
    throughput, and the same worker's on a store with no feed just before. ``prune``
    False: this process holds the pruning lock until the feed ends, so the worker's
    pruner deletes nothing meanwhile (its throughput beside the feed alone), then
    clears what piled up."""
    from conveyor.worker.pruning import PRUNE_LOCK  # here: the rest runs on older code too

    baseline = worker.bench_throughput(tmp, n, 2)["jobs_per_s"]
    app, url = worker.fresh(tmp, "feed")
    held = not prune and app.backend.acquire_lock(PRUNE_LOCK, "bench", seconds + 60)
    proc = worker.start_worker(url, "-P", "process", "-c", "2", "--prefetch", "8")
    worker.wait_registered(app, proc)
    start, feeders, procs = start_feeders(url, rate, seconds)
    began = time.monotonic()
    left: list[tuple[float, int]] = []  # (seconds since the feed began, expired left)
    jobs: list[Any] = []
    try:
        while not all(d.is_set() for _, d, _ in feeders) or not left or left[-1][1] > 0:
            if not jobs and time.monotonic() - began > 5:
                for _ in range(n // 1000):
                    jobs += app.enqueue_many([Signature("bench.noop") for _ in range(1000)])
            left.append((time.monotonic() - began, expired_left(app)))
            if held and all(d.is_set() for _, d, _ in feeders):
                held = not app.backend.release_lock(PRUNE_LOCK, "bench")
            if time.monotonic() - began > seconds + 120:
                break  # not caught up 120 s after the feed: a figure too (what is left)
            time.sleep(0.2)
        deadline = time.monotonic() + 120
        while app.backend.counts().get(("default", State.SUCCESS), 0) < n:
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not drain its jobs")
            time.sleep(0.2)
    finally:
        start.set()
        for feeder in procs:
            feeder.join()
        worker.stop(proc)
    fed = sum(int(v.value) for _, _, v in feeders)
    records = worker.finished_records(app, [j.id for j in jobs])
    first, last = min(r.started_at for r in records), max(r.finished_at for r in records)
    fed_for = max(t for t, _ in left if t <= seconds)
    return {
        "rate_per_s": rate,
        "pruning_during_feed": prune,
        "fed": fed,
        "fed_per_s": fed / seconds,
        "most_expired_left": max(x for _, x in left),
        "expired_left_at_feed_end": [x for t, x in left if t <= seconds][-1],
        "seconds_after_feed_until_none_left": left[-1][0] - fed_for if left[-1][1] == 0 else None,
        "expired_left_120_s_after_feed": left[-1][1],
        "worker_jobs_per_s": n / (last - first),
        "worker_jobs_per_s_no_feed": baseline,
    }


#: The most records a feeder writes in one transaction: a tenth of a second at 10,000 a
#: second. Uncapped, a feeder that fell behind wrote one large chunk, invisible until its
#: commit, and the pruner saw the feed in bursts of tens of thousands.
FEED_CHUNK = 1000
#: Feeding processes, each writing its share of the rate: one reached 3,500-5,800 a
#: second at a load average of 9-14 on this machine's 2 cores.
FEEDERS = 2


def start_feeders(url: str, rate: int, seconds: float) -> tuple[Any, list[Any], list[Any]]:
    """``FEEDERS`` processes running ``feed``, started together once all are ready: the
    start event, each one's (ready, done, fed), the processes."""
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Event()
    feeders = [(spawn.Event(), spawn.Event(), spawn.Value("q", 0)) for _ in range(FEEDERS)]
    procs = [spawn.Process(target=feed, args=(url, rate / FEEDERS, seconds, *f, start))
             for f in feeders]  # fmt: skip
    for feeder in procs:
        feeder.start()
    for ready, _, _ in feeders:
        if not ready.wait(120):
            start.set()
            raise RuntimeError("a feeding process was not ready within 120 s; is the store up?")
    start.set()
    return start, feeders, procs


def feed(url: str, rate: float, seconds: float, ready: Any, done: Any, fed: Any,
         start: Any) -> None:  # fmt: skip
    """A feeding process (its own interpreter: the rows it writes do not compete with the
    sampling thread's GIL): ``rate`` expired records a second for ``seconds``, made
    beforehand, written in transactions of at most ``FEED_CHUNK``; ``fed`` counts them.
    Sets ``ready`` when it may start, waits for ``start``, sets ``done`` at the end."""
    app = App("feeder", backend=url)
    # Made beforehand, expired already (kept until a second before now): the feed then
    # spends its time writing them, not building them in Python.
    made: list[Any] = list(bulk_store.rows(int(rate * seconds), 0, app.backend.now(), keep=-1))
    write = partial(bulk_store.write, app, tidy=False)
    if url.startswith("redis"):  # the bulk writer's pipelines race the pruner (bulk_store)
        made, write = bulk_store.records(made), app.backend.enqueue
    ready.set()
    start.wait()
    began, written = time.monotonic(), 0
    while time.monotonic() - began < seconds and written < len(made):
        due = min(int((time.monotonic() - began) * rate) - written, FEED_CHUNK)
        if due < 100:
            time.sleep(0.005)
            continue
        write(made[written : written + due])
        written += due
        fed.value = written
    done.set()


STORES = ["empty", "waiting", "delayed", "kept"]
# What each store's figures are, per operation: (measure, CPU part); the wall figure beside.
CPU_FIGURES = [
    ("enqueue_single", "client"), ("enqueue_single", "server"),
    ("enqueue_bulk", "client"), ("enqueue_bulk", "server"),
    ("throughput_net", "workers"), ("throughput", "server"),
    ("pickup", "workers"), ("pickup", "server"),
    # Redis only (``redis_commands``): commands and script calls an operation, their time.
    ("enqueue_single", "server_calls"), ("enqueue_single", "script_usec"),
    ("throughput", "server_calls"), ("throughput", "script_calls"),
    ("throughput", "script_usec"), ("throughput", "server_usec"),
]  # fmt: skip


def wall(found: dict[str, Any]) -> dict[str, float]:
    return {
        "enqueue_single_per_s": found["enqueue"]["single_per_s"],
        "enqueue_bulk_per_s": found["enqueue"]["bulk_per_s"],
        "throughput_jobs_per_s": found["throughput"]["jobs_per_s"],
        "pickup_p50_ms": found["pickup"]["p50_ms"],
        "pickup_p99_ms": found["pickup"]["p99_ms"],
    }


def summary(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each large store against its round's empty store: the median over the rounds of
    the ratio (large / empty) of every CPU-per-operation figure and wall figure, and
    whether each CPU ratio is within 15% (<= 1.15: a cheaper figure is flat too)."""
    empty = results.get("empty", [])
    out: dict[str, Any] = {}
    for label, rounds in results.items():
        if label == "empty":
            continue
        pairs = list(zip(empty, rounds, strict=False))
        cpu = {}
        for name, part in CPU_FIGURES:
            ratios = [
                big["cpu_us_per_op"][name][part] / base["cpu_us_per_op"][name][part]
                for base, big in pairs
                if base["cpu_us_per_op"][name].get(part, 0) > 0
            ]
            if ratios:
                cpu[f"{name}.{part}"] = statistics.median(ratios)
        walls = {
            k: statistics.median(wall(big)[k] / wall(base)[k] for base, big in pairs)
            for k in wall(rounds[0])
        }
        out[label] = {"rounds": len(pairs), "cpu_ratio": cpu, "wall_ratio": walls,
                      "cpu_within_15pct": all(r <= 1.15 for r in cpu.values())}  # fmt: skip
    return out


def show(rep: int, label: str, found: dict[str, Any]) -> None:
    us = found["cpu_us_per_op"]
    print(f"  round {rep + 1}, {label}: enqueue "
          f"{found['enqueue']['single_per_s']:,.0f}/s single, "
          f"{found['enqueue']['bulk_per_s']:,.0f}/s bulk; throughput "
          f"{found['throughput']['jobs_per_s']:,.0f} jobs/s; pickup p50 "
          f"{found['pickup']['p50_ms']:.2f} ms, p99 {found['pickup']['p99_ms']:.2f} ms\n"
          "    CPU us/op (client, workers, server): "
          + "; ".join(f"{name} {v['client']:.0f}, {v['workers']:.0f}, {v['server']:.0f}"
                      for name, v in us.items()),
          flush=True)  # fmt: skip
    if "server_calls" in us["throughput"]:
        print("    Redis calls/op, script calls/op, script us/op: "
              + "; ".join(f"{name} {v['server_calls']:.2f}, {v['script_calls']:.2f}, "
                          f"{v['script_usec']:.1f}" for name, v in us.items()),
              flush=True)  # fmt: skip


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "redis", "postgres"], default="sqlite")
    parser.add_argument("--size", type=int, default=1_000_000, help="backlog waiting (or delayed)")
    parser.add_argument("--kept", type=int, default=5_000_000, help="finished records kept")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per throughput run")
    parser.add_argument("--reps", type=int, default=3, help="rounds over the stores")
    parser.add_argument("--stores", default=",".join(STORES), help="of " + ",".join(STORES))
    parser.add_argument("--label", default="", help="added to the results file's name")
    parser.add_argument("--pruning", action="store_true", help="measure pruning only")
    parser.add_argument(
        "--no-pruning",
        action="store_true",
        help="skip the pruning measures; with --feed: no pruning until the feed ends",
    )
    parser.add_argument("--steady", action="store_true",
                        help="only: drains with records kept 1 s and kept, alternating")  # fmt: skip
    parser.add_argument("--feed", type=int, default=0, help="only: pruning beside a feed of N/s")
    args = parser.parse_args()
    worker.BACKEND = args.backend
    size, n = args.size, args.jobs
    every: dict[str, tuple[str, Callable[[App], Any] | None]] = {
        "empty": ("empty", None),
        "waiting": (f"{size:,} waiting", lambda app: bulk_store.build(app, 0, size, queues=["backlog"])),
        "delayed": (f"{size:,} delayed in another queue",
                    lambda app: bulk_store.build(app, 0, 0, queues=["backlog"], delayed=size)),
        "kept": (f"{args.kept:,} finished kept", lambda app: bulk_store.build(app, args.kept, 0)),
    }  # fmt: skip
    chosen = args.stores.split(",")
    if unknown := set(chosen) - set(every):
        raise SystemExit(f"unknown stores {sorted(unknown)}: choose from {STORES}")
    stores = dict(every[key] for key in STORES if key in chosen)
    meta: dict[str, Any] = {"began": datetime.now(UTC).isoformat(timespec="seconds"),
                            "load_at_start": load(), "builds": {}}  # fmt: skip
    own_redis = sampler = None
    try:
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            server: Callable[[], float] = no_server
            counts: Callable[[], dict[str, float]] | None = None
            if args.backend == "redis":
                from .redis_server import RedisServer

                own_redis = RedisServer(tmp, persistent=False)
                worker.REDIS = own_redis.url
                server = redis_cpu(own_redis.url)
                counts = redis_commands(own_redis.url)
            elif args.backend == "postgres":
                server = sampler = PostgresCpu()
            results: dict[str, Any] = {}
            if not (args.pruning or args.feed or args.steady):
                results.update(rounds(tmp, args, stores, server, meta, counts))
            results.update(prune_measures(tmp, args))
    finally:
        if sampler is not None:
            sampler.stop()
        if own_redis is not None:
            own_redis.stop()
        elif args.backend != "sqlite":
            worker.cleanup()
    meta["ended"] = datetime.now(UTC).isoformat(timespec="seconds")
    meta["load_at_end"] = load()
    kind = (
        "_feed" if args.feed else "_steady" if args.steady else "_pruning" if args.pruning else ""
    )
    name = f"flat_cost_{args.backend}{kind}{args.label}.json"
    out = ROOT / "benchmarks" / "results" / name
    out.write_text(json.dumps({"backend": args.backend, "size": size, "kept": args.kept,
                               "jobs": n, "reps": args.reps, **meta, **results}, indent=2))  # fmt: skip


def rounds(
    tmp: Path,
    args: argparse.Namespace,
    stores: dict[str, Callable[[App], Any] | None],
    server: Callable[[], float],
    meta: dict[str, Any],
    counts: Callable[[], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Build the stores, then measure them in turn, ``args.reps`` rounds."""
    built = {}
    for i, (label, fill) in enumerate(stores.items()):
        (tmp / str(i)).mkdir()  # SQLite: a file of its own for each store
        before = size_of(args.backend, tmp / str(i)) if args.backend == "redis" else 0
        built[label] = (tmp / str(i), build(tmp / str(i), label, fill))
        meta["builds"][label] = {"bytes": size_of(args.backend, tmp / str(i)) - before,
                                 "load": load()}  # fmt: skip
        print(f"  {label}: {meta['builds'][label]}", flush=True)
    # This machine's load drifts within minutes: the stores are measured in turn, round
    # after round, and each figure is compared within its round.
    results: dict[str, Any] = {}
    for rep in range(args.reps):
        for label, (where, store) in built.items():
            found = measure(where, store, args.jobs, server, counts)
            found["load"] = load()
            results.setdefault(label, []).append(found)
            show(rep, label, found)
    results["summary"] = summary(results)
    print(json.dumps(results["summary"], indent=2), flush=True)
    return results


def prune_measures(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if args.feed:
        results["keeping_up"] = keeping_up(tmp, args.jobs, args.feed, prune=not args.no_pruning)
        print(f"  keeping up: {results['keeping_up']}", flush=True)
    elif args.steady:
        results["steady_pairs"] = steady_pairs(tmp, args.jobs, args.reps)
    elif not args.no_pruning:
        results["pruning"] = pruning(tmp, args.size, args.jobs)
        print(f"  pruning: {results['pruning']}", flush=True)
        results["pruning_steady"] = steady(tmp, 5 * args.jobs)
        print(f"  pruning, steady: {results['pruning_steady']}", flush=True)
    return results


def size_of(backend: str, folder: Path) -> int:
    """The store's bytes: the run's own redis-server's memory; the SQLite files; on
    PostgreSQL the newest schema's tables and indexes."""
    if backend == "sqlite":
        return sum(p.stat().st_size for p in folder.glob("*.db*"))
    if backend == "redis":
        import redis

        return int(redis.Redis.from_url(worker.REDIS).info("memory")["used_memory"])
    if not worker._prefixes:
        return 0
    import psycopg

    with psycopg.connect(worker.POSTGRES, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class AS c "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
            (worker._prefixes[-1],),
        ).fetchone()
    return int(row[0]) if row else 0


if __name__ == "__main__":
    main()
