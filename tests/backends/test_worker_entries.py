"""Worker entries stay readable across versions during a rolling upgrade: a new worker's
entry carries no key an earlier reader does not know unless it has a value, and a reader
ignores keys a later version added."""

from __future__ import annotations

import dataclasses

from conveyor.records import WorkerInfo, read_worker, worker_entry

INFO = WorkerInfo(id="w1", name="h:1", host="h", pid=1, queues=["q"], pool="process",
                  concurrency=2, version="0", tasks=["t"], started_at=1.0, last_seen=2.0)  # fmt: skip
#: The fields of the version before stopped_at (what an earlier reader constructs from).
EARLIER = {f.name for f in dataclasses.fields(WorkerInfo)} - {"stopped_at"}


def test_an_entry_has_no_key_an_earlier_reader_does_not_know_while_unset() -> None:
    entry = worker_entry(INFO)
    assert set(entry) <= EARLIER
    assert WorkerInfo(**entry) == INFO  # what an earlier version does with it
    stopped = worker_entry(dataclasses.replace(INFO, stopped_at=3.0))
    assert stopped["stopped_at"] == 3.0


def test_a_reader_ignores_keys_a_later_version_added() -> None:
    entry = {**worker_entry(INFO), "cores_pinned": [0, 1]}
    assert read_worker(entry) == INFO
