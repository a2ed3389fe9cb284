"""One account of a backend outage in a process's log, not a line per failed call.

While the backend cannot be reached, each of a worker's loops (claims, heartbeats, the
revocation watch, rescue, pruning, storing outcomes; each pool child's claims and
outcomes) fails about once a second and retries. Logged one by one that was some five ERROR lines a second, every one the
same exception, burying whatever else the log said. An ``Outage`` logs the first
failure with what the worker does meanwhile and what to check, then stays quiet at
ERROR level (each failure still goes to the debug log) but for a reminder every
``REMIND`` seconds, and says when the backend answers again and after how long.

Retries are unchanged: every loop keeps its own pace (``ERROR_BACKOFF``), so a backend
that comes back is used within a second. One ``Outage`` serves one process: a pool
child has its own, so an outage appears once per process. It is on while any loop's
calls fail, and over once each loop that failed has succeeded again: a fault that hits
one loop only (a pruning statement the server refuses, a watch that cannot open) is
one account with reminders, not an ERROR and an "answers again" for every retry while
the other loops succeed.

The scheduler keeps one too (its step fails about once a second while the backend is
away), so the module sits with the model, below both the worker and the scheduler.
A pool child names itself in its lines (``who``): the worker and each child tell an
outage once each, and two identical lines from two children read as one told twice.
The first line names what the user set to name the store (``named_by``: a
``conveyor.celery`` app's is Celery's broker URL setting, as they wrote it).
"""

from __future__ import annotations

import logging
import threading
import time

#: Seconds between reminders while an outage lasts.
REMIND = 30.0


class Outage:
    def __init__(
        self, log: logging.Logger, remind: float = REMIND, who: str = "", named_by: str = ""
    ) -> None:
        self.log, self.remind = log, remind
        #: What the user set to name the store (``Settings.backend_named_by``).
        self.named_by = named_by or "CONVEYOR_BACKEND (or App(backend=...))"
        #: Which process tells it, when the logger's name does not (a pool child).
        self.who = f" ({who})" if who else ""
        self._lock = threading.Lock()
        self._since: float | None = None  # monotonic time of the first failure
        self._next = 0.0  # when the next reminder is due
        self._failures = 0
        self._failing: set[str] = set()  # the loops whose last call failed
        self._meant = False  # whether this outage's log said what a failure means (leases)

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, what: str, exc: BaseException, meanwhile: str = "") -> None:
        """``what`` (a heartbeat, a claim, ...: one loop's calls, named as ``over`` names
        them) failed on ``exc``; ``meanwhile``: what that failure means if it goes on
        (leases running out), said with the first line, or on a line of its own if another
        call failed first."""
        now = time.monotonic()
        with self._lock:
            self._failures += 1
            self._failing.add(what)
            if self._since is None:
                self._since, self._next, self._failures = now, now + self.remind, 1
                self._meant = bool(meanwhile)
                said = "first"
            elif meanwhile and not self._meant:
                # What this failure means (the held jobs' leases run out) was not said:
                # another call failed first (a full worker claims nothing, and its
                # revocation watch notices a lost connection before a heartbeat is due).
                self._meant = True
                said = "meaning"
            elif now >= self._next:
                self._next = now + self.remind
                said = "reminder"
            else:
                self.log.debug("%s failed (%s)", what, exc)
                return
            failures, since, failing = self._failures, self._since, sorted(self._failing)
        if said == "first":
            self.log.error(
                "backend calls fail%s: %s failed (%s). Retrying every second%s; if the server "
                "cannot be reached, check that it runs and that %s names it. Further failures "
                "go to the debug log, with a reminder every %.0fs.",
                self.who, what, exc, f"; {meanwhile}" if meanwhile else "", self.named_by,
                self.remind,
            )  # fmt: skip
        elif said == "meaning":
            self.log.error(
                "backend calls fail%s: %s failed too (%s); %s", self.who, what, exc, meanwhile
            )
        else:
            self.log.error(
                "backend calls have failed%s for %.0fs (%d failed calls; still failing: %s; "
                "the last, %s: %s)",
                self.who, now - since, failures, ", ".join(failing), what, exc,
            )  # fmt: skip

    def over(self, what: str) -> None:
        """A call of ``what`` just succeeded: once every loop that failed has, say the
        outage ended."""
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            self._failing.discard(what)
            if self._since is None or self._failing:
                return  # nothing was wrong, or another loop still fails
            lasted, failures, self._since = time.monotonic() - self._since, self._failures, None
        self.log.warning(
            "the backend answers again%s, after %.0fs and %d failed calls",
            self.who, lasted, failures,
        )  # fmt: skip
