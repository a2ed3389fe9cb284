"""Contract: how deliveries end, leases, fencing, rescue of dead workers, cancellation."""

from __future__ import annotations

import pytest

from conveyor.backends import Backend
from conveyor.errors import JobNotFound, LeaseLost
from conveyor.records import Lease, Outcome
from conveyor.states import State

from ..conftest import FakeClock
from .helpers import job, lease, put


def claim_one(backend: Backend, worker: str = "w1") -> Lease:
    (record,) = backend.claim(["default"], worker, 1, 30)
    return lease(record)


def test_complete_stores_result_and_attempt(backend: Backend, clock: FakeClock) -> None:
    put(backend)
    held = claim_one(backend)
    clock.advance(2)
    backend.complete(held, {"answer": 42})
    record = backend.get(held.job_id)
    assert record.state is State.SUCCESS
    assert record.result == {"answer": 42}
    assert record.finished_at == pytest.approx(clock.now)
    assert record.keep_until == pytest.approx(clock.now + backend.result_ttl)
    assert record.lease_token is None
    (attempt,) = record.attempts
    assert attempt["state"] == "SUCCESS"
    assert attempt["worker"] == "w1"
    assert attempt["finished_at"] - attempt["started_at"] == pytest.approx(2)


def test_a_result_and_an_error_holding_a_nul_character_are_stored(backend: Backend) -> None:
    """PostgreSQL's jsonb refuses U+0000: such an outcome was refused at every retry, and
    its worker stored nothing more. Stored on every backend (as U+FFFD where the store
    cannot hold it), with the rest of its batch."""
    for _ in range(3):
        put(backend)
    first, second, third = backend.claim(["default"], "w", 3, 30)
    refused = backend.ack([
        Outcome(first.id, first.lease_token or "", State.SUCCESS, result={"k\x00": "a\x00b"}),
        Outcome(second.id, second.lease_token or "", State.FAILURE,
                error={"type": "ValueError", "message": "bad \x00 byte"}),
        Outcome(third.id, third.lease_token or "", State.SUCCESS, result=1),
    ])  # fmt: skip
    assert refused == []
    done = {job_id: backend.get(job_id) for job_id in (first.id, second.id, third.id)}
    assert [r.state for r in done.values()] == [State.SUCCESS, State.FAILURE, State.SUCCESS]
    assert done[first.id].result in ({"k\x00": "a\x00b"}, {"k\ufffd": "a\ufffdb"})
    assert (done[second.id].error or {})["message"] in ("bad \x00 byte", "bad \ufffd byte")


def test_fail_stores_the_error(backend: Backend) -> None:
    put(backend)
    held = claim_one(backend)
    backend.fail(held, {"type": "ValueError", "message": "bad", "traceback": "tb"})
    record = backend.get(held.job_id)
    assert record.state is State.FAILURE
    assert record.error == {"type": "ValueError", "message": "bad", "traceback": "tb"}
    assert record.attempts[0]["error"] == {"type": "ValueError", "message": "bad"}


def test_snooze_retries_after_the_delay_with_history(backend: Backend, clock: FakeClock) -> None:
    put(backend)
    held = claim_one(backend)
    backend.snooze(held, 10, {"type": "IOError", "message": "flaky"})
    record = backend.get(held.job_id)
    assert record.state is State.RETRY
    assert backend.claim(["default"], "w1", 1, 30) == []
    clock.advance(10.5)
    again = claim_one(backend, "w2")
    backend.complete(again, "ok")
    record = backend.get(held.job_id)
    assert record.attempt == 2
    assert [a["state"] for a in record.attempts] == ["RETRY", "SUCCESS"]
    assert [a["worker"] for a in record.attempts] == ["w1", "w2"]


def test_ack_batch_reports_only_the_refused(backend: Backend) -> None:
    for _ in range(3):
        put(backend)
    leases = [lease(r) for r in backend.claim(["default"], "w1", 3, 30)]
    outcomes = [Outcome(x.job_id, x.token, State.SUCCESS, result=i) for i, x in enumerate(leases)]
    outcomes[1] = Outcome(leases[1].job_id, "wrong-token", State.SUCCESS)
    assert backend.ack(outcomes) == [leases[1].job_id]
    assert backend.get(leases[0].job_id).result == 0
    assert backend.get(leases[1].job_id).state is State.STARTED


