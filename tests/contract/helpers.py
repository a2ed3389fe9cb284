from __future__ import annotations

from typing import Any

from conveyor.backends import Backend
from conveyor.ids import new_id
from conveyor.records import JobRecord, Lease
from conveyor.serialization import encode_payload
from conveyor.states import State


def job(
    backend: Backend,
    *,
    queue: str = "default",
    priority: int = 5,
    delay: float = 0.0,
    **fields: Any,
) -> JobRecord:
    now = backend.now()
    return JobRecord(
        id=fields.pop("id", None) or new_id(),
        task=fields.pop("task", "tests.noop"),
        queue=queue,
        priority=priority,
        payload=encode_payload(fields.pop("args", ()), {}),
        state=State.SCHEDULED if delay > 0 else State.PENDING,
        run_at=now + delay,
        created_at=now,
        **fields,
    )


def put(backend: Backend, **options: Any) -> JobRecord:
    record = job(backend, **options)
    assert backend.enqueue([record]) == [True]
    return record


def lease(record: JobRecord) -> Lease:
    assert record.lease_token
    return Lease(record.id, record.lease_token)
