"""The producer's edge: options, routing, serialization errors, handles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from conveyor import App, JobNotFound, State
from conveyor.errors import EnqueueError, PayloadTooLarge, SerializationError, UnknownTask
from conveyor.options import CallPlan

from .conftest import FakeClock


def test_delay_queues_a_pending_job_on_the_tasks_queue(app: App) -> None:
    @app.task(queue="video", priority="high")
    def convert(path: str, fmt: str) -> str:
        return f"{path}.{fmt}"

    job = convert.delay("/in.mp4", fmt="webm")
    record = job.record()
    assert (record.task, record.queue, record.priority, record.state) == (
        convert.name,
        "video",
        7,
        State.PENDING,
    )
    assert convert("/a", "b") == "/a.b"  # calling the task runs it here


def test_unserializable_argument_fails_at_the_call_site_naming_it(app: App) -> None:
    @app.task
    def report(when: object, data: object = None) -> None: ...

    with pytest.raises(SerializationError, match=r"args\[0\] is a datetime.datetime.*isoformat"):
        report.delay(datetime.now(UTC))
    with pytest.raises(
        SerializationError, match=r"kwargs\['data'\]\['amount'\] is a decimal.Decimal"
    ):
        report.delay("x", data={"amount": Decimal("1.5")})
    with pytest.raises(SerializationError, match="keys must be str"):
        report.delay({1: "a"})
    with pytest.raises(SerializationError, match="nan"):
        report.delay(float("nan"))
    assert app.backend.list_jobs() == []  # nothing half-stored


def test_oversized_payload_is_refused(app: App) -> None:
    app.conf.max_payload_bytes = 1000

    @app.task
    def big(blob: str) -> None: ...

    with pytest.raises(PayloadTooLarge, match="max_payload_bytes=1000"):
        big.delay("x" * 2000)


def test_routing_precedence_call_then_routes_then_task(app: App) -> None:
    app.conf.task_routes = {"media.*": "media", "reports.*": {"queue": "reports", "priority": 1}}

    @app.task(name="media.thumbnail", queue="own")
    def thumbnail() -> None: ...

    @app.task(name="reports.daily")
    def daily() -> None: ...

    @app.task(name="other", queue="own")
    def other() -> None: ...

    assert thumbnail.delay().record().queue == "media"
    assert thumbnail.apply_async(queue="urgent").record().queue == "urgent"
    assert (daily.delay().record().queue, daily.delay().record().priority) == ("reports", 1)
    assert other.delay().record().queue == "own"
    assert app.declared_queues() == ["default", "media", "own", "reports"]


def test_countdown_eta_and_expires(app: App, clock: FakeClock) -> None:
    @app.task
    def later() -> None: ...

    delayed = later.apply_async(countdown=30).record()
    assert (delayed.state, delayed.run_at) == (State.SCHEDULED, clock.now + 30)
    at = datetime.fromtimestamp(clock.now + 90, UTC)
    assert later.apply_async(eta=at).record().run_at == pytest.approx(clock.now + 90)
    assert later.apply_async(expires=timedelta(minutes=1)).record().expires_at == clock.now + 60
    with pytest.raises(EnqueueError, match="no time zone"):
        later.apply_async(eta=datetime(2030, 1, 1))
    with pytest.raises(EnqueueError, match="either countdown or eta"):
        later.apply_async(countdown=1, eta=at)


@pytest.mark.parametrize("priority", [10, -1, "urgent", 2.5, True])
def test_bad_priority_is_refused(app: App, priority: object) -> None:
    @app.task
    def t() -> None: ...

    with pytest.raises(EnqueueError, match="priority"):
        t.apply_async(priority=priority)


def test_unknown_option_is_refused(app: App) -> None:
    @app.task
    def t() -> None: ...

    with pytest.raises(EnqueueError, match=r"unknown option.*queu"):
        t.apply_async(queu="typo")


def test_enqueue_many_checks_all_before_storing_any(app: App) -> None:
    @app.task
    def t(x: object) -> None: ...

    jobs = app.enqueue_many([t.s(1), t.s(2).set(priority=9), t.s(3)])
    assert [j.record().priority for j in jobs] == [5, 9, 5]
    with pytest.raises(SerializationError):
        app.enqueue_many([t.s(4), t.s({1, 2})])
    assert len(app.backend.list_jobs()) == 3


def test_enqueue_many_resolves_each_task_and_each_calls_own_options(app: App) -> None:
    """A batch checks the options of calls alike once; none of it may leak between tasks,
    into a call with options of its own, or from one job's record into another's."""
    app.conf.task_routes = {"media.*": "media"}

    @app.task(name="media.thumbnail", queue="own", acks_late=False)
    def thumbnail() -> None: ...

    @app.task(name="report", priority="low", max_retries=7)
    def report() -> None: ...

    sigs = [thumbnail.s(), report.s(), thumbnail.s().set(queue="urgent", job_id="mine"),
            report.s().set(countdown=60), thumbnail.s(), report.s()]  # fmt: skip
    records = [job.record() for job in app.enqueue_many(sigs)]
    assert [(r.queue, r.priority, r.max_retries, r.state) for r in records] == [
        ("media", 5, app.conf.default_max_retries, State.PENDING),
        ("default", 0, 7, State.PENDING),
        ("urgent", 5, app.conf.default_max_retries, State.PENDING),
        ("default", 0, 7, State.SCHEDULED),
        ("media", 5, app.conf.default_max_retries, State.PENDING),
        ("default", 0, 7, State.PENDING),
    ]
    assert records[2].id == "mine"
    assert len({r.id for r in records}) == len(records)
    plans: dict[str, CallPlan] = {}
    first, second = (app._record(thumbnail.s(), 0.0, plans) for _ in range(2))
    first.headers["x"] = 1  # records from one plan hold headers of their own
    assert second.headers == {"acks_late": False}


def test_job_handles(app: App) -> None:
    @app.task
    def t() -> None: ...

    job = t.apply_async(job_id="my-id")
    assert app.job("my-id") == job
    with pytest.raises(JobNotFound):
        app.job("typo-id")
    with pytest.raises(UnknownTask, match="no task named 'nope'"):
        app.get_task("nope")
    assert job.revoke().state is State.REVOKED
    assert job.ready()


def test_no_connection_at_import_or_construction(tmp_path: object) -> None:
    app = App("lazy", backend="sqlite:////nonexistent-dir/x.db")
    assert app._backend is None  # built on first use only
