"""Helpers shared by the control functions."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def to_json(value: Any) -> Any:
    """Dataclasses, enums, sets and bytes as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_json(v) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def parse_duration(text: str) -> float:
    """'90', '90s', '15m', '2h', '1d' as seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; use a number with s, m, h or d (e.g. 15m)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def seconds_text(every: float | None) -> str:
    """An interval as a form shows it for editing, in a form ``parse_duration`` reads back:
    whole seconds without a fraction or an exponent ('%g' gave 2.592e+06 for 30 days)."""
    return "" if every is None else str(int(every)) if every == int(every) else str(every)


def age(seconds: float | None) -> str:
    """A short human age: 42s, 5m 3s, 2h 10m, 3d 4h."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    for size, unit, small, small_unit in (
        (86400, "d", 3600, "h"),
        (3600, "h", 60, "m"),
        (60, "m", 1, "s"),
    ):
        if seconds >= size:
            rest = (seconds % size) // small
            return f"{seconds // size}{unit}" + (f" {rest}{small_unit}" if rest else "")
    return f"{seconds}s"


def clock(timestamp: float) -> str:
    """A time of day in UTC (the backend's clock), for messages about the next minutes."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%H:%M:%S UTC")


def in_zone(timestamp: float | None, tz: str) -> datetime | None:
    """A time as the clocks of ``tz`` (a schedule's IANA zone) read it, its offset kept:
    a cron schedule's next fire in the zone its expression counts in."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, ZoneInfo(tz))


def zoned_text(timestamp: float | None, tz: str) -> str:
    """``in_zone`` as a page or a table shows it: ``2026-12-03 01:00:00 Europe/Berlin``."""
    at = in_zone(timestamp, tz)
    return "" if at is None else f"{at:%Y-%m-%d %H:%M:%S} {tz}"


def hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


#: Conveyor's own ids: UUIDv7 text.
_GENERATED = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def short(job_id: str | None) -> str:
    """The end of a generated id (they begin with their time, so the start is shared by
    neighbours); a name-like id (one the caller chose, an old schedule fire) whole."""
    if job_id is None:
        return ""
    return job_id[-12:] if _GENERATED.fullmatch(job_id) else job_id
