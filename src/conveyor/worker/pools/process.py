"""``process`` pool: each job runs in a child process.

Children start with ``spawn`` or ``forkserver`` (never a bare ``fork``, which is unsafe
with threads and absent on Windows) and import the app by its path. One supervisor
thread in the worker waits on every child's pipe and process handle at once and:

- hands queued jobs to idle children;
- kills a child at its job's hard time limit, or when the job is revoked with
  ``terminate``, reports the outcome, and starts a replacement;
- reports a job whose child died on its own as ``Lost`` (requeued, and failed after
  ``max_lost_leases`` such deaths);
- retires children after ``max_tasks_per_child`` jobs or above ``max_memory_per_child``
  KiB of resident memory.

Soft time limits are raised inside the child (see ``worker.limits``).
"""

from __future__ import annotations

import multiprocessing
import queue
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from ...errors import ConfigurationError, Terminated, TimeLimitExceeded
from ...records import JobRecord, Lease, Outcome
from ...states import State
from ..execution import error_info
from .base import Lost, Pool, Report
from .child import child_main

if TYPE_CHECKING:
    from ...app import App

#: Children that die this many times in a row before finishing any job stop the pool.
MAX_START_FAILURES = 3


def default_start_method() -> str:
    return "forkserver" if sys.platform != "win32" else "spawn"


