"""Contract: listing, counts, paused queues, the worker registry, locks, counters, events."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from conveyor.backends import Backend, base
from conveyor.backends.base import WORKER_KEPT, WORKER_TTL
from conveyor.errors import InvalidTransition, JobNotFound, SerializationError
from conveyor.records import AuditEntry, JobQuery, WorkerInfo
from conveyor.states import State

from ..conftest import FakeClock
from .helpers import lease, put


def test_list_jobs_filters_and_pages_newest_first(backend: Backend, clock: FakeClock) -> None:
    ids = []
    for i in range(7):
        ids.append(put(backend, queue="a" if i % 2 else "b", task=f"t{i % 3}").id)
        clock.advance(0.01)
    assert [j.id for j in backend.list_jobs()] == ids[::-1]
    assert {j.queue for j in backend.list_jobs(JobQuery(queues=["a"]))} == {"a"}
    assert {j.task for j in backend.list_jobs(JobQuery(tasks=["t1"]))} == {"t1"}
    page1 = backend.list_jobs(JobQuery(limit=3))
    page2 = backend.list_jobs(JobQuery(limit=3, before=page1[-1].id))
    page3 = backend.list_jobs(JobQuery(limit=3, before=page2[-1].id))
    assert [j.id for j in page1 + page2 + page3] == ids[::-1]
    backend.claim(["a"], "w1", 1, 30)
    assert len(backend.list_jobs(JobQuery(states=[State.STARTED]))) == 1


def test_counts_by_queue_and_state(backend: Backend) -> None:
    for queue in ["a", "a", "b"]:
        put(backend, queue=queue)
    backend.claim(["a"], "w1", 1, 30)
    assert backend.counts() == {
        ("a", State.STARTED): 1,
        ("a", State.PENDING): 1,
        ("b", State.PENDING): 1,
    }


def test_paused_queue_is_not_claimed_until_resumed(backend: Backend) -> None:
    record = put(backend, queue="devices")
    backend.pause_queue("devices")
    assert backend.paused_queues() == {"devices"}
    assert backend.claim(["devices"], "w1", 1, 30) == []
    backend.resume_queue("devices")
    assert backend.paused_queues() == set()
    assert [j.id for j in backend.claim(["devices"], "w1", 1, 30)] == [record.id]


def test_worker_registry_tracks_heartbeats(
    backend: Backend, clock: FakeClock, worker_info: WorkerInfo
) -> None:
    put(backend)
    held = lease(backend.claim(["default"], worker_info.id, 1, 30)[0])
    backend.heartbeat(worker_info, [held], 30)
    (seen,) = backend.workers()
    assert (seen.id, seen.queues, seen.running, seen.last_seen) == (
        worker_info.id,
        ["default"],
        [held.job_id],
        clock.now,
    )
    clock.advance(WORKER_TTL + 1)
    assert backend.workers() == []
    backend.heartbeat(worker_info, [], 30)
    assert len(backend.workers()) == 1
    backend.unregister_worker(worker_info.id)
    assert backend.workers() == []


def test_a_stopped_or_silent_worker_is_still_named_for_a_day(
    backend: Backend, clock: FakeClock, worker_info: WorkerInfo
) -> None:
    backend.heartbeat(worker_info, [], 30)
    backend.heartbeat(dataclasses.replace(worker_info, id="w-silent", name="silent@h:2"), [], 30)
    clock.advance(5)
    backend.unregister_worker(worker_info.id)
    assert [w.id for w in backend.workers()] == ["w-silent"]
    found = backend.worker_directory([worker_info.id, "w-silent", "w-unknown"])
    assert (found[worker_info.id].name, found[worker_info.id].stopped_at) == (
        worker_info.name,
        clock.now,
    )
    assert (found["w-silent"].name, found["w-silent"].stopped_at) == ("silent@h:2", None)
    clock.advance(WORKER_TTL + 1)
    assert backend.workers() == []
    assert set(backend.worker_directory([worker_info.id, "w-silent"])) == {
        worker_info.id,
        "w-silent",
    }
    clock.advance(WORKER_KEPT)  # a day after their last heartbeats: no longer named
    assert backend.worker_directory([worker_info.id, "w-silent"]) == {}
    assert len(backend._stale_workers(math.inf)) == 2
    backend.heartbeat(dataclasses.replace(worker_info, id="w-next"), [], 30)
    backend.unregister_worker("w-next")  # the next stop deletes them
    assert [w.id for w in backend._stale_workers(math.inf)] == ["w-next"]


def test_a_heartbeat_after_the_stop_leaves_the_worker_stopped(
    backend: Backend, clock: FakeClock, worker_info: WorkerInfo
) -> None:
    """The stop is one step in the store, and a heartbeat landing after it (late, or a
    retried write) neither makes the worker live again nor loses the stop."""
    backend.heartbeat(worker_info, [], 30)
    beat = clock.now
    clock.advance(1.000123)  # every digit of the time is kept (16 significant)
    backend.unregister_worker(worker_info.id)
    stopped_at = clock.now
    clock.advance(1)
    backend.heartbeat(worker_info, [], 30)
    assert backend.workers() == []
    backend.unregister_worker(worker_info.id)  # a second stop keeps the first's time
    (entry,) = backend.worker_directory([worker_info.id]).values()
    assert (entry.stopped_at, entry.last_seen) == (stopped_at, beat)


def test_live_workers_are_read_without_the_day_of_stopped_entries(
    backend: Backend, clock: FakeClock, worker_info: WorkerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``workers()`` (doctor, queue stats, the submit warning, the dashboard) costs what
    its live entries cost, not the stopped ones the registry keeps a day: 400 of them
    (a deploy a few times a day) cost tens of ms a call when they were read and parsed.
    Counted, not timed: the entries a call turns into ``WorkerInfo``."""
    worker_info.tasks = [f"shop.tasks.task_{i}" for i in range(50)]  # an app's size
    for i in range(400):  # stopped over the last half day, one every 100 s
        backend.heartbeat(dataclasses.replace(worker_info, id=f"gone-{i}"), [], 30)
        backend.unregister_worker(f"gone-{i}")
        clock.advance(100)
    live = [dataclasses.replace(worker_info, id=f"live-{i}") for i in range(5)]
    for info in live:
        backend.heartbeat(info, [], 30)
    built = []
    init = WorkerInfo.__init__

    def counted(self: WorkerInfo, *args: object, **kwargs: object) -> None:
        built.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(WorkerInfo, "__init__", counted)
    assert sorted(w.id for w in backend.workers()) == [w.id for w in live]
    # The memory backend copies its objects (no __init__); a store decodes the live five.
    assert len(built) <= len(live), f"{len(built)} entries decoded for {len(live)} live workers"


