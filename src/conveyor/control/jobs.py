"""Finding, inspecting, cancelling, retrying and enqueueing jobs."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..backends.common import LEASE_EXPIRED_ENTRY, aborted_step, retries_used
from ..errors import ConveyorError, JobNotFound, SerializationError, StepNotRun
from ..records import JobQuery, JobRecord, Revocation
from ..revocation import revoke_note, revoke_status
from ..serialization import decode_payload
from ..states import State
from .queues import consumers_of, live_workers, resume_hint, start_a_worker
from .util import age

if TYPE_CHECKING:
    from ..app import App
    from ..job import Job

#: The states a job can be cancelled in (revoked: a waiting one never runs, a running
#: one is told to stop), and those it can be run again from.
CANCELLABLE = (State.PENDING, State.SCHEDULED, State.RETRY, State.STARTED)
RETRYABLE = (State.FAILURE, State.REVOKED)


def job_actions(state: State) -> list[str]:
    """What an operator may do to a job in ``state``: ``cancel``, ``terminate`` (a running
    job, stopped now) and ``retry``. The one rule for the dashboard's and the Django
    admin's buttons, and the API's ``actions``."""
    if state is State.STARTED:
        return ["cancel", "terminate"]
    return ["cancel"] if state in CANCELLABLE else ["retry"] if state in RETRYABLE else []


#: Bulk operations touch at most this many jobs per call; run them again for more.
BULK_LIMIT = 10_000
MAX_PAGE = 500
#: A page examines at most this many jobs (those matching its most selective indexed
#: filter: worker, task, state or queue); then it ends early, with a cursor to go on.
#: This bounds a page's time on a large store whatever its filters match: a rare text
#: or an empty time range reads 10,000 jobs per page, never the whole store.
PAGE_SCAN = 10_000


@dataclass
class JobPage:
    jobs: list[JobRecord]
    #: Pass as ``cursor`` for the next (older) page; None on the last page. A page that
    #: examined ``PAGE_SCAN`` jobs without filling up ends early: fewer jobs, and a cursor.
    next_cursor: str | None


def list_jobs(
    app: App,
    *,
    states: list[str] | None = None,
    queues: list[str] | None = None,
    tasks: list[str] | None = None,
    workers: list[str] | None = None,
    created_after: float | None = None,
    created_before: float | None = None,
    text: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
    oldest_first: bool = False,
) -> JobPage:
    """Jobs matching every filter given, newest first (or oldest first), a page at a
    time (keyset pages: each reads an index from the cursor on, however deep it is)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ConveyorError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
    query = JobQuery(
        states=[_state(s) for s in states] if states else None,
        queues=queues or None, tasks=tasks or None, workers=workers or None, created_after=created_after,
        created_before=created_before, text=text or None, limit=limit + 1, scan=PAGE_SCAN,
        before=None if oldest_first else cursor, after=cursor if oldest_first else None,
        oldest_first=oldest_first,
    )  # fmt: skip
    found, stopped = app.backend.list_page(query)
    page = found[:limit]
    return JobPage(page, page[-1].id if len(found) > limit else stopped)


def _state(name: str) -> State:
    try:
        return State(name.upper())
    except ValueError:
        raise ConveyorError(
            f"unknown state {name!r}; states are {', '.join(s.value for s in State)}"
        ) from None


def describe_job(app: App, job_id: str, *, revoked: bool = False) -> dict[str, Any]:
    """One job in full: arguments decoded, result, error with traceback, every attempt,
    progress and timings (seconds waiting before the last start, and running), and the
    names of the workers that ran it (from the registry, where it still knows them).
    ``revoked``: also ``revoke_status``, what a revoke of it has done by now (a page shown
    after a cancel), from the same read, so it always matches the state beside it."""
    record = app.record(job_id)  # one read; a workflow's id gets pointed to its handle
    workers = ran_on(record)
    found = app.backend.worker_directory(workers) if workers else {}
    described = describe_record(record, {w.id: w.name for w in found.values()})
    described["waiting_note"] = waiting_note(app, record)
    if revoked:
        described["revoke_status"] = revoke_status(record)
    return described


