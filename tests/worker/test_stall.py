"""The stall watch behind the rescue's grace (``worker/stall.py``); the behaviour it
protects, two workers frozen past a lease, is in tests/faults/test_faults.py."""

from __future__ import annotations

import time

import pytest

from conveyor.worker.stall import StallWatch


def test_the_tolerance_is_half_what_a_lease_has_left_at_a_heartbeat() -> None:
    watch = StallWatch(lease_seconds=30, heartbeat_interval=2)
    assert (watch.tolerance, watch.grace) == (14, 14)
    short = StallWatch(lease_seconds=2, heartbeat_interval=0.9)  # grace: 2 heartbeats at least
    assert (short.tolerance, short.grace) == (0.55, 1.8)


def test_a_turn_that_only_waited_is_no_stall() -> None:
    watch = StallWatch(lease_seconds=0.3, heartbeat_interval=0.1)
    time.sleep(0.2)
    assert watch.check(waited=0.2) == 0.0


def test_a_turn_longer_than_its_wait_is_a_stall_by_the_monotonic_clock() -> None:
    watch = StallWatch(lease_seconds=0.3, heartbeat_interval=0.1)
    time.sleep(0.3)  # as if frozen inside a backend call: no wait was expected
    assert 0.25 <= watch.check(waited=0.0) < 1.0
    assert watch.check(waited=0.0) == 0.0  # measured from the last check


def test_a_wall_clock_stepped_forward_is_a_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    watch = StallWatch(lease_seconds=0.3, heartbeat_interval=0.1)
    stepped = time.time() + 5.0  # the monotonic clock did not move: a step, not a freeze
    monkeypatch.setattr(time, "time", lambda: stepped)
    assert 4.5 < watch.check(waited=0.0) <= 5.1