def test_lock_has_one_owner_until_it_expires(backend: Backend, clock: FakeClock) -> None:
    assert backend.acquire_lock("leader", "a", ttl=10)
    assert not backend.acquire_lock("leader", "b", ttl=10)
    assert backend.acquire_lock("leader", "a", ttl=10)  # the owner extends
    clock.advance(11)
    assert backend.acquire_lock("leader", "b", ttl=10)
    assert not backend.release_lock("leader", "a")
    assert backend.release_lock("leader", "b")
    assert backend.acquire_lock("leader", "a", ttl=10)


def test_lock_holder_names_the_live_owner_and_until_when(
    backend: Backend, clock: FakeClock
) -> None:
    """What a ``scheduler leader present`` signal reads: the owner while its lock is
    live, nobody once it expired (another may take it then) or was released."""
    assert backend.lock_holder("leader") is None  # never taken
    assert backend.acquire_lock("leader", "a", ttl=10)
    assert backend.lock_holder("leader") == ("a", clock.now + 10)
    clock.advance(5)
    assert not backend.acquire_lock("leader", "b", ttl=10)
    assert backend.lock_holder("leader") == ("a", clock.now + 5)  # b's try changed nothing
    assert backend.acquire_lock("leader", "a", ttl=10)  # extended
    assert backend.lock_holder("leader") == ("a", clock.now + 10)
    assert backend.lock_holder("other") is None
    clock.advance(10)  # until == now: expired, as acquire_lock sees it
    assert backend.lock_holder("leader") is None
    assert backend.acquire_lock("leader", "b", ttl=10)
    assert backend.lock_holder("leader") == ("b", clock.now + 10)
    assert backend.release_lock("leader", "b")
    assert backend.lock_holder("leader") is None


