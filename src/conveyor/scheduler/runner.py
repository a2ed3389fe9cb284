"""The scheduler process: one leader at a time enqueues each due tick, exactly once.

Leadership is a backend lock with a TTL that the leader renews every loop; a standby
tries to take it every second, so it takes over within the TTL of a leader's death.
Exactly-once does not rest on the lock: a tick's job id is derived from the schedule
and the tick time, and enqueue ignores an id that exists, so two leaders at once (a
stalled leader waking after losing the lock) still enqueue each tick once.

Leadership is per app (``lock_name``): a scheduler leads and fires only its own app's
schedules (``schedules.owners``: a code schedule belongs to the app that declares it, a
runtime one to the app that added it, one stored by an earlier version without an app to
an app that registers its task), so apps sharing a store never fire each other's; two
schedulers of one app still elect one leader. A scheduler adds, updates and deletes
only its own app's code schedules. Every scheduler, leader or standby, also checks at
each step that its app's code schedules are still stored, and stores them again when the
store lost every one of them (a Redis restarted without persistence, a flush).

A leader of an earlier version (one lock for all apps, ``LOCK_NAME``) fires every stored
schedule while it runs beside this one: a tick either fires has the same job id, so it
is still enqueued once (docs/scheduler.md, "Apps sharing a store").
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from ..errors import BackendError, EnqueueError
from ..ids import new_id
from ..outage import Outage
from ..schedules import Schedule, ScheduleError, job_id
from ..schedules.owners import OWNER, ROUTED, fired_by, fires, summary
from ..schedules.schedule import legacy_job_id

if TYPE_CHECKING:
    from ..app import App
    from ..schedules import ScheduleView

log = logging.getLogger("conveyor.scheduler")
#: The lock an earlier version's schedulers share, all apps alike; this version's lock of
#: an app is named after it (``lock_name``).
LOCK_NAME = "conveyor:scheduler"
#: The longest the leader sleeps between looks at its schedules (seconds).
MAX_SLEEP = 1.0
#: The key-value entry each sync leaves for its app (``synced_key``): code schedules gone
#: while it is still there were deleted (by hand, or by a newer deploy's sync that no longer
#: declares them), not lost with the store, which loses it too.
SYNCED = "scheduler:synced:"
#: What a scheduler step failing means while the backend is away.
MEANWHILE = (
    "no schedule fires meanwhile; ticks missed for less than a schedule's misfire_grace "
    "(60 s) fire once it answers, older ones by its misfire policy"
)


class Scheduler:
    def __init__(self, app: App, *, lock_ttl: float = 10.0, name: str | None = None) -> None:
        self.app, self.backend = app, app.backend
        self.lock = lock_name(app)
        self.lock_ttl = lock_ttl
        self.id = name or new_id()
        self.leader = False
        self._stop = threading.Event()
        #: The schedules that failed to load or fire, by name: the stored spec (as text) that
        #: failed, so each failure is logged once, not at every step.
        self._broken: dict[str, str] = {}
        #: The code schedules this app declares, as stored by the last sync (None until
        #: the first step syncs): a step stores them again when every one is gone.
        self._declared: set[str] | None = None
        #: One account of a backend outage, not an ERROR for every failed step.
        self.outage = Outage(log, named_by=app.conf.backend_named_by())
        #: Set once the scheduler runs (``Service``).
        self.ready = threading.Event()

    @property
    def name(self) -> str:
        return f"scheduler {self.id}"

    def prepare(self) -> None:
        """Nothing to do before other threads start (``Service``)."""

    def stop(self, graceful: bool = True) -> None:
        """Stop after the current step (``Service``); a scheduler has nothing to drain."""
        self._stop.set()

    def survey(self) -> tuple[list[ScheduleView], str | None]:
        """For a banner: the stored schedules this scheduler fires, and a line on the other
        apps' it does not (None when there are none)."""
        views = self.app.schedules.survey()[0]
        own = [v for v in views if fired_by(self.app, v.owner, v.schedule.task)]
        return own, summary(self.app, views)

    def run(self) -> int:
        log.info("scheduler %s started; lock TTL %.0fs", self.id, self.lock_ttl)
        self.ready.set()
        try:
            while not self._stop.is_set():
                try:
                    pause = self.step()
                except BackendError as exc:
                    self.outage.failed("a scheduler step", exc, MEANWHILE)
                    pause = MAX_SLEEP
                else:
                    self.outage.over("a scheduler step")
                self._stop.wait(pause)
        finally:
            if self.leader:
                self.backend.release_lock(self.lock, self.id)
        return 0

    def step(self) -> float:
        """Lead if possible and fire due ticks; returns how long to sleep."""
        was_leader = self.leader
        self.leader = self.backend.acquire_lock(self.lock, self.id, self.lock_ttl)
        if self.leader != was_leader:
            log.log(
                logging.INFO if self.leader else logging.WARNING,
                "scheduler %s %s", self.id, "is now the leader" if self.leader else "lost the lead",
            )  # fmt: skip
        stored = self.backend.schedules()
        if self._declared is None or (self.leader and not was_leader):  # start, takeover
            self._declared = set(sync_code_schedules(self.app))
            stored = self.backend.schedules()
        elif (
            self._declared
            and not self._declared & set(stored)
            and self.backend.kv_get(SYNCED + self.app.name) is None
        ):
            # Every one gone, and the mark of the last sync with them: the store lost them.
            # The lock comes back by itself (the next renewal sets it again); the schedules
            # would not, and they would stop firing without a word. A standby checks too,
            # as the leader of its app may be of an earlier version. (Gone with the
            # mark still there: deleted at runtime, or by a newer deploy's scheduler that
            # no longer declares them, whose sync this one, still running the old code,
            # must not undo: left to the next start.)
            log.warning(
                "schedule(s) %s: declared in code but no longer stored (the store lost them: "
                "restarted without persistence, or flushed): storing them again",
                ", ".join(sorted(self._declared)),
            )  # fmt: skip
            self._declared = set(sync_code_schedules(self.app))
            stored = self.backend.schedules()
        if not self.leader:
            return MAX_SLEEP
        now = self.backend.now()
        upcoming = [
            self._step_one(name, spec, state, now)
            for name, (spec, state) in stored.items()
            if not spec.get("paused") and fires(self.app, spec)
        ]
        soonest = min((t for t in upcoming if t is not None), default=now + MAX_SLEEP)
        return max(0.01, min(MAX_SLEEP, self.lock_ttl / 3, soonest - self.backend.now()))

    def _step_one(
        self, name: str, spec: dict[str, Any], state: dict[str, Any], now: float
    ) -> float | None:
        """Fire one schedule's due ticks; returns its next run, or None if it is broken.

        One bad schedule must not stop the others: a stored schedule that does not load
        (an older version stored a value this one refuses) or fails to fire is logged,
        once until its spec changes, and skipped; its state is left as it was, so once it
        is fixed its missed ticks fire by its misfire policy. A backend failure is not the
        schedule's: it stops the step, and ``run`` retries."""
        try:
            next_run = self._fire_due(Schedule.from_spec(spec), state, now)
        except BackendError:
            raise
        except Exception as exc:  # whatever it is, it is this schedule's alone
            if self._broken.get(name) != (seen := repr(spec)):
                self._broken[name] = seen
                log.error("schedule %s is skipped until it is fixed (`conveyor schedules edit` "
                          "or `delete`): %s: %s", name, type(exc).__name__, exc)  # fmt: skip
            return None
        if self._broken.pop(name, None) is not None:
            log.info("schedule %s: fixed, firing again", name)
        return next_run

    def _fire_due(self, schedule: Schedule, state: dict[str, Any], now: float) -> float:
        """Enqueue the schedule's due ticks; returns its next run time."""
        after = state.get("last_tick") or state.get("created_at") or now
        due = schedule.ticks(after, now)
        if not due:
            next_run = schedule.next_tick(max(after, now))
            if state.get("next_run") != next_run:
                self.backend.set_schedule_state(schedule.name, {**state, "next_run": next_run})
            return next_run
        fire = schedule.to_fire(due, now)
        if len(fire) < len(due):
            log.warning(
                "schedule %s: skipped %d missed tick(s) (misfire=%s)",
                schedule.name,
                len(due) - len(fire),
                schedule.misfire,
            )
        fire = self._enqueue(schedule, fire) if fire else []
        next_run = schedule.next_tick(due[-1])
        self.backend.set_schedule_state(schedule.name, {
            **state, "last_tick": due[-1], "next_run": next_run,
            "last_run_at": now if fire else state.get("last_run_at"),
            "last_job_id": job_id(schedule.name, fire[-1]) if fire else state.get("last_job_id"),
        })  # fmt: skip
        return next_run

    def _enqueue(self, schedule: Schedule, ticks: list[float]) -> list[float]:
        """Enqueue the ticks' jobs; returns the ticks it enqueued. A schedule that enqueue
        refuses (stored before its task's parameters changed, say) is logged and its ticks
        passed over, never retried every loop: one bad schedule must not stop the others."""
        # A tick an earlier version fired has its job under the legacy id, which enqueue's
        # id check does not see: an old leader killed between its enqueue and its state
        # write, or one waking after a new leader took over, would fire the tick twice.
        # One read for all the ticks. Drop it once no supported version can be upgraded
        # from one that used ``schedule:<name>:<ms>`` ids (and such jobs are pruned).
        legacy = {legacy_job_id(schedule.name, tick): tick for tick in ticks}
        done = {legacy[job] for job in self.backend.get_many(list(legacy))}
        ticks = [tick for tick in ticks if tick not in done]
        if not ticks:
            return []
        try:
            self.app.enqueue_many(schedule.signature(tick) for tick in ticks)
        except EnqueueError as exc:
            why = exc.__cause__ or exc  # every tick is the same call: not which one
            log.error("schedule %s: %d tick(s) refused, nothing enqueued: %s; fix it with "
                      "`conveyor schedules edit`", schedule.name, len(ticks), why)  # fmt: skip
            return []
        log.info("schedule %s: enqueued %d tick(s), last %s",
                 schedule.name, len(ticks), job_id(schedule.name, ticks[-1]))  # fmt: skip
        return ticks


