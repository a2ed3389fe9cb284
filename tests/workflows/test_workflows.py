"""Workflows on every backend, run by a real worker (in-process, burst mode)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor import App, JobFailed, State, chain, chord, group
from conveyor.control import retry_job
from conveyor.errors import StepNotRun
from conveyor.worker import Worker

from ..worker.conftest import ledger_lines


def run(app: App, concurrency: int = 4) -> None:
    assert Worker(app, pool="thread", concurrency=concurrency, burst=True).run() == 0


def test_chain_passes_each_result_on(worker_app: App) -> None:
    add = worker_app.tasks["t.add"]
    wf = chain(add.s(1, 2), add.s(10), add.s(100)).apply_async()
    piped = (add.s(1, 1) | add.s(1) | worker_app.tasks["t.identity"].s()).delay()
    run(worker_app)
    assert wf.get(timeout=5) == 113
    assert piped.get(timeout=5) == 3
    assert wf.state is State.SUCCESS
    assert [r.result for r in wf.records().values() if r] == [3, 13, 113]  # type: ignore[union-attr]
    assert worker_app.workflow(wf.id).get(timeout=1) == 113  # a handle from the id alone


def test_group_results_come_back_in_order(worker_app: App) -> None:
    add = worker_app.tasks["t.add"]
    wf = group(add.s(i, i) for i in range(6)).apply_async()
    run(worker_app)
    assert wf.get(timeout=5) == [0, 2, 4, 6, 8, 10]


def test_chord_callback_receives_every_result_in_order(worker_app: App) -> None:
    add, identity = worker_app.tasks["t.add"], worker_app.tasks["t.identity"]
    wf = chord([add.s(i, 100) for i in range(8)], identity.s()).apply_async()
    run(worker_app)
    assert wf.get(timeout=5) == [100 + i for i in range(8)]


@pytest.mark.timeout(180)
def test_chord_of_a_thousand_members_calls_back_exactly_once(worker_app: App, ledger: Path) -> None:
    add, collect = worker_app.tasks["t.add"], worker_app.tasks["t.collect"]
    wf = chord([add.s(i, 0) for i in range(1000)], collect.s(str(ledger))).apply_async()
    run(worker_app, concurrency=8)
    assert wf.get(timeout=10) == sum(range(1000))
    assert ledger_lines(ledger) == [["callback", ledger_lines(ledger)[0][1]]]


def test_groups_in_chains_and_chains_in_groups(worker_app: App) -> None:
    add, tsum = worker_app.tasks["t.add"], worker_app.tasks["t.tsum"]
    fan = chain(
        add.s(1, 1), group(add.s(10), add.s(20)), tsum.s()
    ).apply_async()  # group|task = chord
    nested = group(chain(add.s(1, 1), add.s(1)), add.s(5, 5)).apply_async()
    run(worker_app)
    assert fan.get(timeout=5) == 34
    assert nested.get(timeout=5) == [3, 10]


def test_a_failed_chain_step_stops_the_chain(worker_app: App) -> None:
    add, fail = worker_app.tasks["t.add"], worker_app.tasks["t.fail"]
    wf = chain(add.s(1, 1), fail.si("disk full"), add.s(5), add.s(6)).apply_async()
    run(worker_app)
    first, failed, third, fourth = wf.records().values()
    assert (first.state, failed.state) == (State.SUCCESS, State.FAILURE)  # type: ignore[union-attr]
    for never in (third, fourth):
        assert never is not None
        assert never.state is State.REVOKED  # recorded as never run, not left PENDING
        assert never.error is not None
        assert never.error["type"] == "WorkflowAborted"
        assert "disk full" in never.error["message"]
    assert wf.state is State.FAILURE
    with pytest.raises(JobFailed, match="disk full"):
        wf.get(timeout=1)


def test_a_failed_member_fails_the_chord_and_runs_link_error(worker_app: App, ledger: Path) -> None:
    add, fail, collect = (
        worker_app.tasks["t.add"],
        worker_app.tasks["t.fail"],
        worker_app.tasks["t.collect"],
    )
    errback = worker_app.tasks["t.errback"].s(str(ledger))
    callback = collect.s(str(ledger)).link_error(errback)
    wf = chord([add.s(1, 1), fail.si("member broke"), add.s(2, 2)], callback).apply_async()
    run(worker_app)
    records = wf.records()
    callback_record = records[wf.spec["callback"]["id"]]
    assert callback_record is not None
    assert callback_record.state is State.FAILURE
    assert callback_record.error is not None
    assert callback_record.error["type"] == "ChordError"
    assert "member broke" in callback_record.error["message"]
    assert ledger_lines(ledger)[0][:2] == [
        "errback",
        callback_record.id,
    ]  # link_error ran, callback did not
    assert not [line for line in ledger_lines(ledger) if line[0] == "callback"]


def test_retries_of_a_member_do_not_duplicate_the_callback(worker_app: App, ledger: Path) -> None:
    flaky, collect = worker_app.tasks["t.flaky"], worker_app.tasks["t.collect"]
    wf = chord([flaky.si(2), flaky.si(3), flaky.si(1)], collect.s(str(ledger))).apply_async()
    run(worker_app)
    assert wf.get(timeout=5) == 2 + 3 + 1
    assert len(ledger_lines(ledger)) == 1


def test_link_and_link_error_on_a_single_job(worker_app: App, ledger: Path) -> None:
    add, fail = worker_app.tasks["t.add"], worker_app.tasks["t.fail"]
    ok = add.s(1, 2).apply_async(link=add.s(10))
    bad = fail.s("nope").apply_async(link_error=worker_app.tasks["t.errback"].s(str(ledger)))
    run(worker_app)
    assert ok.get(timeout=5) == 3
    (linked,) = [j for j in worker_app.backend.list_jobs() if j.task == "t.add" and j.id != ok.id]
    assert linked.result == 13
    assert ledger_lines(ledger)[0][:2] == ["errback", bad.id]


def test_revoking_a_workflow_revokes_every_unfinished_member(worker_app: App) -> None:
    add = worker_app.tasks["t.add"]
    wf = chain(add.s(1, 1), add.s(2), group(add.s(3), add.s(4))).apply_async()
    wf.revoke()
    run(worker_app)
    assert {r.state for r in wf.records().values() if r} == {State.REVOKED}
    assert all(wf.records().values())  # members never started exist, as REVOKED
    assert wf.state is State.REVOKED


def test_cancelling_a_waiting_step_ends_what_follows(worker_app: App) -> None:
    add = worker_app.tasks["t.add"]
    wf = chain(add.s(1, 1).set(countdown=30), add.s(2)).apply_async()
    first_id = wf.member_ids()[0]
    worker_app.job(first_id).revoke(reason="not needed")
    second = wf.records()[wf.member_ids()[1]]
    assert second is not None
    assert second.state is State.REVOKED


def test_retrying_the_failed_member_resumes_the_chord_and_the_chain(
    worker_app: App, tmp_path: Path
) -> None:
    """A step stored as never run (a chord's callback, a chain's later steps) is refused a
    retry, naming the failed member; retrying that member resumes the workflow: each
    never-run step runs in its place with its input, the abort kept in its history."""
    add, gate, tsum = (worker_app.tasks[n] for n in ("t.add", "t.gate", "t.tsum"))
    flag = str(tmp_path / "open")
    fan = chord([add.s(1, 1), gate.si(flag, 5), add.s(2, 2)], tsum.s()).apply_async()
    line = chain(add.s(1, 1), gate.si(flag, 7), add.s(10), add.s(100)).apply_async()
    run(worker_app)
    callback, member = fan.spec["callback"]["id"], fan.member_ids()[1]
    failed, later = line.member_ids()[1], line.member_ids()[2]
    with pytest.raises(StepNotRun, match=f"retry the failed member {member}: the chord resumes"):
        retry_job(worker_app, callback)
    with pytest.raises(StepNotRun, match=f"retry the failed step {failed}: the chain resumes"):
        retry_job(worker_app, later)
    assert worker_app.job(callback).error["type"] == "ChordError"  # type: ignore[index]
    (tmp_path / "open").touch()
    retry_job(worker_app, member)
    retry_job(worker_app, failed)
    run(worker_app)
    assert fan.get(timeout=5) == 2 + 5 + 4
    assert line.get(timeout=5) == 117
    resumed = worker_app.job(callback).record()
    assert [a["state"] for a in resumed.attempts] == ["REQUEUED", "SUCCESS"]
    assert resumed.attempts[0]["error"]["type"] == "ChordError"  # why it had not run, kept
    history = worker_app.job(member).record().attempts
    assert [(a["state"], (a["error"] or {}).get("type")) for a in history] == [
        ("FAILURE", "ValueError"), ("REQUEUED", None), ("SUCCESS", None)
    ]  # fmt: skip


def test_a_chord_with_two_failed_members_resumes_once_both_are_retried(
    worker_app: App, tmp_path: Path
) -> None:
    """The refusal names the member still failed; the callback runs once, when the last
    of them succeeds."""
    gate, collect = worker_app.tasks["t.gate"], worker_app.tasks["t.collect"]
    ledger = str(tmp_path / "ledger")
    fan = chord([gate.si(str(tmp_path / "a"), 1), gate.si(str(tmp_path / "b"), 2)],
                collect.s(ledger)).apply_async()  # fmt: skip
    run(worker_app)
    callback, (first, second) = fan.spec["callback"]["id"], fan.member_ids()[:2]
    named = worker_app.job(callback).error["member"]  # type: ignore[index]
    other = second if named == first else first
    with pytest.raises(StepNotRun, match=f"retry the failed member {named}:"):
        retry_job(worker_app, callback)
    (tmp_path / "a").touch()
    (tmp_path / "b").touch()
    retry_job(worker_app, named)
    run(worker_app)
    assert worker_app.job(callback).state is State.FAILURE  # one member is still failed
    with pytest.raises(StepNotRun, match=f"retry the failed member {other}:"):
        retry_job(worker_app, callback)
    retry_job(worker_app, other)
    run(worker_app)
    assert fan.get(timeout=5) == 3
    assert [line[0] for line in ledger_lines(Path(ledger))] == ["callback"]  # once
