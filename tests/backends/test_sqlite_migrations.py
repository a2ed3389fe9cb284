"""SQLite files made by an older release upgrade in place, with their jobs, to the schema
a fresh file gets."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conveyor import App
from conveyor.backends.sqlfiles import migrations

from ..contract.helpers import job


def shape(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        return sorted((kind, name, " ".join(sql.split())) for kind, name, sql in rows)


def test_a_file_at_version_3_upgrades_with_its_delayed_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = App("fresh", backend=f"sqlite:///{tmp_path / 'fresh.db'}")
    fresh.backend.counts()
    old_url = f"sqlite:///{tmp_path / 'old.db'}"
    with monkeypatch.context() as patch:  # the file as the release before delayed_by_queue
        patch.setattr("conveyor.backends.sqlite.migrations.migrations", lambda d: migrations(d)[:3])
        old = App("old", backend=old_url)
        delayed = job(old.backend, queue="other", delay=600)
        assert old.backend.enqueue([delayed]) == [True]
        old.backend.close()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    upgraded = App("old", backend=old_url)
    assert upgraded.backend.next_due(["default"]) is None
    assert upgraded.backend.next_due(["default", "other"]) == pytest.approx(delayed.run_at)
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == migrations("sqlite")[-1][0]
    assert shape(tmp_path / "old.db") == shape(tmp_path / "fresh.db")
