"""SQLite and PostgreSQL: what a migration does to the rows an older version wrote; the
event trim."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import App, State
from conveyor.backends import Backend
from conveyor.backends.sqlfiles import migrations
from conveyor.records import Lease
from conveyor.task import Signature

from ..conftest import backend_url, discard


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    store = backend_url(request.param, tmp_path)
    yield store
    discard(store)


def _set_keep_until(backend: Backend, job_id: str, keep_until: float) -> None:
    """Write ``keep_until`` straight into the row, as an older enqueue stored what it was sent."""
    if hasattr(backend, "pool"):  # postgres
        with backend._tx() as conn:  # type: ignore[attr-defined]
            conn.execute(
                f'UPDATE "{backend.schema}".jobs SET keep_until = %s WHERE id = %s',  # type: ignore[attr-defined]
                (keep_until, job_id),
            )
    else:
        with backend._write() as conn:  # type: ignore[attr-defined]
            conn.execute("UPDATE jobs SET keep_until = ? WHERE id = ?", (keep_until, job_id))


def test_unfinished_jobs_lose_a_keep_until_an_older_enqueue_stored(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prune reads ``keep_until`` alone since the last migration, which clears it on every
    unfinished job: a waiting job an older version stored with a past one survives prune."""
    dialect = "postgres" if url.startswith("postgres") else "sqlite"
    every = migrations(dialect)
    # The schema just before the migration that clears those keep_untils.
    clearing = next(n for n, script in every if "SET keep_until = NULL" in script)
    with monkeypatch.context() as patch:
        before = [m for m in every if m[0] < clearing]
        patch.setattr(f"conveyor.backends.{dialect}.migrations.migrations", lambda d: before)
        old = App("old", backend=url)
        old.backend.counts()  # migrated on first use
        finished = old.send_task("t.any")
        waiting = old.send_task("t.any")
        (claimed,) = old.backend.claim(["default"], "w", 1, 30)
        assert claimed.id == finished.id
        assert claimed.lease_token
        old.backend.complete(Lease(claimed.id, claimed.lease_token), 1)
        past = time.time() - 3600
        for job_id in (finished.id, waiting.id):
            _set_keep_until(old.backend, job_id, past)
    upgraded = App("new", backend=url).backend
    if dialect == "postgres":
        assert upgraded.migrate() == [n for n, _ in every if n >= clearing]  # type: ignore[attr-defined]
    assert upgraded.prune() == 1
    record = upgraded.get(waiting.id)
    assert (record.state, record.keep_until) == (State.PENDING, None)
    assert [r.id for r in upgraded.list_jobs()] == [waiting.id]


def test_prune_never_deletes_an_unfinished_job_an_older_producer_gave_a_keep_until(
    url: str,
) -> None:
    """After the migration, a producer of an earlier version can still store a waiting
    job with a past ``keep_until`` (it kept what a caller sent): prune skips it."""
    app = App("mixed", backend=url)
    finished = app.send_task("t.any")
    (claimed,) = app.backend.claim(["default"], "w", 1, 30)
    assert claimed.lease_token
    app.backend.complete(Lease(claimed.id, claimed.lease_token), 1)
    waiting = app.send_task("t.any")
    past = time.time() - 3600
    for job_id in (finished.id, waiting.id):
        _set_keep_until(app.backend, job_id, past)
    assert app.backend.prune() == 1
    assert [r.id for r in app.backend.list_jobs()] == [waiting.id]
    assert app.backend.get(waiting.id).state is State.PENDING


def test_prune_keeps_exactly_the_newest_events(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The event trim keeps the newest ``EVENTS_KEPT`` events, the first time and after
    more arrive (PostgreSQL's trim starts at the oldest event left)."""
    monkeypatch.setattr("conveyor.backends.common.EVENTS_KEPT", 30)
    app = App("events", backend=url)
    app.enqueue_many([Signature("t.any") for _ in range(50)])
    newest = [e.seq for e in app.backend.events(limit=1000)][-30:]
    app.backend.prune()
    assert [e.seq for e in app.backend.events(limit=1000)] == newest
    app.enqueue_many([Signature("t.any") for _ in range(10)])
    newest = [e.seq for e in app.backend.events(limit=1000)][-30:]
    app.backend.prune()
    assert [e.seq for e in app.backend.events(limit=1000)] == newest
