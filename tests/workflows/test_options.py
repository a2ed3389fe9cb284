"""Per-call options on chain, group and chord (Celery's routing), checked at launch and
stored with every step; on every backend, run by a real worker (in-process, burst mode)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor import App, JobNotFound, State, chain, chord, group
from conveyor.errors import EnqueueError
from conveyor.worker import Worker


def run(app: App, queues: list[str]) -> None:
    assert Worker(app, queues=queues, pool="thread", concurrency=4, burst=True).run() == 0


def test_a_chain_routed_to_a_queue_its_tasks_do_not_declare(worker_app: App) -> None:
    add, identity = worker_app.tasks["t.add"], worker_app.tasks["t.identity"]
    wf = chain(add.s(1, 2), identity.si(5), add.s(10)).apply_async(queue="hikvision", priority=8)
    run(worker_app, ["default"])  # nothing of it waits in the tasks' own queue
    assert wf.state is State.PENDING
    run(worker_app, ["hikvision"])
    assert wf.get(timeout=5) == 15
    records = wf.records().values()
    assert {(r.queue, r.priority) for r in records if r} == {("hikvision", 8)}
    assert len([r for r in records if r]) == 3  # the later steps too, enqueued by the worker


def test_a_steps_own_options_win_over_the_workflows(worker_app: App) -> None:
    add, ping = worker_app.tasks["t.add"], worker_app.tasks["t.devices.ping"]
    wf = group(add.s(1, 1).set(queue="own", priority=1), ping.s("cam-1"), add.s(2, 2)).apply_async(
        queue="hikvision", priority=9
    )
    run(worker_app, ["own", "hikvision"])
    assert wf.get(timeout=5) == [2, "cam-1 online", 4]
    # per-call beats the task's own queue ("devices"), as for a task's apply_async
    assert [(r.queue, r.priority) for r in wf.records().values() if r] == [
        ("own", 1),
        ("hikvision", 9),
        ("hikvision", 9),
    ]


def test_countdown_delays_the_first_steps_only(worker_app: App) -> None:
    add, tsum = worker_app.tasks["t.add"], worker_app.tasks["t.tsum"]
    now = worker_app.backend.now()
    wf = chain(group(add.s(1, 1), add.s(2, 2)), tsum.s(), add.s(1)).apply_async(countdown=0.3)
    members = [r for r in wf.records().values() if r]
    assert [r.state for r in members] == [State.SCHEDULED, State.SCHEDULED]  # the group's members
    assert all(r.run_at >= now + 0.3 for r in members)
    run(worker_app, ["default"])  # burst: waits for the delayed members, then drains
    assert wf.get(timeout=5) == 7
    later = list(wf.records().values())[2:]
    # started when their predecessor ended, with no second countdown
    assert all(r is not None and r.run_at == r.created_at for r in later)
    assert all(r is not None and r.started_at >= now + 0.3 for r in later)


def test_eta_and_expires_survive_into_steps_enqueued_later(worker_app: App) -> None:
    add, tsum = worker_app.tasks["t.add"], worker_app.tasks["t.tsum"]
    eta = datetime.now(UTC) + timedelta(seconds=0.2)
    # stored as JSON with the spec: a datetime and a timedelta must come back as themselves
    wf = chord([add.s(1, 1), add.s(2, 2)], tsum.s().set(eta=eta)).apply_async(
        eta=eta, expires=timedelta(minutes=5)
    )
    first, _, callback_id = wf.member_ids()
    assert worker_app.job(first).record().run_at == pytest.approx(eta.timestamp())
    run(worker_app, ["default"])
    assert wf.get(timeout=5) == 6
    callback = worker_app.job(callback_id).record()
    assert callback.run_at == callback.created_at >= eta.timestamp()  # its own eta, passed
    assert callback.expires_at == pytest.approx(callback.created_at + 300)  # from its enqueue


def test_workflow_options_are_checked_before_anything_is_stored(worker_app: App) -> None:
    add = worker_app.tasks["t.add"]
    with pytest.raises(EnqueueError, match=r"does not take job_id.*set\(job_id"):
        chain(add.s(1, 1), add.s(2)).apply_async(job_id="x")
    with pytest.raises(EnqueueError, match="does not take queu; it takes"):
        group(add.s(1, 1)).apply_async(queu="typo")
    with pytest.raises(EnqueueError, match="priority"):
        chain(add.s(1, 1), add.s(2)).apply_async(priority="urgent")
    with pytest.raises(EnqueueError, match="countdown -1 is negative"):
        chain(add.s(1, 1), add.s(2)).apply_async(countdown=-1)
    with pytest.raises(EnqueueError, match="not a valid queue name"):
        chain(add.s(1, 1), add.s(2)).apply_async(queue="video conversion")
    # a later step's bad option fails now, not in the worker when its turn comes
    with pytest.raises(EnqueueError, match="priority"):
        chain(add.s(1, 1), add.s(2).set(priority=42)).apply_async()
    assert worker_app.backend.list_jobs() == []


def test_every_step_arguments_are_bound_at_launch(worker_app: App) -> None:
    add, identity = worker_app.tasks["t.add"], worker_app.tasks["t.identity"]
    # the second step receives the first one's result: add(result, 1, 2) is one too many
    with pytest.raises(EnqueueError, match=r"task 't.add' takes \(a, b\); too many"):
        chain(add.s(1, 1), add.s(1, 2)).apply_async()
    with pytest.raises(EnqueueError, match="missing a required argument: 'b'"):
        group(add.s(1, 1), add.s(1)).apply_async()
    with pytest.raises(EnqueueError, match="unexpected keyword argument 'valu'"):
        chord([add.s(1, 1)], identity.s(valu=1)).apply_async()
    with pytest.raises(EnqueueError, match="missing a required argument: 'b'"):
        add.s(1).apply_async(link=add.s(1))
    with pytest.raises(EnqueueError, match="too many"):  # an errback gets the failed job's id
        add.s(1, 1).apply_async(link_error=identity.s(1))
    assert worker_app.backend.list_jobs() == []
    chain(add.s(1, 1), identity.s(), add.si(1, 1)).apply_async()  # each fits its position


def test_a_step_keeps_the_job_id_it_was_given(worker_app: App) -> None:
    add = worker_app.tasks["t.add"]
    wf = chain(add.s(1, 1).set(job_id="first"), add.s(2).set(job_id="second")).apply_async()
    assert wf.member_ids() == ["first", "second"]
    assert add.s(1, 2).apply_async(job_id="single").id == "single"
    run(worker_app, ["default"])
    assert (wf.get(timeout=5), worker_app.job("single").get(timeout=5)) == (4, 3)


def test_a_workflow_id_given_as_a_job_id_says_which_handle_to_use(worker_app: App) -> None:
    add = worker_app.tasks["t.add"]
    wf = chain(add.s(1, 1), add.s(2)).apply_async()
    with pytest.raises(
        JobNotFound, match=rf"'{wf.id}' is a workflow's id.*app.workflow\('{wf.id}'\)"
    ):
        worker_app.job(wf.id)
    step = wf.member_ids()[0]
    with pytest.raises(
        JobNotFound, match=rf"is a job's id.*app.job\('{step}'\).*app.workflow\('{wf.id}'\)"
    ):
        worker_app.workflow(step)
    with pytest.raises(JobNotFound, match="no job has the id 'nope'"):
        worker_app.job("nope")