def test_expired_lease_is_rescued_and_the_old_holder_is_fenced(
    backend: Backend, clock: FakeClock
) -> None:
    put(backend)
    old = claim_one(backend, "dead-worker")
    clock.advance(29)
    assert backend.rescue_expired() == []
    clock.advance(2)
    assert backend.rescue_expired() == [old.job_id]
    record = backend.get(old.job_id)
    assert (record.state, record.lost_leases) == (State.PENDING, 1)
    new = claim_one(backend, "w2")
    assert new.token != old.token
    with pytest.raises(LeaseLost):
        backend.complete(old, "late result")
    with pytest.raises(LeaseLost):
        backend.update_progress(old, {"percent": 50})
    backend.complete(new, "fresh result")
    assert backend.get(old.job_id).result == "fresh result"


def test_job_that_keeps_killing_workers_ends_failure(backend: Backend, clock: FakeClock) -> None:
    record = put(backend)
    for _ in range(backend.max_lost_leases):
        claim_one(backend)
        clock.advance(31)
        backend.rescue_expired()
    final = backend.get(record.id)
    assert final.state is State.FAILURE
    assert final.error is not None
    assert final.error["type"] == "WorkerLost"
    assert "died" in final.error["message"]
    assert backend.claim(["default"], "w1", 1, 30) == []


def test_heartbeat_extends_leases(backend: Backend, clock: FakeClock, worker_info: object) -> None:
    put(backend)
    held = claim_one(backend)
    for _ in range(5):
        clock.advance(20)
        reply = backend.heartbeat(worker_info, [held], 30)  # type: ignore[arg-type]
        assert reply.lost == set()
        assert backend.rescue_expired() == []
    backend.complete(held, None)


def test_heartbeat_reports_lost_leases_and_terminate_requests(
    backend: Backend, clock: FakeClock, worker_info: object
) -> None:
    put(backend)
    put(backend)
    a, b = (lease(r) for r in backend.claim(["default"], "w1", 2, 30))
    clock.advance(31)
    backend.rescue_expired()
    b2 = claim_one(backend, "w2")
    assert backend.heartbeat(worker_info, [a, b], 30).lost == {a.job_id, b.job_id}  # type: ignore[arg-type]
    backend.cancel(b2.job_id, terminate=True)
    assert backend.heartbeat(worker_info, [b2], 30).terminate == {b2.job_id}  # type: ignore[arg-type]


def test_release_requeues_without_counting_an_attempt(backend: Backend) -> None:
    first, second = put(backend, priority=9), put(backend, priority=1)
    leases = [lease(r) for r in backend.claim(["default"], "w1", 2, 30)]
    backend.release(leases)
    assert backend.get(first.id).state is State.PENDING
    assert backend.get(first.id).attempt == 0
    assert [j.id for j in backend.claim(["default"], "w1", 2, 30)] == [first.id, second.id]


def test_release_of_an_interrupted_job_records_the_attempt(
    backend: Backend, clock: FakeClock
) -> None:
    first, second = put(backend, priority=9), put(backend, priority=1)
    leases = [lease(r) for r in backend.claim(["default"], "w1", 2, 30)]
    clock.advance(3)
    backend.release(leases, interrupted=True)
    record = backend.get(first.id)
    assert (record.state, record.attempt, record.worker) == (State.PENDING, 1, None)
    assert record.lease_token is None
    assert record.attempts == [
        {
            "attempt": 1,
            "worker": "w1",
            "started_at": pytest.approx(clock.now - 3),
            "finished_at": pytest.approx(clock.now),
            "state": "PENDING",
            "error": {
                "type": "Interrupted",
                "message": "the worker shut down; the job went back to its queue",
            },
        }
    ]
    backend.release(leases, interrupted=True)  # a stale lease changes nothing
    assert len(backend.get(first.id).attempts) == 1
    again = backend.claim(["default"], "w2", 2, 30)
    assert [j.id for j in again] == [first.id, second.id]  # in their old place
    assert again[0].attempt == 2
    backend.complete(lease(again[0]), None)
    assert [a["state"] for a in backend.get(first.id).attempts] == ["PENDING", "SUCCESS"]


def test_progress_is_visible_while_running(backend: Backend) -> None:
    put(backend)
    held = claim_one(backend)
    backend.update_progress(held, {"percent": 40, "message": "encoding", "meta": {"frame": 4}})
    assert backend.get(held.job_id).progress == {
        "percent": 40,
        "message": "encoding",
        "meta": {"frame": 4},
    }