def test_counters_are_atomic(backend: Backend) -> None:
    assert backend.incr("chord:1") == 1
    assert backend.incr("chord:1", 5) == 6
    assert backend.incr("chord:2") == 1


def test_events_follow_every_state_change(backend: Backend) -> None:
    record = put(backend)
    held = lease(backend.claim(["default"], "w1", 1, 30)[0])
    backend.update_progress(held, {"percent": 10})
    backend.complete(held, None)
    events = [e for e in backend.events() if e.job_id == record.id]
    assert [(e.kind, e.state) for e in events] == [
        ("job.state", "PENDING"),
        ("job.state", "STARTED"),
        ("job.progress", "STARTED"),
        ("job.state", "SUCCESS"),
    ]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert backend.events(after=events[1].seq)[0].seq > events[1].seq


def test_queue_and_worker_events_join_the_feed_in_order(backend: Backend) -> None:
    start = backend.events()[-1].seq if backend.events() else 0
    put(backend, queue="media")
    backend.pause_queue("media")
    backend.resume_queue("media")
    assert backend.purge("media") == 1
    backend.emit("worker.online", subject="w-1")
    backend.unregister_worker("w-1")
    events = backend.events(after=start)
    assert [(e.kind, e.queue, e.job_id) for e in events[1:]] == [
        ("queue.paused", "media", ""),
        ("queue.resumed", "media", ""),
        ("job.state", "media", events[0].job_id),  # the purged job's REVOKED
        ("queue.purged", "media", ""),
        ("worker.online", "", "w-1"),
        ("worker.offline", "", "w-1"),
    ]
    assert [e.seq for e in events] == sorted({e.seq for e in events})
    assert (events[1].task, events[1].state) == ("", "")


def test_audit_entries_are_kept_and_read_newest_first(backend: Backend, clock: FakeClock) -> None:
    assert backend.audit() == []
    seqs = []
    for i in range(5):
        entry = AuditEntry(0, clock(), "ci", "ab12", "POST /jobs/{job_id}/cancel", f"job-{i % 2}",
                           "ok" if i else "job_not_found", 200 if i else 404, {"terminate": i == 3})  # fmt: skip
        seqs.append(backend.record_audit(entry))
        clock.advance(1)
    assert seqs == sorted(set(seqs))
    newest = backend.audit()
    assert [e.seq for e in newest] == seqs[::-1]
    assert newest[1] == AuditEntry(seqs[3], newest[1].time, "ci", "ab12", "POST /jobs/{job_id}/cancel",
                                   "job-1", "ok", 200, {"terminate": True})  # fmt: skip
    assert (newest[-1].outcome, newest[-1].status) == ("job_not_found", 404)
    assert [e.seq for e in backend.audit(limit=2)] == seqs[::-1][:2]
    assert [e.seq for e in backend.audit(before=seqs[3], limit=2)] == [seqs[2], seqs[1]]
    assert [e.seq for e in backend.audit(target="job-0")] == [seqs[4], seqs[2], seqs[0]]
    assert [e.seq for e in backend.audit(target="job-0", before=seqs[4], limit=1)] == [seqs[2]]
    assert backend.audit(target="nothing") == []
    with pytest.raises(SerializationError):
        backend.record_audit(
            AuditEntry(0, clock(), "ci", "", "POST /x", "", "ok", 200, {"x": object()})
        )


