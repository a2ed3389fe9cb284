"""What a worker's pruner costs the worker beside it: a drain at full rate whose records
are kept ``--keep`` seconds (its pruner deletes them as they come), against the same
drain with records kept a week (the pruner looks and finds nothing), in pairs whose
order alternates, on a redis-server of the run's own.

    .venv/bin/python -m benchmarks.prune_drain --backend redis --body redis --jobs 60000 --pairs 5
    chrt -f 10 .venv/bin/python -m benchmarks.prune_drain ...   # every process ahead of the load

``--body redis``: each job makes one Redis round trip (``bench.work``, an INCR on the
run's redis-server: benchmarks/peers/bodies.py), as a real task's I/O does; ``noop``: the
engine's ceiling. ``-P process -c 2 --prefetch 8``, as ``flat_cost --steady``.
``--against PATH``: a third drain each round, records kept as briefly, with the worker
running that checkout's ``src`` (its pruner: before and after a change, same minutes).

Counted over each drain, from the first sample with a job started to the first with
none waiting or running (per job): the worker's CPU, its own process (where the pruner
thread runs, beside the heartbeats and the pool's supervisor) and its pool processes
apart; the redis-server's (``INFO cpu``); its commands, script calls and their time
inside Redis (``INFO commandstats``). Over the whole run, until none is left to prune,
the same again, and the prune lag: finished records past ``keep_until`` by more than
``LAG`` seconds, at the drain's end and at most after the pruner's first look.
``--slowlog``: the server logs every command (``slowlog-log-slower-than 0``), and the
prune script's calls are read from it: how many, their time inside Redis per record
pruned, the longest (it adds a little to every command, both drains alike).
Results: benchmarks/results/prune_drain_<backend>_<body><label>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from conveyor import App, State
from conveyor.task import Signature

from . import worker
from .flat_cost import on_cpu, redis_commands, redis_cpu, threads_on_cpu
from .redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]
#: A record still there this many seconds past its ``keep_until`` counts as lagging.
LAG = 1.0
TASKS = {"noop": "bench.noop", "redis": "bench.work"}


@dataclass
class Run:
    """What the drains share: the store's backend, the body's redis-server (the store's
    own on Redis), the task."""

    backend: str
    server: RedisServer
    body: str
    slowlog: bool = False
    interval: float = 5.0  # the worker's prune_interval

    def __post_init__(self) -> None:
        import redis

        self.redis = redis.Redis.from_url(self.server.url)
        self.cpu = redis_cpu(self.server.url)
        self.commands = redis_commands(self.server.url)
        os.environ.update(BENCH_BODY=self.body, BENCH_BODY_REDIS=self.server.url,
                          BENCH_BODY_KEY="bench:body")  # fmt: skip
        if self.slowlog:
            self.redis.config_set("slowlog-log-slower-than", 0)
            self.redis.config_set("slowlog-max-len", 2_000_000)

    def counters(self, tree: int) -> dict[str, float]:
        """CPU seconds so far of the worker's own process and of its descendants, of
        the server, and the server's command counts."""
        try:
            kids = psutil.Process(tree).children(recursive=True)
        except psutil.NoSuchProcess:
            kids = []
        return {"worker_main": on_cpu(tree), "worker_pool": sum(on_cpu(p.pid) for p in kids),
                "server": self.cpu(), **self.commands()}  # fmt: skip


def lagging(app: App, before: float) -> int:
    """Finished records whose ``keep_until`` is before ``before``."""
    backend: Any = app.backend
    if worker.BACKEND == "redis":
        return int(backend.client.zcount(backend._key("finished"), "-inf", f"({before}"))
    return int(backend._read("SELECT count(*) FROM jobs WHERE keep_until < ?", (before,))[0][0])


