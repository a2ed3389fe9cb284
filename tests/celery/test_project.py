"""A project written as Celery's documentation writes one (tests/apps/celery_proj.py) runs
on Conveyor with only its imports changed: a real worker subprocess, a real scheduler,
on SQLite and Redis."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor.celery import AsyncResult, chain, chord, group
from conveyor.celery.exceptions import TaskRevokedError
from conveyor.testing import use_backend

from ..apps import celery_proj as proj
from ..conftest import backend_url, discard
from ..worker.conftest import wait_until

pytestmark = pytest.mark.slow
PROJECT = Path(proj.__file__)


def test_the_project_imports_celery_names_only_from_conveyor_celery() -> None:
    code = PROJECT.read_text() + PROJECT.with_name("celeryconfig.py").read_text()
    imports = re.findall(r"^from (\S+) import|^import (\S+)", code, re.M)
    mine = {a or b for a, b in imports} - {"__future__", "os", "time", "typing"}
    assert mine == {"conveyor.celery", "conveyor.celery.exceptions", "conveyor.celery.schedules"}
    assert "conveyor" not in re.sub(r'"""[^"]*"""|conveyor\.celery', "", code)


#: The store, and the start script's Celery options (the same as on Celery but the name).
SETUPS = {
    "sqlite": ["-P", "threads", "-c", "6", "-O", "fair", "-n", "celery@%h", "-E", "--without-gossip"],
    "redis": ["-P", "prefork", "-c", "4", "--max-tasks-per-child", "100"],
}  # fmt: skip


@pytest.fixture(params=sorted(SETUPS))
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    store = backend_url(request.param, tmp_path)
    proj.app.set_current()  # other tests build Celery apps too; the last built is current
    with use_backend(proj.app, store):
        yield store
    discard(store)


def test_a_celery_project_runs_with_one_import_changed(
    url: str, tmp_path: Path, conveyor_proc: Callable[..., subprocess.Popen[bytes]]
) -> None:
    app, ledger = proj.app, tmp_path / "beat.txt"
    kind = url.split(":", 1)[0]
    worker = conveyor_proc(
        "-A", "tests.apps.celery_proj:app", "worker", "-Q", "default,hikvision", "-l", "info",
        "-B", *SETUPS[kind], env={"CELERY_BROKER_URL": url, "PROJ_LEDGER": str(ledger)},
    )  # fmt: skip
    try:
        rows = proj.import_rows.apply_async((40, 0.05), countdown=0.1)
        long = proj.sync_archive.delay(60)
        wait_until(lambda: rows.state == "PROGRESS", 20, "update_state to show")
        assert rows.info["total"] == 40
        assert rows.info["current"] >= 0
        flaky = proj.flaky.delay("cam-7")
        hopeless = proj.hopeless.delay()
        routed = chain(proj.add.si(2, 2), proj.mul.s(10), proj.snapshot.si("gate")).apply_async(
            queue="hikvision"
        )
        summed = chord(group(proj.add.s(i, i) for i in range(5)))(proj.tsum.s())

        assert flaky.get(timeout=30) == 2  # two self.retry(countdown=..., exc=...), then done
        assert AsyncResult(flaky.id).status == "SUCCESS"
        assert flaky.successful()
        with pytest.raises(ValueError, match="the device is gone"):
            hopeless.get(timeout=30)  # retries used up: self.retry raises exc, as in Celery
        assert hopeless.failed()
        assert "ValueError" in (hopeless.traceback or "")
        assert isinstance(hopeless.get(propagate=False), ValueError)  # returned, as in Celery
        assert routed.get(timeout=30) == {"camera": "gate", "queue": "hikvision"}
        assert {r.queue for r in routed.handle.records().values() if r} == {"hikvision"}
        assert summed.get(timeout=30) == 20
        grouped = group(proj.add.s(i, 1) for i in range(3)).apply_async()
        assert grouped.get(timeout=30) == [1, 2, 3]
        assert [r.get(timeout=1) for r in grouped.results] == [1, 2, 3]
        assert grouped.completed_count() == 3

        def running() -> list[dict[str, object]]:
            replies = app.control.inspect().active() or {}
            return [t for tasks in replies.values() for t in tasks if t["id"] == long.id]

        wait_until(lambda: bool(running()), 20, "inspect().active() to show the job")
        [active] = running()
        assert active["name"] == "proj.sync_archive"
        assert active["args"] == [60]
        assert active["delivery_info"]["routing_key"] == "default"  # type: ignore[index]
        revocation = app.control.revoke(long.id, terminate=True)
        assert revocation.outcome == "terminating"  # type: ignore[union-attr]
        with pytest.raises(TaskRevokedError):
            long.get(timeout=30)
        assert long.state == "REVOKED"
        assert rows.get(timeout=30) == 40

        inspect = app.control.inspect()
        [name] = inspect.ping() or {}
        assert "proj.flaky" in (inspect.registered() or {})[name]
        assert {q["name"] for q in (inspect.active_queues() or {})[name]} == {
            "default",
            "hikvision",
        }
        assert (inspect.stats() or {})[name]["pool"]["implementation"] == {
            "sqlite": "thread",
            "redis": "process",
        }[kind]
        assert app.control.cancel_consumer("hikvision") == [
            {name: {"ok": "no longer consuming from hikvision"}}
        ]
        assert "hikvision" in app.backend.paused_queues()  # stored: holds across restarts
        assert app.control.add_consumer("hikvision") == [{name: {"ok": "add consumer hikvision"}}]
        assert "hikvision" not in app.backend.paused_queues()
        if kind == "sqlite":
            assert name == f"celery@{socket.gethostname()}"  # -n celery@%h
            assert "no prefetch" in worker.log_path.read_text()  # type: ignore[attr-defined]  # -O fair
        # beat (-B): the seconds entry fires; the crontab is a cron in the app's timezone
        wait_until(lambda: ledger.exists() and "tick" in ledger.read_text(), 20, "beat to fire")
        nightly = app.schedules.get("nightly-cleanup").schedule
        assert (nightly.cron, nightly.tz, nightly.task) == (
            "0 1 * * *",
            "Europe/Berlin",
            "proj.cleanup",
        )
        assert app.schedules.get("touch-every-second").schedule.every == 1.0
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
