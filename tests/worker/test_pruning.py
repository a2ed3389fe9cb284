"""The worker's pruner: records past their retention go batch after batch while the
worker runs and drains jobs; nothing unexpired goes; one pruner holds the lock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from conveyor import App, State
from conveyor.backends.base import Backend
from conveyor.records import Outcome
from conveyor.task import Signature
from conveyor.worker import Worker, pruning
from conveyor.worker.pruning import PRUNE_LOCK

from .conftest import wait_until

Start = Callable[..., tuple[Worker, threading.Thread]]


def finish(app: App, n: int) -> list[str]:
    """``n`` jobs run to SUCCESS through the backend's own claim and ack."""
    ids = [r.id for r in app.enqueue_many([Signature("t.add", (1, 2)) for _ in range(n)])]
    claimed = app.backend.claim(["default"], "someone", n, 30)
    assert len(claimed) == n
    app.backend.ack(Outcome(j.id, j.lease_token or "", State.SUCCESS, 3) for j in claimed)
    return ids


def recorded(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    """Each call of ``backend.prune`` from now on, as (limit, trim)."""
    calls: list[tuple[int, bool]] = []
    prune = backend.prune

    def recording(limit: int = 1000, *, trim: bool = True) -> int:
        calls.append((limit, trim))
        return prune(limit=limit, trim=trim)

    monkeypatch.setattr(backend, "prune", recording)
    return calls


def clocked(app: App) -> tuple[pruning.Pruner, list[float]]:
    """A pruner whose clock reads the list's one value, 100.0 to begin with."""
    pruner = pruning.Pruner(app.backend, "me", app.conf)
    clock = [100.0]
    pruner._clock = lambda: clock[0]
    pruner._since = clock[0]
    return pruner, clock


def test_expired_records_are_pruned_batch_after_batch_while_the_worker_drains(
    worker_app: App, start_worker: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = worker_app.backend
    # Batches of 50 and a 5 s interval: the 300 expired records go within the wait below
    # only if the pruner deletes batch after batch, not one batch per interval.
    monkeypatch.setattr(worker_app.conf, "prune_batch", 50)
    monkeypatch.setattr(worker_app.conf, "prune_interval", 5.0)
    backend.result_ttl = 0.0  # kept until the moment they finish: expired at once
    expired = finish(worker_app, 300)
    backend.result_ttl = 3600.0
    kept = finish(worker_app, 20)
    drained = [worker_app.send_task("t.add", (2, 2)).id for _ in range(100)]

    worker, _ = start_worker()
    # Counted once its call returns: on PostgreSQL each delete commits alone, before that.
    # (One batch per interval would take 25 s or more.)
    wait_until(
        lambda: worker.pruner.deleted == 300, timeout=10.0, what="the expired records pruned"
    )
    assert not backend.get_many(expired)
    assert not backend.acquire_lock(PRUNE_LOCK, "another-worker", 10)  # one pruner at a time

    wait_until(
        lambda: all(j.state is State.SUCCESS for j in backend.get_many(drained).values()),
        what="the worker to drain its jobs",
    )
    assert set(backend.get_many(kept + drained)) == set(kept + drained)  # none unexpired gone
    worker.stop(graceful=False)
    wait_until(lambda: backend.acquire_lock(PRUNE_LOCK, "another-worker", 10),
               what="the stopped worker to free the pruning lock")  # fmt: skip


def test_pruning_settings_out_of_range_are_refused(
    worker_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_app.conf, "prune_share", 0.0)
    with pytest.raises(ValueError, match=r"prune_share=0\.0"):
        Worker(worker_app, pool="thread")


def test_a_pruner_behind_grows_its_batches_and_returns_to_the_setting_once_caught_up(
    worker_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = worker_app.backend
    monkeypatch.setattr(worker_app.conf, "prune_batch", 20)
    monkeypatch.setattr(backend, "prune_batch_seconds", 60.0)  # every batch counts as quick
    backend.result_ttl = 0.0
    expired = finish(worker_app, 700)  # 20 + 40 + 80 + 160 + 320 (the most: 16 x 20) ...
    backend.result_ttl = 3600.0
    kept = finish(worker_app, 5)
    calls = recorded(backend, monkeypatch)
    pruner = pruning.Pruner(backend, "me", worker_app.conf)
    while pruner.deleted < 700:
        pruner._step()  # one batch at a time, here: the pacing is not under test
    # Behind, each batch doubles up to 16 times the setting; the 700 took 6 batches
    # where batches of 20 would take 35. The last found fewer than it asked: caught up.
    assert [limit for limit, _ in calls] == [20, 40, 80, 160, 320, 320]
    # Nothing left: it looks again soon (700 went since it started: fast expiry, as far
    # as it can tell), then, finding none again, after the interval.
    assert pruner._step() < worker_app.conf.prune_interval
    assert pruner._step() == worker_app.conf.prune_interval
    assert calls[-1][0] == 20
    assert not backend.get_many(expired)
    assert set(backend.get_many(kept)) == set(kept)


def test_a_pruner_following_fast_expiry_looks_again_within_a_batchs_worth_not_an_interval(
    worker_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = worker_app.backend
    monkeypatch.setattr(worker_app.conf, "prune_batch", 20)
    monkeypatch.setattr(worker_app.conf, "prune_interval", 5.0)
    pruner, clock = clocked(worker_app)
    assert pruner._step() == 5.0  # nothing expired yet: the interval
    backend.result_ttl = 0.0
    expired = finish(worker_app, 30)  # 30 expired over the next 0.2 s: 150 a second
    clock[0] += 0.2
    while pruner.deleted < 30:
        pruner._step()
    # Found none now: the next 20 (a batch) take 20 / 150 s to expire at that rate. A
    # nap of the whole interval would leave 750 to pile up.
    assert pruner._step() == pytest.approx(20 / 150)
    assert not backend.get_many(expired)
    # None expired since that look either: back to the interval.
    assert pruner._step() == 5.0
    # A slow trickle (2 in 5 s: a batch's worth takes 50 s) keeps the interval.
    finish(worker_app, 2)
    clock[0] += 5.0
    while pruner.deleted < 32:
        pruner._step()
    assert pruner._step() == 5.0


def test_a_pruner_trims_once_an_interval_not_every_batch(
    worker_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = worker_app.backend
    monkeypatch.setattr(worker_app.conf, "prune_batch", 10)
    monkeypatch.setattr(worker_app.conf, "prune_interval", 5.0)
    backend.result_ttl = 0.0
    expired = finish(worker_app, 200)
    calls = recorded(backend, monkeypatch)
    pruner, clock = clocked(worker_app)
    for _ in range(3):  # three batches within the interval: the first trims
        pruner._step()
        clock[0] += 1.0
    clock[0] += 2.0  # 5 s since the first batch: the next trims again
    pruner._step()
    pruner._step()
    assert [trim for _, trim in calls] == [True, False, False, True, False]
    assert pruner.deleted == 10 + 20 + 40 + 80 + 50  # the records go every batch
    assert not backend.get_many(expired)


@pytest.mark.parametrize("holds_store", [False, True])
def test_a_pruner_on_a_store_its_batches_hold_keeps_batches_short_and_its_share(
    worker_app: App, monkeypatch: pytest.MonkeyPatch, holds_store: bool, backend_kind: str
) -> None:
    # Redis runs one script at a time: a long prune batch is as long a stall for every
    # worker's claim and acknowledgement, and a doubled share is half the server's time.
    backend = worker_app.backend
    redis = backend_kind == "redis"  # the one store whose batches hold it
    assert (backend.prune_holds_store, backend.prune_batch_seconds) == (
        redis,
        0.01 if redis else 0.1,
    )
    monkeypatch.setattr(worker_app.conf, "prune_batch", 10)
    monkeypatch.setattr(backend, "prune_batch_seconds", 0.01 if holds_store else 0.1)
    monkeypatch.setattr(backend, "prune_holds_store", holds_store)
    backend.result_ttl = 0.0
    finish(worker_app, 200)
    calls = recorded(backend, monkeypatch)
    pruner, clock = clocked(worker_app)
    prune = backend.prune

    def taking_15_ms(limit: int = 1000, *, trim: bool = True) -> int:
        clock[0] += 0.015
        return prune(limit=limit, trim=trim)

    monkeypatch.setattr(backend, "prune", taking_15_ms)
    pauses = [pruner._step() for _ in range(3)]
    share = worker_app.conf.prune_share
    if holds_store:  # 15 ms is above its 10 ms: no growth, and its own share while behind
        assert [limit for limit, _ in calls] == [10, 10, 10]
        assert pauses == [pytest.approx(0.015 * (1 - share) / share)] * 3
    else:  # a quick batch for a SQL store: it doubles, and so does the share
        assert [limit for limit, _ in calls] == [10, 20, 40]
        assert pauses == [pytest.approx(0.015 * (1 - 2 * share) / (2 * share))] * 3


@pytest.mark.parametrize("backend_kind", ["redis"])
def test_workflow_specs_expiring_faster_than_a_batch_an_interval_go_with_their_jobs(
    worker_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A workflow's spec is a key-value kept result_ttl, one per workflow: they expire as
    # fast as workflows finish, not rarely. Redis deletes them in its prune script, a
    # batch's worth at most (one script stays short): once an interval, they piled up
    # past prune_batch / prune_interval a second (200 with the defaults).
    backend: Any = worker_app.backend
    monkeypatch.setattr(worker_app.conf, "prune_batch", 10)
    backend.result_ttl = 0.0
    finish(worker_app, 40)  # 40 one-job workflows' jobs...
    for i in range(40):  # ...and their specs (as canvas.launch stores them)
        backend.kv_set(f"workflow:{i}", {"t": "task"}, ttl=0.0)
    pruner, clock = clocked(worker_app)
    while pruner._step() < worker_app.conf.prune_interval:  # within one interval
        clock[0] += 0.01
    assert pruner.deleted == 40
    assert backend.client.hlen(backend._key("kv")) == 0
    assert backend.client.zcard(backend._key("kvx")) == 0
