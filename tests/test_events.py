"""``app.events``: subscribers, middleware, and the enqueue side of the event stream."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import App
from conveyor.events import (
    EVENT_TYPES,
    Event,
    JobEnqueued,
    JobEvent,
    JobFailed,
    Middleware,
    QueuePaused,
)
from conveyor.records import JobRecord


def test_every_event_type_has_its_own_kind() -> None:
    kinds = [t.kind for t in EVENT_TYPES]
    assert len(set(kinds)) == len(kinds)
    assert all(k.count(".") == 1 for k in kinds)


def test_enqueue_emits_one_event_per_job_stored(app: App) -> None:
    @app.task(name="t.echo", queue="media")
    def echo(x: int) -> int:
        return x

    seen: list[Event] = []
    app.events.subscribe(seen.append, JobEnqueued)
    job = echo.apply_async((1,), priority=7, countdown=30)
    jobs = app.enqueue_many([echo.s(2), echo.s(3)])
    assert [e.job_id for e in seen if isinstance(e, JobEnqueued)] == [job.id, *(j.id for j in jobs)]
    first = seen[0]
    assert isinstance(first, JobEnqueued)
    assert (first.task, first.queue, first.priority) == ("t.echo", "media", 7)
    assert first.run_at >= first.at + 29
    # An id that exists already is not enqueued again, so it is not announced again.
    echo.apply_async((1,), job_id=job.id)
    assert len(seen) == 3


def test_a_base_type_subscribes_to_every_kind_under_it(app: App) -> None:
    seen: list[Event] = []
    unsubscribe = app.events.subscribe(seen.append, JobEvent)
    assert app.events.wants(JobEnqueued)
    assert app.events.wants(JobFailed)
    assert not app.events.wants(QueuePaused)
    unsubscribe()
    assert not app.events.wants(JobEnqueued)


def test_a_failing_subscriber_never_breaks_the_enqueue(app: App, caplog: Any) -> None:
    @app.task(name="t.echo")
    def echo(x: int) -> int:
        return x

    def broken(event: Event) -> None:
        raise RuntimeError("metrics are down")

    seen: list[Event] = []
    app.events.subscribe(broken, JobEnqueued)
    app.events.subscribe(seen.append, JobEnqueued)
    job = echo.delay(1)
    assert job.state.value == "PENDING"
    assert len(seen) == 1  # the next subscriber still ran
    assert "metrics are down" in caplog.text


def test_middleware_wraps_enqueue_outermost_first(app: App) -> None:
    @app.task(name="t.echo")
    def echo(x: int) -> int:
        return x

    order: list[str] = []

    class Tag(Middleware):
        def __init__(self, name: str) -> None:
            self.name = name

        def enqueue(self, records: list[JobRecord], call_next: Any) -> list[bool]:
            order.append(self.name)
            for record in records:
                record.headers = {**record.headers, "traceparent": f"00-{self.name}"}
            return list(call_next(records))

    app.events.use(Tag("outer"))
    app.events.use(Tag("inner"))
    job = echo.delay(1)
    assert order == ["outer", "inner"]
    assert job.record().headers["traceparent"] == "00-inner"  # the innermost wrote last


def test_subscribe_refuses_what_is_not_an_event_type(app: App) -> None:
    with pytest.raises(TypeError, match="event types"):
        app.events.subscribe(print, "job.failed")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Middleware"):
        app.events.use(object())  # type: ignore[arg-type]
