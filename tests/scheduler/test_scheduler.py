"""The scheduler loop on every backend, with an injected clock."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest

from conveyor import App, State, control
from conveyor.backends import Backend
from conveyor.errors import UnknownTask
from conveyor.events import JobEnqueued
from conveyor.records import JobQuery
from conveyor.scheduler import Schedule, ScheduleError, Scheduler, job_id, sync_code_schedules
from conveyor.scheduler.runner import LOCK_NAME, MAX_SLEEP, SYNCED, lock_name
from conveyor.task import Signature

from ..conftest import FakeClock


@pytest.fixture
def sched_app(app: App) -> App:
    @app.periodic(every=timedelta(seconds=10), schedule_name="every-10s", queue="beat")
    def heartbeat() -> None: ...

    @app.task(name="reports.daily")
    def daily(kind: str) -> None: ...

    app.conf.schedule = {
        "nightly": {
            "task": "reports.daily",
            "cron": "0 1 * * *",
            "tz": "Europe/Berlin",
            "args": ["full"],
        }
    }
    return app


def fired(app: App, schedule: str | None = None) -> list[str]:
    """Ids of the jobs schedules fired at their ticks (of one schedule if named)."""
    return sorted(
        j.id
        for j in app.backend.list_jobs(JobQuery(limit=500))
        if "tick" in j.headers and schedule in (None, j.headers["schedule"])
    )


def test_each_due_tick_becomes_one_job(sched_app: App, clock: FakeClock) -> None:
    clock.now = 1_800_000_005.0
    leader = Scheduler(sched_app, name="a")
    leader.step()
    assert fired(sched_app) == []
    clock.advance(24)  # now ...029: ticks ...010 and ...020 are due
    leader.step()
    assert fired(sched_app) == [
        job_id("every-10s", 1_800_000_010.0),
        job_id("every-10s", 1_800_000_020.0),
    ]
    job = sched_app.backend.get(job_id("every-10s", 1_800_000_010.0))
    assert (job.queue, job.headers["schedule"], job.state) == ("beat", "every-10s", State.PENDING)
    view = sched_app.schedules.get("every-10s")
    assert (view.last_job_id, view.next_run) == (
        job_id("every-10s", 1_800_000_020.0),
        1_800_000_030.0,
    )


def test_newest_first_lists_a_fired_job_among_the_jobs_of_its_time(
    sched_app: App, clock: FakeClock
) -> None:
    clock.now = (time.time() // 10 - 3) * 10 + 5  # the 10 s tick 25 s ago comes due next
    leader = Scheduler(sched_app, name="a")
    leader.step()
    clock.advance(10)
    leader.step()
    (tick_job,) = fired(sched_app)
    later = sched_app.send_task("reports.daily", ["full"])  # submitted after the tick
    newest = [j.id for j in sched_app.backend.list_jobs(JobQuery(limit=2))]
    assert newest == [later.id, tick_job]


def test_a_standby_fires_nothing_and_takes_over_after_the_lock_ttl(
    sched_app: App, clock: FakeClock
) -> None:
    clock.now = 1_800_000_005.0
    a, b = Scheduler(sched_app, name="a", lock_ttl=10), Scheduler(sched_app, name="b", lock_ttl=10)
    a.step()
    b.step()
    assert (a.leader, b.leader) == (True, False)
    clock.advance(6)
    b.step()
    assert fired(sched_app) == []  # the standby did not fire the due tick
    a.step()
    assert len(fired(sched_app)) == 1
    clock.advance(11)  # a died: its lock lapses
    b.step()
    assert b.leader
    assert len(fired(sched_app)) == 2  # b fired the tick a missed; nothing doubled


def test_two_leaders_at_once_still_fire_each_tick_once(sched_app: App, clock: FakeClock) -> None:
    clock.now = 1_800_000_005.0
    a, b = Scheduler(sched_app, name="a"), Scheduler(sched_app, name="b")
    a.step()
    clock.advance(30)
    state = dict(sched_app.backend.schedules()["every-10s"][1])
    a.step()
    sched_app.backend.set_schedule_state("every-10s", state)  # b read the old state before a wrote
    b.leader = True
    b._fire_due(sched_app.declared_schedules()["every-10s"], state, clock.now)
    assert len(fired(sched_app)) == 3  # ticks 10, 20, 30: once each


def test_runtime_edit_takes_effect_at_the_next_tick(sched_app: App, clock: FakeClock) -> None:
    clock.now = 1_800_000_000.0
    leader = Scheduler(sched_app, name="a")
    sched_app.schedules.add("probe", "reports.daily", every=60, args=["quick"])
    leader.step()
    clock.advance(61)
    leader.step()
    assert job_id("probe", 1_800_000_060.0) in fired(sched_app)
    sched_app.schedules.update("probe", every=5)
    clock.advance(5)
    leader.step()
    assert job_id("probe", 1_800_000_065.0) in fired(sched_app)
    sched_app.schedules.pause("probe")
    clock.advance(30)
    leader.step()
    assert fired(sched_app, "probe")[-1] == job_id("probe", 1_800_000_065.0)
    sched_app.schedules.delete("probe")
    with pytest.raises(ScheduleError, match="no schedule is named 'probe'"):
        sched_app.schedules.get("probe")


def test_misfire_once_after_days_of_downtime(sched_app: App, clock: FakeClock) -> None:
    clock.now = 1_800_000_000.0
    leader = Scheduler(sched_app, name="a")
    leader.step()
    clock.advance(3 * 86400)
    leader.step()
    assert len(fired(sched_app, "nightly")) == 1
    job = sched_app.backend.get(sched_app.schedules.get("nightly").last_job_id or "")
    assert (job.task, job.payload) == ("reports.daily", b'{"v":1,"args":["full"]}')


def test_code_schedules_sync_without_losing_a_runtime_pause(sched_app: App) -> None:
    sync_code_schedules(sched_app)
    assert {v.schedule.name for v in sched_app.schedules.list()} == {"every-10s", "nightly"}
    sched_app.schedules.pause("nightly")
    sync_code_schedules(sched_app)
    assert sched_app.schedules.get("nightly").schedule.paused  # unchanged code: the pause holds
    sched_app.conf.schedule["nightly"]["cron"] = "0 2 * * *"
    sync_code_schedules(sched_app)
    updated = sched_app.schedules.get("nightly").schedule
    assert (updated.cron, updated.paused) == ("0 2 * * *", True)
    del sched_app.conf.schedule["nightly"]
    sync_code_schedules(sched_app)
    assert {v.schedule.name for v in sched_app.schedules.list()} == {"every-10s"}


def test_a_runtime_edit_of_a_code_schedule_holds_until_its_declaration_changes(
    sched_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "conveyor.scheduler")
    sync_code_schedules(sched_app)
    assert "schedule nightly: added from code" in caplog.text
    caplog.clear()
    sched_app.schedules.update("nightly", every=3600)
    sched_app.schedules.pause("nightly")
    sync_code_schedules(sched_app)  # a scheduler's start or a takeover: code unchanged
    edited = sched_app.schedules.get("nightly").schedule
    assert (edited.cron, edited.every, edited.paused) == (None, 3600, True)
    assert "from code" not in caplog.text
    sched_app.conf.schedule["nightly"]["cron"] = "0 2 * * *"  # the code changes: it wins
    sync_code_schedules(sched_app)
    updated = sched_app.schedules.get("nightly").schedule
    assert (updated.cron, updated.every, updated.paused) == ("0 2 * * *", None, True)
    assert "nightly: updated from code (its declaration changed), replacing the runtime edit" in (
        caplog.text
    )
    # paused by an earlier version, whose edits dropped the hash: stamped again, not logged
    spec, _ = sched_app.backend.schedules()["nightly"]
    sched_app.backend.put_schedule("nightly", {k: v for k, v in spec.items() if k != "code_hash"})
    caplog.clear()
    sync_code_schedules(sched_app)
    assert sched_app.backend.schedules()["nightly"][0]["code_hash"] == spec["code_hash"]
    assert "from code" not in caplog.text


@pytest.fixture
def other_app(backend: Backend) -> App:
    """A second app on the same store (one queue moved over at a time), with a schedule
    of its own and another default queue."""
    other = App("other", backend=backend, default_queue="elsewhere")

    @other.periodic(every=30, schedule_name="other-30s")
    def poll() -> None: ...

    return other


def test_apps_on_one_store_sync_only_their_own_code_schedules(
    sched_app: App, other_app: App, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A new user's two apps (Celery-style and django.tasks) deleted each other's
    schedules at every start: each sync took the other's as "no longer declared"."""
    caplog.set_level(logging.INFO, "conveyor.scheduler")
    sched_app.schedules.add("by-hand", "reports.daily", every=60, args=["x"])
    sync_code_schedules(sched_app)
    sync_code_schedules(other_app)
    sync_code_schedules(sched_app)
    stored = sched_app.backend.schedules()
    assert {n: spec.get("app") for n, (spec, _) in stored.items()} == {
        "every-10s": "tests", "nightly": "tests", "other-30s": "other", "by-hand": "tests",
    }  # fmt: skip
    assert "deleted" not in caplog.text
    # Still each app's own to delete, and a runtime schedule is not a code schedule.
    del sched_app.conf.schedule["nightly"]
    sync_code_schedules(sched_app)
    assert set(sched_app.backend.schedules()) == {"every-10s", "other-30s", "by-hand"}
    assert "schedule nightly: deleted (no longer declared in code)" in caplog.text