@dataclass(eq=False)
class _Child:
    proc: BaseProcess
    conn: Connection
    job: JobRecord | None = None
    deadline: float | None = None
    done: int = 0
    ready: bool = False
    retiring: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class ProcessPool(Pool):
    kind = "process"

    def __init__(
        self,
        app: App,
        concurrency: int,
        results: queue.SimpleQueue[Report],
        *,
        start_method: str | None = None,
        max_tasks_per_child: int | None = None,
        max_memory_per_child: int | None = None,
    ) -> None:
        super().__init__(app, concurrency, results)
        if not app.main:
            raise ConfigurationError(
                "the process pool needs the app's import path so children can load it: "
                "start the worker with -A package.module:app (or use -P thread)"
            )
        if not app.backend.shared:
            raise ConfigurationError(
                f"the process pool needs a backend its children can share; {app.conf.backend_url} lives in "
                "one process. Use sqlite:///file.db (or redis/postgres), or -P thread"
            )
        self.app_path = app.main
        self.start_method = start_method or default_start_method()
        self.max_tasks_per_child = max_tasks_per_child
        self.max_memory_per_child = max_memory_per_child
        self._ctx: Any = multiprocessing.get_context(self.start_method)
        self._children: list[_Child] = []
        self._inbox: deque[JobRecord] = deque()
        self._kill: set[str] = set()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = multiprocessing.Pipe(duplex=False)
        self._closing: str | None = None  # None, "wait" or "now"
        self._start_failures = 0
        self.fatal: str | None = None
        self._thread = threading.Thread(
            target=self._supervise, name="conveyor-process-pool", daemon=True
        )

    # -- called from the worker's threads --------------------------------------------------

    def start(self) -> None:
        self._children = [self._spawn() for _ in range(self.concurrency)]
        self._thread.start()

    def submit(self, record: JobRecord) -> None:
        with self._lock:
            self._inbox.append(record)
        self._wake()

    def terminate(self, job_id: str) -> None:
        with self._lock:
            self._kill.add(job_id)
        self._wake()

    def take_unstarted(self) -> list[JobRecord]:
        with self._lock:
            taken = list(self._inbox)
            self._inbox.clear()
        return taken

    def shutdown(self, *, wait: bool) -> None:
        with self._lock:
            self._closing = "wait" if wait else "now"
        self._wake()
        self._thread.join()

    def child_pids(self) -> list[int]:
        return [c.proc.pid for c in self._children if c.proc.pid is not None]

    def _wake(self) -> None:
        self._wake_w.send_bytes(b"!")

    # -- the supervisor thread -------------------------------------------------------------

    def _spawn(self) -> _Child:
        parent_conn, child_conn = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=child_main,
            args=(
                self.app_path,
                self.app.conf.backend_url,
                child_conn,
                bool(self.max_memory_per_child),
            ),
            name="conveyor-child",
        )
        proc.start()
        child_conn.close()
        return _Child(proc, parent_conn)

    def _supervise(self) -> None:
        while True:
            with self._lock:
                closing, kill = self._closing, self._kill
                self._kill = set()
                if closing is None:
                    self._assign()
            for child in self._children:
                if child.job is not None and child.job.id in kill:
                    self._replace(
                        child,
                        State.REVOKED,
                        Terminated("the job was revoked while running; its process was killed"),
                    )
            if closing == "now" or (
                closing == "wait" and all(c.job is None for c in self._children)
            ):
                self._stop_children(force=closing == "now")
                return
            self._wait_and_handle()
            if self.fatal:
                return

    def _assign(self) -> None:
        """Give queued jobs to idle children (called with the lock held)."""
        for child in self._children:
            if not self._inbox:
                return
            if child.job is None and not child.retiring:
                record = self._inbox.popleft()
                child.job = record
                task = self.app.tasks.get(record.task)
                limit = task.options.time_limit if task else None
                child.deadline = None if limit is None else time.monotonic() + limit
                child.conn.send(record)

    def _wait_and_handle(self) -> None:
        deadlines = [c.deadline for c in self._children if c.deadline is not None]
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        handles: list[Any] = [self._wake_r]
        for child in self._children:
            handles += [child.conn, child.proc.sentinel]
        ready = set(wait(handles, timeout))
        if self._wake_r in ready:
            while self._wake_r.poll():
                self._wake_r.recv_bytes()
        for child in list(self._children):
            if child.conn in ready:
                self._receive(child)
            elif child.proc.sentinel in ready:
                self._died(child)
            elif child.deadline is not None and time.monotonic() >= child.deadline:
                limit = self.app.tasks[child.job.task].options.time_limit if child.job else None
                self._replace(
                    child,
                    State.FAILURE,
                    TimeLimitExceeded(
                        f"the hard time limit of {limit}s fired; the process was killed"
                    ),
                    limit="hard",
                )

    def _receive(self, child: _Child) -> None:
        try:
            message = child.conn.recv()
        except (EOFError, OSError):
            self._died(child)
            return
        kind = message[0]
        if kind == "ready":
            child.ready, self._start_failures = True, 0
        elif kind == "fatal":
            self.fatal = message[1]
        elif kind == "done":
            outcome, rss = message[1], message[2]
            child.job, child.deadline = None, None
            child.done += 1
            self.results.put(outcome)
            over_tasks = self.max_tasks_per_child and child.done >= self.max_tasks_per_child
            over_memory = self.max_memory_per_child and rss > self.max_memory_per_child
            if over_tasks or over_memory:
                self._retire(child)

    def _died(self, child: _Child) -> None:
        child.proc.join()
        if child.job is not None:
            reason = f"worker child {child.proc.pid} died with exit code {child.proc.exitcode} while running the job"
            self.results.put(Lost(Lease(child.job.id, child.job.lease_token or ""), reason))
        elif not child.ready:
            self._start_failures += 1
            if self._start_failures >= MAX_START_FAILURES:
                self.fatal = (
                    f"worker children keep dying at start (exit code {child.proc.exitcode})"
                )
        self._swap(child)

    def _replace(self, child: _Child, state: State, exc: BaseException, **extra: Any) -> None:
        """Kill a child running a job, report that job's outcome, start a new child."""
        job = child.job
        child.proc.kill()
        child.proc.join()
        if job is not None:
            self.results.put(
                Outcome(job.id, job.lease_token or "", state, error=error_info(exc, **extra))
            )
        self._swap(child)

    def _retire(self, child: _Child) -> None:
        child.retiring = True
        child.conn.send(None)
        child.proc.join(timeout=10)
        if child.proc.is_alive():
            child.proc.kill()
            child.proc.join()
        self._swap(child)

    def _swap(self, child: _Child) -> None:
        child.conn.close()
        index = self._children.index(child)
        if self._closing is None and not self.fatal:
            self._children[index] = self._spawn()
        else:
            del self._children[index]

    def _stop_children(self, *, force: bool) -> None:
        for child in self._children:
            if force:
                child.proc.kill()
            else:
                try:
                    child.conn.send(None)
                except OSError:
                    child.proc.kill()
        for child in self._children:
            child.proc.join(timeout=10)
            if child.proc.is_alive():
                child.proc.kill()
                child.proc.join()