def test_cancel_of_a_waiting_job_means_it_never_runs(backend: Backend) -> None:
    queued, delayed = put(backend), put(backend, delay=5)
    for record in (queued, delayed):
        result = backend.cancel(record.id, reason="user asked")
        assert result.state is State.REVOKED
        assert result.error == {"type": "Revoked", "message": "user asked"}
    assert backend.claim(["default"], "w1", 10, 30) == []


def test_cancel_of_a_running_job_is_durable(backend: Backend, clock: FakeClock) -> None:
    put(backend)
    held = claim_one(backend)
    assert backend.cancel(held.job_id).revoke == "revoke"
    assert backend.get(held.job_id).state is State.STARTED
    clock.advance(31)  # its worker dies: the revoke is remembered, the job does not run again
    backend.rescue_expired()
    assert backend.get(held.job_id).state is State.REVOKED


def test_cancel_leaves_finished_jobs_alone_and_unknown_ids_raise(backend: Backend) -> None:
    put(backend)
    held = claim_one(backend)
    backend.complete(held, 1)
    assert backend.cancel(held.job_id).state is State.SUCCESS
    with pytest.raises(JobNotFound):
        backend.cancel("missing")


def test_prune_deletes_only_expired_finished_records(backend: Backend, clock: FakeClock) -> None:
    waiting = put(backend)
    put(backend, priority=9)
    held = claim_one(backend)
    backend.complete(held, 1)
    clock.advance(backend.result_ttl - 1)
    assert backend.prune() == 0
    clock.advance(2)
    assert backend.prune() == 1
    with pytest.raises(JobNotFound):
        backend.get(held.job_id)
    assert backend.get(waiting.id).state is State.PENDING


def test_an_unfinished_job_is_never_pruned_whatever_keep_until_it_was_sent(
    backend: Backend, clock: FakeClock
) -> None:
    """Prune reads ``keep_until`` alone on SQL: enqueue drops one sent with an unfinished
    job, so it is kept through every waiting and running state, and a retry."""
    past = clock.now - 3600
    waiting = put(backend, keep_until=past)
    delayed = put(backend, delay=60, keep_until=past)
    running = put(backend, priority=9, keep_until=past)
    held = claim_one(backend)
    assert held.job_id == running.id
    retried = put(backend, priority=8, keep_until=past)
    backend.snooze(claim_one(backend), 120)
    clock.advance(30)
    assert backend.prune() == 0
    for record in (waiting, delayed, running, retried):
        assert backend.get(record.id).keep_until is None
    assert backend.get(running.id).state is State.STARTED
    assert backend.get(retried.id).state is State.RETRY
    backend.complete(held, 1)  # once finished, it is kept for result_ttl, then pruned
    clock.advance(backend.result_ttl + 1)
    assert backend.prune() == 1
    assert {backend.get(r.id).state for r in (waiting, delayed, retried)} == {
        State.PENDING,
        State.SCHEDULED,
        State.RETRY,
    }


def test_abandon_requeues_at_once_and_counts_a_lost_delivery(backend: Backend) -> None:
    put(backend)
    held = claim_one(backend)
    assert backend.abandon([held]) == [held.job_id]
    record = backend.get(held.job_id)
    assert (record.state, record.lost_leases) == (State.PENDING, 1)
    assert record.attempts[-1]["error"]["type"] == "LeaseExpired"
    with pytest.raises(LeaseLost):
        backend.complete(held, "late")


def test_abandon_records_the_death_its_caller_saw(backend: Backend) -> None:
    """A worker that saw the process running a job die (a pool child's exit code or
    signal) says so in the job's history and, at the last loss, in its failure; a lease
    abandoned without a cause reads as expired, as before."""
    record = put(backend)
    seen = "worker child 12 died with exit code 13 while running the job"
    for _ in range(backend.max_lost_leases):
        held = claim_one(backend)
        assert backend.abandon([held], {held.job_id: seen}) == [held.job_id]
    final = backend.get(record.id)
    assert (final.state, final.lost_leases) == (State.FAILURE, backend.max_lost_leases)
    assert final.error is not None
    assert final.error["type"] == "WorkerLost"
    assert final.error["message"].endswith(f"The last time: {seen}")
    lost = {"type": "WorkerLost", "message": f"{seen}; it went back to its queue"}
    assert [a["error"] for a in final.attempts[:-1]] == [lost] * (backend.max_lost_leases - 1)
    assert final.attempts[-1]["error"]["message"] == final.error["message"]
    other = put(backend)
    held = claim_one(backend)
    backend.abandon([held], {"another-job": seen})
    assert backend.get(other.id).attempts[-1]["error"] == {"type": "LeaseExpired", "message": None}


