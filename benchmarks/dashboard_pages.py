"""How long each dashboard page takes on a large store: a million finished jobs (a day
old) and 100,000 queued, plus jobs run in the last hour (the charts'
window) through the real claim and complete verbs.

    .venv/bin/python -m benchmarks.dashboard_pages                         # SQLite, 1M + 100k
    .venv/bin/python -m benchmarks.dashboard_pages --backend postgres --finished 200000

The pages are served in-process over ASGI (``create_api(app, auth="off")``), so the
figure is the server's time to render a page, without the network or a token check.
Each page is fetched once to warm up, then ``--repeat`` times; the median and the
worst are reported. Redis and PostgreSQL as for ``benchmarks.worker`` ($BENCH_REDIS,
$BENCH_POSTGRES), under a fresh prefix or schema, removed afterwards. Writes
benchmarks/results/dashboard-<backend>.json.

``--against ../other-checkout --rounds 3`` times this checkout's pages and another's
(its ``src``, e.g. the main branch before a change) on the same store, in turns (the
order swapped each round), each in a fresh process: a before/after ratio under the same
load. ``--store URL`` times an existing store and prints the samples (what each turn runs).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from conveyor import App, State
from conveyor.records import JobQuery, Outcome
from conveyor.web import create_api

from . import worker as bench

ROOT = Path(__file__).resolve().parents[1]
BATCH = 5_000
RECENT = 3_000


def fill(app: App, finished: int, queued: int, recent: int = RECENT) -> dict[str, Any]:
    """The store: ``finished`` SUCCESS/FAILURE jobs stored finished a day ago,
    ``recent`` run through claim and acknowledgement (batches of 500) now, ``queued``
    waiting in two queues."""
    noop = app.tasks["bench.noop"]
    now = app.backend.now()
    started = time.perf_counter()
    for first in range(0, finished, BATCH):
        records = []
        for i in range(first, min(first + BATCH, finished)):
            record = app.build_record(noop.s(i), now - 86_400)
            failed = i % 50 == 0
            records.append(dataclasses.replace(
                record, state=State.FAILURE if failed else State.SUCCESS,
                started_at=now - 86_400, finished_at=now - 86_399, attempt=1,
                error={"type": "ValueError", "message": "bad"} if failed else None,
            ))  # fmt: skip
        app.backend.enqueue(records)
    for first in range(0, recent, BATCH):
        app.enqueue_many(noop.s(i) for i in range(first, min(first + BATCH, recent)))
    for _ in range(0, recent, 500):
        claimed = app.backend.claim(["default"], "bench-worker", 500, 60)
        app.backend.ack(Outcome(job.id, job.lease_token or "", State.SUCCESS) for job in claimed)
    for first in range(0, queued, BATCH):
        count = min(BATCH, queued - first)
        app.enqueue_many(noop.s(i).set(queue="default" if i % 2 else "media") for i in range(count))
    if bench.BACKEND == "postgres":  # statistics, as autovacuum would gather (off here)
        backend: Any = app.backend
        with backend.pool.connection() as conn:
            conn.autocommit = True
            conn.execute(f'VACUUM ANALYZE "{backend.schema}".jobs')
    return {"fill_seconds": round(time.perf_counter() - started, 1)}


async def time_pages(app: App, repeat: int) -> dict[str, list[float]]:
    """Each page's times in ms (after one warm-up fetch)."""
    newest = app.backend.list_jobs(JobQuery(limit=1))[0].id
    pages = {
        "overview": "/ui/", "jobs": "/ui/jobs", "jobs?state=FAILURE": "/ui/jobs?state=FAILURE",
        "jobs?queue=media&task=bench.noop": "/ui/jobs?queue=media&task=bench.noop",
        "job": f"/ui/jobs/{newest}", "queues": "/ui/queues", "workers": "/ui/workers",
        "schedules": "/ui/schedules", "workflows": "/ui/workflows",
        "jobs?sort=oldest": "/ui/jobs?sort=oldest",
        "jobs?state=FAILURE&sort=oldest": "/ui/jobs?state=FAILURE&sort=oldest",
        "jobs?queue=media&task=bench.noop&sort=oldest": "/ui/jobs?queue=media&task=bench.noop&sort=oldest",
        "jobs?worker=bench-worker": "/ui/jobs?worker=bench-worker", "audit": "/ui/audit",
    }  # fmt: skip
    transport = httpx.ASGITransport(app=create_api(app, auth="off"))
    results = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        for name, path in pages.items():
            times = []
            for _ in range(repeat + 1):
                started = time.perf_counter()
                response = await client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            results[name] = times[1:]  # the first warms up
    return results


