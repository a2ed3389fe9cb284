"""An idle worker's ``next_due`` reads only its own queues' delayed jobs: a backlog of
delayed jobs in another queue, due earlier than this queue's, is never walked (by the
run_at-only index it was, row by row, on every idle loop)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.backends import from_url
from conveyor.backends.base import Backend

from ..conftest import backend_url, discard
from ..contract.helpers import job

BACKLOG = 3_000


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A store with ``BACKLOG`` jobs delayed in ``backlog``, due within the hour, and one in
    ``default`` due in two hours."""
    url = backend_url(request.param, tmp_path)
    backend = from_url(url)
    records = [job(backend, queue="backlog", delay=60 + i) for i in range(BACKLOG)]
    assert all(backend.enqueue(records))
    assert backend.enqueue([job(backend, delay=7200)]) == [True]
    yield backend
    backend.close()
    discard(url)


def test_next_due_skips_another_queues_delayed_backlog(store: Backend) -> None:
    assert store.next_due(["default"]) == pytest.approx(store.now() + 7200, abs=60)
    assert store.next_due(["default", "backlog"]) == pytest.approx(store.now() + 60, abs=60)
    if store.url.startswith("sqlite"):
        assert sqlite_steps(store, ["default"]) < 1_000  # was over 20 per backlog row
    else:
        for mode in ("force_custom_plan", "force_generic_plan"):
            assert postgres_rows_filtered(store, ["default"], mode) == 0  # was BACKLOG


def sqlite_steps(backend: Any, queues: list[str]) -> int:
    """The SQLite virtual machine's instructions for one next_due."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn = backend._conn()
    conn.set_progress_handler(count, 1)
    try:
        backend.next_due(queues)
    finally:
        conn.set_progress_handler(None, 0)
    return steps


def postgres_rows_filtered(backend: Any, queues: list[str], mode: str) -> int:
    """Rows next_due's plan read and threw away, under a custom or a generic plan."""
    sql = backend._q["next_due"]
    with backend.pool.connection() as conn:
        conn.execute(f"SET plan_cache_mode = {mode}")
        conn.execute(f'ANALYZE "{backend.schema}".jobs')
        row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, {"queues": queues}).fetchone()
        conn.execute("RESET plan_cache_mode")

    def removed(node: dict[str, Any]) -> int:
        own = int(node.get("Rows Removed by Filter", 0))
        return own + sum(removed(child) for child in node.get("Plans", []))

    return removed(row[0][0]["Plan"])
