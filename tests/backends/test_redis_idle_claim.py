"""The idle claim's fast path on Redis (lua/claim_idle.lua): an idle worker's claim, the
one pipelined behind its wait, usually finds one queue whose whole due set is the one
job just queued, in the queue's due tail. It takes that job without the prelude and
without passing it through the due pages, and leaves the store exactly as the general
claim does; any other case goes to the general claim."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from conveyor.backends import Backend
from conveyor.records import JobRecord
from conveyor.states import State
from conveyor.testing import FakeClock

from ..contract.helpers import job

pytestmark = pytest.mark.parametrize("backend_kind", ["redis"])


def script_commands(backend: Any, action: Callable[[], object]) -> list[str]:
    """The commands scripts ran on this backend's keys while ``action`` ran (MONITOR,
    filtered to this test's prefix)."""
    client, prefix = backend.client, backend.prefix
    marker = f"{prefix}:monitor-done"
    seen: list[str] = []
    with client.monitor() as monitor:
        thread = threading.Thread(target=lambda: (action(), client.echo(marker)))
        thread.start()
        for entry in monitor.listen():
            command = entry["command"]
            if marker in command:
                break
            if entry.get("client_type") == "lua" and prefix in command:
                seen.append(command)
        thread.join()
    return seen


def test_an_idle_claim_takes_the_one_new_job_without_the_due_pages(backend: Backend) -> None:
    """The pipelined claim of an idle worker: one job, queued by a single enqueue, taken
    straight from the due tail (before: folded into a new page, read from it and the page
    deleted, 23 commands in all, the reply to the wait held back meanwhile)."""
    record = job(backend)
    assert backend.enqueue([record]) == [True]
    claimed: list[JobRecord] = []
    commands = script_commands(
        backend, lambda: claimed.extend(backend.wait_and_claim(["default"], "w", 4, 30, 1.0))
    )
    assert [r.id for r in claimed] == [record.id]
    assert (claimed[0].state, claimed[0].attempt) == (State.STARTED, 1)
    assert [c.split()[0] for c in commands if ":due" in c] == ["EXISTS"]  # looked, not written
    assert len(commands) <= 11, commands  # 22 before


def snapshot(backend: Any, record: JobRecord, queue: str) -> dict[str, Any]:
    """What a claim leaves of a job and its queue, less what differs by nature (times,
    tokens, ids): the record, the queue's counts, the job's last event, its lease entry,
    and the queue's keys."""
    client = backend.client
    fields = client.hgetall(backend._key("job", record.id))
    for name in ("started_at", "lease_until", "lease_token", "c", "created_at", "queue"):
        fields.pop(name, None)
    events = [(e.kind, e.task, e.state) for e in backend.events() if e.job_id == record.id]
    keys = {
        k[len(backend._key("q", queue)) :]
        for k in client.scan_iter(backend._key("q", queue, "*"), count=1000)
    }
    return {
        "fields": fields,
        "counts": {s: n for (q, s), n in backend.counts().items() if q == queue},
        "events": events,
        "leased": client.zscore(backend._key("leases"), record.id) is not None,
        "keys": keys - {":wake"},
    }


def test_the_fast_path_leaves_what_the_general_claim_leaves(backend: Backend) -> None:
    """The same job claimed by the fast path (one queue) and by the general claim (two
    queues, one empty): the same record, counts, events, lease and keys afterwards."""
    fast, general = job(backend, queue="a"), job(backend, queue="b")
    for record in (fast, general):
        assert backend.enqueue([record]) == [True]
    assert [r.id for r in backend.claim(["a"], "w", 1, 30)] == [fast.id]
    assert [r.id for r in backend.claim(["b", "empty"], "w", 1, 30)] == [general.id]
    assert snapshot(backend, fast, "a") == snapshot(backend, general, "b")
    assert snapshot(backend, fast, "a")["keys"] == set()


def test_a_tail_entry_whose_job_no_longer_waits_is_dropped(backend: Backend) -> None:
    """As in the general claim: an entry whose job is not PENDING (an earlier version's
    cancel) is dropped, never run."""
    record = job(backend)
    backend.enqueue([record])
    client: Any = backend.client  # type: ignore[attr-defined]
    client.hset(backend._key("job", record.id), "state", "REVOKED")  # type: ignore[attr-defined]
    assert backend.claim(["default"], "w", 1, 30) == []
    assert not client.exists(backend._key("q", "default", "newdue"))  # type: ignore[attr-defined]
    assert backend.get(record.id).state is State.REVOKED


@pytest.mark.parametrize("case", ["two in the tail", "paused", "delayed due", "pages"])
def test_any_other_case_goes_to_the_general_claim(
    backend: Backend, clock: FakeClock, case: str
) -> None:
    """What the fast path does not take: a tail of two (the best goes first), a paused
    queue (nothing), a delayed job now due (promoted, and first by priority), due pages
    (a batch's jobs, compared with the tail's)."""
    new = job(backend, priority=5)
    if case == "delayed due":
        early = job(backend, priority=9, delay=0.5)
        backend.enqueue([early])
        clock.advance(1.0)
        new = job(backend, priority=5)
    elif case == "pages":
        early = job(backend, priority=9)
        backend.enqueue([early, job(backend, priority=0)])  # a batch: into the pages
    elif case == "two in the tail":
        early = job(backend, priority=9)
        backend.enqueue([early])
    backend.enqueue([new])
    if case == "paused":
        backend.pause_queue("default")
        assert backend.claim(["default"], "w", 1, 30) == []
        return
    assert [r.id for r in backend.claim(["default"], "w", 1, 30)] == [early.id]
    assert [r.id for r in backend.claim(["default"], "w", 1, 30)] == [new.id]