def drain(
    run: Run, tmp: Path, n: int, keep: float | None, src: Path | None = None
) -> dict[str, Any]:
    """One drain of ``n`` jobs, records kept ``keep`` seconds (None: a week)."""
    if worker.BACKEND == "redis" or run.body == "redis":
        run.redis.flushall()  # the run's own server: every drain starts from the same store
        run.redis.slowlog_reset()
    app, url = worker.fresh(tmp, f"{'pruned' if keep else 'kept'}-{time.monotonic_ns()}")
    task = TASKS[run.body]
    for i in range(0, n, 1000):
        app.enqueue_many([Signature(task) for _ in range(min(1000, n - i))])
    env = {
        "BENCH_RESULT_TTL": str(keep or 7 * 24 * 3600),
        "BENCH_PRUNE_INTERVAL": str(run.interval),
    }
    if src is not None:
        env["PYTHONPATH"] = str(src)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        proc = worker.start_worker(url, "-P", "process", "-c", "2", "--prefetch", "8")
    finally:
        for k, v in saved.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v
    try:
        found = watch(run, app, proc.pid, n, keep)
    finally:
        worker.stop(proc)
    if run.slowlog:
        found["prune_scripts"] = prune_scripts(run, app, src, found["pruned"])
    return {"keep_s": keep, "code": str(src) if src else "this", "load": load(), **found}


def watch(run: Run, app: App, tree: int, n: int, keep: float | None) -> dict[str, Any]:
    """Sample the drain every 50 ms until none waits or runs, and (records kept briefly)
    none is left to prune; the counters at its first start, at its end, at the end."""
    began = drained = None
    marks: dict[str, dict[str, float]] = {}
    lag: list[tuple[float, int]] = []  # (seconds since began, records lagging)
    most_left = 0
    deadline = time.monotonic() + 180
    while True:
        counts, now = app.backend.counts(), time.monotonic()
        queued = counts.get(("default", State.PENDING), 0)
        waiting = queued + counts.get(("default", State.STARTED), 0)
        left = counts.get(("default", State.SUCCESS), 0)
        most_left = max(most_left, left)
        if began is None and queued < n:
            began, marks["began"] = now, {**run.counters(tree), "done": n - waiting}
            threads = threads_on_cpu(tree)
        if began is not None and keep:
            lag.append((now - began, lagging(app, app.backend.now() - keep - LAG)))
        if drained is None and began is not None and not waiting:
            drained, marks["drained"] = now, run.counters(tree)
            spent = threads_on_cpu(tree)
            threads = {t: spent[t] - threads.get(t, 0.0) for t in spent}
            lag_at_drain = lag[-1][1] if lag else 0
        if drained is not None and (keep is None or left == 0):
            marks["end"] = run.counters(tree)
            break
        if now > deadline:
            raise RuntimeError("the drain, or the pruning after it, took over 180 s")
        time.sleep(0.05)
    assert began is not None
    assert drained is not None
    done = n - marks["began"].pop("done")
    per_job = {
        part: {k: (marks[end][k] - marks["began"][k]) / done * 1e6 for k in marks[end]}
        for part, end in (("drain", "drained"), ("whole", "end"))
    }
    first_look = run.interval + 1.0 + (keep or 0) + LAG  # the first nap's pile
    return {
        "jobs": n,
        "jobs_per_s": done / (drained - began),
        "seconds": drained - began,
        "seconds_after_drain_until_none_left": round(now - drained, 2),
        "most_records_left": most_left,
        "lag_at_drain_end": lag_at_drain if keep else 0,
        "most_lag_after_first_look": max((x for t, x in lag if t > first_look), default=0),
        "pruned": n if keep else 0,
        # CPU: µs a job; server_calls, script_calls: calls a job; *_usec: µs a job in Redis
        "per_job": per_job,
        # The worker's own process, each thread's CPU over the drain, µs a job, most first
        "worker_main_threads": sorted(
            (round(v / done * 1e6, 2) for v in threads.values()), reverse=True
        ),
    }


def prune_scripts(run: Run, app: App, src: Path | None, pruned: int) -> dict[str, Any]:
    """The prune script's calls in the server's SLOWLOG (every command, this drain)."""
    sha = prune_sha(app, src)
    entries = run.redis.slowlog_get(-1)
    took = [e["duration"] for e in entries
            if len(e["command"].split()) > 1 and e["command"].split()[1].decode() == sha]  # fmt: skip
    if not took:
        return {"calls": 0}
    return {
        "calls": len(took),
        "usec_total": sum(took),
        "usec_per_record": sum(took) / pruned if pruned else None,
        "usec_median": statistics.median(took),
        "usec_longest": max(took),
        "over_2ms": sum(1 for t in took if t > 2000),
        "slowlog_entries": len(entries),
    }


def prune_sha(app: App, src: Path | None) -> str:
    if src is None:
        return str(app.backend._script("prune")[0])  # type: ignore[attr-defined]
    return hashlib.sha1(prune_script(src).encode()).hexdigest()


