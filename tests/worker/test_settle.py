"""``settle`` (the one place outcomes are stored and told) and ``execute``'s events and
middleware, in this process on every backend; tests/worker/test_events_emitted.py shows
the same through real worker subprocesses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conveyor import App, State
from conveyor.context import TaskContext
from conveyor.events import (
    Event,
    JobFailed,
    JobRetried,
    JobRevoked,
    JobStarted,
    JobSucceeded,
    Middleware,
)
from conveyor.records import JobRecord, Outcome
from conveyor.testing import FakeClock
from conveyor.worker.execution import execute
from conveyor.worker.settle import settle, settle_and_claim


@pytest.fixture
def seen(app: App) -> list[Event]:
    events: list[Event] = []
    app.events.subscribe(events.append, JobStarted, JobSucceeded, JobFailed, JobRetried, JobRevoked)
    return events


def claim_one(app: App, fn: Callable[..., Any], *args: Any) -> JobRecord:
    app.task(name="t.fn")(fn).delay(*args)
    (record,) = app.backend.claim(["default"], "w1", 1, 30)
    return record


def test_an_accepted_outcome_is_told_once_a_refused_one_never(
    app: App, clock: FakeClock, seen: list[Event]
) -> None:
    record = claim_one(app, lambda: None)
    clock.advance(2)
    stale = Outcome(record.id, "not-the-lease", State.SUCCESS, result=1)
    assert settle(app, app.backend, {record.id: record}, [stale]) == [record.id]
    assert [type(e) for e in seen] == []  # refused: another delivery owns the job
    good = Outcome(record.id, record.lease_token or "", State.SUCCESS, result=1)
    assert settle(app, app.backend, {record.id: record}, [good]) == []
    (event,) = seen
    assert isinstance(event, JobSucceeded)
    assert (event.job_id, event.task, event.attempt) == (record.id, "t.fn", 1)
    assert event.runtime == pytest.approx(2.0)


def test_settle_and_claim_tells_accepted_outcomes_and_claims_in_the_same_call(
    app: App, seen: list[Event]
) -> None:
    fn = app.task(name="t.fn")(lambda: None)
    first, second = fn.delay(), fn.delay()
    (held,) = app.backend.claim(["default"], "w1", 1, 30)
    stale = Outcome(held.id, "not-the-lease", State.SUCCESS, result=1)
    refused, claimed = settle_and_claim(
        app, app.backend, {held.id: held}, [stale], (["default"], "w1", 5, 30.0)
    )
    assert refused == [first.id]  # refused, told of nothing...
    assert [j.id for j in claimed] == [second.id]  # ... and the claim half still claimed
    assert seen == []
    good = [Outcome(j.id, j.lease_token or "", State.SUCCESS) for j in (held, *claimed)]
    records = {held.id: held, **{j.id: j for j in claimed}}
    assert settle_and_claim(app, app.backend, records, good, (["default"], "w1", 5, 30.0)) == (
        [],
        [],
    )
    assert [(type(e), e.job_id) for e in seen] == [
        (JobSucceeded, first.id),
        (JobSucceeded, second.id),
    ]


def test_a_retry_is_told_with_when_it_runs_again(
    app: App, clock: FakeClock, seen: list[Event]
) -> None:
    record = claim_one(app, lambda: None)
    retry = Outcome(record.id, record.lease_token or "", State.RETRY, delay=5.0,
                    error={"type": "ConnectionError", "message": "down"})  # fmt: skip
    settle(app, app.backend, {record.id: record}, [retry])
    (event,) = seen
    assert isinstance(event, JobRetried)
    assert event.retry_at == pytest.approx(clock() + 5.0)
    assert (event.error_type, event.error_message) == ("ConnectionError", "down")


def test_execute_tells_the_start_and_runs_the_task_inside_the_middleware(
    app: App, clock: FakeClock, seen: list[Event]
) -> None:
    calls: list[tuple[str, Any]] = []

    class Around(Middleware):
        def execute(self, context: TaskContext, call_next: Callable[[], Any]) -> Any:
            calls.append(("before", context.request.id))
            result = call_next()
            calls.append(("after", result))
            return result

    app.events.use(Around())
    record = claim_one(app, lambda x: x * 2, 21)
    clock.advance(3)
    outcome = execute(app, record)
    assert (outcome.state, outcome.result) == (State.SUCCESS, 42)
    assert calls == [("before", record.id), ("after", 42)]
    (event,) = seen  # the outcome is told by settle, not by execute
    assert isinstance(event, JobStarted)
    assert (event.job_id, event.attempt) == (record.id, 1)
    assert event.waited == pytest.approx(3.0)


def test_an_async_task_runs_inside_the_middleware_too(app: App, seen: list[Event]) -> None:
    calls: list[str] = []

    class Around(Middleware):
        async def aexecute(self, context: TaskContext, call_next: Any) -> Any:
            calls.append(f"before {context.request.task}")
            result = await call_next()
            calls.append(f"after {result}")
            return result

    async def double(x: int) -> int:
        return x * 2

    app.events.use(Around())
    record = claim_one(app, double, 21)
    outcome = execute(app, record)
    assert (outcome.state, outcome.result) == (State.SUCCESS, 42)
    assert calls == ["before t.fn", "after 42"]


def test_a_run_nothing_can_interrupt_still_turns_what_the_task_raises_into_its_outcome(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process-pool child runs tasks without limits with no ``ThreadRun`` (no terminate
    to deliver in the thread, no limit to enforce): the outcome is decided the same way."""
    import conveyor.worker.execution as execution

    def no_thread_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a run nothing can interrupt built a ThreadRun")

    monkeypatch.setattr(execution, "ThreadRun", no_thread_run)

    def boom() -> None:
        raise KeyError("gone")

    record = claim_one(app, boom)
    outcome = execute(app, record, thread_limits=(True, False))
    assert outcome.state is State.FAILURE
    assert outcome.error is not None
    assert outcome.error["type"] == "KeyError"
    ok = claim_one(app, lambda: 7)
    assert execute(app, ok, thread_limits=(True, False)).result == 7
