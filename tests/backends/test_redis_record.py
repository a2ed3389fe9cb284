"""How a job and its events are stored on Redis, for memory: fields at their default not
stored, one-letter names for the fields only the enqueue scripts write, the kind of a
job's state change written "" in the event stream and an enqueue's event time in whole
microseconds; and what an earlier version wrote (every field under its long name,
"job.state", times in seconds) read the same."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.backends import Backend
from conveyor.backends.redis.codec import claimed
from conveyor.records import JobQuery
from conveyor.states import State
from conveyor.testing import FakeClock

from ..contract.helpers import job

pytestmark = pytest.mark.parametrize("backend_kind", ["redis"])


def test_a_record_is_written_in_the_compact_form_and_reads_back_whole(
    backend: Any, clock: FakeClock
) -> None:
    """Both enqueue scripts write ``p``, ``c``, ``m`` and no priority 5 (32 bytes a job
    less), which the version before this one reads too (it wrote the long names for the
    one before it); the record reads back whole, is found by a filter, revoked and
    claimed."""
    plain = job(backend, args=(1,))
    urgent = job(backend, priority=9, max_retries=7, delay=3.0)
    for record in (plain, urgent):  # the single-job script
        backend.enqueue([record])
    batch = [job(backend, args=(2,)), job(backend, priority=0, delay=2.0), job(backend)]
    backend.enqueue(batch)  # the batch script
    stored = {
        r.id: backend.client.hgetall(backend._key("job", r.id)) for r in [plain, urgent, *batch]
    }
    for fields in stored.values():
        assert {"p", "c", "m"} <= set(fields)
        assert {"payload", "created_at", "max_retries"}.isdisjoint(fields)
    assert "priority" not in stored[plain.id]
    assert "priority" not in stored[batch[0].id]
    assert stored[urgent.id]["priority"] == "9"
    assert stored[batch[1].id]["priority"] == "0"
    for record in (plain, urgent, *batch):
        assert backend.get(record.id) == record
    found = backend.list_jobs(JobQuery(limit=10, text="[2]"))
    assert [r.id for r in found] == [batch[0].id]
    backend.cancel(plain.id)
    assert [r.id for r in backend.claim(["default"], "w", 5, 30)] == [batch[0].id, batch[2].id]
    assert backend.get(plain.id).state is State.REVOKED


def test_records_and_events_an_earlier_version_wrote_read_the_same(
    backend: Any, clock: FakeClock
) -> None:
    client, key = backend.client, backend._key
    records = [job(backend, args=(i,)) for i in range(3)]
    backend.enqueue(records)
    for record in records:  # rewritten with every field under its long name
        fields = client.hgetall(key("job", record.id))
        long = {"p": "payload", "c": "created_at", "m": "max_retries"}
        client.delete(key("job", record.id))
        client.hset(
            key("job", record.id),
            mapping={"priority": "5"} | {long.get(k, k): v for k, v in fields.items()},
        )
    client.xadd(key("events"), {"t": "1.5", "k": "job.state", "j": "x", "q": "default",
                                 "n": "t", "s": "PENDING"})  # fmt: skip
    assert [backend.get(r.id) for r in records] == records
    found = backend.list_jobs(JobQuery(limit=10, text="[1]"))
    assert [r.id for r in found] == [records[1].id]

    events = backend.events(0, 100)
    assert [e.kind for e in events] == ["job.state"] * 4
    assert [e.job_id for e in events] == [r.id for r in records] + ["x"]
    # A revoke finds the job's place from its old fields; claims serve the others.
    backend.cancel(records[0].id)
    assert [r.id for r in backend.claim(["default"], "w", 5, 30)] == [r.id for r in records[1:]]
    assert backend.get(records[0].id).state is State.REVOKED


def test_job_state_events_are_written_without_their_kind(backend: Backend) -> None:
    backend.enqueue([job(backend)])
    [(_, fields)] = backend.client.xrange(backend._key("events"))  # type: ignore[attr-defined]
    assert fields["k"] == ""
    assert backend.events(0, 10)[0].kind == "job.state"


def test_enqueue_events_carry_their_time_in_whole_microseconds(backend: Any) -> None:
    """Both enqueue scripts write an event's time as whole microseconds (an integer in the
    stream's listpack: 10 bytes an entry less than the seconds' text), which the version
    before this one reads too; times in seconds (the other scripts', an earlier
    version's) read alike."""
    one, batch = job(backend), [job(backend), job(backend)]
    backend.enqueue([one])
    backend.enqueue(batch)
    backend.client.xadd(backend._key("events"), {"t": repr(one.created_at), "k": "", "j": "x",
                                                 "q": "default", "n": "t", "s": "PENDING"})  # fmt: skip
    stored = [f["t"] for _, f in backend.client.xrange(backend._key("events"))]
    assert stored[:3] == [str(round(r.created_at * 1e6)) for r in (one, *batch)]
    events = backend.events(0, 10)
    assert [e.job_id for e in events] == [one.id, *(r.id for r in batch), "x"]
    for event, record in zip(events, (one, *batch, one), strict=True):
        assert event.time == pytest.approx(record.created_at, abs=1e-6)
        assert event.kind == "job.state"


def test_a_claimed_record_reads_as_the_stored_one(backend: Any) -> None:
    """A claim's reply (the record's fields, then those the claim changed, then its id) is
    read in one pass (``codec.claimed``): the same record as the job's hash read back
    afterwards, whether the idle claim's fast path or the general claim took it, with
    every kind of field (JSON, numbers, optional ones) set."""
    now = backend.now()
    fast = job(backend, args=(1, "x"), headers={"trace": "a"}, parent_id="p", root_id="r")
    backend.enqueue([fast])
    [got] = backend.wait_and_claim(["default"], "w1", 1, 30.0, 0.5)  # claim_idle.lua
    assert (got.id, got.state, got.attempt) == (fast.id, State.STARTED, 1)
    both = [job(backend, priority=9, max_retries=7, expires_at=now + 60), job(backend, args=(2,))]
    backend.enqueue(both)
    took = {r.id: r for r in backend.claim(["default"], "w1", 2, 30.0)}  # claim.lua
    assert set(took) == {r.id for r in both}
    for record in (got, *took.values()):
        assert record == backend.get(record.id)
    assert took[both[0].id].expires_at == pytest.approx(now + 60)
    with pytest.raises(ValueError, match="shorter"):  # a reply cut short is not read as a record
        claimed(["task", "t", "queue"])
