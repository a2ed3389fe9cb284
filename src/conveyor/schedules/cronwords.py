"""A refused cron expression in words: which field, the value given, what it accepts.

cronsim (the parser) names only the field ("Bad hour"); a user reading that must count
the fields of ``0 25 * * *`` and remember each one's range. Every edge that takes a cron
(``@app.periodic``, ``app.schedules``, the CLI, the REST API, the dashboard) checks it
through ``Schedule.validate``, so each says the same words.
"""

from __future__ import annotations

from datetime import datetime

from cronsim import CronSim, CronSimError

__all__ = ["cron_problem"]

#: The five fields, in order (cronsim also takes a leading seconds field: six).
FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
#: What each field takes, as cronsim's own error names it.
ACCEPTS = {
    "second": "0-59",
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31, L (the last day) or LW (the last weekday)",
    "month": "1-12 or JAN-DEC",
    "day-of-week": "0-7 (0 and 7 are Sunday) or SUN-SAT, n#k (the k-th weekday n) or nL (the last)",
}
FORMS = "a value, a list a,b, a range a-b, or a step */n or a-b/n"


def cron_problem(expression: str, exc: CronSimError) -> str:
    """What is wrong with ``expression``, which cronsim refused with ``exc``."""
    parts = expression.split()
    if len(parts) not in (5, 6):
        return (
            f"it has {len(parts)} field(s); give 5, separated by spaces: "
            f"{' '.join(FIELDS)} (e.g. '0 2 * * *' is 02:00 every day)"
        )
    names = ("second", *FIELDS) if len(parts) == 6 else FIELDS
    said = str(exc).removeprefix("Bad ")
    if said not in names:
        return str(exc)
    value = parts[names.index(said)]
    if said == "day-of-month" and _in_range(parts, names):
        return (
            f"the day-of-month field is {value!r}, a day no month of the month field "
            f"({parts[names.index('month')]!r}) has"
        )
    return f"the {said} field is {value!r}; it takes {ACCEPTS[said]}, as {FORMS}"


def _in_range(parts: list[str], names: tuple[str, ...]) -> bool:
    """Whether the day-of-month field alone is valid (so the months refused it)."""
    alone = ["*"] * len(names)
    alone[names.index("day-of-month")] = parts[names.index("day-of-month")]
    try:
        CronSim(" ".join(alone), datetime(2000, 1, 1))
    except CronSimError:
        return False
    return True