def lock_name(app: App) -> str:
    """The leader lock of ``app``'s schedulers: one leader per app, never ``LOCK_NAME``,
    which schedulers of an earlier version hold (they fire every app's schedules)."""
    return leader_lock(app.name)


def leader_lock(app_name: str) -> str:
    """The leader lock of the schedulers of the app named ``app_name`` (``lock_name``):
    read by name for an app not loaded here (another app's schedules in a shared store)."""
    return f"{LOCK_NAME}:app:{app_name}"


def sync_code_schedules(app: App) -> list[str]:
    """Store the schedules the app declares in code; returns their names. A stored one is
    replaced only when its declaration changed (``code_hash``, which a runtime edit keeps:
    the edit and a pause survive until then); this app's code schedules no longer
    declared are deleted.

    Only this app's code schedules are touched (``OWNER``): another app sharing the store
    keeps its own, and schedules added at runtime are never deleted here. A code schedule
    stored by an earlier version names no app: a declaration of it claims it (keeping its
    runtime edit); undeclared, it is deleted when this app registers its task (it was this
    app's, and its declaration is gone, as before), else left as it is, logged (another
    app's, whose scheduler claims it when it starts)."""
    stored = app.backend.schedules()
    declared = app.declared_schedules()
    for name, schedule in declared.items():
        _store(app, schedule, stored.get(name))
    _drop_undeclared(app, stored, set(declared))
    app.backend.kv_set(SYNCED + app.name, sorted(declared))  # this app synced (``SYNCED``)
    return list(declared)


