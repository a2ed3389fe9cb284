"""The API's request and response bodies. Requests are strict (unknown fields refused)
and bounded; responses mirror what the control functions return."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
)

from ..control.queues import Window
from ..names import QUEUE_NAME_PATTERN
from ..records import WorkerInfo
from ..schedules.schedule import MAX_EVERY, MIN_EVERY
from ..states import State

#: The most jobs one batch submission may hold.
MAX_BATCH = 1000
#: The longest delay (countdown, expires) a submission may ask for: a year, in seconds.
MAX_DELAY = 366 * 24 * 3600.0


def accepts(words: str) -> Any:
    """A pattern's meaning in words, for the document (``x-accepts``) and the errors that
    read it (``web.explain``): a regular expression is not plain words."""
    return Field(json_schema_extra={"x-accepts": words})


#: Queue and task names: ASCII (a JSON Schema's \w is ASCII, a Python regex's is not).
Name = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_.:@/-]{1,200}$"),
    accepts("a name of 1 to 200 ASCII letters, digits and _ . : @ / -"),
]
#: Queue names follow the one rule every edge checks (conveyor.names).
QueueName = Annotated[
    str,
    StringConstraints(pattern=rf"^{QUEUE_NAME_PATTERN}$"),
    accepts(
        "a name of 1 to 100 ASCII letters, digits and _ . : @ -, the first a letter, digit or _"
    ),
]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: A worker's id, as a job's ``worker`` holds it.
WorkerId = Annotated[str, StringConstraints(min_length=1, max_length=300)]


def _lowered(value: Any) -> Any:
    """A priority name in any case, as enqueue and the CLI take it ("HIGH" is "high")."""
    return value.lower() if isinstance(value, str) else value


Priority = (
    Annotated[StrictInt, Field(ge=0, le=9)]
    | Annotated[
        Literal["low", "normal", "high", "critical"],
        BeforeValidator(_lowered),
        accepts('one of "low", "normal", "high", "critical" (in any case)'),
    ]
)
HeaderValue = Annotated[str, StringConstraints(max_length=1000)] | int | float | bool | None

_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _text_only(value: Any) -> Any:
    """Refuse numbers, and numbers in text, which pydantic would take as POSIX times."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("a time here is ISO 8601 text with a zone, e.g. 2026-12-01T09:00:00Z")
    return value