def test_key_values_hold_json_until_their_ttl(backend: Backend, clock: FakeClock) -> None:
    backend.kv_set("chord:9", {"members": ["a", "b"], "done": 1})
    backend.kv_set("lease-note", "x", ttl=10)
    assert backend.kv_get("chord:9") == {"members": ["a", "b"], "done": 1}
    assert backend.kv_get("missing", default=0) == 0
    clock.advance(11)
    assert backend.kv_get("lease-note") is None
    backend.kv_set("chord:9", [1])
    assert backend.kv_get("chord:9") == [1]
    assert backend.kv_delete("chord:9")
    assert not backend.kv_delete("chord:9")
    with pytest.raises(SerializationError):
        backend.kv_set("bad", {1, 2})


def test_prune_keeps_a_key_value_set_again_without_its_ttl(
    backend: Backend, clock: FakeClock
) -> None:
    # Set for 10 s, then for good (and another for longer): pruning past the first ttl
    # must go by each key's latest ttl (Redis once kept the first expiry and pruned both).
    backend.kv_set("chord:1", "short", ttl=10)
    backend.kv_set("chord:1", "kept")
    backend.kv_set("chord:2", "short", ttl=10)
    backend.kv_set("chord:2", "longer", ttl=100)
    backend.kv_set("note", "gone", ttl=10)
    clock.advance(11)
    backend.prune()
    assert backend.kv_get("chord:1") == "kept"
    assert backend.kv_get("chord:2") == "longer"
    assert backend.kv_get("note") is None


def test_list_jobs_by_time_range_and_text_in_arguments(backend: Backend, clock: FakeClock) -> None:
    early = put(backend, args=["invoice-17.pdf"])
    clock.advance(60)
    late = put(backend, args=["photo.jpg", {"owner": "ann"}])
    assert [j.id for j in backend.list_jobs(JobQuery(created_after=clock.now - 30))] == [late.id]
    assert [j.id for j in backend.list_jobs(JobQuery(created_before=clock.now - 30))] == [early.id]
    assert [j.id for j in backend.list_jobs(JobQuery(text="invoice"))] == [early.id]
    assert [j.id for j in backend.list_jobs(JobQuery(text="ann"))] == [late.id]


def test_requeue_runs_a_failed_job_again_keeping_its_history(
    backend: Backend, clock: FakeClock
) -> None:
    record = put(backend)
    held = lease(backend.claim(["default"], "w1", 1, 30)[0])
    backend.fail(held, {"type": "ValueError", "message": "bad"})
    clock.advance(5)
    again = backend.requeue(record.id)
    assert (again.state, again.error, again.finished_at, again.attempt) == (
        State.PENDING,
        None,
        None,
        1,
    )
    assert [a["state"] for a in again.attempts] == ["FAILURE", "REQUEUED"]
    (claimed,) = backend.claim(["default"], "w2", 1, 30)
    assert claimed.attempt == 2
    with pytest.raises(InvalidTransition, match="only FAILURE or REVOKED"):
        backend.requeue(record.id)
    with pytest.raises(JobNotFound):
        backend.requeue("missing")


def test_purge_revokes_waiting_jobs_and_leaves_running_ones(backend: Backend) -> None:
    running = put(backend, queue="q", priority=9)
    backend.claim(["q"], "w1", 1, 30)
    waiting = [put(backend, queue="q").id for _ in range(3)] + [
        put(backend, queue="q", delay=60).id
    ]
    other = put(backend, queue="other")
    assert backend.purge("q") == 4
    assert backend.get(running.id).state is State.STARTED
    for job_id in waiting:
        record = backend.get(job_id)
        assert record.state is State.REVOKED
        assert record.error == {"type": "Revoked", "message": "purged by an operator"}
    assert backend.get(other.id).state is State.PENDING


