"""Contract: the per-minute rollups of finished runs (``Backend.run_rollup``) count what
the runs are, on every backend: which deliveries count, their run times, pruning."""

from __future__ import annotations

from collections import Counter

import pytest

from conveyor.backends import Backend
from conveyor.backends.rollup import RESOLUTION, ROLLUP_KEPT, bucket_of, minute_of, percentile
from conveyor.records import Outcome
from conveyor.states import State

from ..conftest import FakeClock
from .helpers import lease, put


def run(backend: Backend, clock: FakeClock, seconds: float, state: State) -> None:
    """Claim the next job of queue "a", let it run ``seconds``, end it ``state``."""
    held = lease(backend.claim(["a"], "w1", 1, 30)[0])
    clock.advance(seconds)
    (refused,) = [backend.ack([Outcome(held.job_id, held.token, state, delay=0)])]
    assert refused == []


def test_rollup_counts_the_deliveries_that_ended_a_job(backend: Backend, clock: FakeClock) -> None:
    for _ in range(5):
        put(backend, queue="a")
    put(backend, queue="b")
    minute = minute_of(clock.now)
    run(backend, clock, 2, State.SUCCESS)
    run(backend, clock, 1, State.FAILURE)
    # A retry is no finished run: the job's last attempt, which ends it, is.
    run(backend, clock, 4, State.RETRY)
    run(backend, clock, 8, State.SUCCESS)
    # A running job revoked: its worker ends it REVOKED (a finished run, not a failure).
    running = backend.claim(["a"], "w1", 1, 30)[0]
    backend.cancel(running.id, terminate=True)
    clock.advance(0.5)
    backend.ack([Outcome(running.id, running.lease_token or "", State.REVOKED)])
    # A revoked job whose worker was lost is ended by the rescue: counted as well.
    lost = backend.claim(["a"], "w1", 1, 30)[0]
    backend.cancel(lost.id)
    clock.advance(31)
    assert backend.rescue_expired() == [lost.id]
    # Revoked while waiting: it never ran, so it is not counted.
    backend.cancel(put(backend, queue="a").id)
    rollup = backend.run_rollup(clock.now - 120)
    assert set(rollup) == {("a", minute)}
    cell = rollup[("a", minute)]
    assert (cell.finished, cell.failed) == (5, 1)
    assert cell.runtimes == {
        bucket_of(2): 1, bucket_of(1): 1, bucket_of(8): 1, bucket_of(0.5): 1, bucket_of(31): 1
    }  # fmt: skip
    assert backend.run_rollup(clock.now + 120) == {}


def test_a_batch_is_counted_per_minute_and_queue(backend: Backend, clock: FakeClock) -> None:
    for queue in ["a", "a", "a", "b"]:
        put(backend, queue=queue)
    held = backend.claim(["a", "b"], "w1", 4, 30)
    clock.advance(61)  # into the next minute
    states = [State.SUCCESS, State.FAILURE, State.SUCCESS, State.FAILURE]
    backend.ack(Outcome(j.id, j.lease_token or "", s) for j, s in zip(held, states, strict=True))
    rollup = backend.run_rollup(clock.now - 300)
    minute = minute_of(clock.now)
    a, b = rollup[("a", minute)], rollup[("b", minute)]
    assert (a.finished, a.failed, b.finished, b.failed) == (3, 1, 1, 1)
    assert a.runtimes == {bucket_of(61): 3}


def test_percentiles_from_the_histogram_are_within_its_resolution(
    backend: Backend, clock: FakeClock
) -> None:
    times = [0.003, 0.02, 0.02, 0.15, 0.4, 0.9, 1.7, 2.5, 6.0, 45.0]
    for _ in times:
        put(backend, queue="a")
    held = backend.claim(["a"], "w1", len(times), 30)
    for job, seconds in zip(held, sorted(times), strict=True):
        clock.advance(seconds - (clock.now - (job.started_at or 0)))
        backend.complete(lease(job), None)
    (cell,) = backend.run_rollup(clock.now - 300).values()
    for p, exact in [(50, 0.4), (90, 6.0), (99, 45.0), (10, 0.003)]:
        found = percentile(cell.runtimes, p)
        assert found == pytest.approx(exact, rel=RESOLUTION)


def test_every_backend_buckets_a_run_time_as_bucket_of_does(
    backend: Backend, clock: FakeClock
) -> None:
    # Each backend writes the bucket in its own language (rollup.lua, the PostgreSQL
    # settle statement, SQLite's and memory's Python): a sweep across the whole range,
    # one job in each of 36 buckets, ties them all.
    times = [1.3e-4 * 1.5**k for k in range(36)]  # 0.13 ms ... 19 min
    for _ in times:
        put(backend, queue="a")
    held = backend.claim(["a"], "w1", len(times), 10_000)
    want: Counter[int] = Counter()
    for job, seconds in zip(held, times, strict=True):
        clock.advance(seconds - (clock.now - (job.started_at or 0)))
        backend.ack([Outcome(job.id, job.lease_token or "", State.SUCCESS)])
        want[bucket_of(seconds)] += 1
    got: Counter[int] = Counter()
    for cell in backend.run_rollup(0).values():
        got.update(cell.runtimes)
    assert len(want) == len(times)
    assert got == want


def test_rollups_are_kept_a_day(backend: Backend, clock: FakeClock) -> None:
    put(backend, queue="a")
    run(backend, clock, 1, State.SUCCESS)
    assert backend.run_rollup(0)
    clock.advance(ROLLUP_KEPT + 120)
    backend.prune()
    assert backend.run_rollup(0) == {}
