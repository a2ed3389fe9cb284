"""Contract: ``ack_and_claim``, storing outcomes and claiming the next jobs in one step,
keeps every guarantee of ``ack`` and ``claim`` on their own."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from conveyor.backends import Backend
from conveyor.records import JobRecord, Outcome
from conveyor.states import State

from ..conftest import FakeClock
from .helpers import put


def held_by_w1(backend: Backend, queue: str = "default") -> JobRecord:
    """w1's delivery of the next job of ``queue``."""
    (held,) = backend.claim([queue], "w1", 1, 30)
    return held


def finish(
    backend: Backend,
    held: JobRecord,
    queues: Sequence[str] = ("default",),
    room: int = 5,
    state: State = State.SUCCESS,
    **fields: object,
) -> tuple[list[str], list[JobRecord]]:
    """w1 stores ``held``'s outcome and claims up to ``room`` jobs of ``queues``, in one call."""
    outcome = Outcome(held.id, held.lease_token or "", state, **fields)  # type: ignore[arg-type]
    return backend.ack_and_claim([outcome], list(queues), "w1", room, 30)


def finish_and_claim_nothing(backend: Backend, held: JobRecord, room: int = 5) -> None:
    """w1's ``held`` job succeeds, and the claim half finds nothing it may run."""
    assert finish(backend, held, room=room) == ([], [])
    assert backend.get(held.id).state is State.SUCCESS


def test_stores_the_outcomes_and_claims_the_next_jobs(backend: Backend, clock: FakeClock) -> None:
    first, second, third = put(backend), put(backend), put(backend)
    held = held_by_w1(backend)
    assert held.id == first.id
    clock.advance(1)
    refused, claimed = finish(backend, held, result={"n": 1})
    assert refused == []
    assert [j.id for j in claimed] == [second.id, third.id]
    record = backend.get(first.id)
    assert record.state is State.SUCCESS
    assert record.result == {"n": 1}
    assert record.finished_at == pytest.approx(clock.now)
    for job in claimed:
        assert job.state is State.STARTED
        assert job.worker == "w1"
        assert job.lease_until == pytest.approx(clock.now + 30)
        assert backend.get(job.id).lease_token == job.lease_token
    assert backend.counts()[("default", State.SUCCESS)] == 1
    assert backend.counts()[("default", State.STARTED)] == 2


def test_a_stale_lease_is_refused_while_the_claim_half_still_works(backend: Backend) -> None:
    first = put(backend)
    held = held_by_w1(backend)
    backend.abandon([held.lease])  # w1 is deemed dead: the job is queued again...
    (again,) = backend.claim(["default"], "w2", 1, 30)  # ... and w2 now owns it
    assert again.id == first.id
    second = put(backend)
    refused, claimed = finish(backend, held, result="stale")
    assert refused == [first.id]
    assert [j.id for j in claimed] == [second.id]
    record = backend.get(first.id)
    assert record.state is State.STARTED  # w2's delivery, untouched
    assert record.lease_token == again.lease_token
    assert record.result is None


def test_a_paused_queue_is_not_claimed(backend: Backend) -> None:
    first = put(backend, queue="a")
    waiting = put(backend, queue="b")
    other = put(backend, queue="a")
    held = held_by_w1(backend, "a")
    assert held.id == first.id
    backend.pause_queue("b")
    refused, claimed = finish(backend, held, ["b", "a"])
    assert refused == []
    assert [j.id for j in claimed] == [other.id]
    assert backend.get(waiting.id).state is State.PENDING
    assert backend.get(first.id).state is State.SUCCESS


def test_the_claim_half_orders_by_priority_across_queues(backend: Backend) -> None:
    running = put(backend, queue="a")
    held = held_by_w1(backend, "a")
    low = put(backend, queue="a", priority=1)
    high = put(backend, queue="b", priority=9)
    mid = put(backend, queue="a", priority=5)
    refused, claimed = finish(backend, held, ["a", "b"], room=2)
    assert refused == []
    assert [j.id for j in claimed] == [high.id, mid.id]
    assert backend.get(low.id).state is State.PENDING
    assert backend.get(running.id).state is State.SUCCESS


def test_a_retry_is_queued_again_and_can_be_claimed_when_due(
    backend: Backend, clock: FakeClock
) -> None:
    first = put(backend)
    held = held_by_w1(backend)
    refused, claimed = finish(backend, held, state=State.RETRY, delay=0.0)
    assert refused == []
    # Due at once: the claim half may take it back at once, as a fresh delivery.
    if claimed:
        assert [j.id for j in claimed] == [first.id]
        assert claimed[0].attempt == 2
        assert claimed[0].lease_token != held.lease_token
    else:
        clock.advance(1)
        (again,) = backend.claim(["default"], "w1", 1, 30)
        assert again.id == first.id


def test_a_revoked_job_is_not_claimed(backend: Backend) -> None:
    first, revoked = put(backend), put(backend)
    held = held_by_w1(backend)
    assert held.id == first.id
    backend.cancel(revoked.id)
    finish_and_claim_nothing(backend, held)
    assert backend.get(revoked.id).state is State.REVOKED


def test_expired_jobs_are_revoked_at_the_claim_not_returned(
    backend: Backend, clock: FakeClock
) -> None:
    first = put(backend)
    expiring = put(backend, expires_at=clock.now + 5)
    held = held_by_w1(backend)
    assert held.id == first.id
    clock.advance(10)
    finish_and_claim_nothing(backend, held)
    record = backend.get(expiring.id)
    assert record.state is State.REVOKED
    assert (record.error or {}).get("type") == "Expired"


def test_with_no_outcomes_it_is_a_claim_and_with_no_room_an_ack(backend: Backend) -> None:
    first, second = put(backend), put(backend)
    refused, claimed = backend.ack_and_claim([], ["default"], "w1", 1, 30)
    assert (refused, [j.id for j in claimed]) == ([], [first.id])
    (held,) = claimed
    finish_and_claim_nothing(backend, held, room=0)
    assert backend.get(second.id).state is State.PENDING
