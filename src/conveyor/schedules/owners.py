"""Which app a stored schedule belongs to, and so which app's scheduler fires it.

A schedule belongs to the app that stored it: a code schedule to the app that declares
it, one added at runtime (CLI, REST API, dashboard, Django admin) to the app of the
process that added it. The stored spec names that app (``OWNER``), and only that app's
scheduler fires it, so apps sharing a store never fire each other's schedules into
queues nothing of theirs consumes. A schedule stored by an earlier version names no
app: it is fired by an app that registers its task.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import App
    from .book import ScheduleView

#: The stored spec's key naming the app the schedule belongs to (its ``App`` name).
OWNER = "app"
#: The stored spec's key with the queue the owning app routes the schedule's task to. A
#: scheduler of this version fires only its own app's schedules, by its own routes; a
#: leader of an earlier version fires every app's, and sends another app's ticks there.
ROUTED = "routed_queue"
#: How ``others`` names the schedules an earlier version stored without an app.
UNNAMED = ""


def fires(app: App, spec: Mapping[str, Any]) -> bool:
    """Whether ``app``'s scheduler fires the stored schedule ``spec``."""
    return fired_by(app, spec.get(OWNER), spec.get("task"))


def fired_by(app: App, owner: str | None, task: object) -> bool:
    """Whether ``app``'s scheduler fires a schedule of ``owner`` (None: stored without
    one) for ``task``."""
    return owner == app.name or (owner is None and task in app.tasks)


def others(app: App, views: Iterable[ScheduleView]) -> dict[str, list[str]]:
    """The stored schedules ``app``'s scheduler does not fire, by the app they belong to
    (``UNNAMED``, last: stored by an earlier version, for a task ``app`` does not
    register), names sorted."""
    found: dict[str, list[str]] = {}
    for view in sorted(views, key=lambda v: v.schedule.name):
        if not fired_by(app, view.owner, view.schedule.task):
            found.setdefault(view.owner or UNNAMED, []).append(view.schedule.name)
    return {owner: found[owner] for owner in sorted(found, key=lambda o: (o == UNNAMED, o))}


def describe_others(app: App, found: Mapping[str, list[str]], *, limit: int = 5) -> str:
    """``others`` in one line: each app, how many of its schedules and which (the first
    ``limit``), and that this app's scheduler does not fire them."""

    def names(listed: list[str]) -> str:
        more = f", +{len(listed) - limit} more" if len(listed) > limit else ""
        return ", ".join(listed[:limit]) + more

    parts = [
        f"app {owner!r}: {len(listed)} ({names(listed)})"
        if owner != UNNAMED
        else f"no app named (an earlier version's, for tasks app {app.name!r} does not "
        f"register): {len(listed)} ({names(listed)})"
        for owner, listed in found.items()
    ]
    return (
        f"the store also holds other apps' schedules: {'; '.join(parts)}; the scheduler of "
        f"app {app.name!r} does not fire them (each app's own scheduler does)"
    )


def summary(app: App, views: Iterable[ScheduleView]) -> str | None:
    """``describe_others`` of the stored schedules ``views``; None when all are ``app``'s."""
    found = others(app, views)
    return describe_others(app, found) if found else None