def test_a_schedule_name_two_apps_declare_stays_the_first_ones(
    sched_app: App, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    twin = App("twin", backend=backend)

    @twin.periodic(every=60, schedule_name="every-10s")
    def other() -> None: ...

    sync_code_schedules(sched_app)
    sync_code_schedules(twin)
    spec, _ = sched_app.backend.schedules()["every-10s"]
    assert (spec["app"], spec["every"]) == ("tests", 10.0)
    assert "every-10s: declared by app 'twin' and by app 'tests'" in caplog.text


def test_code_schedules_an_earlier_version_stored_without_an_app(
    sched_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored before schedules named their app: a declaration claims one (its runtime
    edit kept); undeclared, one whose task this app registers is deleted as before, and
    one for a task it does not know is left: another app's."""
    caplog.set_level(logging.INFO, "conveyor.scheduler")
    sync_code_schedules(sched_app)
    sched_app.schedules.update("nightly", args=["edited"])
    legacy = {n: spec for n, (spec, _) in sched_app.backend.schedules().items()}
    for name, spec in legacy.items():
        sched_app.backend.put_schedule(name, {k: v for k, v in spec.items() if k != "app"})
    gone = {**legacy["nightly"], "name": "gone"}
    foreign = {**legacy["nightly"], "name": "foreign", "task": "elsewhere.task", "args": []}
    for spec in (gone, foreign):
        sched_app.backend.put_schedule(spec["name"], {k: v for k, v in spec.items() if k != "app"})
    sync_code_schedules(sched_app)
    stored = {n: spec for n, (spec, _) in sched_app.backend.schedules().items()}
    assert {n: spec.get("app") for n, spec in stored.items()} == {
        "every-10s": "tests", "nightly": "tests", "foreign": None,
    }  # fmt: skip
    assert stored["nightly"]["args"] == ["edited"]
    assert "schedule gone: deleted (no longer declared in code)" in caplog.text
    assert "schedule foreign: stored from code by an earlier version" in caplog.text


def lose_store(*apps: App) -> None:
    """What a store restarted empty (a Redis without persistence) lost of the apps'
    schedules: every one, and the mark each app's last sync left."""
    for name in list(apps[0].backend.schedules()):
        apps[0].backend.delete_schedule(name)
    for app in apps:
        app.backend.kv_delete(SYNCED + app.name)


def test_the_leader_stores_its_code_schedules_again_when_the_store_lost_them(
    sched_app: App, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    clock.now = 1_800_000_005.0
    leader = Scheduler(sched_app, name="a")
    leader.step()
    sched_app.schedules.delete("nightly")  # one alone: deleted at runtime, left out
    leader.step()
    assert set(sched_app.backend.schedules()) == {"every-10s"}
    sync_code_schedules(sched_app)
    lose_store(sched_app)  # every one: a store restarted empty
    clock.advance(10)
    leader.step()
    assert set(sched_app.backend.schedules()) == {"every-10s", "nightly"}
    assert "every-10s, nightly: declared in code but no longer stored" in caplog.text
    clock.advance(10)
    leader.step()
    assert fired(sched_app, "every-10s") == [job_id("every-10s", 1_800_000_020.0)]


def test_each_app_stores_its_own_again_as_leader_or_standby(
    sched_app: App, other_app: App, clock: FakeClock
) -> None:
    """A scheduler stores only its own app's code schedules; a standby checks too."""
    leader, standby = Scheduler(sched_app, name="a"), Scheduler(sched_app, name="a2")
    other = Scheduler(other_app, name="b")
    for scheduler in (leader, standby, other):
        scheduler.step()
    assert (leader.leader, standby.leader, other.leader) == (True, False, True)
    lose_store(sched_app, other_app)
    standby.step()
    assert set(sched_app.backend.schedules()) == {"every-10s", "nightly"}
    other.step()
    assert set(sched_app.backend.schedules()) == {"every-10s", "nightly", "other-30s"}


def test_two_apps_on_one_store_each_fire_only_their_own_schedules(
    sched_app: App, other_app: App, clock: FakeClock
) -> None:
    """A new user's app and a ported Celery app on one Redis db: the user's scheduler,
    leading, fired the other app's schedule into a queue nothing of theirs consumed."""
    sched_app.schedules.add("by-hand", "reports.daily", every=10, args=["x"])

    @other_app.task(name="legacy.ping")
    def ping() -> None: ...

    other_app.schedules.add("ping-every-30s", "legacy.ping", every=30)
    enqueued: dict[str, list[str]] = {"tests": [], "other": []}
    for app in (sched_app, other_app):
        app.events.subscribe(lambda e, to=enqueued[app.name]: to.append(e.task), JobEnqueued)
    clock.now = 1_800_000_005.0
    ours = [Scheduler(sched_app, name="a"), Scheduler(sched_app, name="a2")]
    theirs = [Scheduler(other_app, name="b"), Scheduler(other_app, name="b2")]
    for scheduler in ours + theirs:
        scheduler.step()
    assert [s.leader for s in ours + theirs] == [True, False, True, False]  # one leader per app
    clock.advance(60)  # ticks ...010 to ...060 of the 10 s ones, ...030 and ...060 of the 30 s
    for scheduler in ours + theirs:
        scheduler.step()
    jobs = [j for j in sched_app.backend.list_jobs(JobQuery(limit=500)) if "tick" in j.headers]
    per = {name: sorted(j.headers["tick"] for j in jobs if j.headers["schedule"] == name)
           for name in ("every-10s", "by-hand", "other-30s", "ping-every-30s")}  # fmt: skip
    tens = [1_800_000_000.0 + 10 * i for i in range(1, 7)]
    assert per == {"every-10s": tens, "by-hand": tens,
                   "other-30s": [1_800_000_030.0, 1_800_000_060.0],
                   "ping-every-30s": [1_800_000_030.0, 1_800_000_060.0]}  # fmt: skip
    # Each app's ticks went to its own queues, so its own workers run them.
    queues = {j.headers["schedule"]: j.queue for j in jobs}
    assert queues == {"every-10s": "beat", "by-hand": "default",
                      "other-30s": "elsewhere", "ping-every-30s": "elsewhere"}  # fmt: skip
    # And each app's scheduler enqueued them: a task of its own, every tick once.
    assert {name: set(tasks) <= set(app.tasks) for (name, tasks), app
            in zip(enqueued.items(), (sched_app, other_app), strict=True)} == {
        "tests": True, "other": True}  # fmt: skip
    assert sum(len(tasks) for tasks in enqueued.values()) == len(jobs)


def test_run_now_of_another_apps_schedule_goes_where_that_apps_scheduler_sends_it(
    sched_app: App, other_app: App, clock: FakeClock
) -> None:
    """The dashboard, the API and the CLI of one app list every app's schedules and offer
    "run now": that job went to this app's default queue, which the other app's workers
    do not consume (and this app's have not its task)."""
    sync_code_schedules(sched_app)
    sync_code_schedules(other_app)
    clock.now = 1_800_000_005.0
    Scheduler(other_app, name="b").step()
    clock.advance(30)
    Scheduler(other_app, name="b").step()
    [tick] = [j for j in other_app.backend.list_jobs(JobQuery(limit=50)) if "tick" in j.headers]
    for app in (sched_app, other_app):  # from this app's page, and from its own
        assert app.schedules.run_now("other-30s").record().queue == tick.queue == "elsewhere"
    # This app's own schedules still follow its options and routes.
    assert sched_app.schedules.run_now("every-10s").record().queue == "beat"
    assert other_app.schedules.run_now("nightly").record().queue == "default"


def test_another_apps_schedule_can_be_paused_and_resumed_from_this_app(
    sched_app: App, other_app: App
) -> None:
    """doctor, run with one app, names another app's late schedule and says to pause it:
    the pause was refused, the task being the other app's (unknown_task)."""
    sync_code_schedules(other_app)
    assert sched_app.schedules.pause("other-30s").paused
    assert other_app.schedules.get("other-30s").schedule.paused
    assert not sched_app.schedules.resume("other-30s").paused
    with pytest.raises(UnknownTask):  # an edit of what it enqueues is checked, as before
        sched_app.schedules.update("other-30s", every=60)


def test_an_edit_that_reroutes_a_schedule_stores_its_new_queue(sched_app: App) -> None:
    """The queue stored with a schedule is where another app's "run now" (and a leader of
    an earlier version) sends it: an edit to a task routed elsewhere moves it too."""
    sched_app.conf.task_routes = {"beat.*": "beat"}
    sched_app.task(name="beat.ping")(lambda: None)
    sched_app.schedules.add("by-hand", "reports.daily", every=10, args=["x"])
    assert sched_app.backend.schedules()["by-hand"][0]["routed_queue"] == "default"
    sched_app.schedules.update("by-hand", task="beat.ping", args=[])
    assert sched_app.backend.schedules()["by-hand"][0]["routed_queue"] == "beat"


def test_only_app_b_running_app_a_schedules_do_not_fire(
    sched_app: App, other_app: App, clock: FakeClock
) -> None:
    sched_app.schedules.add("by-hand", "reports.daily", every=10, args=["x"])
    sync_code_schedules(sched_app)  # app A's scheduler ran once, and stopped
    clock.now = 1_800_000_005.0
    only = Scheduler(other_app, name="b")
    only.step()
    clock.advance(60)
    only.step()
    assert {j.headers["schedule"] for j in sched_app.backend.list_jobs(JobQuery(limit=500))
            if "tick" in j.headers} == {"other-30s"}  # fmt: skip
    late = {f.problem.split("'")[1]: f for f in control.diagnose(other_app)
            if f.check == "schedule-late"}  # fmt: skip
    assert set(late) == {"every-10s", "by-hand"}  # nightly is not due yet
    assert "the scheduler of app 'tests'" in late["by-hand"].fix
    # ...not this app's command: app B's scheduler would never fire A's schedule
    assert other_app.command not in late["by-hand"].fix


def test_doctor_sends_a_queue_of_another_apps_jobs_to_that_apps_worker(
    sched_app: App, other_app: App
) -> None:
    """A new user's doctor, run with their app, told them to start their own app's
    worker for a queue holding only another app's jobs: a worker that would fail them
    all as unknown tasks."""
    sched_app.send_task("reports.daily", ("x",), queue="legacy")
    (theirs,) = [f for f in control.diagnose(other_app) if f.check == "queue-without-worker"]
    assert "tasks this app does not register (reports.daily)" in theirs.fix
    assert f"{other_app.command} worker" not in theirs.fix
    assert f"{other_app.command} purge legacy" in theirs.fix
    # the app that registers them is told to start its own worker, as before
    (ours,) = [f for f in control.diagnose(sched_app) if f.check == "queue-without-worker"]
    assert f"{sched_app.command} worker -Q legacy" in ours.fix


def test_doctor_names_other_apps_schedules_this_scheduler_does_not_fire(
    sched_app: App, other_app: App
) -> None:
    sync_code_schedules(sched_app)
    sync_code_schedules(other_app)
    spec = {**sched_app.backend.schedules()["nightly"][0], "name": "old", "task": "gone.task"}
    sched_app.backend.put_schedule("old", {k: v for k, v in spec.items() if k != "app"})

    def finding(app: App) -> list[control.Finding]:
        return [f for f in control.diagnose(app) if f.check == "schedule-other-apps"]

    (ours,) = finding(sched_app)
    assert ours.data == {"apps": {"other": ["other-30s"], "": ["old"]}}
    assert "app 'other': 1 (other-30s); no app named" in ours.problem
    assert "the scheduler of app 'tests' does not fire them" in ours.problem
    (theirs,) = finding(other_app)
    assert theirs.data == {"apps": {"tests": ["every-10s", "nightly"], "": ["old"]}}
    sched_app.backend.delete_schedule("old")
    other_app.backend.delete_schedule("other-30s")
    assert finding(sched_app) == []


def test_a_schedule_an_earlier_version_stored_without_an_app_is_fired_by_its_tasks_app(
    sched_app: App, other_app: App, clock: FakeClock
) -> None:
    spec = sched_app.schedules.add("by-hand", "reports.daily", every=10, args=["x"]).spec()
    sched_app.backend.put_schedule("by-hand", spec)  # as an earlier version stored it
    clock.now = 1_800_000_005.0
    theirs = Scheduler(other_app, name="b")
    theirs.step()
    clock.advance(10)
    theirs.step()
    assert fired(sched_app, "by-hand") == []  # app 'other' does not register its task
    Scheduler(sched_app, name="a").step()
    assert fired(sched_app, "by-hand") == [job_id("by-hand", 1_800_000_010.0)]


def test_a_leader_of_an_earlier_version_beside_this_one_fires_no_tick_twice(
    sched_app: App, other_app: App, clock: FakeClock
) -> None:
    """A rolling deploy: an old scheduler (one lock for every app, fires every stored
    schedule) still leads beside a new one of each app. A tick both fire has one job id,
    so it is stored once."""
    clock.now = 1_800_000_005.0
    new = [Scheduler(sched_app, name="a"), Scheduler(other_app, name="b")]
    old = OldScheduler(sched_app, name="old")
    for scheduler in [*new, old]:
        scheduler.step()
    assert [s.leader for s in [*new, old]] == [True, True, True]  # the locks are apart
    for _ in range(6):
        clock.advance(5)
        for scheduler in [old, *new] if clock.now % 10 else [*new, old]:
            scheduler.step()
    ticks = [j.headers["tick"] for j in sched_app.backend.list_jobs(JobQuery(limit=500))
             if j.headers.get("schedule") == "every-10s"]  # fmt: skip
    assert sorted(ticks) == [1_800_000_000.0 + 10 * i for i in range(1, 4)]
    assert len(fired(sched_app, "other-30s")) == 1


class OldScheduler(Scheduler):
    """The scheduler of the version before leadership per app: the one lock all apps
    shared, and every stored schedule fired (another app's to the queue it routes to)."""

    def __init__(self, app: App, *, name: str) -> None:
        super().__init__(app, name=name)
        self.lock = LOCK_NAME

    def step(self) -> float:
        self.leader = self.backend.acquire_lock(self.lock, self.id, self.lock_ttl)
        if self.leader:
            now = self.backend.now()
            for spec, state in self.backend.schedules().values():
                schedule = Schedule.from_spec(spec)
                if spec.get("app") != self.app.name and "queue" not in schedule.options:
                    schedule.options = {**schedule.options, "queue": spec["routed_queue"]}
                self._fire_due(schedule, state, now)
        return MAX_SLEEP


@pytest.mark.parametrize("renamed", [True, False])
def test_a_scheduler_of_the_old_code_does_not_undo_a_deploy_that_dropped_its_schedules(
    sched_app: App, backend: Backend, caplog: pytest.LogCaptureFixture, renamed: bool
) -> None:
    """A rolling deploy whose new code renames (or removes) every code schedule of the
    app: its scheduler's sync deletes the old ones, and a scheduler still running the old
    code took them for lost with the store and stored them again within a second. Renamed,
    the two syncs deleted each other's every second (the state, so ticks, lost each time,
    and a WARNING); removed, the old ones stayed stored after the deploy and fired."""
    old = Scheduler(sched_app, name="old")
    old.step()
    deployed = App("tests", backend=backend)
    if renamed:

        @deployed.periodic(every=60, schedule_name="renamed")
        def heartbeat() -> None: ...

    Scheduler(deployed, name="new").step()  # starts: its sync drops the old ones
    caplog.clear()
    old.step()
    old.step()
    assert set(backend.schedules()) == ({"renamed"} if renamed else set())
    assert "no longer stored" not in caplog.text
    lose_store(deployed)  # a store lost for real is still told and restored by either
    old.step()
    assert set(backend.schedules()) == {"every-10s", "nightly"}


def test_doctor_reports_a_schedule_nobody_fires(sched_app: App, clock: FakeClock) -> None:
    sync_code_schedules(sched_app)
    clock.advance(60)
    late = [f for f in control.diagnose(sched_app) if f.check == "schedule-late"]
    assert [f.problem.split("'")[1] for f in late] == ["every-10s"]
    assert "conveyor -A <app> scheduler" in late[0].fix
    Scheduler(sched_app, name="a").step()
    assert not [f for f in control.diagnose(sched_app) if f.check == "schedule-late"]


def test_doctor_names_code_schedules_no_scheduler_has_stored(sched_app: App) -> None:
    """A periodic task under a plain worker never ran and doctor said "healthy": only a
    scheduler stores (and fires) the schedules the code declares."""
    declared = sorted(sched_app.declared_schedules())
    unstored = [f for f in control.diagnose(sched_app) if f.check == "schedule-never-stored"]
    assert [f.problem.split("'")[1] for f in unstored] == declared
    assert {f.severity for f in unstored} == {"warning"}
    assert "conveyor -A <app> scheduler" in unstored[0].fix
    assert "--beat" in unstored[0].fix
    sync_code_schedules(sched_app)  # what a scheduler does as it starts
    assert not [f for f in control.diagnose(sched_app) if f.check == "schedule-never-stored"]


def test_a_schedule_enqueue_would_refuse_is_refused_when_stored(sched_app: App) -> None:
    book = sched_app.schedules
    nearest = r"'reports\.dialy'.*did you mean 'reports\.daily'\? known: .*reports\.daily"
    with pytest.raises(UnknownTask, match=nearest):
        book.add("typo", "reports.dialy", every=60, args=["full"])
    with pytest.raises(ScheduleError, match=r"task 'reports\.daily' takes \(kind\); missing"):
        book.add("no-args", "reports.daily", every=60)
    with pytest.raises(ScheduleError, match="not a valid queue name"):
        book.add("bad-queue", "reports.daily", every=60, args=["x"], options={"queue": "a b"})
    book.add("ok", "reports.daily", every=60, args=["full"])
    with pytest.raises(UnknownTask, match=r"'reports\.dialy'"):
        book.update("ok", task="reports.dialy")
    with pytest.raises(ScheduleError, match="too many positional arguments"):
        book.update("ok", args=["full", "extra"])
    assert [(v.schedule.task, v.schedule.args) for v in book.list()] == [
        ("reports.daily", ["full"])
    ]


def test_schedules_declared_in_code_are_checked_too(sched_app: App) -> None:
    sched_app.conf.schedule["typo"] = {"task": "reports.dialy", "every": 60}
    with pytest.raises(UnknownTask, match=r"'reports\.dialy'.*known: "):
        sync_code_schedules(sched_app)  # the scheduler refuses to start with it
    del sched_app.conf.schedule["typo"]
    with pytest.raises(ScheduleError, match="missing a required argument: 'kind'"):

        @sched_app.periodic(every=60, schedule_name="no-args")
        def weekly(kind: str) -> None: ...


def test_periodic_name_names_the_task_and_schedule_name_the_schedule(sched_app: App) -> None:
    @sched_app.periodic(every=60, name="reports.tick")
    def tick() -> None: ...

    @sched_app.periodic(every=60, schedule_name="hourly")
    def hourly() -> None: ...

    declared = sched_app.declared_schedules()
    assert tick.name == "reports.tick"  # as @app.task(name=...) names it
    assert declared["reports.tick"].task == "reports.tick"
    assert hourly.name.endswith(".hourly")  # the default task name: module and function
    assert declared["hourly"].task == hourly.name
    with pytest.raises(ScheduleError, match=r"'hourly' is declared twice .*schedule_name="):

        @sched_app.periodic(every=5, schedule_name="hourly")
        def other() -> None: ...


def test_a_stored_schedule_enqueue_refuses_is_logged_and_the_others_fire(
    sched_app: App, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # stored before the task's parameters changed: the scheduler must not die of it
    spec = {
        **sched_app.schedules.add("old", "reports.daily", every=10, args=["x"]).spec(),
        "args": [],
    }
    sched_app.backend.put_schedule("old", spec)
    clock.now = 1_800_000_005.0
    leader = Scheduler(sched_app, name="a")
    leader.step()
    clock.advance(10)
    leader.step()
    leader.step()  # the refused tick is passed over, not retried every loop
    assert fired(sched_app) == [job_id("every-10s", 1_800_000_010.0)]
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1
    assert "schedule old: 1 tick(s) refused, nothing enqueued: task 'reports.daily'" in refused[0]


@pytest.mark.parametrize(
    "bad",
    [
        {"every": float("nan")},  # an older version took nan, inf, 1e999 (a store may keep null)
        {"every": 1e999},
        {"every": None, "cron": None},
        {"tz": "Mars/Olympus"},  # a zone a later tzdata dropped
    ],
)
def test_a_stored_schedule_that_does_not_load_is_logged_once_and_the_others_fire(
    sched_app: App, clock: FakeClock, caplog: pytest.LogCaptureFixture, bad: dict[str, object]
) -> None:
    caplog.set_level(logging.INFO, "conveyor.scheduler")
    spec = sched_app.schedules.add("broken", "reports.daily", every=10, args=["x"]).spec()
    sched_app.backend.put_schedule("broken", {**spec, **bad})  # as the older version stored it
    clock.now = 1_800_000_005.0
    leader = Scheduler(sched_app, name="a")
    leader.step()
    clock.advance(10)
    leader.step()
    leader.step()
    assert fired(sched_app) == [job_id("every-10s", 1_800_000_010.0)]
    skipped = [r for r in caplog.records if "skipped until it is fixed" in r.getMessage()]
    assert len(skipped) == 1, "logged once, not at every step"
    assert skipped[0].levelname == "ERROR"
    assert skipped[0].getMessage().startswith("schedule broken is skipped until it is fixed")
    # the listings leave it out (a page, doctor, the API still list the others); get names it
    assert "broken" not in {v.schedule.name for v in sched_app.schedules.list()}
    assert list(sched_app.schedules.broken()) == ["broken"]
    with pytest.raises(ScheduleError, match="the scheduler skips it: fix it with `conveyor sch"):
        sched_app.schedules.get("broken")
    # an edit fixes it (the stored value is not loaded first): it fires at its next tick
    sched_app.schedules.update("broken", every=10, tz="UTC")
    clock.advance(10)
    leader.step()
    assert job_id("broken", 1_800_000_020.0) in fired(sched_app, "broken")
    assert "schedule broken: fixed, firing again" in caplog.text


def test_a_tick_an_earlier_version_fired_under_the_legacy_id_is_not_fired_again(
    sched_app: App, clock: FakeClock
) -> None:
    clock.now = 1_800_000_005.0
    leader = Scheduler(sched_app, name="a")
    leader.step()
    # An old leader fired tick ...010 under its id, then died before writing the state.
    tick = 1_800_000_010.0
    old = Signature(sched_app.declared_schedules()["every-10s"].task, [], {}, {
        "queue": "beat", "job_id": "schedule:every-10s:1800000010000",
        "headers": {"schedule": "every-10s", "tick": tick},
    })  # fmt: skip
    sched_app.enqueue_many([old])
    clock.advance(15)  # now ...020: ticks ...010 and ...020 are due
    leader.step()
    assert fired(sched_app, "every-10s") == sorted(
        ["schedule:every-10s:1800000010000", job_id("every-10s", 1_800_000_020.0)]
    )
    view = sched_app.schedules.get("every-10s")
    assert view.last_tick == 1_800_000_020.0
    assert view.last_job_id == job_id("every-10s", 1_800_000_020.0)


def test_a_stored_grace_over_a_week_still_fires_and_an_unreadable_schedule_is_in_doctor(
    sched_app: App, clock: FakeClock
) -> None:
    """An earlier version took any misfire_grace: a schedule stored with 30 days still loads
    and fires (it acts as the week no older tick passes). One that cannot be read (a NaN
    interval an earlier version let through) is skipped and left out of the listings, so
    doctor, where an operator looks for work that stopped, names it, with the fix."""
    sched_app.schedules.add("weekly", "reports.daily", every=60, args=["full"])
    sched_app.schedules.add("broken", "reports.daily", every=60, args=["full"])
    specs = sched_app.backend.schedules()
    sched_app.backend.put_schedule("weekly", {**specs["weekly"][0], "misfire_grace": 30 * 86400.0})
    sched_app.backend.put_schedule("broken", {**specs["broken"][0], "every": float("nan")})
    clock.advance(120)
    Scheduler(sched_app, name="a").step()
    assert len(fired(sched_app, "weekly")) == 2  # both ticks, each within its grace
    assert fired(sched_app, "broken") == []
    (finding,) = [f for f in control.diagnose(sched_app) if f.check == "schedule-broken"]
    assert finding.severity == "error"
    assert "'broken'" in finding.problem
    assert "schedules edit broken" in finding.fix


def test_doctor_says_whether_a_scheduler_leads_when_a_schedule_is_late(
    sched_app: App, clock: FakeClock
) -> None:
    """A late schedule with no leader: start one; with a leader that renews its lock and
    fires nothing (its clock behind, a failure to fire): starting another would not help."""
    sync_code_schedules(sched_app)
    clock.advance(60)

    def late() -> control.Finding:
        (found,) = [f for f in control.diagnose(sched_app) if f.check == "schedule-late"]
        return found

    found = late()
    assert found.problem.endswith(
        "has not fired: no scheduler of app 'tests' leads (none holds its lock)"
    )
    assert "start a scheduler" in found.fix
    assert found.data == {"schedule": "every-10s", "app": "tests", "leader": None}
    assert sched_app.backend.acquire_lock(lock_name(sched_app), "sched-7", 10)
    found = late()
    assert "has not fired, though scheduler sched-7 leads app 'tests'" in found.problem
    assert found.fix.startswith("look at that scheduler's log")
    assert "start a scheduler" not in found.fix
    assert found.data["leader"] == "sched-7"
    clock.advance(10)  # it stopped renewing its lock: nobody leads
    assert late().data["leader"] is None


def test_doctor_reads_the_stored_schedules_once_for_broken_and_late_ones(
    sched_app: App, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_code_schedules(sched_app)
    sched_app.schedules.add("broken", "reports.daily", every=60, args=["full"])
    spec = sched_app.backend.schedules()["broken"][0]
    sched_app.backend.put_schedule("broken", {**spec, "every": float("nan")})
    clock.advance(60)
    stored = sched_app.backend.schedules
    reads = []
    monkeypatch.setattr(sched_app.backend, "schedules", lambda: reads.append(1) or stored())
    found = control.diagnose(sched_app)
    assert {
        (f.check, f.problem.split("'")[1]) for f in found if f.check.startswith("schedule")
    } == {
        ("schedule-broken", "broken"),
        ("schedule-late", "every-10s"),
    }
    assert len(reads) == 1
