"""Contract: several processes claiming one queue never share a live lease."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Callable

import pytest

from conveyor.backends import Backend, from_url
from conveyor.records import Lease

from ..conftest import SHARED_BACKENDS
from .helpers import job

PROCESSES, JOBS = 4, 600


def _claimer(url: str, name: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    backend = from_url(url)
    mine = []
    while batch := backend.claim(["default"], name, 7, 300):
        mine += [j.id for j in batch]
        for record in batch[::2]:  # complete half at once, so claims and acks interleave
            backend.complete(Lease(record.id, record.lease_token or ""), name)
    out.put(mine)


@pytest.mark.parametrize("backend_kind", SHARED_BACKENDS)
def test_processes_claiming_one_queue_never_get_the_same_job(
    make_backend: Callable[..., Backend],
) -> None:
    backend = make_backend()
    backend.enqueue([job(backend) for _ in range(JOBS)])
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_claimer, args=(backend.url, f"p{i}", out)) for i in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    claimed = [job_id for _ in procs for job_id in out.get(timeout=60)]
    for proc in procs:
        proc.join(timeout=10)
        assert proc.exitcode == 0
    counts = Counter(claimed)
    assert len(counts) == JOBS
    assert max(counts.values()) == 1
