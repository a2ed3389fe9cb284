"""Page times on a large store: the control functions behind every API endpoint and
dashboard page, timed on a store of a million finished jobs and 100,000 queued.

    .venv/bin/python -m benchmarks.large_store --backend sqlite
    .venv/bin/python -m benchmarks.large_store --backend postgres --finished 100000 --queued 10000

The store is built by ``benchmarks.bulk_store`` (a week of work; see there). Each
figure is the median of 5 calls after one warm-up call (the warm-up's time is printed
too): the time to the data a page renders, which is its first byte less the template.
Writes a table to the terminal and JSON to benchmarks/results/large_store_<backend>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conveyor import App, control

from . import bulk_store
from .worker import cleanup, fresh

ROOT = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, float]:
    """(first call, median of ``repeat`` more) in milliseconds."""
    t0 = time.perf_counter()
    fn()
    first = (time.perf_counter() - t0) * 1000
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return first, statistics.median(times)


def pages(app: App) -> dict[str, Callable[[], Any]]:
    """What each endpoint or page calls, by name."""
    now = app.backend.now()
    newest = control.list_jobs(app, limit=1).jobs[0]
    mid_week = bulk_store.job_id(int((now - 3.5 * 86400) * 1000), 0)
    middle = control.list_jobs(app, cursor=mid_week, limit=1).jobs[0]

    def overview_page() -> Any:
        return (
            control.overview(app), control.queue_stats(app), control.workers(app),
            control.list_jobs(app, states=["FAILURE"], limit=10), control.diagnose(app),
        )  # fmt: skip

    return {
        "GET /stats (overview)": lambda: control.overview(app),
        "GET /queues (queue_stats)": lambda: control.queue_stats(app),
        "GET /workers": lambda: control.workers(app),
        "GET /doctor (diagnose)": lambda: control.diagnose(app),
        "GET /health": lambda: control.health(app),
        "overview page (all of the above)": overview_page,
        "GET /jobs (newest 50)": lambda: control.list_jobs(app),
        "GET /jobs page 2 from mid-week cursor": lambda: control.list_jobs(app, cursor=middle.id),
        "GET /jobs?state=FAILURE": lambda: control.list_jobs(app, states=["FAILURE"]),
        "GET /jobs?state=PENDING": lambda: control.list_jobs(app, states=["PENDING"]),
        "GET /jobs?state=STARTED (none)": lambda: control.list_jobs(app, states=["STARTED"]),
        "GET /jobs?queue=q3": lambda: control.list_jobs(app, queues=["q3"]),
        "GET /jobs?task=bench.task5": lambda: control.list_jobs(app, tasks=["bench.task5"]),
        "GET /jobs?worker=worker-07": lambda: control.list_jobs(app, workers=["worker-07"]),
        "GET /jobs?queue=q3&state=FAILURE&task=bench.task7": lambda: control.list_jobs(
            app, queues=["q3"], states=["FAILURE"], tasks=["bench.task7"]
        ),
        "GET /jobs?created 4-3 days ago": lambda: control.list_jobs(
            app, created_after=now - 4 * 86400, created_before=now - 3 * 86400
        ),
        "GET /jobs?text=order-12345": lambda: control.list_jobs(app, text="order-12345"),
        "GET /jobs?text=(no match)": lambda: control.list_jobs(app, text="no-such-text"),
        "GET /jobs/{id} (describe_job)": lambda: control.describe_job(app, newest.id),
        "GET /jobs/{id} (a week-old one)": lambda: control.describe_job(app, middle.id),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "redis", "postgres"], default="sqlite")
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--label", default="", help="added to the results file's name")
    args = parser.parse_args()
    from . import worker

    worker.BACKEND = args.backend
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run(Path(tmp), args)
    finally:
        if args.backend != "sqlite":
            cleanup()


def run(tmp: Path, args: argparse.Namespace) -> None:
    app, _ = fresh(tmp, "large")
    built = bulk_store.build(app, args.finished, args.queued)
    print(
        f"{args.backend}: built {args.finished:,} finished + {args.queued:,} queued in {built:.0f}s"
    )
    results = {}
    for name, fn in pages(app).items():
        try:
            first, median = timed(fn)
        except Exception as exc:  # a control function this version lacks (e.g. a filter)
            print(f"  {name:<55} error: {exc}")
            continue
        results[name] = {"first_ms": round(first, 2), "median_ms": round(median, 2)}
        print(f"  {name:<55} {median:9.2f} ms  (first {first:.2f})", flush=True)
    out = ROOT / "benchmarks" / "results" / f"large_store_{args.backend}{args.label}.json"
    out.write_text(json.dumps({"backend": args.backend, "finished": args.finished,
                               "queued": args.queued, "build_s": built, "pages": results}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
