"""``crontab`` and ``beat_schedule`` entries, turned into Conveyor schedules
(``celery.schedules``). The scheduler (``conveyor scheduler``, Celery's ``beat``) fires them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..errors import ConfigurationError
from .exceptions import NotSupported

__all__ = ["crontab", "schedule", "solar", "to_conveyor"]

CronField = int | str | Iterable[int | str]


def _field(value: CronField, name: str) -> str:
    if isinstance(value, bool):
        raise ConfigurationError(f"crontab({name}={value!r}): pass a number, text or a list")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if not text or " " in text:
            raise ConfigurationError(f"crontab({name}={value!r}) is not a cron field")
        return text
    return ",".join(_field(v, name) for v in sorted(value, key=str))


@dataclass(frozen=True)
class crontab:
    """A cron schedule, in the app's ``timezone`` (or ``tz``, which Conveyor adds)."""

    minute: CronField = "*"
    hour: CronField = "*"
    day_of_week: CronField = "*"
    day_of_month: CronField = "*"
    month_of_year: CronField = "*"
    tz: str | None = None

    @property
    def expression(self) -> str:
        """The five-field cron expression (minute hour day month weekday)."""
        return " ".join([
            _field(self.minute, "minute"), _field(self.hour, "hour"),
            _field(self.day_of_month, "day_of_month"), _field(self.month_of_year, "month_of_year"),
            _field(self.day_of_week, "day_of_week"),
        ])  # fmt: skip


@dataclass(frozen=True)
class schedule:
    """An interval: ``schedule(run_every=30)`` or a ``timedelta``."""

    run_every: float | timedelta

    @property
    def seconds(self) -> float:
        every = self.run_every
        return every.total_seconds() if isinstance(every, timedelta) else float(every)


def solar(*_: Any, **__: Any) -> None:
    """Celery's sunrise/sunset schedules."""
    raise NotSupported(
        "solar()", "Conveyor schedules are cron or intervals", "use a crontab at fixed times"
    )


#: beat_schedule ``options`` a Conveyor schedule carries to its jobs.
_OPTIONS = ("queue", "priority", "expires", "headers")


def to_conveyor(name: str, entry: Mapping[str, Any], timezone: str) -> tuple[str, dict[str, Any]]:
    """A ``beat_schedule`` entry as an entry of Conveyor's ``app.conf.schedule``.

    Conveyor names a schedule with letters, digits and ``. : @ - _``: spaces in Celery's
    names (``"add every 10 seconds"``) become ``-``.
    """
    known = {"task", "schedule", "args", "kwargs", "options", "relative"}
    unknown = set(entry) - known
    where = f"beat_schedule[{name!r}]"
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                                 f"known: {', '.join(sorted(known))}")  # fmt: skip
    if entry.get("relative"):
        raise NotSupported(f"{where}: relative=True", "interval ticks are multiples of the "
                           "interval since the epoch, so every scheduler agrees", "drop it")  # fmt: skip
    if "task" not in entry or "schedule" not in entry:
        raise ConfigurationError(f"{where} needs 'task' and 'schedule'")
    out: dict[str, Any] = {"task": entry["task"], "args": list(entry.get("args") or ()),
                           "kwargs": dict(entry.get("kwargs") or {})}  # fmt: skip
    when = entry["schedule"]
    if isinstance(when, crontab):
        out.update(cron=when.expression, tz=when.tz or timezone)
    elif isinstance(when, schedule):
        out["every"] = when.seconds
    elif isinstance(when, timedelta):
        out["every"] = when.total_seconds()
    elif isinstance(when, int | float) and not isinstance(when, bool):
        out["every"] = float(when)
    else:
        raise ConfigurationError(
            f"{where}: schedule must be seconds, a timedelta, schedule() or crontab(), not {when!r}"
        )
    options = dict(entry.get("options") or {})
    bad = set(options) - set(_OPTIONS)
    if bad:
        raise NotSupported(f"{where}: options {', '.join(sorted(bad))}", "a schedule's jobs "
                           f"take {', '.join(_OPTIONS)}", "route the task with task_routes")  # fmt: skip
    out.update(options)
    return name.replace(" ", "-"), out