#: A time as ISO 8601 text with a zone (numbers are refused: they would be ambiguous).
IsoTime = Annotated[AwareDatetime, BeforeValidator(_text_only)]
#: A time as POSIX seconds or ISO 8601 text with a zone; in a JSON body, or in a query.
BodyTime = Annotated[StrictFloat, Field(ge=0)] | IsoTime
QueryTime = Annotated[float, Field(ge=0)] | IsoTime
#: A duration in seconds, up to a year.
Delay = Annotated[StrictFloat, Field(ge=0, le=MAX_DELAY)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class JobSubmit(Strict):
    """One job to queue."""

    task: Name = Field(description="A task name the app exposes over HTTP (setting http_tasks).")
    args: list[Any] = Field(default_factory=list, max_length=1000)
    kwargs: dict[str, Any] = Field(default_factory=dict, max_length=1000)
    queue: QueueName | None = Field(None, description="Overrides the task's own queue.")
    priority: Priority | None = Field(
        None, description="0-9 (higher first) or a name, in any case."
    )
    countdown: Delay | None = Field(
        None, description="Run no sooner than this many seconds from now."
    )
    eta: BodyTime | None = Field(None, description="Run no sooner than this time (ISO 8601 with a zone, or POSIX seconds).")  # fmt: skip
    expires: Delay | IsoTime | None = Field(
        None, description="Seconds from now, or a time, after which the job is not run."
    )
    headers: dict[Annotated[str, StringConstraints(max_length=100)], HeaderValue] | None = Field(
        None, max_length=50
    )


class BatchSubmit(Strict):
    jobs: list[JobSubmit] = Field(min_length=1, max_length=MAX_BATCH)


class SubmitWarning(BaseModel):
    code: Literal["no_consumer", "queue_paused"]
    message: str
    hint: str = Field(description="What to do.")


class Submitted(BaseModel):
    id: str
    task: str
    url: str = Field(description="Where to read the job.")
    warnings: list[SubmitWarning] = Field(
        default_factory=list,
        description="Why the job, queued all the same, may not run soon. `no_consumer`: no live "
        "worker consumes its queue; `queue_paused`: its queue is paused (the checks of `GET /doctor`, "
        "over workers and paused queues read in the last second).",
    )


class BatchSubmitted(BaseModel):
    jobs: list[Submitted]


class JobSummary(BaseModel):
    id: str
    task: str
    queue: str
    priority: int
    state: State
    attempt: int
    max_retries: int
    worker: str | None
    progress: dict[str, Any] | None
    #: The error's type and message (the traceback is on the job itself).
    error: dict[str, Any] | None
    revoke: str | None
    created_at: float
    run_at: float
    started_at: float | None
    finished_at: float | None
    expires_at: float | None
    parent_id: str | None
    workflow_id: str | None


class JobList(BaseModel):
    jobs: list[JobSummary]
    next_cursor: str | None = Field(description="Pass as cursor for the next (older) page.")


class Timings(BaseModel):
    waited: float | None
    ran: float | None


class JobDetail(JobSummary):
    """One job in full (``control.describe_job``); ``error`` keeps its traceback."""

    args: list[Any]
    kwargs: dict[str, Any]
    payload_error: str | None
    result: Any
    #: Each entry also names its worker (``worker_name``, where the registry still knows
    #: it) and says ``lost`` for a delivery whose worker stopped renewing its lease, or
    #: whose process its worker saw die (the error then says how). While the job runs,
    #: the last entry is the attempt running now: ``running`` true, ``state`` STARTED,
    #: ``finished_at`` null.
    attempts: list[dict[str, Any]]
    #: The worker's name (``worker`` is its id), where the registry still knows it.
    worker_name: str | None = None
    #: Why a FAILURE was not retried, or how far the retries went (words).
    retry_note: str | None = None
    #: What became of a revoke when ``state`` alone does not say (``revocation.revoke_note``,
    #: words, as the dashboard and the Django admin show it): one that came after the job
    #: ended, one its running job outran, or one asked of a job that runs; null otherwise.
    revoke_note: str | None = None
    #: What may be done to it now (``control.jobs.job_actions``): ``cancel``,
    #: ``terminate`` (a running job, stopped now), ``retry``.
    actions: list[str] = []
    lost_leases: int
    lease_until: float | None
    keep_until: float | None
    timings: Timings
    root_id: str | None
    headers: dict[str, Any]


class JobOutcome(BaseModel):
    """A wait's answer: ``done`` once the job finished (then ``result`` or ``error``)."""

    id: str
    state: State
    done: bool
    result: Any
    error: dict[str, Any] | None


class Cancel(Strict):
    terminate: StrictBool = Field(False, description="Also stop it if it is running.")


class Cancelled(BaseModel):
    """What the revoke did (``conveyor.records.Revocation``)."""

    id: str
    was: State = Field(description="The state the revoke found the job in.")
    state: State = Field(description="The state it left it in.")
    outcome: Literal["revoked", "terminating", "flagged", "already_revoked", "too_late"]
    took_effect: bool = Field(description="False when the job had finished or was revoked.")
    message: str
    terminate: bool


class JobFilter(Strict):
    """Which jobs a bulk action touches; at least one filter is required."""

    states: list[State] | None = Field(None, max_length=7)
    queues: list[QueueName] | None = Field(None, max_length=50)
    tasks: list[Name] | None = Field(None, max_length=50)
    #: Ids of the workers that ran the jobs (a job's ``worker``).
    workers: list[WorkerId] | None = Field(None, max_length=50)
    created_after: BodyTime | None = None
    created_before: BodyTime | None = None
    text: Text | None = None


class BulkCancel(JobFilter):
    terminate: StrictBool = False


class BulkResult(BaseModel):
    count: int
    ids: list[str]


class QueueInfo(BaseModel):
    name: str
    paused: bool
    depth: dict[str, int] = Field(description="Jobs per state.")
    waiting: int
    running: int
    oldest_waiting_age: float | None
    consumers: list[str]
    windows: dict[str, Window] = Field(description="Throughput and runtimes over 1m, 5m, 15m.")


class QueueList(BaseModel):
    queues: list[QueueInfo]


class QueueChanged(BaseModel):
    queue: str
    paused: bool
    #: Set when the queue is unknown (no task, job or worker names it): paused all the same.
    warning: str | None = None


class Purged(BaseModel):
    queue: str
    purged: int


@dataclass
class WorkerOut(WorkerInfo):
    """A live worker (``control.workers``) and seconds since its last heartbeat."""

    heartbeat_age: float = 0.0


class WorkerList(BaseModel):
    workers: list[WorkerOut]


class Overview(BaseModel):
    by_state: dict[str, int]
    total: int
    queues: int
    workers: int
    finished_last_minute: int


class Finding(BaseModel):
    check: str
    severity: str = Field(description="error: work is stuck or lost; warning: worth a look")
    problem: str
    fix: str


class Doctor(BaseModel):
    ok: bool
    findings: list[Finding]


class Live(BaseModel):
    status: Literal["ok"]


class BackendHealth(BaseModel):
    reachable: bool
    latency_ms: float | None


class Ready(BaseModel):
    ready: bool
    backend: BackendHealth
    workers_alive: int


class ScheduleOptions(Strict):
    """Enqueue options of a schedule's jobs."""

    queue: QueueName | None = None
    priority: Priority | None = None
    expires: Delay | None = None
    headers: dict[Annotated[str, StringConstraints(max_length=100)], HeaderValue] | None = Field(
        None, max_length=50
    )


class ScheduleFields(Strict):
    """What a schedule may change; give ``cron`` or ``every``, not both."""

    task: Name | None = None
    cron: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    every: Annotated[StrictFloat, Field(ge=MIN_EVERY, le=MAX_EVERY)] | None = Field(None, description="Seconds between runs.")  # fmt: skip
    tz: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(None, description="IANA time zone for cron.")  # fmt: skip
    args: list[Any] | None = Field(None, max_length=1000)
    kwargs: dict[str, Any] | None = Field(None, max_length=1000)
    options: ScheduleOptions | None = None
    misfire: Literal["once", "all", "skip"] | None = None


class ScheduleCreate(ScheduleFields):
    name: Annotated[
        str,
        StringConstraints(pattern=r"^[A-Za-z0-9_.:@-]{1,100}$"),
        accepts("a name of 1 to 100 ASCII letters, digits and _ . : @ -"),
    ]
    task: Name


class ScheduleOut(BaseModel):
    name: str
    task: str
    cron: str | None
    every: float | None
    tz: str
    args: list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    misfire: str
    misfire_grace: float
    paused: bool
    source: str = Field(description="code (declared in the app) or runtime")
    app: str | None = Field(
        None,
        description="the app whose scheduler fires it (apps sharing a store each fire only "
        "their own); null for one stored before schedules had owners",
    )
    last_tick: float | None
    last_run_at: float | None
    last_job_id: str | None
    next_run: float | None = Field(description="when it fires next; null while it is paused")
    next_run_local: str | None = Field(
        None,
        description="next_run in the schedule's time zone (tz), ISO 8601 with its offset, "
        "e.g. 2026-12-03T01:00:00+01:00; the other times are Unix seconds (UTC)",
    )


class ScheduleList(BaseModel):
    schedules: list[ScheduleOut]


class Deleted(BaseModel):
    name: str
    deleted: bool


class TaskCall(Strict):
    """One task of a workflow: it receives the previous step's result first (in a chain)
    unless ``immutable``."""

    task: Name
    args: list[Any] = Field(default_factory=list, max_length=1000)
    kwargs: dict[str, Any] = Field(default_factory=dict, max_length=1000)
    queue: QueueName | None = None
    priority: Priority | None = None
    immutable: StrictBool = False


class ChainSpec(Strict):
    """Steps one after another; a group followed by a step is a chord."""

    chain: list[Step] = Field(min_length=1, max_length=MAX_BATCH)


class GroupSpec(Strict):
    """Members side by side; the result is the list of theirs."""

    group: list[Step] = Field(min_length=1, max_length=MAX_BATCH)


class ChordSpec(Strict):
    """A group, then a callback given the list of the group's results."""

    chord: list[Step] = Field(min_length=1, max_length=MAX_BATCH)
    callback: Step


Step = TaskCall | ChainSpec | GroupSpec | ChordSpec
WorkflowSpec = ChainSpec | GroupSpec | ChordSpec


class WorkflowSubmitted(BaseModel):
    id: str
    url: str
    jobs: list[str] = Field(
        description="Every member's job id (later steps start as earlier ones finish)."
    )


class WorkflowNode(BaseModel):
    """A workflow node: a task (with its job's state; null before the job exists) or a
    chain, group or chord of nodes."""

    kind: Literal["task", "chain", "group", "chord"]
    id: str
    task: str | None = None
    state: State | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    nodes: list[WorkflowNode] = Field(default_factory=list)


class WorkflowStatus(BaseModel):
    id: str
    state: State
    result: Any = Field(description="A chain's last result, a group's list (null where none yet).")
    root: WorkflowNode


class EventOut(BaseModel):
    """One entry of the backend's event feed: a job's state change or progress, a queue
    paused, resumed or purged, a worker come or gone."""

    seq: int
    time: float
    kind: str = Field(
        description="job.state, job.progress, queue.paused, queue.resumed, queue.purged, "
        "worker.online or worker.offline"
    )
    job_id: str | None = Field(description="The job's id (job.* events)")
    queue: str | None = Field(description="The job's or the queue's name (job.*, queue.*)")
    task: str | None = Field(description="The job's task (job.* events)")
    state: State | None = Field(description="The job's state after the change (job.* events)")
    worker: str | None = Field(default=None, description="The worker's id (worker.* events)")


class AuditOut(BaseModel):
    """A change made through the API: who, what, to what, when, how it ended."""

    seq: int
    time: float
    actor: str = Field(
        description="The token's name (local: tokenless loopback; service: auth off)"
    )
    actor_id: str = Field(description="The token's id, or empty")
    action: str = Field(
        description="Method and route (under the API root), e.g. POST /queues/{name}/pause"
    )
    target: str = Field(description="The job id, queue or schedule name acted on, or empty")
    outcome: str = Field(description="ok, or the error code the caller got")
    status: int
    detail: dict[str, Any]


class AuditList(BaseModel):
    entries: list[AuditOut]
    next_cursor: int | None = Field(description="Pass as before for the next (older) page.")


class Problem(BaseModel):
    """One invalid field, in words."""

    location: str = Field(description="Where: body.priority, body.jobs.1.task, query.limit, ...")
    field: str | None = Field(
        None,
        description="The field's dotted path in the body, query or path (null: the whole body)",
    )
    message: str = Field(description="What is wrong, and what the field accepts")
    accepted: str | None = Field(None, description="What the field accepts, as this document says")


class ErrorDetail(BaseModel):
    code: str
    message: str
    hint: str
    details: list[Problem] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


for _model in (ChainSpec, GroupSpec, ChordSpec, WorkflowNode):
    _model.model_rebuild()
