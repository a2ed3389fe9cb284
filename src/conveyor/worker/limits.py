"""Exceptions delivered into the thread running a sync task: its soft and hard time limits,
and a revoke with ``terminate=True``. ``ThreadRun`` is the one mechanism for all three.

Two ways to deliver, chosen per run:

- time limits on the main thread of a POSIX process (process-pool children): ``SIGALRM``
  from ``setitimer``. The handler raises in the task, and signals interrupt sleeps and
  blocking I/O, so a task stuck in ``time.sleep`` or ``socket.recv`` is reached.
- everything else (terminate; limits in thread and solo pools, on Windows):
  ``PyThreadState_SetAsyncExc``, as Dramatiq does for its thread time limits. The
  exception lands at the task's next check between bytecodes, within moments for Python
  code; it cannot interrupt one long call into C code (a sleep, a blocking read, a big
  hash), where it lands when that call returns. The process pool therefore enforces hard
  limits and terminate by killing the child.

What keeps an asynchronous exception safe and the record honest:

- it is raised only while the run is open: ``interrupt`` and ``__exit__`` share a lock,
  and ``__exit__`` drops an exception raised but not landed yet, so it can never reach
  the next job the thread runs. It drops it by raising a marker in its place and
  catching it, never by clearing with ``PyThreadState_SetAsyncExc(id, NULL)``: on
  CPython 3.11 a clear leaves the interpreter's "asynchronous exception pending" flag
  set for good, and under any tracer or profiler (cProfile, coverage, a debugger) the
  next Python call then spins forever at its first instruction. A run nothing was
  raised into (nearly every run) makes no such call at all;
- each one is raised once per run (a second terminate does not interrupt the task's
  ``finally`` cleanup), as a one-off subclass of its class whose constructor runs where
  it lands: the run knows whether and when it landed, and ``unheeded`` turns a terminate
  or hard limit that did not stop the task (still in C code, or caught) into the
  error the job's record must show.

``async def`` tasks get their limits from ``asyncio.timeout`` instead (see execution).
"""

from __future__ import annotations

import collections
import ctypes
import functools
import logging
import operator
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any, cast

from ..errors import SoftTimeLimitExceeded, TaskControl, Terminated, TimeLimitExceeded

log = logging.getLogger("conveyor.worker")

#: An exception landing this long after it was raised was held up by a call into C code.
LATE = 0.5
#: A terminated task still running this long after the exception was raised is logged.
GRACE = 1.0

_C_CALL = (
    "a call into C code (a sleep, a blocking read, a long computation) that no exception "
    "can interrupt"
)


_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc


def raise_in_thread(thread_id: int, exc_type: type[BaseException] | None) -> bool:
    """Raise ``exc_type`` in the thread ``thread_id`` (None clears a pending one)."""
    arg = ctypes.py_object(exc_type) if exc_type is not None else None
    done = _set_async_exc(ctypes.c_ulong(thread_id), arg)
    if done > 1:  # more than one thread state touched: undo, as the C API asks
        _set_async_exc(ctypes.c_ulong(thread_id), None)
        return False
    return bool(done)


class _Dropped(BaseException):
    """Raised by a closing run into its own thread in place of an exception that had not
    landed, and caught there at once (see ``ThreadRun.close``)."""


def _checkpoint() -> None:
    """A Python call: the interpreter delivers pending asynchronous exceptions on entry."""


def _can_use_signals() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@dataclass(eq=False)
class Interrupt:
    """One exception raised into a run: what fired, and when it was raised and landed
    (seconds into the run)."""

    control: type[TaskControl]
    reason: str
    raised_at: float
    landed_at: float | None = None
    landing: type[TaskControl] | None = None

    def landing_type(self, clock: ThreadRun) -> type[TaskControl]:
        """A subclass of ``control``, named like it, whose constructor (run by the
        interpreter where the exception lands) records the landing and the message."""
        interrupt, base = self, self.control

        def __init__(exc: TaskControl, *_: Any) -> None:
            if interrupt.landed_at is None:
                interrupt.landed_at = clock.elapsed()
            base.__init__(exc, interrupt.describe(), interrupted=True)

        namespace = {"__init__": __init__, "__module__": base.__module__}
        subclass = type(base.__name__, (base,), namespace)
        subclass.__qualname__ = base.__qualname__
        self.landing = cast(type[TaskControl], subclass)
        return self.landing

    def describe(self, ended_at: float | None = None) -> str:
        """What happened; ``ended_at`` when the task ended without being stopped by it."""
        text = f"{self.reason} {self.raised_at:.2f}s into the run"
        if self.landed_at is None:
            ended_at = ended_at or self.raised_at
            if ended_at - self.raised_at < LATE:
                return f"{text}, as the task was ending: it ended before the exception landed"
            return (
                f"{text}, but the task's thread was in {_C_CALL} until the task ended "
                f"{ended_at:.2f}s into the run, so it was not stopped (a thread cannot be "
                "killed: use the process pool for tasks that must be stopped inside C calls)"
            )
        late = self.landed_at - self.raised_at
        if late >= LATE:
            text += (
                f"; the exception landed only {late:.2f}s later, when the task's thread came "
                f"out of {_C_CALL}"
            )
        if ended_at is None:
            return f"{text}; it stopped the task there"
        return (
            f"{text}; the task caught {self.control.__name__} and ran on until it ended "
            f"{ended_at:.2f}s into the run, so it was not stopped"
        )


