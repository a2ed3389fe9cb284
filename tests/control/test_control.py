"""Control functions on every backend."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from conveyor import App, State, control
from conveyor.backends.common import add_runs
from conveyor.backends.rollup import RESOLUTION
from conveyor.backends.sqlite import SQLiteBackend
from conveyor.backends.sqlite.backend import _Q as QUERIES
from conveyor.errors import (
    ConveyorError,
    EnqueueError,
    InvalidTransition,
    SerializationError,
    UnknownTask,
)
from conveyor.records import JobQuery, Lease, WorkerInfo
from conveyor.testing import drain

from ..conftest import FakeClock


@pytest.fixture
def tasks(app: App) -> App:
    @app.task(name="media.convert", queue="media")
    def convert(path: str) -> None: ...

    @app.task(name="devices.ping", queue="devices")
    def ping(device: str) -> None: ...

    return app


def register(
    app: App, name: str, queues: list[str], tasks: list[str] | None = None, skew: float = 0.0
) -> WorkerInfo:
    info = WorkerInfo(id=f"{name}-id", name=name, host="h", pid=1, queues=queues, pool="thread", concurrency=1,
                      version="t", tasks=tasks if tasks is not None else sorted(app.tasks), started_at=app.backend.now(),
                      clock_skew=skew)  # fmt: skip
    app.backend.heartbeat(info, [], 30)
    return info


def run_one(app: App, queue: str, seconds: float, clock: FakeClock, fail: bool = False) -> str:
    (record,) = app.backend.claim([queue], "w", 1, 30)
    clock.advance(seconds)
    lease = Lease(record.id, record.lease_token or "")
    if fail:
        app.backend.fail(lease, {"type": "ValueError", "message": "bad"})
    else:
        app.backend.complete(lease, "ok")
    return record.id


def test_list_jobs_pages_and_filters(tasks: App, clock: FakeClock) -> None:
    ids = []
    for i in range(7):
        ids.append(tasks.send_task("media.convert", (f"/v/{i}.mov",)).id)
        clock.advance(1)
    page = control.list_jobs(tasks, limit=3)
    assert [j.id for j in page.jobs] == ids[::-1][:3]
    rest = control.list_jobs(tasks, limit=5, cursor=page.next_cursor)
    assert [j.id for j in rest.jobs] == ids[::-1][3:]
    assert rest.next_cursor is None
    assert [j.id for j in control.list_jobs(tasks, text="/v/2.mov").jobs] == [ids[2]]
    assert len(control.list_jobs(tasks, states=["pending"], queues=["media"]).jobs) == 7
    assert control.list_jobs(tasks, created_after=clock.now - 2.5).jobs[-1].id == ids[5]
    with pytest.raises(ConveyorError, match="unknown state 'done'"):
        control.list_jobs(tasks, states=["done"])


def test_describe_job_shows_arguments_attempts_and_timings(tasks: App, clock: FakeClock) -> None:
    job = tasks.send_task("media.convert", ("/a.mov",))
    clock.advance(3)
    run_one(tasks, "media", 2, clock, fail=True)
    data = control.describe_job(tasks, job.id)
    assert (data["args"], data["state"], data["error"]["type"]) == (
        ["/a.mov"],
        "FAILURE",
        "ValueError",
    )
    assert data["timings"] == {"waited": 3, "ran": 2}
    assert [a["state"] for a in data["attempts"]] == ["FAILURE"]


def test_a_job_waiting_to_retry_has_no_wait_time_yet(tasks: App, clock: FakeClock) -> None:
    job = tasks.send_task("media.convert", ("/a.mov",))
    (record,) = tasks.backend.claim(["media"], "w", 1, 30)
    clock.advance(1)
    tasks.backend.snooze(Lease(record.id, record.lease_token or ""), 60)
    data = control.describe_job(tasks, job.id)
    assert data["state"] == "RETRY"
    assert data["timings"]["waited"] is None  # run_at names the next attempt, not the last
    due = datetime.fromtimestamp(clock.now + 60, UTC).isoformat(timespec="seconds")
    assert data["retry_note"].endswith(
        f"is due at {due.replace('+00:00', 'Z')}"
    )  # not just "is due"


def test_a_redelivered_jobs_wait_starts_when_its_lost_delivery_was_found(
    tasks: App, clock: FakeClock
) -> None:
    """A new user saw "waited 2 min" on a job that had run on a killed worker: the wait
    counted from the first send, through the lost run and its lease."""
    job = tasks.send_task("media.convert", ("/a.mov",))
    clock.advance(2)
    tasks.backend.claim(["media"], "w", 1, 30)  # its worker dies
    clock.advance(31)
    assert tasks.backend.rescue_expired() == [job.id]  # found lost, back in the queue
    clock.advance(4)
    run_one(tasks, "media", 1, clock)
    data = control.describe_job(tasks, job.id)
    assert data["timings"] == {"waited": 4, "ran": 1}


def test_a_waiting_job_says_why_when_its_queue_is_paused_or_unconsumed(tasks: App) -> None:
    """A PENDING job in a paused queue showed only "PENDING ... waited -" on its page and
    in ``inspect job``; only doctor and the overview said why."""
    job = tasks.send_task("media.convert", ("/a.mov",))
    note = control.describe_job(tasks, job.id)["waiting_note"]
    assert note.startswith("waiting: no live worker consumes queue 'media'; start a worker")
    register(tasks, "w1", ["media"])
    assert control.describe_job(tasks, job.id)["waiting_note"] is None  # it will run
    control.pause_queue(tasks, "media")
    note = control.describe_job(tasks, job.id)["waiting_note"]
    assert note.startswith("waiting: queue 'media' is paused; resume it when ready: ")
    assert "resume media" in note
    control.resume_queue(tasks, "media")
    tasks.backend.claim(["media"], "w1-id", 1, 30)
    assert control.describe_job(tasks, job.id)["waiting_note"] is None  # running: no note


def test_cancel_and_retry_one_and_in_bulk(tasks: App, clock: FakeClock) -> None:
    media = [tasks.send_task("media.convert", (str(i),)) for i in range(3)]
    ping = tasks.send_task("devices.ping", ("x",))
    assert control.cancel_job(tasks, media[0].id).state is State.REVOKED
    assert sorted(control.cancel_where(tasks, queues=["media"])) == sorted(j.id for j in media[1:])
    assert ping.state is State.PENDING
    assert control.retry_job(tasks, media[0].id).state is State.PENDING
    assert sorted(control.retry_where(tasks, queues=["media"])) == sorted(j.id for j in media[1:])
    assert {j.state for j in media} == {State.PENDING}
    with pytest.raises(InvalidTransition, match="only FAILURE or REVOKED"):
        control.retry_job(tasks, ping.id)


def test_pause_resume_purge(tasks: App) -> None:
    jobs = [tasks.send_task("devices.ping", (str(i),)) for i in range(3)]
    control.pause_queue(tasks, "devices")
    assert tasks.backend.claim(["devices"], "w", 5, 30) == []
    control.resume_queue(tasks, "devices")
    (running,) = tasks.backend.claim(["devices"], "w", 1, 30)
    assert control.purge_queue(tasks, "devices") == 2
    assert tasks.backend.get(running.id).state is State.STARTED
    assert sorted(j.state for j in jobs) == [State.REVOKED, State.REVOKED, State.STARTED]


def test_queue_stats(tasks: App, clock: FakeClock) -> None:
    for i in range(4):
        tasks.send_task("media.convert", (str(i),))
    clock.advance(30)
    run_one(tasks, "media", 1.0, clock)
    run_one(tasks, "media", 3.0, clock, fail=True)
    tasks.backend.claim(["media"], "w", 1, 30)
    register(tasks, "w1", ["media"])
    tasks.backend.pause_queue("devices")
    stats = {q.name: q for q in control.queue_stats(tasks)}
    assert set(stats) == {"default", "devices", "media"}
    media = stats["media"]
    assert (media.waiting, media.running, media.consumers) == (1, 1, ["w1"])
    assert media.depth == {"PENDING": 1, "STARTED": 1, "SUCCESS": 1, "FAILURE": 1}
    assert media.oldest_waiting_age == pytest.approx(34)
    window = media.windows["5m"]
    assert (window.finished, window.failed, window.per_minute) == (2, 1, 0.4)
    # Nearest rank, from the run-time histogram: within its resolution of 1 s and 3 s.
    assert window.runtime_p50 == pytest.approx(1.0, rel=RESOLUTION)
    assert window.runtime_p99 == pytest.approx(3.0, rel=RESOLUTION)
    assert stats["devices"].paused


def test_overview_and_health(tasks: App) -> None:
    tasks.send_task("media.convert", ("a",))
    assert control.overview(tasks).by_state == {"PENDING": 1}
    report = control.health(tasks)
    assert report.backend["reachable"]
    assert not report.ok  # media holds a job and nobody consumes it
    assert report.queues == [
        {"name": "media", "waiting": 1, "consumers": 0, "paused": False, "draining": False}
    ]
    register(tasks, "w1", ["media"])
    assert control.health(tasks).ok


def test_enqueue_by_name_checks_at_the_edge(tasks: App) -> None:
    job = control.enqueue_by_name(tasks, "devices.ping", ["thermostat"], priority="9")
    assert (job.record().queue, job.record().priority) == ("devices", 9)
    with pytest.raises(UnknownTask, match=r"devices\.pign.*known: devices\.ping, media\.convert"):
        control.enqueue_by_name(tasks, "devices.pign", [])
    with pytest.raises(SerializationError, match="JSON array"):
        control.enqueue_by_name(tasks, "devices.ping", {"not": "a list"})


def test_doctor_is_quiet_when_healthy(tasks: App) -> None:
    register(tasks, "w1", tasks.declared_queues())
    tasks.send_task("devices.ping", ("x",))
    assert control.diagnose(tasks) == []


def test_doctor_names_a_queue_nobody_consumes(tasks: App, clock: FakeClock) -> None:
    for i in range(3):
        tasks.send_task("devices.ping", (str(i),))
    clock.advance(125)
    register(tasks, "w1", ["default"])
    (finding,) = control.diagnose(tasks)
    assert (finding.check, finding.severity) == ("queue-without-worker", "error")
    assert "'devices' holds 3 waiting job(s), the oldest 2m 5s old" in finding.problem
    assert "w1 consumes default" in finding.problem
    assert "-Q devices" in finding.fix


def test_doctor_and_the_overview_page_read_the_worker_registry_once(
    tasks: App, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live workers (queues' consumers, the workers count) and the registered ones
    (dead workers' findings, the page's list) come from one read of the registry."""
    from conveyor.web.dashboard.views import overview_page

    tasks.send_task("devices.ping", ("a",))
    register(tasks, "w1", ["default"])
    register(tasks, "w2", ["devices"])
    clock.advance(40)  # both presumed dead, still registered
    register(tasks, "w1", ["default"])  # back: live
    reads = []
    read = tasks.backend.workers
    monkeypatch.setattr(tasks.backend, "workers", lambda: reads.append(1) or read())
    found = {f.check: f for f in control.diagnose(tasks)}
    assert len(reads) == 1
    assert "w2" in found["dead-worker"].problem
    assert "live workers: w1 consumes default" in found["queue-without-worker"].problem
    reads.clear()
    page = overview_page(tasks)
    assert len(reads) == 1
    assert page["overview"].workers == 1
    assert [w.name for w, _ in page["workers"]] == ["w1", "w2"]
    assert {f.check for f in page["findings"]} == {"dead-worker", "queue-without-worker"}


