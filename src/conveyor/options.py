"""Checking a call's options at the edge and turning a call into a ``JobRecord``.

Everything a producer can get wrong is caught here, with a message that says what to
pass instead, before anything is stored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import ConfigurationError, EnqueueError, ExpiresBeforeRun, PayloadTooLarge
from .ids import new_id
from .names import check_queue_name
from .records import JobRecord
from .serialization import check_jsonable, encode_payload
from .states import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY, PRIORITY_NAMES, State

if TYPE_CHECKING:
    from .config import Settings

CALL_OPTIONS = frozenset(
    {"queue", "priority", "countdown", "eta", "expires", "job_id", "headers", "max_retries",
     "parent_id", "root_id", "workflow_id"}
)  # fmt: skip


#: What ``apply_async`` of a chain, group or chord takes: a task's per-call options but
#: those naming one job (each step has its own id; the workflow's is its handle's ``id``).
WORKFLOW_OPTIONS = CALL_OPTIONS - {"job_id", "parent_id", "root_id", "workflow_id"}
#: Options that say when a job starts.
TIMING = frozenset({"countdown", "eta"})


def check_workflow_options(options: Mapping[str, Any]) -> None:
    unknown = set(options) - WORKFLOW_OPTIONS
    if unknown:
        hint = "; give a step its own id with .set(job_id=...)" if "job_id" in unknown else ""
        raise EnqueueError(
            f"a workflow's apply_async does not take {', '.join(sorted(unknown))}; "
            f"it takes {', '.join(sorted(WORKFLOW_OPTIONS))}{hint}"
        )


def priority_value(priority: int | str | None) -> int:
    """0-9 (higher runs first), or one of the names low/normal/high/critical, in any case."""
    if priority is None:
        return DEFAULT_PRIORITY
    if isinstance(priority, str):
        if priority.lower() in PRIORITY_NAMES:
            return PRIORITY_NAMES[priority.lower()]
        raise EnqueueError(
            f"priority {priority!r} is not a known name; use 0-9 or one of {', '.join(PRIORITY_NAMES)} (in any case)"
        )
    if (
        isinstance(priority, bool)
        or not isinstance(priority, int)
        or not MIN_PRIORITY <= priority <= MAX_PRIORITY
    ):
        raise EnqueueError(
            f"priority {priority!r} is out of range; use an integer from {MIN_PRIORITY} to {MAX_PRIORITY}"
        )
    return priority


def _timestamp(value: datetime | str | float | int, what: str) -> float:
    """An instant: an aware datetime, an ISO 8601 text with a time zone (how workflows
    store one), or a POSIX timestamp."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise EnqueueError(f"{what} {value!r} is not an ISO 8601 date and time") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise EnqueueError(
                f"{what} {value!r} has no time zone; pass an aware datetime (e.g. tzinfo=timezone.utc)"
            )
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _finite(float(value), what)
    raise EnqueueError(
        f"{what} must be an aware datetime or a POSIX timestamp, not {type(value).__name__}"
    )