class Unguarded:
    """``ThreadRun``'s interface for a run that nothing can interrupt: it costs nothing."""

    def __enter__(self) -> Unguarded:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def close(self) -> None:
        pass

    def terminate(self) -> bool:
        return False

    def unheeded(self, raised: BaseException | None) -> TaskControl | None:
        return None


UNGUARDED = Unguarded()


class ThreadRun:
    """A sync task running in the current thread, inside the ``with`` block: raises its
    soft, then hard, time limit, and ``terminate`` from any thread, never after it ends."""

    def __init__(self, soft: float | None, hard: float | None, job_id: str = "") -> None:
        named = (("soft", SoftTimeLimitExceeded, soft), ("hard", TimeLimitExceeded, hard))
        self.limits = [(name, exc, limit) for name, exc, limit in named if limit]
        self.interrupts: list[Interrupt] = []
        self.ended_at: float | None = None
        self._job_id = job_id
        self._thread_id = threading.get_ident()
        self._done = threading.Event()  # wakes the limit watcher
        self._lock = threading.Lock()
        self._open = self._ended = False
        self._use_signals = bool(self.limits) and _can_use_signals()
        self._start = time.monotonic()
        # Closing, as one sequence of C calls: no bytecode runs between taking the lock
        # and dropping a pending exception, so none of this run's can land in between.
        # Its third step does nothing until ``interrupt`` raises into the run: then it
        # raises ``_Dropped`` in place of whatever is pending, for ``close`` to catch.
        self._drop = functools.partial(
            _set_async_exc, ctypes.c_ulong(self._thread_id), ctypes.py_object(_Dropped)
        )
        self._closing: list[Callable[[], object]] = [
            self._lock.acquire,
            functools.partial(setattr, self, "_ended", True),
            int,  # a call into C that does nothing (no bytecode may run under the lock)
            self._lock.release,
        ]

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def __enter__(self) -> ThreadRun:
        self._start = time.monotonic()
        self._open = True
        if not self.limits:
            return self
        if self._use_signals:
            signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.limits[0][2])
        else:
            threading.Thread(target=self._watch, name="conveyor-time-limit", daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """End the run: nothing is raised in it any more, and an exception raised but not
        landed yet is dropped. Idempotent: whoever runs a ``ThreadRun`` calls it again when
        the block raised, in case one of its exceptions landed in ``__exit__`` first."""
        if self._ended:
            return
        if self._use_signals:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
        self.ended_at = self.elapsed()
        try:
            collections.deque(map(operator.call, self._closing), maxlen=0)
            _checkpoint()  # a _Dropped raised by the closing lands here at the latest
        except _Dropped:
            pass
        self._done.set()

    def terminate(self) -> bool:
        """Raise ``Terminated`` in the task (revoked with terminate=True); True if raised."""
        if not self.interrupt(Terminated, "terminate was requested (revoked with terminate=True)"):
            return False
        threading.Timer(GRACE, self._warn_if_running).start()
        return True

    def interrupt(self, control: type[TaskControl], reason: str) -> bool:
        """Raise ``control`` in the task once, if it still runs; True if raised now."""
        with self._lock:
            return self._interrupt_locked(control, reason)

    def _interrupt_locked(self, control: type[TaskControl], reason: str) -> bool:
        if not self._open or self._ended or any(i.control is control for i in self.interrupts):
            return False
        interrupt = Interrupt(control, reason, self.elapsed())
        self.interrupts.append(interrupt)
        self._closing[2] = self._drop  # before raising: closing must drop what may be pending
        return raise_in_thread(self._thread_id, interrupt.landing_type(self))

    def unheeded(self, raised: BaseException | None) -> TaskControl | None:
        """The error to record when a terminate or hard limit fired but did not end the
        task (``raised`` is what the task raised, None if it returned); None otherwise."""
        if any(i.landing and isinstance(raised, i.landing) for i in self.interrupts):
            return None  # one landed and ended the task: its own message says so
        for interrupt in self.interrupts:
            if interrupt.control is not SoftTimeLimitExceeded:  # a soft limit may be caught
                message = interrupt.describe(ended_at=self.ended_at)
                return interrupt.control(message, interrupted=False)
        return None

    def _warn_if_running(self) -> None:
        if not self._ended:
            log.warning(
                "job %s was told to stop %.1fs ago and still runs: its thread is in %s, or "
                "the task caught Terminated; it ends on its own and its record will say so",
                self._job_id, GRACE, _C_CALL,
            )  # fmt: skip

    def _limit_reason(self, name: str, limit: float) -> str:
        return f"the {name} time limit of {limit:g}s fired"

    def _on_alarm(self, _signum: int, _frame: FrameType | None) -> None:
        index = sum(i.control is not Terminated for i in self.interrupts)
        name, exc_type, limit = self.limits[index]
        if index + 1 < len(self.limits):  # arm the hard limit, counted from the start
            remaining = self._start + self.limits[index + 1][2] - time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, max(0.001, remaining))
        interrupt = Interrupt(exc_type, self._limit_reason(name, limit), self.elapsed())
        self.interrupts.append(interrupt)
        raise interrupt.landing_type(self)()

    def _watch(self) -> None:
        for name, exc_type, limit in self.limits:
            if self._done.wait(max(0.0, self._start + limit - time.monotonic())):
                return
            self.interrupt(exc_type, self._limit_reason(name, limit))
