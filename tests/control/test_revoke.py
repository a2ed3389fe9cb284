"""``cancel_job`` (so ``Job.revoke`` and ``conveyor cancel``) says what a revoke did, and a
revoke that came after the job ended is written on its record, on every backend."""

from __future__ import annotations

import pytest

from conveyor import App, State, control
from conveyor.records import Lease


@pytest.fixture
def tasks(app: App) -> App:
    @app.task(name="media.convert", queue="media")
    def convert(path: str) -> None: ...

    return app


def claim(app: App) -> Lease:
    (record,) = app.backend.claim(["media"], "w", 1, 30)
    return record.lease


def test_a_revoke_says_whether_it_took_effect(tasks: App) -> None:
    waiting = tasks.send_task("media.convert", ("/a.mov",))
    revocation = waiting.revoke()
    assert (revocation.job_id, revocation.was, revocation.state, revocation.outcome) == (
        waiting.id,
        State.PENDING,
        State.REVOKED,
        "revoked",
    )
    assert revocation.took_effect
    assert revocation.message == f"job {waiting.id} was PENDING; revoked: it will never run"
    again = waiting.revoke()
    assert (again.outcome, again.took_effect) == ("already_revoked", False)

    for terminate, outcome in ((True, "terminating"), (False, "flagged")):
        running = tasks.send_task("media.convert", ("/b.mov",))
        claim(tasks)
        revocation = running.revoke(terminate=terminate)
        assert (revocation.state, revocation.outcome, revocation.took_effect) == (
            State.STARTED,
            outcome,
            True,
        )


def test_a_revoke_after_the_job_finished_is_too_late_and_the_record_says_so(
    tasks: App,
) -> None:
    job = tasks.send_task("media.convert", ("/a.mov",))
    tasks.backend.complete(claim(tasks), "done")
    revocation = control.cancel_job(tasks, job.id, terminate=True)
    assert (revocation.state, revocation.outcome, revocation.took_effect) == (
        State.SUCCESS,
        "too_late",
        False,
    )
    assert revocation.message.startswith("too late: the job had already finished SUCCESS at ")
    data = control.describe_job(tasks, job.id)
    assert (data["state"], data["result"]) == ("SUCCESS", "done")  # the outcome stands
    assert data["revoke_note"] == revocation.message


def test_a_job_that_outran_its_terminate_shows_it_on_its_record(tasks: App) -> None:
    job = tasks.send_task("media.convert", ("/a.mov",))
    lease = claim(tasks)
    job.revoke(terminate=True)
    tasks.backend.complete(lease, "done")  # it ended before its worker could stop it
    note = control.describe_job(tasks, job.id)["revoke_note"]
    assert note.startswith(
        "too late: revoked with terminate while running, but the job finished SUCCESS"
    )
    assert (
        control.describe_job(tasks, tasks.send_task("media.convert", ("/b.mov",)).id)["revoke_note"]
        is None
    )


def test_a_running_job_revoked_says_so_on_its_record_until_it_ends(tasks: App) -> None:
    """The job page, ``conveyor inspect`` and the admin show the pending revoke beside
    STARTED (it looked as if the cancel had done nothing)."""
    job = tasks.send_task("media.convert", ("/a.mov",))
    claim(tasks)
    assert control.describe_job(tasks, job.id)["revoke_note"] is None
    job.revoke()
    note = control.describe_job(tasks, job.id)["revoke_note"]
    assert note.startswith("revoked while running, without terminate")
    assert "is_revoked() on its context" in note
    job.revoke(terminate=True)
    note = control.describe_job(tasks, job.id)["revoke_note"]
    assert note == "revoked with terminate: its worker is stopping it (it ends REVOKED)"


def test_a_job_that_returned_after_a_revoke_is_not_said_to_have_run_to_the_end(
    tasks: App,
) -> None:
    """A task that saw self.is_revoked() and returned ends SUCCESS; its record said "the
    job ran to the end", which a new user read as false: it stopped early."""
    job = tasks.send_task("media.convert", ("/a.mov",))
    lease = claim(tasks)
    job.revoke()
    tasks.backend.complete(lease, "stopped at 7 of 60")
    note = control.describe_job(tasks, job.id)["revoke_note"]
    assert note.startswith(
        "revoked while running without terminate; the task ended on its own, SUCCESS at "
    )
    assert "ran to the end" not in note
    assert "raises Terminated to end REVOKED" in note


def test_bulk_cancel_returns_the_jobs_it_revoked_or_is_stopping(tasks: App) -> None:
    running, *waiting = (tasks.send_task("media.convert", (f"/{i}.mov",)).id for i in range(3))
    claim(tasks)  # the oldest: ``running``
    assert sorted(control.cancel_where(tasks, queues=["media"], terminate=True)) == sorted(
        [running, *waiting]
    )
    assert tasks.backend.get(running).revoke == "terminate"
    assert {tasks.job(j).state for j in waiting} == {State.REVOKED}
