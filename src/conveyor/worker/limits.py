"""Time limits and terminate requests delivered as exceptions into a running thread.

``PyThreadState_SetAsyncExc`` raises an exception in another thread at its next Python
bytecode. It works on every OS (no SIGALRM, so Windows too) but cannot interrupt a long
call inside C code: the exception lands when that call returns. That is why the process
pool enforces hard limits by killing the child instead.
"""

from __future__ import annotations

import ctypes
import threading
import time

from ..errors import SoftTimeLimitExceeded, TaskControl, TimeLimitExceeded


def raise_in_thread(thread_id: int, exc_type: type[BaseException]) -> bool:
    """Raise ``exc_type`` in the thread ``thread_id``; False if no such thread."""
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type)
    )
    if done > 1:  # more than one thread state touched: undo, as the C API asks
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
        return False
    return bool(done)


class LimitTimer:
    """Raises the soft, then the hard, time limit exception in the current thread.

    Use as a context manager around a task call. ``fired`` tells which limit fired.
    """

    def __init__(self, soft: float | None, hard: float | None) -> None:
        self.soft, self.hard = soft, hard
        self.fired: str | None = None
        self._thread_id = threading.get_ident()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def __enter__(self) -> LimitTimer:
        if self.soft is not None or self.hard is not None:
            self._watcher = threading.Thread(
                target=self._watch, name="conveyor-time-limit", daemon=True
            )
            self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done.set()
            if self.fired:  # drop an exception raised but not yet delivered
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread_id), None)

    def _watch(self) -> None:
        start = time.monotonic()
        for limit, name, exc_type in (
            (self.soft, "soft", SoftTimeLimitExceeded),
            (self.hard, "hard", TimeLimitExceeded),
        ):
            if limit is None:
                continue
            if self._done.wait(max(0.0, start + limit - time.monotonic())):
                return
            with self._lock:
                if self._done.is_set():
                    return
                self.fired = name
                exc: type[TaskControl] = exc_type
                raise_in_thread(self._thread_id, exc)