def summary(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {name: {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}
            for name, times in samples.items()}  # fmt: skip


def show(label: str, pages: dict[str, dict[str, float]]) -> None:
    print(label)
    for name, p in pages.items():
        print(f"  {name:46} median {p['median_ms']:8.1f} ms   max {p['max_ms']:8.1f} ms")


def in_turns(url: str, other: Path, rounds: int, repeat: int) -> dict[str, Any]:
    """This checkout's pages and ``other``'s on the store at ``url``, in turns."""
    trees = {"this": ROOT / "src", "against": other.resolve() / "src"}
    samples: dict[str, dict[str, list[float]]] = {"this": {}, "against": {}}
    loads = []
    for turn in range(rounds):
        for who in list(trees) if turn % 2 == 0 else list(reversed(trees)):
            loads.append(os.getloadavg()[0])
            env = {**os.environ, "PYTHONPATH": str(trees[who])}
            command = [sys.executable, "-m", "benchmarks.dashboard_pages", "--store", url,
                       "--repeat", str(repeat), "--backend", bench.BACKEND]  # fmt: skip
            out = subprocess.run(
                command, cwd=ROOT, env=env, capture_output=True, text=True, check=True
            )
            for name, times in json.loads(out.stdout.strip().splitlines()[-1]).items():
                samples[who].setdefault(name, []).extend(times)
    return {"pages": summary(samples["this"]), "against": summary(samples["against"]),
            "load_average": [round(min(loads), 1), round(max(loads), 1)]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "redis", "postgres"], default="sqlite")
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--recent", type=int, default=RECENT, help="jobs run in the last hour")
    parser.add_argument(
        "--against", type=Path, help="another checkout, timed in turns with this one"
    )
    parser.add_argument("--rounds", type=int, default=3, help="turns each, with --against")
    parser.add_argument("--store", help="time this existing store; print the samples as JSON")
    args = parser.parse_args()
    bench.BACKEND = args.backend
    if args.store:
        app = App("producer", backend=args.store)
        app.task(name="bench.noop")(lambda i=0: i)
        print(json.dumps(asyncio.run(time_pages(app, args.repeat))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        try:
            app, url = bench.fresh(Path(tmp), "dashboard")
            app.task(name="bench.noop")(lambda i=0: i)
            print(
                f"{args.backend}: {args.finished} finished, {args.queued} queued, {args.recent} recent ..."
            )
            meta = fill(app, args.finished, args.queued, args.recent)
            print(f"  filled in {meta['fill_seconds']} s")
            against = None
            if args.against:
                app.backend.close()
                found = in_turns(url, args.against, args.rounds, args.repeat)
                pages, against = found["pages"], found["against"]
                meta.update(load_average=found["load_average"], rounds=args.rounds,
                            against_checkout=str(args.against))  # fmt: skip
                show(f"against {args.against}", against)
            else:
                meta["load_average"] = [round(os.getloadavg()[0], 1)]
                pages = summary(asyncio.run(time_pages(app, args.repeat)))
                app.aio.close()
                app.backend.close()
            show("this checkout", pages)
        finally:
            bench.cleanup()
    out = ROOT / "benchmarks" / "results" / f"dashboard-{args.backend}.json"
    out.write_text(json.dumps({
        "meta": {"date": datetime.now(UTC).isoformat(timespec="seconds"), "backend": args.backend,
                 "finished": args.finished, "queued": args.queued, "recent": args.recent,
                 "repeat": args.repeat, "python": platform.python_version(),
                 "machine": platform.machine(), **meta},
        "pages": pages,
        **({"against": against} if against else {}),
    }, indent=2) + "\n")  # fmt: skip
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
