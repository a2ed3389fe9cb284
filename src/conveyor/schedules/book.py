"""``app.schedules``: schedules stored in the backend, editable at runtime.

Edits take effect at the schedule's next tick: the scheduler re-reads schedules every
loop, so nothing needs a restart.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import EnqueueError
from .owners import OWNER, ROUTED
from .schedule import Schedule, ScheduleError

if TYPE_CHECKING:
    from ..app import App
    from ..job import Job

log = logging.getLogger("conveyor.schedules")


@dataclass
class ScheduleView:
    """A schedule with its firing state: last run, the job it produced, next run."""

    schedule: Schedule
    last_tick: float | None
    last_run_at: float | None
    last_job_id: str | None
    #: When it fires next; None while it is paused (it fires nothing until resumed).
    next_run: float | None
    #: The app it belongs to, whose scheduler fires it (``owners``); None: stored by an
    #: earlier version, fired by an app that registers its task.
    owner: str | None = None


class ScheduleBook:
    def __init__(self, app: App) -> None:
        self.app = app

    def _load(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        return self.app.backend.schedules()

    def survey(self) -> tuple[list[ScheduleView], dict[str, str]]:
        """Both at one read of the stored schedules: those that load (``list``, not
        logged) and those that do not, by name, with what is wrong (``broken``)."""
        now = self.app.backend.now()
        views, broken = [], {}
        for name, (spec, state) in self._load().items():
            try:
                views.append(_view(spec, state, now))
            except ScheduleError as exc:
                broken[name] = str(exc)
        return views, broken

    def list(self) -> list[ScheduleView]:
        """Every stored schedule that loads. One that does not (``broken``) is left out and
        logged, so one bad schedule does not stop a page, ``doctor`` or the API listing
        the others; ``get`` names what is wrong with it."""
        views, broken = self.survey()
        for name, why in broken.items():
            log.error("schedule %s is left out of the list: %s", name, why)
        return views

    def broken(self) -> dict[str, str]:
        """The stored schedules that do not load, by name, with what is wrong with each."""
        return self.survey()[1]

    def _stored(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        found = self._load().get(name)
        if found is None:
            raise ScheduleError(
                f"no schedule is named {name!r}; `conveyor schedules list` shows them"
            )
        return found

    def get(self, name: str) -> ScheduleView:
        return _view(*self._stored(name), self.app.backend.now())

    def add(self, name: str, task: str, **fields: Any) -> Schedule:
        """Store a new schedule (``cron=`` or ``every=``, plus args, kwargs, options, tz, misfire).

        It belongs to this app, as a code schedule belongs to the app that declares it: only
        this app's scheduler fires it (``owners``)."""
        if name in self._load():
            raise ScheduleError(f"a schedule named {name!r} exists; edit it with update()")
        schedule = Schedule(name, task, **fields)
        check_schedule(self.app, schedule)
        routed = self.app.queue_for(schedule.task, schedule.options)
        self.app.backend.put_schedule(
            name, {**schedule.spec(), OWNER: self.app.name, ROUTED: routed}
        )
        self.app.backend.set_schedule_state(name, {"created_at": self.app.backend.now()})
        return schedule

    def update(self, name: str, **changes: Any) -> Schedule:
        """Change fields of a schedule; it takes effect at the next tick.

        A code schedule keeps the hash of the declaration it was stored from, so the
        scheduler's start-up sync keeps the edit until that declaration changes."""
        stored = self._stored(name)[0]
        # As stored, not loaded: an edit can fix a schedule an older version stored with a
        # value this one refuses.
        spec = {k: v for k, v in stored.items() if k in Schedule.__dataclass_fields__}
        if "cron" in changes and changes["cron"] is not None:
            spec["every"] = None
        if "every" in changes and changes["every"] is not None:
            spec["cron"] = None
        unknown = set(changes) - set(Schedule.__dataclass_fields__)
        if unknown:
            raise ScheduleError(f"unknown schedule field(s): {', '.join(sorted(unknown))}")
        spec.update(changes)
        schedule = Schedule.from_spec(spec)
        # What the scheduler's sync keeps with a code schedule: the hash of its declaration,
        # the app that owns it and the queue that app routes it to.
        kept: dict[str, Any] = {k: stored[k] for k in ("code_hash", OWNER, ROUTED) if k in stored}
        if set(changes) - {"paused"}:  # a pause changes nothing a tick enqueues: any app's
            check_schedule(self.app, schedule)
            if kept.get(OWNER) == self.app.name:  # rerouted by the edit, as its sync would
                kept[ROUTED] = self.app.queue_for(schedule.task, schedule.options)
        self.app.backend.put_schedule(name, {**schedule.spec(), **kept})
        return schedule

    def pause(self, name: str) -> Schedule:
        return self.update(name, paused=True)

    def resume(self, name: str) -> Schedule:
        return self.update(name, paused=False)

    def run_now(self, name: str) -> Job:
        """One job now, with the schedule's arguments and options; its ticks are unchanged.

        Another app's schedule (every app's pages list them) goes to the queue its app
        routes it to, stored with it, as that app's scheduler sends its ticks: not where
        this app's routes would send a task it may not have."""
        spec, state = self._stored(name)
        s = _view(spec, state, self.app.backend.now()).schedule
        options = dict(s.options)
        if spec.get(OWNER) not in (None, self.app.name) and spec.get(ROUTED):
            options.setdefault("queue", spec[ROUTED])
        options["headers"] = {**options.get("headers", {}), "schedule": s.name, "run_now": True}
        return self.app.send_task(s.task, s.args, s.kwargs, **options)

    def delete(self, name: str) -> None:
        if not self.app.backend.delete_schedule(name):
            raise ScheduleError(f"no schedule is named {name!r}")


