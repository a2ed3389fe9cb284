"""Celery's task semantics, run by a burst worker in this process: default_retry_delay,
autoretry_for without backoff, MaxRetriesExceededError, Reject, ignore_result,
update_state's limits; and autodiscover_tasks, shared_task, add_periodic_task."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conveyor import App
from conveyor.celery import Celery, NotSupported, chain, chord, signature
from conveyor.celery.exceptions import MaxRetriesExceededError, Reject
from conveyor.errors import ConfigurationError, EnqueueError
from conveyor.loader import load_app
from conveyor.states import State
from conveyor.testing import drain, use_backend
from conveyor.worker.execution import execute


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("semantics", task_default_retry_delay=120)
    with use_backend(app):
        yield app


def _retry_delay(app: Celery, job_id: str) -> float:
    """Run the job's first attempt here, as a worker would: how long until it runs again."""
    outcome = execute(app, app.backend.get(job_id))
    assert outcome.state is State.RETRY
    return outcome.delay


def test_retries_wait_default_retry_delay_as_in_celery(app: Celery) -> None:
    @app.task(bind=True, name="t.bound")
    def bound(self: Any) -> None:
        raise self.retry(exc=OSError("later"))

    @app.task(name="t.auto", autoretry_for=(KeyError,), default_retry_delay=30)
    def auto() -> None:
        raise KeyError("missing")

    assert _retry_delay(app, bound.delay().id) == 120  # the app's task_default_retry_delay
    assert _retry_delay(app, auto.delay().id) == 30  # the task's own, with no backoff


def test_outcomes_follow_celery(app: Celery) -> None:
    @app.task(bind=True, name="t.spent", max_retries=0)
    def spent(self: Any) -> None:
        self.retry()

    @app.task(name="t.reject")
    def rejects() -> None:
        raise Reject("bad payload", requeue=False)

    @app.task(name="t.quiet", ignore_result=True)
    def quiet() -> int:
        return 42

    @app.task(bind=True, name="t.report")
    def report(self: Any, how: str) -> None:
        if how == "final":
            self.update_state(state="SUCCESS")
        self.update_state(task_id="another-job", state="PROGRESS")

    jobs = [
        spent.delay(),
        rejects.delay(),
        quiet.delay(),
        report.delay("final"),
        report.delay("other"),
    ]
    drain(app)
    with pytest.raises(MaxRetriesExceededError, match=r"Can't retry t\.spent"):
        jobs[0].get(timeout=1)
    assert jobs[1].failed()
    assert app.backend.get(jobs[1].id).attempt == 1  # rejected: not retried
    assert jobs[2].successful()
    assert jobs[2].result is None  # ignore_result
    for job, what in ((jobs[3], "state='SUCCESS'"), (jobs[4], "another job")):
        assert job.failed()
        assert what in str(job.result)
        assert "return the value" in str(job.result) or "its own progress" in str(job.result)


def test_autodiscover_finds_tasks_modules_when_tasks_are_first_needed() -> None:
    sys.modules.pop("tests.apps.celerydisc.tasks", None)
    app = Celery("discovering")
    app.autodiscover_tasks(
        ["tests.apps.celerydisc", "tests.apps"]
    )  # tests.apps has no tasks module
    assert "tests.apps.celerydisc.tasks" not in sys.modules  # lazily, as Celery does
    assert "disc.ping" in app.tasks
    from tests.apps.celerydisc.tasks import ping

    assert ping() == "pong"
    assert ping.name == "disc.ping"
    assert ping.delay  # the shared task resolves to the current app's task
    with pytest.raises(ModuleNotFoundError):
        Celery("broken").autodiscover_tasks(["tests.apps.no_such_package"], force=True)


def test_add_periodic_task_from_on_after_configure() -> None:
    app = Celery("periodic", timezone="Europe/Paris")

    @app.task(name="t.tick")
    def tick(word: str) -> str:
        return word

    @app.on_after_configure.connect
    def setup_periodic_tasks(sender: Celery, **_: Any) -> None:
        sender.add_periodic_task(10.0, tick.s("hello"), name="say hello every 10")

    with use_backend(app):
        schedules = app.declared_schedules()
    hello = schedules["say-hello-every-10"]
    assert (hello.task, hello.every, hello.args) == ("t.tick", 10.0, ["hello"])


def test_update_state_outside_a_worker_says_so(app: Celery) -> None:
    @app.task(bind=True, name="t.direct")
    def direct(self: Any) -> None:
        self.update_state(state="PROGRESS")

    with pytest.raises(NotSupported, match="outside a worker"):
        direct()


def test_purge_revokes_every_waiting_job_and_says_how_many(app: Celery) -> None:
    @app.task(name="t.later", queue="media")
    def later() -> None: ...

    jobs = [later.apply_async(countdown=60), later.delay(), app.send_task("t.later", queue="other")]
    assert app.control.purge() == 3
    assert [job.state for job in jobs] == ["REVOKED"] * 3
    assert later.max_retries == 3  # Celery's attributes, read by task code
    assert later.queue == "media"
    assert later.acks_late is True