def prune_script(src: Path) -> str:
    """The prune script of the checkout whose ``src`` is ``src``."""
    code = ("import sys; from conveyor.backends.redis import RedisBackend as B; "
            "b = B.__new__(B); b._scripts = {}; sys.stdout.write(b._script('prune')[1])")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(src)},
                         capture_output=True, text=True, check=True)  # fmt: skip
    return out.stdout


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per arm against the kept drain of its round: the ratios' median and range."""
    out: dict[str, Any] = {}
    for arm in [a for a in rounds[0] if a != "kept"]:
        ratio = {
            "jobs_per_s": [r[arm]["jobs_per_s"] / r["kept"]["jobs_per_s"] for r in rounds],
        }
        for k in ("worker_main", "worker_pool", "server", "server_calls", "script_usec"):
            ratio[f"drain {k} a job"] = [
                r[arm]["per_job"]["drain"][k] / r["kept"]["per_job"]["drain"][k]
                for r in rounds
                if r["kept"]["per_job"]["drain"][k] > 0  # SQLite runs no script
            ]
        out[arm] = {k: {"median": round(statistics.median(v), 3),
                        "range": [round(min(v), 3), round(max(v), 3)]}
                    for k, v in ratio.items() if v}  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["redis", "sqlite"], default="redis")
    parser.add_argument("--body", choices=list(TASKS), default="redis")
    parser.add_argument("--jobs", type=int, default=60_000)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--keep", type=float, default=1.0, help="seconds records are kept")
    parser.add_argument("--against", type=Path, help="another checkout: a third drain a round")
    parser.add_argument("--slowlog", action="store_true", help="the prune script's calls, exact")
    parser.add_argument("--label", default="")
    parser.add_argument("--prune-interval", type=float, default=5.0,
                        help="the worker's prune_interval: its first look's nap")  # fmt: skip
    args = parser.parse_args()
    worker.BACKEND = args.backend
    meta = {"began": datetime.now(UTC).isoformat(timespec="seconds"), "load_at_start": load(),
            "policy": os.sched_getscheduler(0)}  # fmt: skip
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        server = RedisServer(tmp, persistent=False)
        worker.REDIS = server.url
        run = Run(args.backend, server, args.body, args.slowlog, args.prune_interval)
        arms: list[tuple[str, float | None, Path | None]] = [
            ("pruned", args.keep, None), ("kept", None, None)]  # fmt: skip
        if args.against:
            arms.append(("pruned_against", args.keep, args.against.resolve() / "src"))
        try:
            for i in range(args.pairs):
                order = arms[i % len(arms) :] + arms[: i % len(arms)]  # each first in turn
                found = {name: drain(run, tmp, args.jobs, keep, src) for name, keep, src in order}
                rounds.append(found)
                show(i, found)
        finally:
            server.stop()
    meta["ended"] = datetime.now(UTC).isoformat(timespec="seconds")
    meta["load_at_end"] = load()
    result = {"backend": args.backend, "body": args.body, "jobs": args.jobs, "keep_s": args.keep,
              "prune_interval": args.prune_interval, **meta, "rounds": rounds,
              "summary": summary(rounds)}  # fmt: skip
    print(json.dumps(result["summary"], indent=2))
    out = (
        ROOT / "benchmarks" / "results" / f"prune_drain_{args.backend}_{args.body}{args.label}.json"
    )
    out.write_text(json.dumps(result, indent=2))


def show(i: int, found: dict[str, dict[str, Any]]) -> None:
    for arm, f in found.items():
        d = f["per_job"]["drain"]
        print(
            f"  round {i + 1} {arm:>14}: {f['jobs_per_s']:7,.0f} jobs/s; µs a job: worker "
            f"{d['worker_main']:.0f} + pool {d['worker_pool']:.0f}, redis {d['server']:.1f} "
            f"({d['server_calls']:.2f} calls, {d['script_usec']:.1f} µs in scripts); lag "
            f"{f['lag_at_drain_end']} at the end, {f['most_lag_after_first_look']} at most; "
            f"none left {f['seconds_after_drain_until_none_left']} s after; load {f['load']}"
            + (f"; prune {f['prune_scripts']}" if "prune_scripts" in f else ""),
            flush=True,
        )


if __name__ == "__main__":
    main()
