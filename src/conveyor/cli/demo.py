"""``conveyor demo``: the whole product on the embedded SQLite default. It queues demo work,
then runs ``up`` for the demo app (two worker groups, the scheduler, the API and the
dashboard) until Ctrl-C or ``--seconds``, and shows what every job did."""

from __future__ import annotations

import functools
import shlex
import sys
import threading
import time
from pathlib import Path

from rich.table import Table

from ..app import App
from ..control.doctor import absolute_url
from ..control.jobs import cancel_job, list_jobs
from ..job import Job
from ..loader import load_app
from ..records import JobRecord
from ..scheduler import sync_code_schedules
from ..states import State
from ..workflows import chain, chord, group
from . import DEMO_APP, cli, console, setup_logging
from .serve import require_web
from .stack import Stack, WorkerGroup
from .up import port_option, seconds_option

#: The demo's worker groups: media one job at a time (so priorities show), the rest two.
DEMO_GROUPS = [WorkerGroup(("media",), 1), WorkerGroup(("default", "devices"), 2)]


def enqueue_demo_jobs(app: App) -> list[Job]:
    """A job of every kind, queued before the workers start. Returns the ones to watch."""
    t = app.tasks
    jobs = app.enqueue_many([
        t["demo.media.convert"].s("/uploads/talk.mov", "webm"),
        t["demo.devices.ping"].s("thermostat-7"),
        t["demo.stats.nightly"].s("2026-11-21"),
        t["demo.reports.send"].s("not-an-address"),
        t["demo.export.slow"].s(1000),
        t["demo.export.stuck"].s(),
        t["demo.export.archive"].s(120),
        # One worker takes the media queue, one job at a time: critical runs first.
        *(t["demo.media.thumbnail"].s("/uploads/cover.png", p).set(priority=p)
          for p in ("low", "normal", "high", "critical")),
    ])  # fmt: skip
    words = t["demo.text.count"]
    chain(t["demo.text.fetch"].s("chapter-1"), words.s()).apply_async()
    chord(group(words.s(f"part {n} of the book") for n in range(3)), t["demo.text.total"].s()).apply_async()  # fmt: skip
    # The periodic job fires once now, as the schedules page's "Run now" does, rather
    # than at the next minute: its schedule is stored first (the scheduler would).
    sync_code_schedules(app)
    app.schedules.run_now("demo.heartbeat")
    return jobs


def cancel_when_running(app: App, job: Job, after: float, stop: threading.Event) -> None:
    """Cancel ``job`` once it has run ``after`` seconds: a cancel of a running job."""
    while not stop.wait(0.2):
        record = app.backend.get(job.id)
        if record.state is State.STARTED and time.time() - (record.started_at or 0) >= after:
            cancel_job(app, job.id, terminate=True, reason="cancelled by the demo while it ran")
            return
        if record.state.finished:
            return


def stop_long_jobs(app: App, jobs: list[Job]) -> None:
    """The demo's long archive jobs (its own, and the one left for the visitor) end with
    the demo (terminated, unless they ended already): else the workers' shutdown would
    wait for them, then put them back in their queue, and the next demo would run them
    beside its own (two 5-minute jobs filling both slots)."""
    for job in jobs:
        if not app.backend.get(job.id).state.finished:
            cancel_job(app, job.id, terminate=True, reason="the demo stopped")


def latest_ticks(records: list[JobRecord]) -> list[JobRecord]:
    """Every job, but of a schedule's jobs (its ticks and runs now) only the latest (a
    long demo fires many)."""
    latest: dict[str, JobRecord] = {}
    for r in records:
        name = r.headers.get("schedule")
        if name and (name not in latest or r.created_at > latest[name].created_at):
            latest[name] = r
    keep = {r.id for r in latest.values()}
    return [r for r in records if not r.headers.get("schedule") or r.id in keep]


def summary(records: list[JobRecord]) -> Table:
    table = Table(title="What the jobs did, in the order they started", title_justify="left")
    for column in ("task", "queue", "prio", "state", "tries", "took", "result or error"):
        table.add_column(column, overflow="fold")
    colours = {"SUCCESS": "green", "FAILURE": "red", "REVOKED": "yellow"}
    for r in records:
        took = f"{r.finished_at - r.started_at:.2f}s" if r.finished_at and r.started_at else "-"
        detail = (
            repr(r.result)
            if r.state == "SUCCESS"
            else f"{(r.error or {}).get('type')}: {(r.error or {}).get('message')}"
            if r.error
            else (r.revoke or "")
        )
        state = f"[{colours.get(r.state, 'white')}]{r.state}[/]"
        table.add_row(r.task, r.queue, str(r.priority), state, str(r.attempt), took, detail)
    return table


def own_command(backend_url: str) -> str:
    """The command this process was started as (``.venv/bin/conveyor`` from scripts/demo),
    made absolute, so the advice works as printed from any directory whether or not
    ``conveyor`` is on PATH; a relative SQLite backend is named absolutely in front."""
    name = Path(sys.argv[0])
    exe = [str(name.absolute())] if name.name == "conveyor" else [sys.executable, "-m", "conveyor"]
    url = absolute_url(backend_url)
    env = f"CONVEYOR_BACKEND={shlex.quote(url)} " if url != backend_url else ""
    return env + shlex.join(exe)


@cli.command()
@port_option
@seconds_option
def demo(port: int, seconds: float | None) -> None:
    """Queue demo jobs on the embedded SQLite default and run `up` for them: workers, the
    scheduler, the API and the dashboard, until Ctrl-C (or --seconds)."""
    require_web()
    setup_logging("info")
    app = load_app(DEMO_APP)
    stack = Stack(DEMO_APP, app, DEMO_GROUPS, port=port)
    stack.check()
    since = app.backend.now()
    jobs = enqueue_demo_jobs(app)
    store = absolute_url(app.conf.backend_url)
    console.print(f"queued demo jobs into {store}\n")
    console.print(stack.describe())
    console.print(f"\n[bold]Open the dashboard: {stack.url}/[/bold]  (Ctrl-C stops the demo)")
    console.print(
        f"From another terminal: {own_command(app.conf.backend_url)} -A {DEMO_APP} doctor (or inspect, cancel, ...)\n"
    )
    archive = next(j for j in jobs if app.backend.get(j.id).task == "demo.export.archive")
    long_jobs = [archive]
    if seconds is None:  # someone is watching: leave them a long job to stop by hand
        mine = app.tasks["demo.export.archive"].delay(600)
        console.print(f"A 5-minute archive job is running for you to stop: {stack.url}/ui/jobs/{mine.id} "
                      "(Cancel: the task checks at every file and stops; Terminate stops it at once)\n")  # fmt: skip
        long_jobs.append(mine)
    stop = threading.Event()
    threading.Thread(target=cancel_when_running, args=(app, archive, 2.0, stop), daemon=True).start()  # fmt: skip
    code = stack.run(seconds=seconds, on_stop=functools.partial(stop_long_jobs, app, long_jobs))
    stop.set()
    # One claimed but not begun when the workers stopped went back to its queue with the
    # revoke flagged (a release keeps it): revoked as it waits now, it never runs.
    stop_long_jobs(app, long_jobs)
    ran = latest_ticks(list_jobs(app, created_after=since, limit=500).jobs)
    console.print(summary(sorted(ran, key=lambda r: (r.started_at or float("inf"), r.id))))
    console.print(
        f"\nThe records stay in {store}: run it again to add more, or point "
        "CONVEYOR_BACKEND at another store (redis://..., postgresql://...)."
    )
    sys.exit(code)
