"""A worker whose backend cannot be reached says so once per process, with what to
check, then a reminder now and then, and says when the backend answers again; it does
not print an ERROR line per failed call (a new user saw 55 in 12 s, no hint among them)."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
import types
from collections.abc import Callable
from typing import Any

import pytest

from conveyor import App
from conveyor.errors import BackendError
from conveyor.outage import Outage
from conveyor.records import Lease
from conveyor.worker import Worker
from conveyor.worker.pools import Lost

from ..services import _free_port, start_redis_server
from .conftest import wait_until

pytestmark = pytest.mark.slow


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR " in line]


def test_an_unreachable_backend_is_one_account_not_a_flood(
    conveyor_proc: Callable[..., subprocess.Popen[bytes]],
) -> None:
    port = _free_port()  # nothing listens here yet
    url = f"redis://127.0.0.1:{port}/0"
    worker = conveyor_proc(
        "-A", "tests.apps.basic:app", "worker", "-P", "process", "-c", "2",
        env={"CONVEYOR_BACKEND": url},
    )  # fmt: skip
    time.sleep(4)  # heartbeats every 0.3 s, claims and the watch every second
    log = worker.log_path.read_text()  # type: ignore[attr-defined]
    errors = error_lines(log)
    # One account per process (the worker and each of its two children), whichever
    # call failed first; before, every loop logged each failure (over 20 lines here).
    assert 1 <= len(errors) <= 3, log
    assert all("backend calls fail" in line for line in errors), log
    assert "CONVEYOR_BACKEND" in errors[0]
    # Each process says which it is: two children's first lines were word for word the
    # same (a new user read one line logged twice).
    said = [line.split(" ERROR ", 1)[1] for line in errors]
    assert len(set(said)) == len(said), log
    assert all("(pool child, pid " in line for line in said if "a claim failed" in line), log

    server, _, _ = start_redis_server(port)
    try:
        wait_until(lambda: "the backend answers again" in worker.log_path.read_text(), 10)  # type: ignore[attr-defined]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        server.kill()
        server.wait()


def test_an_outage_reminds_and_ends(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.outage")
    outage = Outage(log, remind=0.2)
    error = ConnectionError("refused")
    with caplog.at_level(logging.DEBUG, "test.outage"):
        outage.over("a claim")  # nothing was wrong: nothing to say
        outage.failed("a heartbeat", error, "leases run out")
        for _ in range(5):
            outage.failed("a claim", error)
        time.sleep(0.25)
        outage.failed("a claim", error)
        outage.over("a claim")  # the heartbeat has not answered yet: still on
        outage.over("a heartbeat")
        outage.over("a heartbeat")
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    levels = [level for level, _ in said]
    assert levels == ["ERROR"] + ["DEBUG"] * 5 + ["ERROR", "WARNING"]
    assert "a heartbeat failed (refused)" in said[0][1]
    assert "leases run out" in said[0][1]
    assert "7 failed calls" in said[6][1]
    assert "still failing: a claim, a heartbeat" in said[6][1]
    assert "a claim: refused" in said[6][1]
    assert said[7][1].startswith("the backend answers again, after 0s and 7 failed calls")


def test_a_fault_of_one_loop_is_one_account_while_the_others_succeed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Pruning refused by the server every second while claims and heartbeats succeed:
    # with one switch for all loops, each retry was an ERROR and an "answers again".
    log = logging.getLogger("test.outage")
    outage = Outage(log, remind=60)
    with caplog.at_level(logging.INFO, "test.outage"):
        for _ in range(5):
            outage.failed("pruning", ValueError("permission denied for table jobs"))
            outage.over("a claim")
            outage.over("a heartbeat")
        outage.over("pruning")
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in said] == ["ERROR", "WARNING"]
    assert said[0][1].startswith("backend calls fail: pruning failed (permission denied")
    assert said[1][1].startswith("the backend answers again")


def test_what_a_failure_means_is_said_even_when_another_call_failed_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A worker whose slots are full claims nothing, and its revocation watch notices a
    # lost connection first: the heartbeat's failure, which says the held jobs' leases
    # will run out, came second and went to the debug log.
    log = logging.getLogger("test.outage")
    outage = Outage(log)
    error = ConnectionError("refused")
    with caplog.at_level(logging.DEBUG, "test.outage"):
        outage.failed("the revocation watch", error)
        outage.failed("a heartbeat", error, "leases run out")
        outage.failed("a heartbeat", error, "leases run out")
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in said] == ["ERROR", "ERROR", "DEBUG"]
    assert "leases run out" in said[1][1]


def test_outcomes_that_cannot_be_stored_are_part_of_the_one_account(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Acknowledgements are a loop of the worker too: before, each failed store of the
    # outcomes was an ERROR line of its own, every tick of the outage.
    app = App("outage-acks", backend="memory://")

    @app.task(name="t.one")
    def one() -> int:
        return 1

    one.delay()
    # The backend goes down as the job ends, for three attempts to store its outcome:
    # every call fails meanwhile, as in an outage.
    down = {"began": False, "left": 3}
    backend = app.backend
    # (The loops that would retry only after the burst worker has ended, the pruner's
    # lock, the revocation watch and the rescue, are left up: an outage ends once every
    # loop that failed has succeeded again, and those would not before the run ends.)
    for name in ("ack", "heartbeat", "claim", "wait_and_claim", "get_many"):
        call = getattr(backend, name)

        def flaky(*args: Any, _call: Any = call, _name: str = name, **kwargs: Any) -> Any:
            down["began"] = down["began"] or _name == "ack"
            if down["began"] and down["left"]:
                if _name == "ack":
                    down["left"] -= 1
                raise BackendError("connection refused")
            return _call(*args, **kwargs)

        monkeypatch.setattr(backend, name, flaky)
    with caplog.at_level(logging.DEBUG, "conveyor.worker"):
        assert Worker(app, pool="solo", burst=True).run() == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    # One account: its first line, and the line saying when the held job's lease runs out.
    assert len(errors) == 2, errors
    assert errors[0].startswith("backend calls fail: storing outcomes failed")
    assert "a heartbeat failed too" in errors[1]
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_a_failed_abandon_retried_next_tick_does_not_release_and_warn_again(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A dead child's deliveries: the job it was running (counted, abandoned) and one that
    # had finished there, its outcome lost (released uncounted). The abandon fails once;
    # the next tick retries it, and the release already done is not done (or told) again.
    app = App("outage-abandon", backend="memory://")
    app.task(name="t.one")(lambda: 1)
    app.send_task("t.one")
    app.send_task("t.one")
    running, finished = app.backend.claim(["default"], "w", 2, 30)
    worker = Worker(app, pool="thread", concurrency=1)
    abandon, calls = app.backend.abandon, {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise BackendError("connection refused")
        return abandon(*args, **kwargs)

    monkeypatch.setattr(app.backend, "abandon", flaky)
    died = "worker child 1 died with exit code 13 while running the job"
    with caplog.at_level(logging.INFO, "conveyor.worker"):
        worker._handle([
            Lost(Lease(running.id, running.lease_token or ""), died),
            Lost(Lease(finished.id, finished.lease_token or ""), died, counted=False),
        ])  # fmt: skip
        worker._handle([])  # the next tick
    again = [r for r in caplog.records if "it runs again" in r.getMessage()]
    assert len(again) == 1, [r.getMessage() for r in caplog.records]
    assert calls["n"] == 2
    requeued, released = app.backend.get(running.id), app.backend.get(finished.id)
    assert (requeued.state.value, requeued.lost_leases) == ("PENDING", 1)
    assert (released.state.value, released.lost_leases) == ("PENDING", 0)
    assert [a["error"]["type"] for a in released.attempts] == ["OutcomeLost"]
    assert worker.counts["LOST"] == 1


def test_a_celery_apps_outage_names_the_broker_setting_the_user_set(
    conveyor_proc: Callable[..., subprocess.Popen[bytes]],
) -> None:
    """A ``conveyor.celery`` app's store is the broker URL its user set (here
    ``Celery("proj", broker=...)``): the hint names that, not CONVEYOR_BACKEND, which
    the user never set."""
    url = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there
    worker = conveyor_proc(
        "-A", "tests.apps.celery_proj:app", "worker", "-P", "thread",
        env={"CELERY_BROKER_URL": url},
    )  # fmt: skip
    log_path = worker.log_path  # type: ignore[attr-defined]
    wait_until(lambda: error_lines(log_path.read_text()), what="the outage's first line")
    first = error_lines(log_path.read_text())[0]
    assert "check that it runs and that Celery(..., broker=...) names it" in first
    assert "CONVEYOR_BACKEND" not in first


def test_a_celery_app_names_the_setting_its_store_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from conveyor.celery import Celery

    def named_by(configure: Callable[[Celery], object]) -> str:
        app = Celery("named", set_as_current=False)
        configure(app)
        return app.conf.backend_named_by()

    settings = types.ModuleType("proj.settings")
    settings.CELERY_BROKER_URL = "redis://h/1"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "proj.settings", settings)
    django_style = named_by(lambda app: app.config_from_object("proj.settings", namespace="CELERY"))
    assert django_style == "CELERY_BROKER_URL in proj.settings"
    assert named_by(lambda app: None) == "CONVEYOR_BACKEND (or App(backend=...))"
    assert named_by(lambda app: app.conf.update(broker_url="redis://h/1")) == (
        "the app's conf.broker_url"
    )
    from_dict = named_by(lambda app: app.config_from_object({"result_backend": "redis://h/1"}))
    assert from_dict == "result_backend in the object given to config_from_object"

    # The last setting wins, as the URL it names does.
    def both(app: Celery) -> None:
        app.config_from_object("proj.settings", namespace="CELERY")
        app.conf.broker_url = "redis://h/2"

    assert named_by(both) == "the app's conf.broker_url"