def _seconds(value: timedelta | float | int, what: str) -> float:
    """A duration from now. Negative is refused: a job cannot start, or expire, in the
    past, and running it at once would hide the caller's arithmetic mistake."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = _finite(float(value), what)
    else:
        raise EnqueueError(f"{what} must be seconds or a timedelta, not {type(value).__name__}")
    if seconds < 0:
        least = (
            "more than 0 seconds (or a datetime)"
            if what == "expires"
            else "0 or more seconds (or an eta)"
        )
        raise EnqueueError(f"{what} {value!r} is negative; pass {least}")
    return seconds


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise EnqueueError(f"{what} is {value!r}; pass a finite number")
    return value


def resolve_run_at(options: Mapping[str, Any], now: float) -> float:
    """When the job may start. An eta in the past means now, as in Celery."""
    countdown, eta = options.get("countdown"), options.get("eta")
    if countdown is not None and eta is not None:
        raise EnqueueError("pass either countdown or eta, not both")
    if countdown is not None:
        return now + _seconds(countdown, "countdown")
    if eta is not None:
        return max(now, _timestamp(eta, "eta"))
    return now


def resolve_expires(expires: Any, now: float) -> float | None:
    """``expires``: seconds from now, a timedelta, or an aware datetime (or ISO 8601 text)."""
    if expires is None:
        return None
    if isinstance(expires, datetime | str):
        return _timestamp(expires, "expires")
    return now + _seconds(expires, "expires")


def _instant(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def check_runnable(
    task_name: str, run_at: float, expires_at: float | None, now: float, expires: Any = None
) -> None:
    """Refuse a job that would expire before it could run: its ``expires`` at or before its
    run time (now, or its countdown/eta). A worker ends a job whose ``expires_at`` is not
    after the moment it claims it REVOKED, unrun (``Backend.claim``), so storing one would
    only hide the caller's arithmetic mistake. The one rule for every way a job comes in
    (``delay``, ``apply_async``, bulk enqueue, workflows at launch, schedules, the CLI,
    the REST API, task defaults). ``expires``: the value given, to show."""
    if expires_at is None or expires_at > run_at:
        return
    relative = isinstance(expires, int | float | timedelta) and not isinstance(expires, bool)
    if relative:
        seconds = expires.total_seconds() if isinstance(expires, timedelta) else expires
        given = f"expires={seconds:g} s (counted from enqueue: {_instant(expires_at)})"
    else:
        given = f"expires {_instant(expires_at)}"
    if expires_at <= now:
        raise ExpiresBeforeRun(
            f"task {task_name!r}: {given} is not after now ({_instant(now)}): the job would "
            "expire before a worker could start it; pass a later expires (seconds from "
            "enqueue, or a datetime), or none"
        )
    wait = run_at - now
    advice = (
        "an expires in seconds counts from enqueue, not from the run time: pass more than "
        f"the {wait:.0f} s until then, plus how long the job may wait once due (e.g. "
        f"expires={wait + 60:.0f})"
        if relative
        else "pass an expires after the run time, or none"
    )
    raise ExpiresBeforeRun(
        f"task {task_name!r}: {given} is not after the job's run time {_instant(run_at)} "
        f"(its countdown or eta): it would expire before it could run; {advice}"
    )


def durable_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` in a form that survives JSON, for steps a workflow stores to enqueue
    later: a datetime becomes ISO 8601 text (still absolute), a timedelta seconds."""
    return {key: _durable(value) for key, value in options.items()}


def _durable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


@dataclass(frozen=True, slots=True)
class CallPlan:
    """A call's options, checked and resolved at one instant: every field of the new job
    but its id and arguments. Calls without options of their own share one plan per task
    (``App._plain_plan``), so their options are checked once."""

    task: str
    queue: str
    priority: int
    state: State
    run_at: float
    created_at: float
    max_retries: int
    expires_at: float | None
    job_id: str | None
    parent_id: str | None
    root_id: str | None
    workflow_id: str | None
    headers: Mapping[str, Any]


#: Headers Conveyor itself writes on a job (workflow continuation, links, acks mode): a
#: caller's value there would be read as one and could break the job's follow-ups.
RESERVED_HEADERS = frozenset({"wf", "link", "link_error", "acks_late"})
#: The most retries a job may ask for.
MAX_RETRIES_LIMIT = 10_000


def check_headers(headers: Any) -> dict[str, Any]:
    """A caller's ``headers``: a mapping of string keys, none of them reserved."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping) or not all(isinstance(k, str) for k in headers):
        raise EnqueueError(f"headers must be a mapping of string keys, not {headers!r:.80}")
    reserved = RESERVED_HEADERS & headers.keys()
    if reserved:
        raise EnqueueError(
            f"header(s) {', '.join(sorted(reserved))} are Conveyor's own (workflows, links, "
            "acks mode); use other names, or chain/link for follow-ups"
        )
    return dict(headers)


def check_max_retries(value: Any) -> int | None:
    """``max_retries`` as given per call: None, or a whole number from 0 to the limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES_LIMIT:
        raise EnqueueError(
            f"max_retries must be a whole number from 0 to {MAX_RETRIES_LIMIT}, not {value!r:.40}"
        )
    return value


