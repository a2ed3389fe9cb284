"""PostgreSQL ``settle``: a batch of outcomes in one statement."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import App, State
from conveyor.backends.postgres import PostgresBackend
from conveyor.records import Outcome

from ..conftest import backend_url, discard


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    store = backend_url("postgres", tmp_path)
    yield store
    discard(store)


def test_an_earlier_and_a_current_delivery_of_one_job_in_a_batch_store_the_current(
    url: str,
) -> None:
    """A job whose lease was lost and that was claimed again can end twice in one batch
    (a process-pool child may hold the same job again, pools/process.py ``_forget``): the
    stale delivery is refused, the current one stored. One UPDATE an outcome did that."""
    backend = PostgresBackend(url)
    try:
        job = App("t", backend=backend).send_task("t.any")
        (stale,) = backend.claim(["default"], "w", 1, 30)
        with backend._connection() as conn:  # its lease expired and a rescue queued it again
            conn.execute(
                f'UPDATE "{backend.schema}".jobs SET state = %s, lease_token = NULL, '
                "lease_until = NULL WHERE id = %s",
                ("PENDING", job.id),
            )
        (current,) = backend.claim(["default"], "w", 1, 30)
        assert current.lease_token != stale.lease_token
        refused = backend.ack([
            Outcome(job.id, stale.lease_token or "", State.SUCCESS, result=1),
            Outcome(job.id, current.lease_token or "", State.SUCCESS, result=2),
        ])  # fmt: skip
        assert refused == [job.id]
        record = backend.get(job.id)
        assert (record.state, record.result) == (State.SUCCESS, 2)
    finally:
        backend.close()
