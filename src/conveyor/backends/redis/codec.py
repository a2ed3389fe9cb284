"""How a job record is kept in Redis: a hash of strings, one field per attribute (numbers
as text, structured fields as JSON), read back into a ``JobRecord``. Fields at their
default are not stored (priority 5, attempt 0, a run_at equal to created_at, ...), and
those written only at enqueue have one-letter names (``SHORT``); records an earlier
version wrote, with the long names, read the same."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from ...records import JobRecord
from ...states import DEFAULT_PRIORITY, State

FLOATS = {
    "run_at",
    "created_at",
    "expires_at",
    "started_at",
    "finished_at",
    "lease_until",
    "keep_until",
}
INTS = {"priority", "max_retries", "attempt", "lost_leases"}
JSON_FIELDS = {"progress", "result", "error", "attempts", "headers"}
#: Stored name -> attribute, for the fields only the enqueue scripts write.
SHORT = {"p": "payload", "c": "created_at", "m": "max_retries"}


#: A due member's score band and width (lua/layout.lua; a test checks they agree).
DUE_BAND = 2**42
DUE_DIGITS = 15
_DUE_FORMAT = f"%0{DUE_DIGITS}d%s"


def due_member(priority: int, run_at: float, job_id: str) -> str:
    """A job's member in its queue's due pages (index.lua's ``rd_member``): its score,
    (9 - priority) * 2^42 + run_at in ms (``int`` is the floor: times are positive), in
    15 digits, then its id. The single enqueue takes it from the producer, so that its
    script parses and formats no number: 8k of its 107k instructions inside Redis, for
    about 0.4 µs of the producer's CPU (measured)."""
    return _DUE_FORMAT % ((9 - priority) * DUE_BAND + int(run_at * 1000), job_id)


def num(value: float) -> str:
    """A time or score as a script argument (``repr`` keeps every digit)."""
    return repr(float(value))


def _payload(raw: str) -> bytes:
    return raw.encode()


#: Stored name -> (attribute, how its text is read), for every field not kept as text.
#: One dict lookup a field: a claim decodes every record it takes (docs/benchmarks.md).
READ: dict[str, tuple[str, Callable[[str], Any]]] = {
    **{name: (name, float) for name in FLOATS},
    **{name: (name, int) for name in INTS},
    **{name: (name, orjson.loads) for name in JSON_FIELDS},
    "payload": ("payload", _payload),
}
READ.update({short: READ[name] for short, name in SHORT.items()})


def record(fields: dict[str, str], job_id: str | None = None) -> JobRecord:
    return _job(_read(fields.items()), job_id or fields.get("id"))


def claimed(flat: list[str]) -> JobRecord:
    """A claim's reply for one job (its fields, then those the claim changed, then its id:
    later pairs win) read in one pass, as ``record(pairs(flat))`` reads it without the
    dict between: an idle worker decodes it between the reply and the task's start."""
    it = iter(flat)
    values = _read(zip(it, it, strict=True))
    return _job(values, values.get("id"))


def _read(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    read = READ.get
    for name, raw in items:
        how = read(name)
        if how is None:
            values[name] = raw
        else:
            values[how[0]] = how[1](raw)
    return values


#: A state's stored name -> the state: a dict lookup where ``State(name)`` took the enum's
#: call path (about 0.7 µs); a name not in it is read by ``State`` (which refuses it).
_STATES = {state.value: state for state in State}


def _job(values: dict[str, Any], job_id: str | None) -> JobRecord:
    values["id"] = job_id
    state = values["state"]
    values["state"] = _STATES.get(state) or State(state)
    values.setdefault("run_at", values["created_at"])  # not stored when equal (memory)
    values.setdefault("priority", DEFAULT_PRIORITY)
    values.setdefault("attempt", 0)
    values.setdefault("lost_leases", 0)
    values["headers"] = values.get("headers") or {}
    values["attempts"] = values.get("attempts") or []
    return JobRecord(**values)


def pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def stored(fields: dict[str, str], job_id: str) -> JobRecord | None:
    """The record a job's hash holds (its HGETALL), or None: no job has that id."""
    return record(fields, job_id) if fields else None