def check_task_defaults(
    task_name: str, *, queue: Any, priority: Any, max_retries: Any, expires: Any
) -> None:
    """A task's own options (``@app.task(priority=12)``), refused when it is declared
    rather than at its first call: the checks enqueue makes (the same functions), raised
    as ``ConfigurationError`` naming the task. An ``expires`` must leave a job time to
    run: more than 0 seconds, or an instant still ahead."""
    try:
        if queue is not None:
            check_queue_name(queue, error=EnqueueError)
        priority_value(priority)
        check_max_retries(max_retries)
        now = time.time()
        check_runnable(task_name, now, resolve_expires(expires, now), now, expires)
    except EnqueueError as exc:
        message = str(exc).removeprefix(f"task {task_name!r}: ")
        raise ConfigurationError(f"task {task_name}: {message}") from None


def plan_call(task_name: str, options: Mapping[str, Any], conf: Settings, now: float) -> CallPlan:
    """Check a call's fully resolved options (queue already routed) at time ``now``."""
    unknown = set(options) - CALL_OPTIONS
    if unknown:
        raise EnqueueError(
            f"unknown option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(CALL_OPTIONS))}"
        )
    queue = options.get("queue")
    queue = check_queue_name(conf.default_queue if queue is None else queue, error=EnqueueError)
    job_id = options.get("job_id") or None  # none given: each job gets a new id
    if job_id is not None and (not isinstance(job_id, str) or len(job_id) > 200):
        raise EnqueueError("job_id must be a string of at most 200 characters")
    headers = dict(options.get("headers") or {})
    check_jsonable(headers, "headers")
    run_at = resolve_run_at(options, now)
    max_retries = check_max_retries(options.get("max_retries"))
    return CallPlan(
        task=task_name,
        queue=queue,
        priority=priority_value(options.get("priority")),
        state=State.SCHEDULED if run_at > now else State.PENDING,
        run_at=run_at,
        created_at=now,
        max_retries=conf.default_max_retries if max_retries is None else max_retries,
        expires_at=resolve_expires(options.get("expires"), now),
        job_id=job_id,
        parent_id=options.get("parent_id"),
        root_id=options.get("root_id"),
        workflow_id=options.get("workflow_id"),
        headers=headers,
    )


def new_record(
    plan: CallPlan,
    args: tuple[Any, ...] | list[Any],
    kwargs: Mapping[str, Any],
    conf: Settings,
    shift: float = 0.0,
) -> JobRecord:
    """A new job from a checked plan and this call's arguments. ``shift``: seconds added
    to the plan's times (a plan made at instant 0, used at ``shift``; ``App._plain_plan``)."""
    if not isinstance(args, list | tuple):
        raise EnqueueError(f"args must be a list or tuple, not {type(args).__name__}")
    if not isinstance(kwargs, Mapping):
        raise EnqueueError(f"kwargs must be a dict, not {type(kwargs).__name__}")
    payload = encode_payload(args, dict(kwargs))
    if len(payload) > conf.max_payload_bytes:
        raise PayloadTooLarge(
            f"job for {plan.task} encodes to {len(payload)} bytes, over max_payload_bytes={conf.max_payload_bytes}; "
            "store large data elsewhere (a file, object storage, a database row) and pass its key"
        )
    return JobRecord(
        id=plan.job_id or new_id(),
        task=plan.task,
        queue=plan.queue,
        priority=plan.priority,
        payload=payload,
        state=plan.state,
        run_at=plan.run_at + shift,
        created_at=plan.created_at + shift,
        max_retries=plan.max_retries,
        expires_at=None if plan.expires_at is None else plan.expires_at + shift,
        parent_id=plan.parent_id,
        root_id=plan.root_id,
        workflow_id=plan.workflow_id,
        headers=dict(plan.headers),
    )


class Call(NamedTuple):
    """One call of a task by name, as ``App.build_record`` takes it: what a ``Signature``
    holds without its links and app (the workflow engine builds these from stored specs)."""

    task: str
    args: tuple[Any, ...] | list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any]
