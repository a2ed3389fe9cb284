"""A job that could never run is refused where it comes in, never stored to expire unseen:
an ``expires`` at or before its run time (a countdown longer than the expires, an eta
after the expires instant, an expires already past), from every way a job comes in.
And a task's own bad options are refused when it is declared, not at its first call.
Real SQLite files; the CLI as a subprocess."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor import App, Job, State, chain
from conveyor.celery import Celery
from conveyor.errors import ConfigurationError, ExpiresBeforeRun
from conveyor.records import JobQuery
from conveyor.schedules import ScheduleError
from conveyor.testing import drain, wait_for

from .cli.conftest import cli_env, run_cli

INSTANT = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture
def app(tmp_path: Path) -> App:
    app = App("never", backend=f"sqlite:///{tmp_path / 'conveyor.db'}")
    app.task(name="never.add")(lambda a, b: a + b)
    return app


def stored(app: App) -> list[str]:
    return [job.id for job in app.backend.list_jobs(JobQuery(limit=100))]


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_an_expires_shorter_than_the_countdown_is_refused_naming_both_times(app: App) -> None:
    add = app.tasks["never.add"]
    with pytest.raises(ExpiresBeforeRun) as refused:
        add.apply_async((1, 2), countdown=60, expires=30)
    said = str(refused.value)
    # both instants, what the seconds count from, and what to pass instead
    assert re.search(
        f"task 'never.add': expires=30 s \\(counted from enqueue: {INSTANT}\\) is not after "
        f"the job's run time {INSTANT} \\(its countdown or eta\\)",
        said,
    ), said
    assert "an expires in seconds counts from enqueue, not from the run time" in said
    assert "pass more than the 60 s until then" in said
    assert "(e.g. expires=120)" in said
    assert stored(app) == []


@pytest.mark.parametrize(
    "options",
    [
        {"expires": 0},
        {"expires": timedelta(0)},
        {"expires": datetime.now(UTC) - timedelta(seconds=5)},
        {"eta": later(120), "expires": later(60)},
        {"countdown": 10, "expires": 10},
    ],
    ids=["expires-0", "expires-timedelta-0", "expires-past", "eta-after-expires", "equal"],
)
def test_a_job_that_would_expire_before_it_could_run_is_not_stored(
    app: App, options: dict[str, Any]
) -> None:
    with pytest.raises(ExpiresBeforeRun, match="would expire before"):
        app.send_task("never.add", (1, 2), **options)
    assert stored(app) == []


def test_an_expires_after_the_run_time_is_stored_as_given(app: App) -> None:
    job = app.tasks["never.add"].apply_async((1, 2), countdown=10, expires=70)
    record = job.record()
    assert record.state is State.SCHEDULED
    assert record.expires_at == pytest.approx(record.run_at + 60, abs=0.01)


def test_bulk_enqueue_and_workflows_refuse_it_before_storing_any(app: App) -> None:
    add = app.tasks["never.add"]
    with pytest.raises(ExpiresBeforeRun, match="counted from enqueue"):
        app.enqueue_many([add.s(1, 2), add.s(3, 4).set(countdown=60, expires=30)])
    with pytest.raises(ExpiresBeforeRun):
        chain(add.s(1, 2), add.s(3)).apply_async(countdown=60, expires=30)
    assert stored(app) == []


def test_a_workflow_step_whose_expires_instant_passes_before_its_turn_ends_expired(
    tmp_path: Path,
) -> None:
    """Checked at launch, not when a worker enqueues the step: its instant may pass while
    the step before it runs, and the step is stored and ends expired, visibly (a refusal
    there could only lose it)."""
    app = App("steps", backend=f"sqlite:///{tmp_path / 'conveyor.db'}")
    deadline = later(0.5)

    @app.task(name="steps.wait")
    def wait() -> None:
        wait_for(lambda: datetime.now(UTC) > deadline, 10, "the deadline to pass")

    @app.task(name="steps.after")
    def after() -> str:
        return "ran"

    flow = chain(wait.si(), after.si().set(expires=deadline)).apply_async()
    drain(app)
    last = Job(app, flow.member_ids()[-1]).record()
    assert last.state is State.REVOKED
    assert last.error is not None
    assert last.error["type"] == "Expired"


def test_schedules_and_celery_calls_go_through_the_same_check(app: App) -> None:
    with pytest.raises(ScheduleError, match=r"expires=0 s .* is not after now"):
        app.schedules.add("nightly", "never.add", every=60, args=[1, 2], options={"expires": 0})
    celery = Celery("compat", broker=app.conf.backend_url, set_as_current=False)

    @celery.task(name="compat.add")
    def add(a: int, b: int) -> int:
        return a + b

    with pytest.raises(ExpiresBeforeRun, match="counts from enqueue"):
        add.apply_async((1, 2), countdown=60, expires=30)
    with pytest.raises(ExpiresBeforeRun, match="is not after now"):
        add.apply_async((1, 2), expires=datetime.now(UTC) - timedelta(minutes=1))
    assert stored(app) == []


def test_the_cli_refuses_a_countdown_past_the_tasks_expires(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'conveyor.db'}") | {
        "CONVEYOR_APP": "tests.apps.expiring:app"
    }
    refused = run_cli(env, "enqueue", "exp.report", "--args", '["monday"]', "--countdown", "1m")
    said = " ".join(refused.stderr.split())
    assert refused.returncode != 0
    assert "expires=30 s (counted from enqueue" in said
    assert "is not after the job's run time" in said
    assert "Traceback" not in said
    sent = run_cli(env, "enqueue", "exp.report", "--args", '["monday"]', "--countdown", "10s")
    assert sent.returncode == 0, sent.stderr
    listed = run_cli(env, "inspect", "jobs", "--json")
    assert listed.stdout.count("exp.report") == 1


# -- a task's own options, at decoration --------------------------------------------------


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"priority": 12}, "task t.job: priority 12 is out of range; use an integer from 0 to 9"),
        ({"priority": "urgent"}, "task t.job: priority 'urgent' is not a known name; use 0-9"),
        ({"expires": -5}, "task t.job: expires -5 is negative; pass more than 0 seconds"),
        ({"expires": 0}, "task t.job: expires=0 s (counted from enqueue: "),
        ({"max_retries": -1}, "task t.job: max_retries must be a whole number from 0 to 10000"),
        ({"queue": ""}, "task t.job: queue '' is not a valid queue name; use 1 to 100"),
        ({"max_retires": 3}, "task t.job: unknown option 'max_retires'; did you mean 'max_retries'?"),
        ({"time_limit": 0}, "task t.job: time_limit must be a number of seconds above 0, or None"),
        ({"soft_time_limit": "5m"}, "task t.job: soft_time_limit must be a number of seconds above 0"),
    ],
)  # fmt: skip
def test_bad_task_options_are_refused_at_decoration(options: dict[str, Any], said: str) -> None:
    app = App("decl", backend="memory://")
    with pytest.raises(ConfigurationError) as refused:
        app.task(name="t.job", **options)(lambda: None)
    assert str(refused.value).startswith(said)
    assert app.tasks == {}


def test_periodic_and_celery_tasks_are_checked_the_same_way() -> None:
    app = App("decl", backend="memory://")
    with pytest.raises(ConfigurationError, match=r"task t\.tick: priority 10 is out of range"):
        app.periodic(every=60, name="t.tick", priority=10)(lambda: None)
    celery = Celery("compat", broker="memory://", set_as_current=False)
    with pytest.raises(ConfigurationError, match=r"task c\.job: max_retries must be a whole"):
        celery.task(name="c.job", max_retries=-5)(lambda: None)
