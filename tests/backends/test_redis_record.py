"""How a job and its events are stored on Redis, for memory: fields at their default not
stored (but the priority), the kind of a job's state change written "" in the event
stream; records in the compact form (one-letter names for the fields only the enqueue
scripts write, no priority 5), which the next version writes, read the same; and what
an earlier version wrote (every field, "job.state") too."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.backends import Backend
from conveyor.records import JobQuery
from conveyor.states import State
from conveyor.testing import FakeClock

from ..contract.helpers import job

pytestmark = pytest.mark.parametrize("backend_kind", ["redis"])


def test_a_record_is_written_as_earlier_versions_read_it_and_reads_back_whole(
    backend: Any, clock: FakeClock
) -> None:
    """During a rolling upgrade an earlier version's scripts (rescue, the promotion of
    delayed jobs, release) read ``priority`` and ``created_at`` with no fallback: this
    version writes them, and the payload and retries, under the names they read."""
    plain = job(backend, args=(1,))
    urgent = job(backend, priority=9, max_retries=7, delay=3.0)
    for record in (plain, urgent):  # the single-job script
        backend.enqueue([record])
    batch = [job(backend, args=(2,)), job(backend, priority=0, delay=2.0)]
    backend.enqueue(batch)  # the batch script
    stored = {r.id: backend.client.hgetall(backend._key("job", r.id)) for r in [plain, *batch]}
    for fields in stored.values():
        assert {"payload", "created_at", "max_retries", "priority"} <= set(fields)
        assert {"p", "c", "m"}.isdisjoint(fields)
    assert stored[plain.id]["priority"] == "5"
    assert stored[batch[1].id]["priority"] == "0"
    for record in (plain, urgent, *batch):
        assert backend.get(record.id) == record


def test_records_in_the_compact_form_read_the_same(backend: Any, clock: FakeClock) -> None:
    """The form the next version writes: ``p``, ``c``, ``m`` and no priority 5."""
    client, key = backend.client, backend._key
    records = [job(backend, args=(i,)) for i in range(3)]
    backend.enqueue(records)
    short = {"payload": "p", "created_at": "c", "max_retries": "m"}
    for record in records:
        fields = client.hgetall(key("job", record.id))
        client.delete(key("job", record.id))
        compact = {short.get(k, k): v for k, v in fields.items() if k != "priority"}
        client.hset(key("job", record.id), mapping=compact)
    assert [backend.get(r.id) for r in records] == records
    found = backend.list_jobs(JobQuery(limit=10, text="[1]"))
    assert [r.id for r in found] == [records[1].id]
    backend.cancel(records[0].id)
    assert [r.id for r in backend.claim(["default"], "w", 5, 30)] == [r.id for r in records[1:]]
    assert backend.get(records[0].id).state is State.REVOKED


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


def test_event_times_in_whole_microseconds_read_as_seconds(backend: Any) -> None:
    """A later version may write an event's time as whole microseconds (10 bytes an entry
    less): this version reads both forms alike, so its API servers and live views keep
    their times during a rolling upgrade."""
    record = job(backend)
    backend.enqueue([record])
    micros = round(record.created_at * 1e6)
    backend.client.xadd(backend._key("events"), {"t": str(micros), "k": "", "j": record.id,
                                                 "q": "default", "n": "t", "s": "PENDING"})  # fmt: skip
    written, later = backend.events(0, 10)
    assert written.time == record.created_at
    assert later.time == pytest.approx(record.created_at, abs=1e-6)
    assert (written.kind, later.kind) == ("job.state", "job.state")
