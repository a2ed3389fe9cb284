"""``conveyor demo``: enqueue a mix of jobs, run a worker until they are done, show them."""

from __future__ import annotations

import logging
import time

import click
from rich.table import Table

from ..app import App
from ..job import Job
from ..loader import load_app
from ..records import JobRecord
from ..worker import Worker
from ..worker.pools import POOLS
from ..worker.supervisor import Supervisor
from . import cli, console, setup_logging
from .worker import banner


def enqueue_demo_jobs(app: App) -> list[Job]:
    t = app.tasks
    jobs = app.enqueue_many([
        t["demo.media.convert"].s("/uploads/talk.mov", "webm"),
        t["demo.media.convert"].s("/uploads/intro.mov", "mp4").set(priority="critical"),
        t["demo.devices.ping"].s("thermostat-7"),
        t["demo.stats.nightly"].s("2026-11-21"),
        t["demo.reports.send"].s("not-an-address"),
        t["demo.export.slow"].s(1000),
        t["demo.export.stuck"].s(),
        t["demo.media.convert"].s("/uploads/later.mov", "webm").set(countdown=1),
    ])  # fmt: skip
    cancelled = t["demo.media.convert"].apply_async(
        ("/uploads/cancelled.mov", "webm"), countdown=30
    )
    cancelled.revoke(reason="cancelled by the demo before it ran")
    return [*jobs, cancelled]


def summary(records: list[JobRecord]) -> Table:
    table = Table(title="What the jobs did", title_justify="left")
    for column in ("task", "queue", "state", "tries", "took", "result or error"):
        table.add_column(column, overflow="fold")
    colours = {"SUCCESS": "green", "FAILURE": "red", "REVOKED": "yellow"}
    for r in records:
        took = f"{r.finished_at - r.started_at:.2f}s" if r.finished_at and r.started_at else "-"
        detail = (
            repr(r.result)
            if r.state == "SUCCESS"
            else f"{(r.error or {}).get('type')}: {(r.error or {}).get('message')}"
        )
        state = f"[{colours.get(r.state, 'white')}]{r.state}[/]"
        table.add_row(r.task, r.queue, state, str(r.attempt), took, detail)
    return table


@cli.command()
@click.option("-P", "--pool", type=click.Choice(POOLS), default="process", show_default=True)
@click.option("-c", "--concurrency", type=click.IntRange(min=1), default=2, show_default=True)
def demo(pool: str, concurrency: int) -> None:
    """Enqueue demo jobs on the embedded SQLite default and run a worker until they finish."""
    setup_logging("info")
    app = load_app("conveyor.demo.tasks:app")
    jobs = enqueue_demo_jobs(app)
    console.print(f"enqueued {len(jobs)} demo jobs into {app.conf.backend_url}\n")
    worker = Worker(app, pool=pool, concurrency=concurrency, burst=True)
    console.print(banner(worker) + "\n")
    started = time.monotonic()
    Supervisor([worker]).run()
    logging.getLogger("conveyor").info(
        "worker drained the queues in %.1fs", time.monotonic() - started
    )
    found = app.backend.get_many([j.id for j in jobs])
    console.print(summary([found[j.id] for j in jobs if j.id in found]))
    console.print(
        "\nThe records stay in the SQLite file: run it again to add more, or point "
        "CONVEYOR_BACKEND at another store."
    )
