"""SQLite's state and queue indexes leave waiting jobs out (``jobs_waiting`` holds those
by queue): a file of the release before upgrades with its jobs, and every filter of the
job list reads its indexes alone, never the whole table."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conveyor import App
from conveyor.backends.listing import page
from conveyor.backends.sqlite.backend import DIALECT, SQL_COLUMNS
from conveyor.backends.sqlite.backend import _claim_sql as claim_sql
from conveyor.records import JobQuery
from conveyor.states import State

from ..contract.helpers import job, lease, put
from .test_sqlite_migrations import release_of_version, shape


def test_a_file_at_version_6_upgrades_with_its_waiting_and_running_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = App("fresh", backend=f"sqlite:///{tmp_path / 'fresh.db'}")
    fresh.backend.counts()
    old_url = f"sqlite:///{tmp_path / 'old.db'}"
    with release_of_version(monkeypatch, 6):  # the release before this one
        old = App("old", backend=old_url)
        waiting = [put(old.backend, queue="a", task="t") for _ in range(3)]
        (running,) = old.backend.claim(["a"], "w1", 1, 30)
        old.backend.close()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 6
    upgraded = App("old", backend=old_url).backend
    left = [j.id for j in waiting if j.id != running.id][::-1]
    assert [j.id for j in upgraded.list_jobs(JobQuery(states=[State.PENDING]))] == left
    assert [j.id for j in upgraded.list_jobs(JobQuery(queues=["a"]))] == [j.id for j in waiting][
        ::-1
    ]
    assert [j.id for j in upgraded.list_jobs(JobQuery(tasks=["t"], states=[State.STARTED]))] == [
        running.id
    ]
    assert shape(tmp_path / "old.db") == shape(tmp_path / "fresh.db")


QUERIES: list[tuple[dict[str, Any], set[str]]] = [
    ({"states": [State.PENDING]}, {"jobs_waiting"}),
    ({"states": [State.SUCCESS]}, {"jobs_state"}),
    ({"states": [State.PENDING, State.STARTED]}, {"jobs_waiting", "jobs_state"}),
    ({"queues": ["q1"]}, {"jobs_queue", "jobs_waiting"}),
    ({"tasks": ["t1"]}, {"jobs_task"}),
    ({"tasks": ["t1"], "queues": ["q0"], "text": "x"}, {"jobs_task"}),
    ({"queues": ["q0", "q2"], "text": "x"}, {"jobs_queue", "jobs_waiting"}),
    ({"workers": ["w1"], "states": [State.PENDING]}, {"jobs_worker"}),
]


@pytest.mark.parametrize(("filters", "indexes"), QUERIES)
def test_every_filter_reads_its_indexes_and_never_the_table(
    tmp_path: Path, filters: dict[str, Any], indexes: set[str]
) -> None:
    backend: Any = App("plans", backend=f"sqlite:///{tmp_path / 'plans.db'}").backend
    for i in range(40):
        put(backend, queue=f"q{i % 3}", task=f"t{i % 4}")
    for claimed in backend.claim(["q0", "q1"], "w1", 4, 30):
        backend.complete(lease(claimed))
    backend._conn().execute("ANALYZE")
    plans: list[str] = []

    def read(sql: str, params: list[Any]) -> list[Any]:
        plans.extend(row[3] for row in backend._read("EXPLAIN QUERY PLAN " + sql, params))
        return list(backend._read(sql, params))

    query = JobQuery(limit=5, scan=10, **filters)
    page(query, ", ".join(SQL_COLUMNS), DIALECT, read, backend._waiting_queues)
    on_jobs = [p for p in plans if p.startswith(("SCAN jobs", "SEARCH jobs"))]
    assert on_jobs, plans
    assert all("INDEX" in p for p in on_jobs), plans
    used = {
        p.split("INDEX ")[1].split()[0] for p in on_jobs if "COVERING" in p or "USING INDEX" in p
    }
    assert used - {"sqlite_autoindex_jobs_1"} == indexes, plans


def test_the_claim_reads_jobs_pending_in_order_not_jobs_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """jobs_waiting holds the same rows as jobs_pending, keyed by id: a claim reading it
    would sort a queue's whole backlog. The planner took it on a file analyzed before the
    upgrade (statistics for every index but the new one)."""
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    with release_of_version(monkeypatch, 6):
        old: Any = App("old", backend=url).backend
        old.enqueue([job(old, queue="q0", priority=i % 3) for i in range(300)])
        old._conn().execute("ANALYZE")
        old.close()
    backend: Any = App("plans", backend=url).backend
    sql = claim_sql(2)
    params = {"q0": "q0", "q1": "q1", "limit": 5, "worker": "w", "now": 0.0,
              "lease_until": 1.0, "prefix": "p"}  # fmt: skip
    plan = [row[3] for row in backend._read("EXPLAIN QUERY PLAN " + sql, params)]
    reads = [p for p in plan if p.startswith("SEARCH jobs USING INDEX jobs_")]
    assert reads == ["SEARCH jobs USING INDEX jobs_pending (queue=?)"] * 2, plan