def check_schedule(app: App, schedule: Schedule) -> None:
    """Refuse a schedule whose ticks enqueue would refuse: a task the app does not register
    (``UnknownTask``, naming the known ones, as ``conveyor enqueue`` does), arguments that
    do not fit the task, a bad option.

    The scheduler enqueues by name, so it could fire a task it does not import, as Celery's
    beat does. Conveyor does not allow it: every process builds the same app (``-A``), so
    a name the app does not know is a typo, which would otherwise fail in a worker at every
    tick. No backend is needed here, so ``@app.periodic`` checks at import, on this
    machine's clock: an ``expires`` (seconds from each tick) must be more than 0, and an
    expires instant still ahead.
    """
    app.get_task(schedule.task)
    try:
        app.build_record(schedule.signature(0.0), time.time())
    except EnqueueError as exc:
        message = str(exc).replace("(nothing was queued)", "").rstrip()
        raise ScheduleError(
            f"schedule {schedule.name!r}: {message}; the schedule was not stored"
        ) from None


def _loaded(spec: dict[str, Any]) -> Schedule:
    try:
        return Schedule.from_spec(spec)
    except ScheduleError as exc:  # stored by an earlier version that took the value
        raise ScheduleError(
            f"{exc} (as stored); the scheduler skips it: fix it with `conveyor schedules "
            f"edit {spec.get('name')}` or delete it"
        ) from None


def _view(spec: dict[str, Any], state: dict[str, Any], now: float) -> ScheduleView:
    schedule = _loaded(spec)
    next_run = state.get("next_run")
    if schedule.paused:  # the stored next run is the one it had when it was paused
        next_run = None
    elif next_run is None:  # not seen by a scheduler yet: its first tick since it was stored
        next_run = schedule.next_tick(state.get("last_tick") or state.get("created_at", now))
    return ScheduleView(
        schedule,
        state.get("last_tick"),
        state.get("last_run_at"),
        state.get("last_job_id"),
        next_run,
        spec.get(OWNER),
    )