def test_release_with_an_error_records_the_attempt_uncounted(backend: Backend) -> None:
    """A job that finished in a process that died before storing its outcome: it runs
    again, its attempt recorded with what happened, not counted as a lost delivery."""
    record = put(backend)
    held = claim_one(backend)
    error = {"type": "OutcomeLost", "message": "the job had finished, but ..."}
    backend.release([held], error=error)
    again = backend.get(record.id)
    assert (again.state, again.lost_leases, again.attempt) == (State.PENDING, 0, 1)
    assert again.attempts[-1]["error"] == error


def test_next_due_ignores_paused_and_other_queues(backend: Backend, clock: FakeClock) -> None:
    assert backend.next_due(["default"]) is None
    put(backend, delay=30)
    put(backend, queue="other")
    put(backend, queue="paused")
    backend.pause_queue("paused")
    assert backend.next_due(["default", "paused"]) == pytest.approx(clock.now + 30)


def test_job_acked_on_start_is_not_redelivered(backend: Backend, clock: FakeClock) -> None:
    record = put(backend, headers={"acks_late": False})
    claim_one(backend)
    clock.advance(31)
    backend.rescue_expired()
    final = backend.get(record.id)
    assert final.state is State.FAILURE
    assert final.error is not None
    assert "acks_late=False" in final.error["message"]


def test_batches_of_ten_thousand_are_enqueued_claimed_and_acked_in_one_call(
    backend: Backend,
) -> None:
    """One call each, whatever the batch size (a Redis script unpacks its lists in slices)."""
    records = [job(backend, queue="bulk") for _ in range(10_000)]
    assert backend.enqueue(records) == [True] * 10_000
    claimed = backend.claim(["bulk"], "w1", 10_000, 30)
    assert len(claimed) == 10_000
    assert backend.ack([Outcome(r.id, r.lease_token or "", State.SUCCESS) for r in claimed]) == []
    assert backend.counts()[("bulk", State.SUCCESS)] == 10_000


def test_leases_of_names_the_deliveries_one_claimer_holds(backend: Backend) -> None:
    """A process-pool child claims with a token prefix of its own; if it dies before it
    tells its worker what it claimed, the worker finds those jobs by the prefix."""
    for _ in range(4):
        put(backend)
    backend.lease_prefix = "c1a2b3"
    mine = backend.claim(["default"], "w1", 2, 30)
    backend.lease_prefix = "d4e5f6"
    (theirs,) = backend.claim(["default"], "w1", 1, 30)
    backend.lease_prefix = "c1a2b3"
    refused, (also_mine,) = backend.ack_and_claim(
        [Outcome(mine[0].id, mine[0].lease_token or "", State.SUCCESS)], ["default"], "w1", 1, 30
    )
    assert refused == []
    assert all((r.lease_token or "").startswith("c1a2b3") for r in [*mine, also_mine])
    assert (theirs.lease_token or "").startswith("d4e5f6")

    def held(prefix: str) -> set[Lease]:
        return set(backend.leases_of(prefix))

    assert held("c1a2b3") == {lease(mine[1]), lease(also_mine)}  # the finished one is not held
    assert held("d4e5f6") == {lease(theirs)}
    backend.release([lease(mine[1])])
    assert held("c1a2b3") == {lease(also_mine)}
    assert held("0000") == set()
    with pytest.raises(ValueError, match="prefix"):
        backend.leases_of("")


def test_abandon_worker_returns_a_dead_workers_deliveries_once(backend: Backend) -> None:
    """Workers that see the same dead worker race to return its jobs: each is returned
    once, counted once, with the cause; a job claimed again since (another token) and
    another worker's jobs are left alone."""
    for _ in range(3):
        put(backend)
    dead = [claim_one(backend, "w-dead"), claim_one(backend, "w-dead")]
    alive = claim_one(backend, "w-alive")
    cause = "its worker (pid 12 on this host) is gone"
    assert sorted(backend.abandon_worker("w-dead", cause)) == sorted(x.job_id for x in dead)
    assert backend.abandon_worker("w-dead", cause) == []  # the racing second caller
    for held in dead:
        record = backend.get(held.job_id)
        assert (record.state, record.lost_leases) == (State.PENDING, 1)
        assert record.attempts[-1]["error"] == {
            "type": "WorkerLost",
            "message": f"{cause}; it went back to its queue",
        }
    again = claim_one(backend, "w-alive")
    assert backend.abandon_worker("w-dead", cause) == []
    assert {backend.get(x.job_id).state for x in (alive, again)} == {State.STARTED}
