"""A process-pool worker draining a backlog with no fault of any kind says nothing of
lost leases: a heartbeat that crosses an acknowledgement is not a lost lease."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Callable

import pytest

from conveyor import App, State
from conveyor.task import Signature

pytestmark = pytest.mark.slow

JOBS = 3_000


def test_draining_a_backlog_warns_of_no_lost_lease(
    shared_url: str, conveyor_proc: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """3,000 short jobs, two children acknowledging in batches, a heartbeat every 5 ms
    (``tests/apps/fastbeat.py``): before the fix, heartbeats read leases whose
    acknowledgement was on its way and warned that their results would be refused
    (tens of times a run), though every job ended SUCCESS once."""
    # The window must be hit (a heartbeat crossing an acknowledgement, said at debug
    # level); it is a race, so up to three drains, each with every check below.
    crossed = False
    for _ in range(3):
        producer = App("producer", backend=shared_url)
        jobs = producer.enqueue_many([Signature("f.noop", (n,)) for n in range(JOBS)])
        worker = conveyor_proc(
            "-A", "tests.apps.fastbeat:app", "worker", "-l", "debug", "-P", "process", "-c", "2",
            "--burst", env={"CONVEYOR_BACKEND": shared_url},
        )  # fmt: skip
        assert worker.wait(120) == 0
        records = producer.backend.get_many([j.id for j in jobs])
        assert Counter(r.state for r in records.values()) == {State.SUCCESS: JOBS}
        assert {(r.attempt, r.lost_leases) for r in records.values()} == {(1, 0)}
        assert [records[j.id].result for j in jobs] == list(range(JOBS))
        log = worker.log_path.read_text()  # type: ignore[attr-defined]
        assert "lease lost" not in log
        assert "refused" not in log
        if "lease not renewed" in log:
            crossed = True
            break
    assert crossed