def test_recent_runs_and_oldest_waiting(backend: Backend, clock: FakeClock) -> None:
    first = put(backend, queue="a")
    clock.advance(10)
    put(backend, queue="a")
    put(backend, queue="b")
    put(backend, queue="c", delay=60)  # not due: not waiting yet
    held = lease(backend.claim(["a"], "w1", 1, 30)[0])
    clock.advance(2)
    backend.complete(held, None)
    (run,) = backend.recent_runs(since=clock.now - 60)
    assert (run.queue, run.state, run.finished_at - run.started_at) == ("a", "SUCCESS", 2)
    assert backend.recent_runs(since=clock.now + 1) == []
    assert backend.oldest_waiting() == {"a": first.created_at + 10, "b": first.created_at + 10}
    # A run read once (Redis keeps those in memory) and then retried is no run any
    # more; when it runs again, its new outcome and times are what is read.
    failed = lease(backend.claim(["a"], "w1", 1, 30)[0])
    clock.advance(1)
    backend.fail(failed, {"type": "E", "message": "no"})
    assert [r.state for r in backend.recent_runs(since=clock.now - 60)] == ["FAILURE", "SUCCESS"]
    backend.requeue(failed.job_id)
    assert [r.state for r in backend.recent_runs(since=clock.now - 60)] == ["SUCCESS"]
    again = lease(backend.claim(["a"], "w1", 1, 30)[0])
    clock.advance(3)
    backend.complete(again, None)
    latest, _ = backend.recent_runs(since=clock.now - 60)
    assert (latest.state, latest.finished_at - latest.started_at) == ("SUCCESS", 3)


def test_schedule_spec_and_state_are_stored_apart(backend: Backend) -> None:
    backend.put_schedule("nightly", {"task": "t", "cron": "0 1 * * *"})
    backend.set_schedule_state("nightly", {"last_tick": 5.0})
    backend.put_schedule("nightly", {"task": "t", "cron": "0 2 * * *"})  # an edit keeps the state
    assert backend.schedules() == {
        "nightly": ({"task": "t", "cron": "0 2 * * *"}, {"last_tick": 5.0})
    }
    backend.set_schedule_state("ghost", {"last_tick": 1.0})  # never creates one
    assert set(backend.schedules()) == {"nightly"}
    assert backend.delete_schedule("nightly")
    assert not backend.delete_schedule("nightly")
    assert backend.schedules() == {}


def test_worker_filter_counts_and_waiting_views_follow_every_transition(
    backend: Backend, clock: FakeClock
) -> None:
    """The job list's worker filter (keyset pages too), the per-(queue, state) counts kept
    beside the jobs through claim, finish, retry, purge and prune, and the waiting views
    read from indexes: the oldest job over every priority, the next jobs' tasks."""
    low = put(backend, queue="a", task="t.low", priority=0)
    clock.advance(5)
    for i in range(6):
        put(backend, queue="a", task=f"t{i % 2}", priority=9)
    put(backend, queue="b", task="t.late", delay=30)
    assert backend.oldest_waiting() == {"a": low.created_at}  # under six higher-priority jobs
    assert backend.waiting_tasks() == {"a": {"t.low", "t0", "t1"}, "b": {"t.late"}}
    first = [lease(j) for j in backend.claim(["a"], "w1", 3, 30)]
    second = [lease(j) for j in backend.claim(["a"], "w2", 2, 30)]
    backend.complete(first[0])
    backend.fail(first[1], {"type": "E", "message": "no"})
    backend.complete(second[0])
    by_w1 = backend.list_jobs(JobQuery(workers=["w1"]))
    assert {j.id for j in by_w1} == {x.job_id for x in first}
    assert [j.worker for j in by_w1] == ["w1"] * 3
    page = backend.list_jobs(JobQuery(workers=["w1", "w2"], limit=2))
    rest = backend.list_jobs(JobQuery(workers=["w1", "w2"], before=page[-1].id))
    assert sorted(j.id for j in page + rest) == sorted(x.job_id for x in first + second)
    assert backend.list_jobs(JobQuery(workers=["w1"], states=[State.FAILURE])) == [
        backend.get(first[1].job_id)
    ]
    assert backend.list_jobs(JobQuery(workers=["nobody"])) == []
    backend.requeue(first[1].job_id)
    backend.purge("b")

    def tally() -> dict[tuple[str, State], int]:
        found: dict[tuple[str, State], int] = {}
        for j in backend.list_jobs(JobQuery(limit=100)):
            found[(j.queue, j.state)] = found.get((j.queue, j.state), 0) + 1
        return found

    assert backend.counts() == tally()
    clock.advance(backend.result_ttl + 1)
    assert backend.prune() == 3  # two SUCCESS, one purged REVOKED
    assert backend.counts() == tally() == {("a", State.PENDING): 3, ("a", State.STARTED): 2}


