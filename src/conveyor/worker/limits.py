"""Time limits delivered as exceptions into the thread running a sync task.

Two ways, chosen per call:

- on the main thread of a POSIX process (process-pool children): ``SIGALRM`` from
  ``setitimer``. The handler raises in the task, and signals interrupt sleeps and
  blocking I/O, so a task stuck in ``time.sleep`` or ``socket.recv`` is reached.
- anywhere else (thread and solo pools, Windows): ``PyThreadState_SetAsyncExc`` from a
  watcher thread. It lands at the task's next Python bytecode, so it cannot interrupt a
  long C call (a sleep, a blocking read, a big hash): the exception arrives when that
  call returns. The process pool therefore enforces hard limits by killing the child.

``async def`` tasks get their limits from ``asyncio.timeout`` instead (see execution).
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from types import FrameType, TracebackType

from ..errors import SoftTimeLimitExceeded, TaskControl, TimeLimitExceeded

_LIMITS: tuple[tuple[str, type[TaskControl]], ...] = (
    ("soft", SoftTimeLimitExceeded),
    ("hard", TimeLimitExceeded),
)


def raise_in_thread(thread_id: int, exc_type: type[BaseException] | None) -> bool:
    """Raise ``exc_type`` in the thread ``thread_id`` (None clears a pending one)."""
    arg = ctypes.py_object(exc_type) if exc_type is not None else None
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), arg)
    if done > 1:  # more than one thread state touched: undo, as the C API asks
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
        return False
    return bool(done)


def _can_use_signals() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


class LimitTimer:
    """Raises the soft, then the hard, time limit exception in the current thread while
    the ``with`` block runs. ``fired`` tells which limit fired."""

    def __init__(self, soft: float | None, hard: float | None) -> None:
        self.limits = [
            (name, exc, limit)
            for (name, exc), limit in zip(_LIMITS, (soft, hard), strict=True)
            if limit
        ]
        self.fired: str | None = None
        self._thread_id = threading.get_ident()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._use_signals = bool(self.limits) and _can_use_signals()
        self._start = 0.0

    def __enter__(self) -> LimitTimer:
        self._start = time.monotonic()
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
        if self._use_signals:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            return
        with self._lock:
            self._done.set()
            if self.fired:  # drop an exception raised but not yet delivered
                raise_in_thread(self._thread_id, None)

    def _on_alarm(self, _signum: int, _frame: FrameType | None) -> None:
        index = 0 if self.fired is None else 1
        name, exc_type, _ = self.limits[index]
        self.fired = name
        if index + 1 < len(self.limits):  # arm the hard limit, counted from the start
            remaining = self._start + self.limits[index + 1][2] - time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, max(0.001, remaining))
        raise exc_type()

    def _watch(self) -> None:
        for name, exc_type, limit in self.limits:
            if self._done.wait(max(0.0, self._start + limit - time.monotonic())):
                return
            with self._lock:
                if self._done.is_set():
                    return
                self.fired = name
                raise_in_thread(self._thread_id, exc_type)
