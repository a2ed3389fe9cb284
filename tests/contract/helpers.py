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


def write_raw_payload(backend: Backend, job_id: str, raw: bytes) -> None:
    """Overwrite a stored job's payload straight in the store, as corruption would."""
    if hasattr(backend, "_jobs"):  # memory
        backend._jobs[job_id].payload = raw
    elif hasattr(backend, "client"):  # redis
        key = backend._key("job", job_id)  # type: ignore[attr-defined]
        name = "p" if backend.client.hexists(key, "p") else "payload"  # type: ignore[attr-defined]
        backend.client.hset(key, name, raw.decode("latin-1"))  # type: ignore[attr-defined]
    elif hasattr(backend, "pool"):  # postgres
        with backend._tx() as conn:  # type: ignore[attr-defined]
            conn.execute(
                f'UPDATE "{backend.schema}".jobs SET payload = %s WHERE id = %s', (raw, job_id)
            )  # type: ignore[attr-defined]
    else:  # sqlite
        with backend._write() as conn:  # type: ignore[attr-defined]
            conn.execute("UPDATE jobs SET payload = ? WHERE id = ?", (raw, job_id))
