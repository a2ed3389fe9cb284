"""Settling ended deliveries: the one place, for every pool, where a batch of outcomes is
stored, the workflow steps they start are enqueued, and their events are emitted.

The worker's main loop settles the outcomes of the thread, solo and async pools (and
those of a process-pool child it killed); a process-pool child's storer settles its own.
Either way ``settle`` runs once per outcome, in the process that stored it, so each
``JobSucceeded``, ``JobFailed``, ``JobRetried`` or ``JobRevoked`` is emitted once, and
only for an outcome the backend accepted: a refused one (its lease was lost, another
delivery owns the job) emits nothing.

The deliveries a worker learns were lost (``Backend.abandon`` and ``rescue_expired``
return them) are told here too: ``JobLost``, and ``JobRevoked`` for one revoked while
its worker was gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..events import Event, JobFailed, JobLost, JobRetried, JobRevoked, JobSucceeded
from ..records import JobRecord, Outcome
from ..states import State
from ..workflows.engine import follow_ups_of

if TYPE_CHECKING:
    from ..app import App
    from ..backends.base import Backend

_OUTCOME_EVENTS = (JobSucceeded, JobFailed, JobRetried, JobRevoked)
#: What to claim with an acknowledgement: (queues, worker, limit, lease seconds).
Claim = tuple[list[str], str, int, float]


def settle(
    app: App, backend: Backend, records: Mapping[str, JobRecord], outcomes: list[Outcome]
) -> list[str]:
    """Store ``outcomes`` (after the follow-ups they start: see ``workflows.engine``) and
    emit their events; returns the ids the backend refused. ``records``: the held
    records of at least these jobs. Raises ``BackendError``; nothing is emitted then."""
    return settle_and_claim(app, backend, records, outcomes, None)[0]


def settle_and_claim(
    app: App,
    backend: Backend,
    records: Mapping[str, JobRecord],
    outcomes: list[Outcome],
    claim: Claim | None,
) -> tuple[list[str], list[JobRecord]]:
    """``settle``, and with ``claim`` (queues, worker, limit, lease seconds) claim the next
    jobs in the same backend call (``Backend.ack_and_claim``); returns (refused ids,
    claimed jobs)."""
    follow = follow_ups_of(app, records, outcomes)
    if follow:
        backend.enqueue(follow)
    claimed: list[JobRecord] = []
    if claim is None:
        refused = backend.ack(outcomes)
    else:
        refused, claimed = backend.ack_and_claim(outcomes, *claim)
    events = app.events
    if any(events.wants(kind) for kind in _OUTCOME_EVENTS):
        events.emit_all(outcome_events(backend.now(), records, outcomes, set(refused)))
    return refused, claimed


def outcome_events(
    now: float, records: Mapping[str, JobRecord], outcomes: list[Outcome], refused: set[str]
) -> list[Event]:
    events: list[Event] = []
    for outcome in outcomes:
        record = records.get(outcome.job_id)
        if record is None or outcome.job_id in refused:
            continue
        head = (now, record.id, record.task, record.queue)
        runtime = max(0.0, now - record.started_at) if record.started_at else 0.0
        error = outcome.error or {}
        kind, message = str(error.get("type") or ""), str(error.get("message") or "")
        if outcome.state is State.SUCCESS:
            events.append(JobSucceeded(*head, record.attempt, runtime))
        elif outcome.state is State.FAILURE:
            events.append(JobFailed(*head, record.attempt, runtime, kind, message))
        elif outcome.state is State.RETRY:
            retry_at = outcome.run_at or now + outcome.delay  # ack fills run_at
            events.append(JobRetried(*head, record.attempt, runtime, retry_at, kind, message))
        elif outcome.state is State.REVOKED:
            events.append(JobRevoked(*head, message, was_running=True))
    return events


def lost_events(
    now: float, records: Mapping[str, JobRecord], reasons: Mapping[str, str]
) -> list[Event]:
    """``JobLost`` for each rescued delivery (``failed``: the job was given up on), and
    ``JobRevoked`` for a job the rescue ended REVOKED (revoked while its worker was gone)."""
    events: list[Event] = []
    for record in records.values():
        error = str((record.error or {}).get("message") or "")
        said = (record.attempts[-1].get("error") or {}).get("message") if record.attempts else None
        reason = reasons.get(record.id) or error or said or "its worker stopped renewing its lease"
        head = (now, record.id, record.task, record.queue)
        events.append(JobLost(*head, reason, failed=record.state is State.FAILURE))
        if record.state is State.REVOKED:
            events.append(JobRevoked(*head, error or reason, was_running=True))
    return events
