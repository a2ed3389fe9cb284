"""The migration that adds the per-minute rollups fills the last hour from the jobs a
store already holds, so the charts do not start empty at an upgrade (SQLite and
PostgreSQL; Redis and memory hold no earlier store to upgrade)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import App, State
from conveyor.backends.rollup import bucket_of, minute_of
from conveyor.backends.sqlfiles import migrations
from conveyor.task import Signature

from ..conftest import backend_url, discard

#: The last migration before the rollups, per backend.
BEFORE = {"sqlite": 4, "postgres": 5}


@pytest.fixture(params=sorted(BEFORE))
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = backend_url(request.param, tmp_path)
    yield request.param, url
    discard(url)


def set_started(app: App, started: dict[str, float | None]) -> None:
    """Write the jobs' start times in the store (an insert stores none: a new job has not
    started)."""
    backend: Any = app.backend
    if hasattr(backend, "pool"):  # postgres
        query = f'UPDATE "{backend.schema}".jobs SET started_at = %s WHERE id = %s'
        write = backend._tx
    else:
        query, write = "UPDATE jobs SET started_at = ? WHERE id = ?", backend._write
    with write() as conn:
        for job_id, at in started.items():
            conn.execute(query, (at, job_id))


def test_the_rollup_migration_fills_the_last_hour(
    old_store: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    kind, url = old_store
    now = time.time()
    with monkeypatch.context() as patch:  # the store as the previous version left it
        patch.setattr(
            f"conveyor.backends.{kind}.migrations.migrations",
            lambda d: migrations(d)[: BEFORE[kind]],
        )
        old = App("old", backend=url)
        base = old.build_record(Signature("t.any"), now)
        ran = [(State.SUCCESS, 2.0), (State.FAILURE, 0.5), (State.SUCCESS, 2.0)]
        records = [
            dataclasses.replace(base, id=f"{i}", state=state, started_at=now - 1 - took,
                                finished_at=now - 1, attempt=1)
            for i, (state, took) in enumerate(ran)
        ]  # fmt: skip
        a_day_ago = dataclasses.replace(
            base, id="old", state=State.SUCCESS, started_at=now - 86_401, finished_at=now - 86_400
        )
        never_ran = dataclasses.replace(base, id="revoked", state=State.REVOKED, finished_at=now)
        old.backend.enqueue([*records, a_day_ago, never_ran])
        set_started(old, {r.id: r.started_at for r in [*records, a_day_ago]})
        old.backend.close()
    upgraded = App("new", backend=url)
    rollup = upgraded.backend.run_rollup(now - 3600)
    assert list(rollup) == [("default", minute_of(now - 1))]
    (cell,) = rollup.values()
    assert (cell.finished, cell.failed) == (3, 1)
    assert cell.runtimes == {bucket_of(2.0): 2, bucket_of(0.5): 1}
    upgraded.backend.close()