def test_expired_waiting_counts_the_next_jobs_of_a_queue_by_their_expiry(
    backend: Backend, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """doctor's count of the jobs that will not run: PENDING jobs of the queue whose
    ``expires_at`` passed (at the instant too), among its next ``TASK_SAMPLE`` in claim
    order; not a delayed, running or other queue's job, nor one without an expiry."""
    now = clock.now
    for priority in (9, 5, 5, 0):
        put(backend, queue="a", priority=priority, expires_at=now + 10)
    put(backend, queue="a", priority=0, expires_at=now + 30)  # not yet
    put(backend, queue="a", priority=9)  # never expires
    put(backend, queue="a", expires_at=now + 10, delay=5)  # delayed: not waiting in claim order
    put(backend, queue="b", expires_at=now + 10)
    put(backend, queue="c", priority=9, expires_at=now + 10)
    backend.claim(["c"], "w1", 1, 60)  # running: not waiting
    assert backend.expired_waiting("a") == (0, 6)
    clock.advance(10)  # expires_at == now: expired (a worker reaching it would not run it)
    assert backend.expired_waiting("a") == (4, 6)
    assert backend.expired_waiting("b") == (1, 1)
    assert backend.expired_waiting("c") == (0, 0)
    assert backend.expired_waiting("nosuch") == (0, 0)
    monkeypatch.setattr(base, "TASK_SAMPLE", 3)  # the next 3 in claim order: 9, 9, 5
    assert backend.expired_waiting("a") == (2, 3)


def test_a_page_with_a_scan_bound_ends_early_and_says_where_to_go_on(
    backend: Backend, clock: FakeClock
) -> None:
    ids = []
    for i in range(7):
        ids.append(put(backend, queue="a" if i else "b", task="t", args=[f"n{i}"]).id)
        clock.advance(0.01)
    newest_first = ids[::-1]
    found, stopped = backend.list_page(JobQuery(text="n0", scan=3, limit=5))
    if stopped is None:  # the backend examined every job at once (memory)
        assert [j.id for j in found] == [ids[0]]
        return
    assert (found, stopped) == ([], newest_first[2])  # the three newest examined, no match
    pages, cursor = [], stopped
    while cursor is not None:  # each page goes on below the last one examined
        found, cursor = backend.list_page(JobQuery(text="n0", scan=3, limit=5, before=cursor))
        pages.append([j.id for j in found])
    assert pages == [[], [ids[0]]]
    full, _ = backend.list_page(JobQuery(tasks=["t"], states=[State.PENDING], scan=3, limit=2))
    assert [j.id for j in full] == newest_first[:2]  # a full page: its own cursor follows


def test_list_jobs_oldest_first_pages_on_after(backend: Backend, clock: FakeClock) -> None:
    ids = []
    for i in range(7):
        ids.append(put(backend, queue="a" if i % 2 else "b", task="t", args=[f"n{i}"]).id)
        clock.advance(0.01)
    seen: list[str] = []
    cursor = None
    for _ in range(3):  # keyset pages going up: each from above the last one's end
        found = backend.list_jobs(JobQuery(limit=3, after=cursor, oldest_first=True))
        seen += [j.id for j in found]
        cursor = found[-1].id if found else None
    assert seen == ids
    by_queue = backend.list_jobs(JobQuery(queues=["a"], oldest_first=True, after=ids[1]))
    assert [j.id for j in by_queue] == [ids[3], ids[5]]  # a driving index read upwards
    found, stopped = backend.list_page(JobQuery(text="n6", scan=3, limit=5, oldest_first=True))
    if stopped is not None:  # the three oldest examined, no match: go on above them
        assert (found, stopped) == ([], ids[2])
        found, _ = backend.list_page(
            JobQuery(text="n6", scan=5, limit=5, oldest_first=True, after=stopped)
        )
    assert [j.id for j in found] == [ids[6]]
    for _ in range(2):
        backend.claim(["b"], "w1", 1, 30)
    running = backend.list_jobs(JobQuery(states=[State.STARTED], oldest_first=True))
    assert [j.id for j in running] == [ids[0], ids[2]]


def test_every_filter_lists_waiting_and_other_jobs_alike_page_by_page(
    backend: Backend, clock: FakeClock
) -> None:
    """Waiting jobs and the rest, in several queues and tasks: each filter, alone or with
    another, pages through exactly the jobs it matches, newest first and oldest first,
    with and without a scan bound (SQLite reads waiting jobs from an index of their own)."""
    for i in range(24):
        put(backend, queue=f"q{i % 3}", task=f"t{i % 4}")
        clock.advance(0.01)
    for n, worker in enumerate(["w1", "w2"]):
        for job in backend.claim(["q0", "q1"], worker, 3, 30):
            if n == 0:
                backend.complete(lease(job))
    every = backend.list_jobs(JobQuery(limit=100))
    assert {j.state for j in every} == {State.PENDING, State.STARTED, State.SUCCESS}
    queries = [
        {"states": [State.PENDING]}, {"states": [State.PENDING, State.SUCCESS]},
        {"states": [State.STARTED]}, {"queues": ["q0"]}, {"queues": ["q1", "q2"]},
        {"tasks": ["t1"]}, {"tasks": ["t0", "t3"], "states": [State.PENDING]},
        {"tasks": ["t2"], "queues": ["q2"]}, {"queues": ["q0"], "states": [State.SUCCESS]},
        {"workers": ["w1", "w2"]}, {"states": [State.FAILURE]}, {"queues": ["none"]},
    ]  # fmt: skip

    def matches(job: object, q: dict[str, list[object]]) -> bool:
        return all(getattr(job, name[:-1]) in values for name, values in q.items())

    for q in queries:
        wanted = [j.id for j in every if matches(j, q)]
        for oldest_first in (False, True):
            for scan in (None, 4):
                expected = wanted[::-1] if oldest_first else wanted
                assert every_page(backend, q, oldest_first, scan) == expected, (q, oldest_first)


def every_page(
    backend: Backend, q: dict[str, Any], oldest_first: bool, scan: int | None
) -> list[str]:
    """The ids of every page of 3, each going on where the last one stopped."""
    found: list[str] = []
    cursor: dict[str, str] = {}
    while True:
        query = JobQuery(limit=3, scan=scan, oldest_first=oldest_first, **cursor, **q)
        page, stopped = backend.list_page(query)
        found += [j.id for j in page]
        last = stopped if stopped is not None else page[-1].id if page else None
        if last is None or (stopped is None and len(page) < 3):
            return found
        cursor = {"after": last} if oldest_first else {"before": last}