def waiting_note(app: App, record: JobRecord) -> str | None:
    """Why a PENDING job is not running, when it is something to act on: its queue is
    paused, or no live worker consumes it (doctor's checks, for this one job; shown on its
    page and by ``inspect job``, not in the API's status read, which stays one read); and
    that it expired, when it did: it will never run."""
    if record.state is not State.PENDING:
        return None
    expired = expired_note(record, app.backend.now())
    if record.queue in app.backend.paused_queues():
        why = f"queue {record.queue!r} is paused; {resume_hint(record.queue, app.command)}"
    elif not consumers_of(record.queue, live_workers(app)):
        why = f"no live worker consumes queue {record.queue!r}; {start_a_worker(record.queue, app.command)}"
    else:
        return f"waiting: {expired}" if expired else None
    return f"waiting: {why}" + (f". Note: {expired}" if expired else "")


def expired_note(record: JobRecord, now: float) -> str | None:
    """That a waiting job's ``expires`` has passed. It stays PENDING until a worker
    reaches it in its queue (nothing scans waiting jobs by expiry: no backend indexes
    them), and then ends REVOKED with an ``Expired`` error without running."""
    if record.expires_at is None or record.expires_at > now:
        return None
    when = datetime.fromtimestamp(record.expires_at, UTC).isoformat(timespec="seconds")
    return (
        f"it expired at {when.replace('+00:00', 'Z')} and will not run: it ends REVOKED "
        "(Expired) when a worker reaches it in its queue, or revoke it now"
    )


def ran_on(record: JobRecord) -> list[str]:
    """The ids of the workers that ran a job (now, and in its attempt history)."""
    ids = [record.worker] + [a.get("worker") for a in record.attempts]
    return sorted({w for w in ids if w})


