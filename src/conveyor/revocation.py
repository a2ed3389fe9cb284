"""Revoking a job: the one implementation behind ``Job.revoke``, ``App.revoke`` and
``control.cancel_job`` (so the API, the CLI and REST say the same), and the words for
what became of a revoke.

It lives in the core, not in the control layer, because revoking a waiting workflow
step must store its downstream steps as never run in the same call (``follow_ups``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .events import JobRevoked
from .records import JobRecord, Revocation
from .states import State
from .workflows.engine import follow_ups

if TYPE_CHECKING:
    from .app import App


def revoke(
    app: App, job_id: str, *, terminate: bool = False, reason: str = "cancelled by an operator"
) -> Revocation:
    """Revoke one job (durably; see ``Backend.cancel``) and say what that did. A waiting
    workflow step that is revoked ends its workflow's downstream steps too (stored as
    never run)."""
    record, was = app.backend.revoke(job_id, terminate=terminate, reason=reason)
    if was.waiting:
        app.backend.enqueue(follow_ups(app, record))
        if app.events.wants(JobRevoked):
            at = record.finished_at or app.backend.now()
            app.events.emit(JobRevoked(at, record.id, record.task, record.queue, reason))
        return _revocation(record, was, "revoked")
    if was is State.STARTED:
        return _revocation(record, was, "flagged")
    return _revocation(record, was, "already_revoked" if was is State.REVOKED else "too_late")


#: What a revoke that found the job running did, by ``Revocation.outcome``.
RUNNING = {
    "terminating": "is running; its worker is stopping it (it ends REVOKED)",
    "flagged": (
        "is running; flagged as revoked: the task sees it through is_revoked() on its "
        "context (self in a bind=True task, context in a Django task), "
        "else it runs to the end (revoke with terminate to stop it)"
    ),
}


def _revocation(record: JobRecord, was: State, outcome: str) -> Revocation:
    if outcome == "flagged" and record.revoke == "terminate":
        outcome = "terminating"
    messages = {
        "revoked": f"was {was.value}; revoked: it will never run",
        "already_revoked": "was revoked already; nothing changed",
        **RUNNING,
    }
    message = f"job {record.id} {messages[outcome]}" if outcome in messages else None
    return Revocation(record.id, was, record.state, outcome, message or revoke_note(record) or "")


def revoke_status(record: JobRecord) -> str | None:
    """What a revoke of this job has done by now, read from its record: for a page shown
    after the revoke, which may come after the job reacted to it (a task that checks
    ``self.is_revoked()`` stops at its next check), so it never says "flagged" beside a
    job that is REVOKED already. None when the job carries no revoke (retried since)."""
    if record.state is State.REVOKED:
        if record.attempts and record.attempts[-1].get("state") == State.REVOKED.value:
            said = (record.error or {}).get("message")
            return f"job {record.id} was running when it was revoked and has stopped: " + (
                f"it ended REVOKED ({said})" if said else "it ended REVOKED"
            )
        return f"job {record.id} was revoked while it waited: it will never run"
    if record.revoke is None:
        return None
    if record.state is State.STARTED:
        return f"job {record.id} {RUNNING['terminating' if record.revoke == 'terminate' else 'flagged']}"
    if record.state.waiting:  # its worker stopped and put it back: the revoke holds
        return f"job {record.id} was revoked while it ran and is back in its queue: it will not run again"
    return f"job {record.id}: {revoke_note(record)}"


def revoke_note(record: JobRecord) -> str | None:
    """What became of a revoke, in words, when the record's state alone does not say:
    one that came after the job ended, one asked while it ran that it outran, or one
    asked while it runs (the job page shows it beside STARTED)."""
    if record.revoke is None or record.state is State.REVOKED:
        return None
    if record.state is State.STARTED:
        if record.revoke == "terminate":
            return "revoked with terminate: its worker is stopping it (it ends REVOKED)"
        return (
            "revoked while running, without terminate: it stops only if the task checks "
            "is_revoked() on its context (the task must check for it); otherwise it runs to the end "
            "(terminate stops it at once)"
        )
    ended = f"{record.state.value} at {_utc(record.finished_at)}"
    if record.revoke == "late":
        return f"too late: the job had already finished {ended} when it was revoked"
    if record.revoke == "terminate":
        return f"too late: revoked with terminate while running, but the job finished {ended} before its worker stopped it"
    # The task returned (or failed) on its own: it may have run to the end, or seen
    # self.is_revoked() and returned early; either way its outcome stands. To end
    # REVOKED on seeing the revoke, a task raises Terminated (docs/operations.md).
    return (
        f"revoked while running without terminate; the task ended on its own, {ended} (a task "
        "that sees self.is_revoked() raises Terminated to end REVOKED)"
    )


def _utc(timestamp: float | None) -> str:
    if timestamp is None:
        return "?"
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")
