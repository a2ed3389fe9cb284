"""A schedule: which task to enqueue, and when (cron in a time zone, or a fixed interval).

Tick times are pure functions of the schedule, so every scheduler process computes the
same ones:

- ``cron`` ticks follow the expression in ``tz`` (cronsim, Debian cron's rules for DST:
  a time skipped by spring-forward runs once, at the first valid minute after it; a time
  repeated by fall-back runs once, unless the expression asks for every hour);
- ``every`` ticks are the multiples of the interval since the Unix epoch, so a 30 s
  schedule fires at :00 and :30 whoever computes it.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from cronsim import CronSim, CronSimError

from ..errors import ConveyorError
from ..ids import derived_id
from ..serialization import check_jsonable
from ..task import Signature
from .cronwords import cron_problem

MISFIRE_POLICIES = ("once", "all", "skip")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


#: The shortest interval accepted (seconds).
MIN_EVERY = 1.0
#: The longest interval accepted (seconds): a year, as the longest delay the API takes.
MAX_EVERY = 366 * 86400.0
#: Ticks older than this are never fired, whatever the misfire policy (seconds): 7 days.
MAX_CATCHUP_AGE = 7 * 86400.0
#: At most this many missed ticks are fired at once under ``misfire="all"``.
MAX_CATCHUP_TICKS = 1000
_NAME = re.compile(r"^[\w.:@-]{1,100}$")
_OPTIONS = {"queue", "priority", "expires", "headers"}


class ScheduleError(ConveyorError):
    """The schedule is not valid."""


@dataclass
class Schedule:
    name: str
    task: str
    cron: str | None = None
    every: float | None = None
    tz: str = "UTC"
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: Enqueue options for its jobs: queue, priority, expires, headers.
    options: dict[str, Any] = field(default_factory=dict)
    #: After downtime longer than the grace period: "once" (one job for all missed
    #: ticks), "all" (every missed tick) or "skip" (none).
    misfire: str = "once"
    #: Missed ticks younger than this always fire (a scheduler failover, a restart).
    misfire_grace: float = 60.0
    paused: bool = False
    #: "code" (declared in the app; re-synced when the code changes) or "runtime".
    source: str = "runtime"

    def __post_init__(self) -> None:
        if isinstance(self.every, timedelta):
            self.every = self.every.total_seconds()
        self.args = list(self.args)
        self.validate()

    def validate(self) -> None:
        if not _NAME.match(self.name):
            raise ScheduleError(
                f"schedule name {self.name!r}: use 1-100 letters, digits and . : @ - _"
            )
        if (self.cron is None) == (self.every is None):
            raise ScheduleError(
                f"schedule {self.name!r}: give exactly one of cron=... or every=..."
            )
        try:
            zone = ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(
                f"schedule {self.name!r}: unknown time zone {self.tz!r}; use an IANA name such as Europe/Berlin"
            ) from None
        if self.cron is not None:
            try:
                CronSim(self.cron, datetime.now(zone))
            except CronSimError as exc:
                raise ScheduleError(
                    f"schedule {self.name!r}: cron {self.cron!r} is not valid: "
                    f"{cron_problem(self.cron, exc)}"
                ) from None
        if self.every is not None and not (
            _finite(self.every) and MIN_EVERY <= self.every <= MAX_EVERY
        ):
            raise ScheduleError(
                f"schedule {self.name!r}: every must be {MIN_EVERY:g} s to "
                f"{MAX_EVERY / 86400:g} days (a year), not {self.every!r:.20}"
            )
        # Any finite grace (an earlier version stored schedules without a bound, and
        # refusing them now would stop them firing): one over MAX_CATCHUP_AGE acts as
        # MAX_CATCHUP_AGE, since no older tick is ever fired.
        if not (_finite(self.misfire_grace) and self.misfire_grace >= 0):
            raise ScheduleError(
                f"schedule {self.name!r}: misfire_grace must be a number of seconds, 0 or "
                f"more, not {self.misfire_grace!r}"
            )
        if self.misfire not in MISFIRE_POLICIES:
            raise ScheduleError(
                f"schedule {self.name!r}: misfire must be one of {', '.join(MISFIRE_POLICIES)}"
            )
        if set(self.options) - _OPTIONS:
            raise ScheduleError(
                f"schedule {self.name!r}: options may be {', '.join(sorted(_OPTIONS))}"
            )
        check_jsonable(self.args, "args")
        check_jsonable(self.kwargs, "kwargs")
        check_jsonable(self.options, "options")

    def spec(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Schedule:
        known = {k: v for k, v in spec.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def signature(self, tick: float) -> Signature:
        """The job a tick enqueues; its id comes from the tick, so the tick fires once."""
        headers = {**self.options.get("headers", {}), "schedule": self.name, "tick": tick}
        options = {**self.options, "headers": headers, "job_id": job_id(self.name, tick)}
        return Signature(self.task, self.args, self.kwargs, options)

    def code_hash(self) -> str:
        """A hash of what the declaration sets: the fields whose value is not the default
        (``paused`` aside, which a runtime pause owns). A field a later version adds, with
        a default, leaves every existing declaration's hash, and so its runtime edit, as
        it was."""
        data = {
            f.name: value
            for f in fields(self)
            if f.name != "paused" and (value := getattr(self, f.name)) != _default(f)
        }
        return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]

    # -- tick arithmetic ------------------------------------------------------------------

    def ticks(self, after: float, until: float) -> list[float]:
        """Tick times t with after < t <= until, oldest first (at most MAX_CATCHUP_TICKS,
        the most recent ones; nothing older than MAX_CATCHUP_AGE)."""
        after = max(after, until - MAX_CATCHUP_AGE)
        if self.every is not None:
            first = math.floor(after / self.every) + 1
            last = math.floor(until / self.every)
            first = max(first, last - MAX_CATCHUP_TICKS + 1)
            return [k * self.every for k in range(first, last + 1)]
        found: list[float] = []
        for moment in CronSim(self.cron or "", datetime.fromtimestamp(after, ZoneInfo(self.tz))):
            stamp = moment.timestamp()
            if stamp > until:
                break
            found.append(stamp)
            if len(found) > MAX_CATCHUP_TICKS:
                found.pop(0)
        return found

    def next_tick(self, after: float) -> float:
        """The first tick strictly after ``after``."""
        if self.every is not None:
            return (math.floor(after / self.every) + 1) * self.every
        return next(
            iter(CronSim(self.cron or "", datetime.fromtimestamp(after, ZoneInfo(self.tz))))
        ).timestamp()

    def to_fire(self, due: list[float], now: float) -> list[float]:
        """Which of the due ticks to enqueue, by the misfire policy."""
        if not due or now - due[0] <= self.misfire_grace:
            return due  # on time, or a short gap (failover, restart): every tick fires
        if self.misfire == "all":
            return due
        recent = [t for t in due if now - t <= self.misfire_grace]
        if self.misfire == "skip":
            return recent
        return recent or due[-1:]  # "once": the missed ticks become one job


def _default(f: Any) -> Any:
    """A dataclass field's default value (``MISSING`` when it has none)."""
    if f.default_factory is not MISSING:
        return f.default_factory()
    return f.default


def job_id(name: str, tick: float) -> str:
    """The id of the job a tick produces: the same in every scheduler, so a tick fires once.

    A UUIDv7 of the tick's millisecond (the rest hashed from the name and tick), so a
    fired job sorts with the jobs created at its tick in "newest first" lists. The job's
    ``schedule`` and ``tick`` headers say which schedule fired it. (Earlier versions used the id
    ``legacy_job_id`` gives; stores keep such jobs until they are pruned.)
    """
    ms = round(tick * 1000)
    return derived_id(ms, f"{name}:{ms}")


def legacy_job_id(name: str, tick: float) -> str:
    """The id earlier versions gave a tick's job: ``schedule:<name>:<tick in ms>``."""
    return f"schedule:{name}:{round(tick * 1000)}"