def describe_record(record: JobRecord, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``describe_job`` of a record read already (the API reads it with ``app.aio.record``);
    ``names``: the names of the workers of ``ran_on(record)`` by id, where known."""
    names = names or {}
    try:
        args, kwargs = decode_payload(record.payload)
        payload_error = None
    except ValueError as exc:
        args, kwargs, payload_error = [], {}, str(exc)
    # This attempt's wait: from when it became due (sent, its eta, a retry's run_at, or
    # the moment an earlier delivery ended, as a lost one does without moving run_at),
    # not from the first send: a redelivered job did not wait while it ran elsewhere.
    begun = record.started_at
    ended = [
        a.get("finished_at") or 0.0
        for a in record.attempts
        if begun is not None and (a.get("started_at") or 0.0) < begun  # not this attempt's
    ]
    due = max(record.created_at, record.run_at, *ended)
    # None until it starts, and while a retry waits: run_at then names the next attempt
    waited = (
        None if record.started_at is None or record.started_at < due else record.started_at - due
    )
    ran = (
        None
        if record.started_at is None or record.finished_at is None
        else record.finished_at - record.started_at
    )
    return {
        "id": record.id, "task": record.task, "queue": record.queue, "priority": record.priority,
        "state": record.state.value, "args": args, "kwargs": kwargs, "payload_error": payload_error,
        "result": record.result, "error": record.error, "progress": record.progress,
        "attempt": record.attempt, "max_retries": record.max_retries,
        "retry_note": retry_note(record), "actions": job_actions(record.state),
        "attempts": [_attempt(a, names) for a in record.attempts] + _running(record, names),
        "lost_leases": record.lost_leases, "worker": record.worker,
        "worker_name": names.get(record.worker or ""), "revoke": record.revoke,
        "revoke_note": revoke_note(record),
        "created_at": record.created_at, "run_at": record.run_at, "started_at": record.started_at,
        "finished_at": record.finished_at, "expires_at": record.expires_at,
        "lease_until": record.lease_until, "keep_until": record.keep_until,
        "timings": {"waited": waited, "ran": ran},
        "parent_id": record.parent_id, "root_id": record.root_id, "workflow_id": record.workflow_id,
        "headers": record.headers,
    }  # fmt: skip


#: The error type an attempt history records for a delivery whose worker stopped
#: renewing its lease (written by each backend's rescue, with no message).
LEASE_EXPIRED = LEASE_EXPIRED_ENTRY["type"]
#: The one for a delivery whose worker saw the process running it die (``abandon``).
WORKER_LOST = "WorkerLost"


def _running(record: JobRecord, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """The attempt running now, shown as a history entry will be once it ends (stored
    entries are written when a delivery ends), with ``running`` and no end yet."""
    if record.state is not State.STARTED or record.started_at is None:
        return []
    worker = record.worker
    return [{"attempt": record.attempt, "worker": worker, "started_at": record.started_at,
             "finished_at": None, "state": State.STARTED.value, "error": None,
             "worker_name": names.get(worker or ""), "lost": False, "running": True}]  # fmt: skip


def _attempt(entry: dict[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """An attempt history entry as shown: its worker's name beside its id, and a lost
    delivery said as lost. The rescue that ends one stores it as returned to the queue
    (state PENDING) with an empty ``LeaseExpired``, and its ``finished_at`` is when the
    lease was found expired, not when the job stopped running; or, when its worker saw
    the process running it die (a pool child), with ``WorkerLost`` and what it saw."""
    shown = {**entry, "worker_name": names.get(entry.get("worker") or ""), "lost": False,
             "running": False}  # fmt: skip
    error = entry.get("error") or {}
    if error.get("type") == WORKER_LOST and entry.get("state") == "PENDING":
        return shown | {"lost": True}
    if error.get("type") != LEASE_EXPIRED:
        return shown
    who = shown["worker_name"] or entry.get("worker") or "?"
    started, found = entry.get("started_at"), entry.get("finished_at")
    after = (
        "" if started is None or found is None else f" ({age(found - started)} after it started)"
    )
    message = error.get("message") or (
        f"lost: worker {who} stopped renewing its lease (killed, or its machine lost); "
        f"found when the lease expired{after}, and the job went back to its queue"
    )
    return shown | {"lost": True, "error": {**error, "message": message}}


def retry_note(record: JobRecord) -> str | None:
    """Why a failed job was not retried, or how far its retries went. ``max_retries``
    bounds the retries a task asks for (an exception in its ``autoretry_for``, or a call
    of ``self.retry()``); any other exception fails the job at once (Celery's rule)."""
    if aborted_step(record):
        kind, what, named = _abort(record)
        return f"never ran: {what} ({named}); retry that one and the {kind} resumes from it"
    retries = retries_used(record.attempts)
    if record.state is State.RETRY:
        when = datetime.fromtimestamp(record.run_at, UTC).isoformat(timespec="seconds")
        return (
            f"retry {retries} of at most {record.max_retries} (max_retries) is due at "
            f"{when.replace('+00:00', 'Z')}"
        )
    if record.state is not State.FAILURE:
        return None
    error = record.error or {}
    if error.get("retries_exhausted"):
        if not record.max_retries:
            return "not retried: max_retries is 0"
        return f"gave up: its {record.max_retries} retries (max_retries) are spent"
    special = _never_retried(record, error)
    if special:
        return special
    again = f" again after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""
    return (
        f"not retried{again}: {error.get('type') or 'its error'} is not in the task's autoretry_for "
        f"(nor did the task call self.retry()); max_retries ({record.max_retries}) bounds only the "
        "retries the task asks for"
    )  # fmt: skip


def _never_retried(record: JobRecord, error: dict[str, Any]) -> str | None:
    """Why a failure that no retry setting applies to was not retried; None for one that
    ``autoretry_for`` could have retried."""
    if error.get("limit"):
        return "not retried: a job stopped by its time limit is never retried"
    kind = error.get("type")
    if kind in ("UnknownTask", "UndecodablePayload"):
        return (
            "not run: the worker could not start it (a task its code does not have, or a "
            "payload it cannot read); retry it once its workers can (restarted on the "
            "code that has the task)"
        )
    if kind == "SystemExit":
        return f"not retried: {error.get('message')}; a task should raise, not exit"
    if kind != WORKER_LOST:
        return None
    if record.headers.get("acks_late") is False:
        return "not run again: its task acknowledges on start (acks_late=False)"
    return (
        f"not run again: the process running it died {record.lost_leases} times "
        "(max_lost_leases); autoretry_for and max_retries do not apply to a lost worker"
    )


def cancel_job(
    app: App, job_id: str, *, terminate: bool = False, reason: str = "cancelled by an operator"
) -> Revocation:
    """Revoke one job and say what that did (``App.revoke``, which ``Job.revoke`` calls
    too: one code path for the API, the CLI and REST)."""
    return app.revoke(job_id, terminate=terminate, reason=reason)


def retry_job(app: App, job_id: str) -> JobRecord:
    """Run a FAILURE or REVOKED job again, keeping its history. A workflow step stored as
    never run (a chord's callback after a member failed, a chain's step after an earlier
    one failed) is refused with ``StepNotRun``, naming the step to retry instead: it has
    no input to run with, and it runs when that step is retried and succeeds."""
    record = app.backend.get(job_id)
    if aborted_step(record):
        raise not_run(app, record)
    return app.backend.requeue(job_id)


def not_run(app: App, record: JobRecord) -> StepNotRun:
    """The refusal of a retry of ``record``, a step stored as never run, naming the failed
    step(s) to retry instead: the one its error names, or, when that one has been
    retried since, the workflow's steps that failed and are not themselves never-run."""
    kind, what, named = _abort(record)
    failed = [named] if named and _failed(app, named) else _failed_in(app, record.workflow_id)
    if not failed:
        return StepNotRun(
            f"job {record.id} ({record.task}) never ran: {what} ({named}), so it has no input; "
            "no failed step of its workflow is left to retry: start the workflow again",
            hint="start the workflow again",
        )
    ids = ", ".join(failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
    member = ("member" if kind == "chord" else "step") + ("s" if len(failed) > 1 else "")
    return StepNotRun(
        f"job {record.id} ({record.task}) never ran: {what}, so it has no input; retry the "
        f"failed {member} {ids}: the {kind} resumes from it",
        hint=f"retry the failed {member} {ids}; the {kind} resumes from it",
    )


def _abort(record: JobRecord) -> tuple[str, str, str | None]:
    """Of a step stored as never run: its workflow's kind, why it never ran, and the id
    of the step whose failure stopped it."""
    error = record.error or {}
    kind = "chord" if error.get("type") == "ChordError" else "chain"
    what = "a member of its chord failed" if kind == "chord" else "a step before it failed"
    return kind, what, error.get("member") or _named_in(error.get("message") or "")


def _named_in(message: str) -> str | None:
    """The failed step's id in an abort's message written before it had ``member``."""
    found = re.search(r"\(([^()\s]+)\) ended ", message)
    return found.group(1) if found else None


def _failed(app: App, job_id: str) -> bool:
    try:
        found = app.backend.get(job_id)
    except JobNotFound:
        return False
    return found.state in (State.FAILURE, State.REVOKED) and not aborted_step(found)


def _failed_in(app: App, workflow_id: str | None) -> list[str]:
    if workflow_id is None:
        return []
    try:
        records = app.workflow(workflow_id).records()
    except ConveyorError:
        return []
    return [
        r.id
        for r in records.values()
        if r is not None and r.state in (State.FAILURE, State.REVOKED) and not aborted_step(r)
    ]


def cancel_where(app: App, *, terminate: bool = False, **filters: Any) -> list[str]:
    """Revoke every waiting or running job matching ``filters`` (as for ``list_jobs``)."""
    wanted = [s.value for s in CANCELLABLE]
    states = [s for s in (filters.pop("states", None) or wanted) if s.upper() in wanted]
    return _bulk(
        app,
        lambda job_id: cancel_job(app, job_id, terminate=terminate).took_effect,
        states=states,
        **filters,
    )


def retry_where(app: App, **filters: Any) -> list[str]:
    """Run again every FAILURE or REVOKED job matching ``filters``."""
    wanted = [s.value for s in RETRYABLE]
    states = [s for s in (filters.pop("states", None) or wanted) if s.upper() in wanted]
    return _bulk(app, lambda job_id: bool(retry_job(app, job_id)), states=states, **filters)


def _bulk(app: App, act: Callable[[str], bool], **filters: Any) -> list[str]:
    """Act on every job matching ``filters``; the ids it took effect on."""
    if not filters.get("states"):
        return []
    ids: list[str] = []
    cursor = None
    while len(ids) < BULK_LIMIT:  # collect first: acting changes states, which would shift pages
        page = list_jobs(app, cursor=cursor, limit=MAX_PAGE, **filters)
        ids += [job.id for job in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    done = []
    for job_id in ids[:BULK_LIMIT]:
        try:
            if act(job_id):
                done.append(job_id)
        except ConveyorError:
            continue  # it changed state meanwhile (finished, or retried elsewhere)
    return done


def enqueue_by_name(
    app: App, task: str, args: Any = None, kwargs: Any = None, **options: Any
) -> Job:
    """Queue a job for a task the app registers, with the task's own queue and options."""
    app.get_task(task)  # UnknownTask, with the known names, for a typo
    if args is not None and not isinstance(args, list):
        raise SerializationError(f"args must be a JSON array, not {type(args).__name__}")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise SerializationError(f"kwargs must be a JSON object, not {type(kwargs).__name__}")
    clean = {k: v for k, v in options.items() if v is not None}
    if "priority" in clean and isinstance(clean["priority"], str) and clean["priority"].isdigit():
        clean["priority"] = int(clean["priority"])
    return app.send_task(task, args or [], kwargs or {}, **clean)
