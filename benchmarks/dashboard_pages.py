"""How long each dashboard page takes on a large store: a million finished jobs (a day
old) and 100,000 queued, plus a few thousand that ran in the last hour (the charts'
window) through the real claim and complete verbs.

    .venv/bin/python -m benchmarks.dashboard_pages                         # SQLite, 1M + 100k
    .venv/bin/python -m benchmarks.dashboard_pages --backend postgres --finished 200000

The pages are served in-process over ASGI (``create_api(app, auth="off")``), so the
figure is the server's time to render a page, without the network or a token check.
Each page is fetched once to warm up, then ``--repeat`` times; the median and the
worst are reported. Redis and PostgreSQL as for ``benchmarks.worker`` ($BENCH_REDIS,
$BENCH_POSTGRES), under a fresh prefix or schema, removed afterwards. Writes
benchmarks/results/dashboard-<backend>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from conveyor import App, State
from conveyor.records import JobQuery, Lease
from conveyor.web import create_api

from . import worker as bench

ROOT = Path(__file__).resolve().parents[1]
BATCH = 5_000
RECENT = 3_000


def fill(app: App, finished: int, queued: int) -> dict[str, Any]:
    """The store: ``finished`` SUCCESS/FAILURE jobs stored finished a day ago,
    ``RECENT`` run through claim and complete now, ``queued`` waiting in two queues."""
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
    app.enqueue_many(noop.s(i) for i in range(RECENT))
    for _ in range(0, RECENT, 500):
        for job in app.backend.claim(["default"], "bench-worker", 500, 60):
            app.backend.complete(Lease(job.id, job.lease_token or ""), None)
    for first in range(0, queued, BATCH):
        count = min(BATCH, queued - first)
        app.enqueue_many(noop.s(i).set(queue="default" if i % 2 else "media") for i in range(count))
    if bench.BACKEND == "postgres":  # statistics, as autovacuum would gather (off here)
        backend: Any = app.backend
        with backend.pool.connection() as conn:
            conn.autocommit = True
            conn.execute(f'VACUUM ANALYZE "{backend.schema}".jobs')
    return {"fill_seconds": round(time.perf_counter() - started, 1)}


async def time_pages(app: App, repeat: int) -> dict[str, dict[str, float]]:
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
            times = times[1:]  # the first warms up
            results[name] = {"median_ms": round(statistics.median(times), 1),
                             "max_ms": round(max(times), 1)}  # fmt: skip
            print(
                f"  {name:36} median {results[name]['median_ms']:8.1f} ms   max {results[name]['max_ms']:8.1f} ms"
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "redis", "postgres"], default="sqlite")
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bench.BACKEND = args.backend
    with tempfile.TemporaryDirectory() as tmp:
        try:
            app, _ = bench.fresh(Path(tmp), "dashboard")
            app.task(name="bench.noop")(lambda i=0: i)
            print(f"{args.backend}: {args.finished} finished, {args.queued} queued ...")
            meta = fill(app, args.finished, args.queued)
            print(f"  filled in {meta['fill_seconds']} s")
            pages = asyncio.run(time_pages(app, args.repeat))
            app.aio.close()
            app.backend.close()
        finally:
            bench.cleanup()
    out = ROOT / "benchmarks" / "results" / f"dashboard-{args.backend}.json"
    out.write_text(json.dumps({
        "meta": {"date": datetime.now(UTC).isoformat(timespec="seconds"), "backend": args.backend,
                 "finished": args.finished, "queued": args.queued, "recent": RECENT,
                 "repeat": args.repeat, "python": platform.python_version(),
                 "machine": platform.machine(), **meta},
        "pages": pages,
    }, indent=2) + "\n")  # fmt: skip
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
