"""Contract: storing, claiming in order, delays and expiry. Every backend runs these unchanged."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from conveyor.backends import Backend
from conveyor.errors import JobNotFound
from conveyor.states import State

from ..conftest import FakeClock
from .helpers import job, put


def test_enqueue_then_get_round_trips_the_record(backend: Backend) -> None:
    record = job(backend, queue="video", priority=7, args=[1, "x"], headers={"h": 1}, max_retries=2)
    backend.enqueue([record])
    stored = backend.get(record.id)
    assert (stored.task, stored.queue, stored.priority, stored.state) == (
        "tests.noop",
        "video",
        7,
        State.PENDING,
    )
    assert stored.payload == record.payload
    assert stored.headers == {"h": 1}
    assert stored.max_retries == 2
    assert stored.attempt == 0
    assert stored.attempts == []


def test_a_batch_round_trips_each_records_own_fields(backend: Backend) -> None:
    """Batches take another path than single jobs on some backends (column arrays)."""
    now = backend.now()
    full = job(backend, headers={"h": [1, 2]}, expires_at=now + 60, parent_id="p", root_id="r",
               workflow_id="w", max_retries=4, args=["x"])  # fmt: skip
    bare = job(backend, priority=0)
    assert backend.enqueue([bare, full, job(backend, queue="other")]) == [True, True, True]
    stored = backend.get_many([bare.id, full.id])
    got = stored[full.id]
    assert (got.headers, got.expires_at, got.max_retries) == ({"h": [1, 2]}, now + 60, 4)
    assert (got.parent_id, got.root_id, got.workflow_id) == ("p", "r", "w")
    assert got.payload == full.payload
    got = stored[bare.id]
    assert (got.headers, got.expires_at, got.priority, got.parent_id) == ({}, None, 0, None)


def test_unknown_id_is_not_found_never_pending(backend: Backend) -> None:
    with pytest.raises(JobNotFound, match="no-such-id"):
        backend.get("no-such-id")
    assert backend.get_many(["no-such-id"]) == {}


def test_enqueue_is_idempotent_by_id(backend: Backend) -> None:
    first = job(backend, id="fixed-id", priority=1)
    second = job(backend, id="fixed-id", priority=9)
    assert backend.enqueue([first]) == [True]
    assert backend.enqueue([second, job(backend)]) == [False, True]
    assert backend.get("fixed-id").priority == 1


def test_an_id_repeated_in_one_batch_is_inserted_once_first_entry_wins(backend: Backend) -> None:
    first, again = job(backend, id="twice", priority=2), job(backend, id="twice", priority=8)
    assert backend.enqueue([first, job(backend), again]) == [True, True, False]
    assert backend.get("twice").priority == 2


def test_a_batch_is_claimed_in_its_own_order(backend: Backend) -> None:
    batch = [job(backend) for _ in range(50)]  # one clock reading: equal run_at throughout
    backend.enqueue(batch)
    assert [j.id for j in backend.claim(["default"], "w1", 50, 30)] == [j.id for j in batch]


def test_claim_takes_highest_priority_first_then_fifo(backend: Backend, clock: FakeClock) -> None:
    order = []
    for priority in [5, 9, 0, 9, 5, 7]:
        order.append((priority, put(backend, priority=priority).id))
        clock.advance(0.001)
    expected = [
        job_id for _, job_id in sorted(order, key=lambda p: -p[0])
    ]  # stable: FIFO within a priority
    claimed = []
    while batch := backend.claim(["default"], "w1", 2, 30):
        claimed += [j.id for j in batch]
    assert claimed == expected


def test_priority_is_strict_and_not_bucketed(backend: Backend) -> None:
    for priority in range(10):
        put(backend, priority=priority)
    assert [j.priority for j in backend.claim(["default"], "w1", 10, 30)] == list(range(9, -1, -1))


def test_claim_reads_only_the_given_queues(backend: Backend) -> None:
    a, b = put(backend, queue="a"), put(backend, queue="b")
    put(backend, queue="c")
    assert {j.id for j in backend.claim(["a", "b"], "w1", 10, 30)} == {a.id, b.id}
    assert backend.claim(["a", "b"], "w1", 10, 30) == []


def test_claim_marks_started_with_a_fresh_lease(backend: Backend, clock: FakeClock) -> None:
    record = put(backend)
    (claimed,) = backend.claim(["default"], "w1", 1, 30)
    assert claimed.id == record.id
    assert claimed.state is State.STARTED
    assert claimed.worker == "w1"
    assert claimed.attempt == 1
    assert claimed.lease_until == pytest.approx(clock.now + 30)
    assert claimed.lease_token
    assert backend.get(record.id).state is State.STARTED


def test_wait_and_claim_takes_a_job_enqueued_while_it_waits(
    backend: Backend, clock: FakeClock
) -> None:
    record = job(backend)
    backend.claim(["default"], "w0", 1, 30)  # first use (connections, schema) before timing
    enqueue = threading.Timer(0.3, backend.enqueue, [[record]])
    started = time.monotonic()
    enqueue.start()
    try:
        claimed = backend.wait_and_claim(["default"], "w1", 5, 30, 5.0)
    finally:
        enqueue.join()
    assert time.monotonic() - started < 4.0  # woken by the enqueue, not by the timeout
    assert [j.id for j in claimed] == [record.id]
    (got,) = claimed
    assert (got.state, got.worker, got.attempt) == (State.STARTED, "w1", 1)
    assert got.started_at == pytest.approx(clock.now, abs=5)  # the caller's clock
    assert got.lease_until == pytest.approx((got.started_at or 0) + 30)
    stored = backend.get(record.id)
    assert (stored.state, stored.lease_token) == (State.STARTED, got.lease_token)


def test_wait_and_claim_with_nothing_queued_returns_nothing(backend: Backend) -> None:
    started = time.monotonic()
    assert backend.wait_and_claim(["default"], "w1", 5, 30, 0.2) == []
    assert time.monotonic() - started < 4.0


def test_delayed_job_waits_for_its_time(backend: Backend, clock: FakeClock) -> None:
    record = put(backend, delay=60)
    assert backend.get(record.id).state is State.SCHEDULED
    assert backend.claim(["default"], "w1", 10, 30) == []
    clock.advance(59.9)
    assert backend.claim(["default"], "w1", 10, 30) == []
    clock.advance(0.2)
    assert [j.id for j in backend.claim(["default"], "w1", 10, 30)] == [record.id]


def test_due_delayed_job_keeps_its_priority(backend: Backend, clock: FakeClock) -> None:
    low_now = put(backend, priority=1)
    high_later = put(backend, priority=9, delay=5)
    clock.advance(10)
    assert [j.id for j in backend.claim(["default"], "w1", 2, 30)] == [high_later.id, low_now.id]


def test_expired_job_is_revoked_at_claim_not_run(backend: Backend, clock: FakeClock) -> None:
    stale = put(backend, expires_at=clock.now + 5)
    fresh = put(backend, expires_at=clock.now + 500)
    clock.advance(10)
    assert [j.id for j in backend.claim(["default"], "w1", 10, 30)] == [fresh.id]
    record = backend.get(stale.id)
    assert record.state is State.REVOKED
    assert record.error is not None
    assert record.error["type"] == "Expired"
    # the time people read, not a POSIX number (a new user saw "expired at 1796160026.177")
    when = datetime.fromtimestamp(stale.expires_at or 0, UTC).isoformat(timespec="milliseconds")
    assert (
        f"expired at {when.replace('+00:00', 'Z')} before a worker started it"
        in record.error["message"]
    )


def test_batches_are_claimed_once_each(backend: Backend) -> None:
    ids = {put(backend).id for _ in range(25)}
    seen: list[str] = []
    for worker in ["w1", "w2", "w3", "w1", "w2", "w3"]:
        seen += [j.id for j in backend.claim(["default"], worker, 5, 30)]
    assert sorted(seen) == sorted(ids)


def test_a_job_can_be_stored_already_finished(backend: Backend, clock: FakeClock) -> None:
    never = job(backend)
    never.state = State.REVOKED
    never.error = {"type": "WorkflowAborted", "message": "an earlier step failed"}
    assert backend.enqueue([never]) == [True]
    record = backend.get(never.id)
    assert (record.state, record.error, record.finished_at) == (
        State.REVOKED,
        never.error,
        clock.now,
    )
    assert record.keep_until == clock.now + backend.result_ttl
    assert backend.claim(["default"], "w1", 10, 30) == []
    assert backend.counts() == {("default", State.REVOKED): 1}


def test_group_join_records_each_member_once_and_completes_in_order(backend: Backend) -> None:
    assert backend.join_group("g1", 2, 3, "c") is None
    assert backend.join_group("g1", 0, 3, {"a": 1}) is None
    assert backend.join_group("g1", 0, 3, "duplicate") is None  # a repeat delivery changes nothing
    assert backend.join_group("g1", 1, 3, None) == [{"a": 1}, None, "c"]
    assert backend.join_group("g1", 1, 3, "late repeat") == [{"a": 1}, None, "c"]
    assert backend.join_group("g2", 0, 1, 5) == [5]
