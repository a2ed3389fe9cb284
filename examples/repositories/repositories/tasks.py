"""The app, its six queues and its schedules.

Queues: ``default`` (small jobs), ``warehouse`` (repository sync with remote mirrors),
``statistics``, ``access_log``, ``minimap`` and ``migration``. Run everything with
``conveyor -A repositories.tasks:app up`` (see the README for the worker groups).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from conveyor import App
from conveyor.context import TaskContext

from . import settings

app = App("repositories", http_tasks=["repositories.*"])
# Named tasks are routed by name; the periodic ones below name their queue themselves.
app.conf.task_routes = {"repositories.warehouse.*": "warehouse"}


def data(name: str) -> Path:
    path = Path(settings.DATA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def record(name: str, **fields: object) -> None:
    """Append one JSON line to ``data/<name>.jsonl`` (what the stand-in tasks 'do')."""
    with data(f"{name}.jsonl").open("a") as out:
        out.write(json.dumps({"at": time.time(), **fields}) + "\n")


class MirrorUnavailable(Exception):
    """The remote mirror did not answer."""


@app.task(name="repositories.warehouse.sync", bind=True, max_retries=settings.SYNC_MAX_RETRIES)
def sync_repository(self: TaskContext, repository: str) -> str:
    """Fetch a repository from its mirror; a mirror that is down is tried again 60 s later,
    up to 3 times. (The stand-in mirror is down while ``data/<repository>.down`` exists.)"""
    if data(f"{repository}.down").exists():
        self.retry(countdown=settings.SYNC_RETRY_COUNTDOWN,
                   exc=MirrorUnavailable(f"mirror of {repository} did not answer"))  # fmt: skip
    record("synced", repository=repository, attempt=self.request.attempt)
    return f"{repository} synced"


@app.task(name="repositories.default.index")
def index_repository(repository: str) -> int:
    """A small job on the default queue: 'index' a repository, return its file count."""
    return len(repository) * 10


@app.periodic(
    every=settings.REFRESH_COUNTERS_EVERY, schedule_name="refresh-counters", queue="statistics"
)
def refresh_counters() -> None:
    record("statistics", what="counters")


@app.periodic(
    every=settings.ROLLUP_STATISTICS_EVERY, schedule_name="rollup-statistics", queue="statistics"
)
def rollup_statistics() -> None:
    record("statistics", what="hourly rollup")


@app.periodic(
    every=settings.RENDER_MINIMAPS_EVERY, schedule_name="render-minimaps", queue="minimap"
)
def render_minimaps() -> None:
    record("minimaps", what="render")


@app.periodic(
    every=settings.FLUSH_ACCESS_LOG_EVERY, schedule_name="flush-access-log", queue="access_log"
)
def flush_access_log() -> None:
    record("access_log", what="flush")


@app.periodic(
    cron=settings.PRUNE_MIGRATIONS_CRON, schedule_name="prune-migrations", queue="migration"
)
def prune_migrations() -> None:
    record("migrations", what="prune")


@app.periodic(cron=settings.NIGHTLY_REPORT_CRON, schedule_name="nightly-report", queue="statistics")
def nightly_report() -> None:
    record("statistics", what="nightly report")