def _store(app: App, schedule: Schedule, old: tuple[dict[str, Any], Any] | None) -> None:
    """Store one declared schedule over what is stored under its name (``old``)."""
    name = schedule.name
    owner = old[0].get(OWNER) if old is not None else None
    if old is not None and old[0].get("source") == "code" and owner not in (None, app.name):
        log.warning("schedule %s: declared by app %r and by app %r, whose stored schedule "
                    "is left as it is: rename one of the two (schedule_name=, or the key "
                    "in the schedule setting)", name, app.name, owner)  # fmt: skip
        return
    routed = app.queue_for(schedule.task, schedule.options)
    if old is not None and old[0].get("code_hash") == schedule.code_hash():
        if (owner, old[0].get(ROUTED)) != (app.name, routed):  # claimed, or rerouted
            app.backend.put_schedule(name, {**old[0], OWNER: app.name, ROUTED: routed})
        return
    spec = {
        **schedule.spec(),
        "code_hash": schedule.code_hash(),
        "paused": bool(old and old[0].get("paused")),
        OWNER: app.name,
        ROUTED: routed,
    }
    app.backend.put_schedule(name, spec)
    if old is None:
        app.backend.set_schedule_state(name, {"created_at": app.backend.now()})
        log.info("schedule %s: added from code", name)
    elif (current := _hash(old[0])) == spec["code_hash"]:
        pass  # stored as declared but without its hash (an older version's pause)
    elif old[0].get("code_hash") not in (None, current):
        log.warning("schedule %s: updated from code (its declaration changed), "
                    "replacing the runtime edit", name)  # fmt: skip
    else:
        log.info("schedule %s: updated from code", name)


def _drop_undeclared(
    app: App, stored: dict[str, tuple[dict[str, Any], dict[str, Any]]], declared: set[str]
) -> None:
    """Delete this app's stored code schedules that its code no longer declares."""
    for name, (spec, _) in stored.items():
        if spec.get("source") != "code" or name in declared:
            continue
        owner = spec.get(OWNER)
        if owner == app.name or (owner is None and spec.get("task") in app.tasks):
            app.backend.delete_schedule(name)
            log.info("schedule %s: deleted (no longer declared in code)", name)
        elif owner is None:
            log.info("schedule %s: stored from code by an earlier version, for task %s, which "
                     "app %r does not register: left as it is, as another app's (delete it "
                     "with `schedules delete %s` if no app declares it)",
                     name, spec.get("task"), app.name, name)  # fmt: skip


def _hash(spec: dict[str, Any]) -> str | None:
    """The code hash of a stored schedule as it is now (a runtime edit changes it)."""
    try:
        return Schedule.from_spec(spec).code_hash()
    except ScheduleError:  # stored by a version that allowed it
        return None
