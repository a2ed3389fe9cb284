"""Contract: revocation watches wake on a revoke with terminate of a running job (and only
then); a revoke that comes after the job ended is written on its record."""

from __future__ import annotations

import threading
import time

from conveyor.backends import Backend
from conveyor.states import State

from .helpers import lease, put


def test_a_watch_wakes_when_a_running_job_is_revoked_with_terminate(backend: Backend) -> None:
    watch = backend.watch_revocations()
    try:
        put(backend)
        put(backend)
        running, flagged = backend.claim(["default"], "w1", 2, 30)
        waiting = put(backend)
        backend.cancel(waiting.id, terminate=True)  # never ran: nothing to stop
        backend.cancel(flagged.id)  # without terminate: the job itself may look
        assert watch.wait(0.3) is False
        timer = threading.Timer(0.2, backend.cancel, (running.id,), {"terminate": True})
        began = time.monotonic()
        timer.start()
        assert watch.wait(10) is True
        assert time.monotonic() - began < 5  # woken by the revoke, not by the timeout
        assert (
            backend.get(running.id).revoke == "terminate"
        )  # the record, not the push, is the truth
        assert watch.wait(0.2) is False  # each revoke wakes once
    finally:
        watch.close()


def test_a_revoke_after_the_job_ended_is_written_on_its_record(backend: Backend) -> None:
    for _ in range(3):
        put(backend)
    done, failed, stopped = (lease(r) for r in backend.claim(["default"], "w1", 3, 30))
    backend.complete(done, 1)
    backend.fail(failed, {"type": "ValueError", "message": "bad"})
    backend.cancel(stopped.job_id, terminate=True)
    backend.complete(stopped, 2)  # it finished before its worker could stop it
    late = backend.cancel(done.job_id)
    assert (late.state, late.revoke, late.result) == (State.SUCCESS, "late", 1)
    assert backend.cancel(failed.job_id, terminate=True).revoke == "late"
    assert backend.cancel(stopped.job_id).revoke == "terminate"  # it was asked in time
    revoked = put(backend)
    backend.cancel(revoked.id)
    assert backend.cancel(revoked.id).revoke == "revoke"  # revoked already: nothing late


def test_revoke_returns_the_state_it_found_the_job_in(backend: Backend) -> None:
    waiting, running, delayed = put(backend), put(backend, priority=9), put(backend, delay=60)
    backend.claim(["default"], "w1", 1, 30)
    record, was = backend.revoke(waiting.id, reason="user asked")
    assert (was, record.state) == (State.PENDING, State.REVOKED)
    assert backend.revoke(delayed.id)[1] is State.SCHEDULED
    assert backend.revoke(waiting.id) == (backend.get(waiting.id), State.REVOKED)  # already
    record, was = backend.revoke(running.id, terminate=True)
    assert (was, record.state, record.revoke) == (State.STARTED, State.STARTED, "terminate")