def test_links_eta_and_signatures_by_name(app: Celery) -> None:
    @app.task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="t.boom")
    def boom() -> None:
        raise ValueError("boom")

    @app.task(name="t.noted")
    def noted(value: Any) -> Any:
        return value

    linked = add.apply_async((1, 2), link=noted.s(), task_id="job-1")
    failed = boom.apply_async(link_error=app.signature("t.noted"))
    later = signature("t.add", args=(2, 2), eta=datetime.now(UTC) + timedelta(hours=1), app=app)
    waiting = later.apply_async()
    drain(app)
    assert linked.id == "job-1"
    assert linked.get(timeout=1) == 3
    # a link gets the result; an errback the failed job's id (Celery's old-style errback)
    noted_results = [r.result for r in app.backend.list_jobs() if r.task == "t.noted"]
    assert set(map(str, noted_results)) == {"3", failed.id}
    assert waiting.state == "PENDING"  # waiting for its eta: Conveyor's SCHEDULED


def test_a_naive_eta_is_read_as_celery_reads_it(app: Celery) -> None:
    """UTC by default (enable_utc), else in the app's ``timezone``; expires likewise.
    Conveyor's own API still refuses a naive datetime."""

    @app.task(name="t.later")
    def later() -> None: ...

    naive = datetime(2031, 6, 1, 12, 0)
    in_utc = later.apply_async(eta=naive, expires=naive + timedelta(hours=1))
    app.conf.timezone = "Europe/Berlin"  # CELERY_TIMEZONE
    in_berlin = later.apply_async(eta=naive)
    sent = app.send_task("t.later", eta=naive)
    chained = chain(later.si(), later.si()).apply_async(eta=naive)
    berlin = naive.replace(tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    assert app.backend.get(in_utc.id).run_at == naive.replace(tzinfo=UTC).timestamp()
    assert app.backend.get(in_utc.id).expires_at == naive.replace(tzinfo=UTC).timestamp() + 3600
    assert app.backend.get(in_berlin.id).run_at == berlin
    assert app.backend.get(sent.id).run_at == berlin
    [first] = [r for r in app.backend.list_jobs() if r.workflow_id == chained.id]
    assert first.run_at == berlin
    plain = App("plain")
    with use_backend(plain), pytest.raises(EnqueueError, match="has no time zone"):
        plain.task(name="t.plain")(lambda: None).apply_async(eta=naive)


def test_more_that_raises_not_supported(app: Celery) -> None:
    @app.task(bind=True, name="t.reargs")
    def reargs(self: Any) -> None:
        self.retry(args=(1,))

    @app.task(name="t.plain")
    def plain() -> None: ...

    job = reargs.delay()
    drain(app)
    assert "self.retry(args=..., kwargs=...)" in str(job.result)
    assert "apply_async" in str(job.result)
    for call, words in [
        (lambda: plain.apply(), "drain(app)"),
        (lambda: job.forget(), "result_expires"),
        (lambda: app.control.inspect().revoked(), "list_jobs"),
        (lambda: chord([plain.s()]).apply_async(), "chord(header)(body)"),
        (lambda: plain.apply_async(ignore_result=True), "on the task"),
        (lambda: plain.apply_async(add_to_parent=False), "drop the option"),
        (lambda: app.task(name="t.x", throws=(KeyError,))(lambda: None), "traceback"),
    ]:
        with pytest.raises(NotSupported, match=re.escape(words)):
            call()


def test_dash_a_finds_a_projects_one_app_by_any_name() -> None:
    from tests.apps import celery_proj

    before = celery_proj.app.main
    try:
        assert load_app("tests.apps.celerynamed") is celery_proj.app
        assert celery_proj.app.main == "tests.apps.celerynamed:celery_app"  # what children load
    finally:
        celery_proj.app.main = before
    with pytest.raises(ConfigurationError, match="Apps found in that module: none"):
        load_app("tests.apps.celerydisc")


def test_async_result_of_a_saved_chain_or_chord_id_is_the_workflows(app: Celery) -> None:
    # Celery's habit: keep result.id, later AsyncResult(id).get(). For a chain's or a
    # chord's id, get() raised "no job has the id" and state said to use app.AsyncResult.
    from conveyor.celery.result import AsyncResult

    @app.task(name="t.add")
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(name="t.total")
    def total(values: list[int]) -> int:
        return sum(values)

    app.set_current()
    line = chain(add.s(1, 2), add.s(3)).apply_async()
    fan = chord([add.s(1, 1), add.s(2, 2)], total.s()).apply_async()
    drain(app)
    assert AsyncResult(line.id).get(timeout=5) == 6
    assert AsyncResult(fan.id).state == "SUCCESS"
    assert AsyncResult(fan.id).result == 6
    assert AsyncResult(fan.id).ready()


def test_current_app_is_the_current_apps_attributes_as_celerys_proxy(app: Celery) -> None:
    from conveyor.celery import current_app

    app.set_current()
    job = current_app.send_task("t.any")  # an attribute of the app, as in Celery
    assert current_app() is app
    assert current_app.conf is app.conf
    assert app.backend.get(job.id).task == "t.any"