def test_doctor_counts_expired_waiting_jobs_apart(
    tasks: App, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job whose ``expires`` passed while it waited will not run: it is not work a
    worker would do, so it is not counted as waiting."""
    for i in range(3):
        tasks.send_task("devices.ping", (f"late{i}",), expires=60)
    for i in range(2):
        tasks.send_task("devices.ping", (str(i),))
    tasks.send_task("media.convert", ("late",), expires=60)
    clock.advance(125)
    register(tasks, "w1", ["default"])
    listed: list[JobQuery | None] = []
    read = tasks.backend.list_jobs
    monkeypatch.setattr(tasks.backend, "list_jobs", lambda q=None: listed.append(q) or read(q))
    found = {f.problem.split("'")[1]: f for f in control.diagnose(tasks)}
    # counted by their expiry alone: no waiting job's record is read (10 KB each, maybe)
    assert [q.states for q in listed if q is not None] == [[State.STARTED]]
    devices, media = found["devices"], found["media"]
    assert (devices.check, devices.severity) == ("queue-without-worker", "error")
    assert (
        "'devices' holds 2 waiting job(s) and 3 expired one(s) that will not run (each ends "
        "REVOKED, Expired, when a worker reaches it; or revoke them)"
    ) in devices.problem
    assert devices.data == {"queue": "devices", "waiting": 2, "expired": 3}
    # a queue holding only jobs that will not run: nothing is stuck there
    assert (media.check, media.severity) == ("queue-without-worker", "warning")
    assert "'media' holds 0 waiting job(s) and 1 expired one(s)" in media.problem
    control.pause_queue(tasks, "devices")
    (paused,) = [f for f in control.diagnose(tasks) if f.check == "paused-queue"]
    assert "is paused and holds 2 waiting job(s) and 3 expired one(s)" in paused.problem


def test_doctor_names_a_queue_whose_workers_are_all_busy(tasks: App, clock: FakeClock) -> None:
    """Jobs waiting a minute behind a worker whose every slot is taken (a long job): the
    queue has a consumer, so only this check says why they wait."""
    info = register(tasks, "busy", ["media"])
    tasks.send_task("media.convert", ("long",))
    (held,) = tasks.backend.claim(["media"], info.id, 1, 600)
    tasks.send_task("media.convert", ("waits",))
    clock.advance(30)
    tasks.backend.heartbeat(info, [Lease(held.id, held.lease_token or "")], 600)
    assert "queue-saturated" not in {f.check for f in control.diagnose(tasks)}  # not yet
    clock.advance(45)
    tasks.backend.heartbeat(info, [Lease(held.id, held.lease_token or "")], 600)
    (found,) = [f for f in control.diagnose(tasks) if f.check == "queue-saturated"]
    assert found.severity == "warning"
    assert "queue 'media' holds 1 waiting job(s), the oldest 1m" in found.problem
    assert "every slot of the 1 worker(s) consuming it is busy (1 in all)" in found.problem
    assert "worker -Q media" in found.fix
    tasks.backend.heartbeat(info, [], 600)  # the long job ended: a slot is free
    assert "queue-saturated" not in {f.check for f in control.diagnose(tasks)}


def test_doctor_finds_skew_stale_leases_paused_queues_and_unregistered_tasks(
    tasks: App, clock: FakeClock
) -> None:
    register(tasks, "old-code", ["media", "devices"], tasks=["media.convert"], skew=5.0)
    tasks.send_task("devices.ping", ("x",))
    tasks.send_task("media.convert", ("y",))
    tasks.backend.claim(["media"], "dead", 1, 30)
    tasks.send_task("media.convert", ("z",))
    tasks.backend.pause_queue("media")
    clock.advance(45)
    register(
        tasks, "old-code", ["media", "devices"], tasks=["media.convert"], skew=5.0
    )  # still alive
    found = {f.check: f for f in control.diagnose(tasks)}
    assert set(found) == {"task-not-registered", "expired-leases", "paused-queue", "clock-skew"}
    assert "devices.ping" in found["task-not-registered"].problem
    assert "1 job(s) are STARTED" in found["expired-leases"].problem
    assert "+5.0s" in found["clock-skew"].problem


def test_doctor_reports_an_unreachable_backend(tmp_path: object) -> None:
    app = App("x", backend="sqlite:////nonexistent-folder/x.db")
    (finding,) = control.diagnose(app)
    assert finding.check == "backend"
    assert "sqlite:////nonexistent-folder/x.db" in finding.problem
    assert "does not exist" in finding.problem


def consumers(app: App, queue: str) -> list[str]:
    return next(q.consumers for q in control.queue_stats(app) if q.name == queue)


def alive_counts(app: App) -> tuple[int, int, int]:
    """Live workers as health, overview and readiness count them (one control function)."""
    return (control.health(app).workers_alive, control.overview(app).workers,
            control.readiness(app).workers_alive)  # fmt: skip


def test_a_worker_silent_for_three_heartbeats_is_presumed_dead(
    tasks: App, clock: FakeClock
) -> None:
    info = register(tasks, "w1", ["media"])  # heartbeat_interval 2s: dead after 6s of silence
    tasks.send_task("media.convert", ("a",))
    (held,) = tasks.backend.claim(["media"], info.id, 1, 30)
    tasks.send_task("media.convert", ("b",))
    clock.advance(6.0)
    assert consumers(tasks, "media") == ["w1"]  # late, not yet overdue
    assert control.diagnose(tasks) == []
    assert alive_counts(tasks) == (1, 1, 1)
    clock.advance(0.5)
    found = {f.check: f for f in control.diagnose(tasks)}
    assert set(found) == {"dead-worker", "queue-without-worker"}
    dead = found["dead-worker"]
    assert dead.severity == "error"
    assert "worker w1 (host h, pid 1) stopped heartbeating" in dead.problem
    assert "6s ago, more than 3 of its 2s intervals" in dead.problem
    assert f"{held.id} (media.convert in 'media', lease expires at" in dead.problem
    assert "in 23s" in dead.problem  # the 30s lease, renewed by nobody since
    assert dead.data["jobs"] == [
        {"id": held.id, "task": "media.convert", "queue": "media", "lease_until": held.lease_until}
    ]
    assert "presumed dead: w1" in found["queue-without-worker"].problem
    assert consumers(tasks, "media") == []
    assert alive_counts(tasks) == (0, 0, 0)
    clock.advance(30)  # the lease expired long ago: still one finding, the dead worker's
    assert (
        "lease expired at" in {f.check: f for f in control.diagnose(tasks)}["dead-worker"].problem
    )
    assert "expired-leases" not in {f.check for f in control.diagnose(tasks)}


def test_pausing_a_queue_nobody_knows_warns_naming_the_known_ones(tasks: App) -> None:
    tasks.send_task("reports.daily", queue="reports")  # a queue seen only in the backend
    register(tasks, "w1", ["gpu"])  # and one only a live worker consumes
    for known in ("devices", "reports", "gpu", "default"):
        assert control.pause_queue(tasks, known) is None
    warning = control.pause_queue(tasks, "devcies")
    assert warning is not None
    assert "no queue 'devcies' is declared by the app, holds jobs or has a worker" in warning
    assert warning.endswith("Known queues: default, devices, gpu, media, reports")
    assert "devcies" in tasks.backend.paused_queues()  # paused all the same, ahead of use
    assert control.pause_queue(tasks, "devcies") == warning  # being paused does not make it known


@pytest.mark.parametrize("queue", ["", "two words", "x" * 500])
def test_queue_controls_refuse_bad_names(tasks: App, queue: str) -> None:
    for act in (control.pause_queue, control.resume_queue, control.purge_queue):
        with pytest.raises(ConveyorError, match="not a valid queue name; use 1 to 100"):
            act(tasks, queue)
    assert tasks.backend.paused_queues() == set()


def test_enqueue_by_name_binds_arguments_and_checks_the_queue(tasks: App) -> None:
    with pytest.raises(EnqueueError, match=r"task 'devices.ping' takes \(device\); missing"):
        control.enqueue_by_name(tasks, "devices.ping", [])
    with pytest.raises(EnqueueError, match="unexpected keyword argument 'host'"):
        control.enqueue_by_name(tasks, "devices.ping", ["cam"], {"host": "x"})
    with pytest.raises(EnqueueError, match="not a valid queue name"):
        control.enqueue_by_name(tasks, "devices.ping", ["cam"], queue="")
    assert tasks.backend.list_jobs() == []


def test_the_chart_counts_every_run_past_the_old_cap_of_100000(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The charts used to read the hour's runs, at most 100,000 of them, and showed the
    newest ones only, with no sign. The rollups count them all: 120,000 outcomes in
    batches of 2,000, written straight into the rollups by the statement every
    acknowledged batch runs (``add_runs``; the contract tests show each backend's
    acknowledgements reach it), 40 batches a minute."""
    backend = SQLiteBackend(f"sqlite:///{tmp_path / 'c.db'}", clock=clock)
    app = App("tests", backend=backend)
    for _ in range(60):
        clock.advance(1.5)  # batches end at 1.5 s, 3 s, ... 90 s
        ended = [
            ("default", "FAILURE" if i % 10 == 0 else "SUCCESS", clock.now - 0.2)
            for i in range(2000)
        ]
        with backend._write() as conn:
            add_runs(conn, QUERIES, ended, clock.now)
    buckets = control.throughput(app, window=3600, step=60)
    assert (sum(b.finished for b in buckets), sum(b.failed for b in buckets)) == (120_000, 12_000)
    # 39 batches in the first minute, 21 in the next.
    assert [b.finished for b in buckets if b.finished] == [78_000, 42_000]
    backend.close()


def test_a_typo_among_hundreds_of_tasks_lists_a_few_and_counts_the_rest() -> None:
    app = App("big", backend="memory://")
    for n in range(200):
        app.task(name=f"reports.r{n:03}")(lambda: None)
    with pytest.raises(UnknownTask) as raised:
        app.get_task("reports.r1999")
    message = str(raised.value)
    assert "did you mean 'reports.r199'?" in message  # the nearest, of all 200
    assert message.endswith("reports.r011 and 188 more")  # not every name


def test_an_expired_waiting_job_says_it_will_not_run(tasks: App, clock: FakeClock) -> None:
    """A job with ``expires=3`` in a queue no worker consumes stayed PENDING, and its note
    said only "start a worker", as if starting one would run it."""
    job = tasks.send_task("media.convert", ("/a.mov",), expires=3)
    note = control.describe_job(tasks, job.id)["waiting_note"]
    assert "expired" not in note
    clock.advance(4)
    note = control.describe_job(tasks, job.id)["waiting_note"]
    assert note.startswith("waiting: no live worker consumes queue 'media'; start a worker")
    when = datetime.fromtimestamp(clock.now - 1, UTC).isoformat(timespec="seconds")
    assert note.endswith(
        f". Note: it expired at {when.replace('+00:00', 'Z')} and will not run: it ends "
        "REVOKED (Expired) when a worker reaches it in its queue, or revoke it now"
    )
    register(tasks, "w1", ["media"])  # a backlog ahead of it: still, it will not run
    assert control.describe_job(tasks, job.id)["waiting_note"].startswith("waiting: it expired at")


def test_a_job_no_worker_could_start_is_not_told_of_autoretry_for(tasks: App) -> None:
    # A misspelt send_task failed with a good did-you-mean, and its record added that
    # UnknownTask "is not in the task's autoretry_for": a task that does not exist.
    job = tasks.send_task("media.convrt", ("/a.mov",))  # to the default queue
    drain(tasks)
    data = control.describe_job(tasks, job.id)
    assert data["error"]["type"] == "UnknownTask"
    assert "autoretry_for" not in data["retry_note"]
    assert data["retry_note"].startswith("not run: the worker could not start it")


def test_a_name_of_the_same_module_is_not_suggested_for_an_unrelated_one() -> None:
    """A new user's unknown task 'myservice.tasks.nosuch' was met with "did you mean
    'myservice.tasks.orphan'?": the shared module made them 0.6 similar."""
    app = App("svc", backend="memory://")
    for name in ("myservice.tasks.orphan", "myservice.tasks.convert"):
        app.task(name=name)(lambda: None)
    with pytest.raises(UnknownTask) as unrelated:
        app.get_task("myservice.tasks.nosuch")
    assert "did you mean" not in str(unrelated.value)
    with pytest.raises(UnknownTask) as typo:  # a typo in the last part, or in the module
        app.get_task("myservice.tasks.ophran")
    assert "did you mean 'myservice.tasks.orphan'?" in str(typo.value)
    with pytest.raises(UnknownTask) as module:
        app.get_task("myservce.tasks.convert")
    assert "did you mean 'myservice.tasks.convert'?" in str(module.value)
