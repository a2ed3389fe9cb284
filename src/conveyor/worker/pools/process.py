"""``process`` pool: jobs run in child processes that claim and acknowledge them
themselves (``pools/child.py``), so no job passes through the worker's process.

Children start, by default, with ``fork`` on Linux: forked by a zygote, a single-threaded
fork of the worker made when the pool starts (``pools/zygote.py``), so they share the
worker's loaded modules; elsewhere with ``forkserver`` (POSIX) or ``spawn`` (Windows),
importing the app by its path. Never a bare fork of the worker, which is unsafe once it
runs threads. One supervisor thread in the worker waits on every child's pipe and
process handle at once and:

- posts what the children report: the jobs each holds (the worker renews their leases),
  the outcomes each stored, the jobs each released. A child runs a claimed job before
  its records arrive here: until they do, the leases it wrote into the memory it shares
  with the worker (``pools/shared.py``) stand for them, to renew, terminate or settle;
- passes on ``terminate`` orders; the child stores what it has finished, then asks to be
  killed; a child that does not answer within ``TERMINATE_GRACE`` seconds is killed anyway;
- kills a child at its job's hard time limit, reports that outcome, starts a replacement;
- when a child dies on its own, reports its running job as ``Lost`` (requeued, and
  failed after ``max_lost_leases`` such deaths; the reason names the exit code or
  signal), any finished one whose outcome it had not stored as ``Lost`` uncounted (it
  runs again; it did not cause the death), and its unstarted jobs as ``Unstarted``
  (released without counting);
  then, for a child that died or was killed, ``Orphaned``: each child claims with a lease
  token prefix of its own, so the worker finds and releases the jobs it claimed but died
  before writing down (the claim's reply lost with it);
- replaces children that retire after ``max_tasks_per_child`` jobs or above
  ``max_memory_per_child`` KiB of resident memory.

Soft time limits are raised inside the child (see ``worker.limits``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import queue
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from ...errors import ConfigurationError, Terminated, TimeLimitExceeded
from ...records import JobRecord, Lease, Outcome
from ...states import State
from ..execution import error_info
from ..supervisor import describe_exit
from . import zygote
from .base import Drained, Dropped, Held, Lost, Orphaned, Pool, Report, Stored, Unstarted
from .child import ChildConfig, Link, child_main
from .messages import (
    Acked,
    Bundle,
    Bye,
    Claimed,
    Fatal,
    FromChild,
    KillMe,
    Ready,
    Released,
    Stop,
    Terminate,
    Timed,
    ToChild,
)
from .shared import SLOT_BYTES, Slot

if TYPE_CHECKING:
    from ...app import App

log = logging.getLogger("conveyor.worker")

#: Children that die this many times in a row before finishing any job stop the pool.
MAX_START_FAILURES = 3
#: Seconds a child has to store its finished jobs before it is killed for a terminate.
TERMINATE_GRACE = 2.0
#: Random bytes of a child's lease token prefix (hex: twice as many characters), so that
#: no two children alive at once share one.
LEASE_PREFIX_BYTES = 6


START_METHODS = ("fork", "forkserver", "spawn")


def default_start_method() -> str:
    if zygote.available():
        return "fork"
    return "forkserver" if sys.platform != "win32" else "spawn"


#: What usually sends each signal to a child, said beside its death.
SIGNAL_CAUSES = {
    "SIGKILL": "the kernel's out-of-memory killer, or a kill from outside",
    "SIGSEGV": "a crash in C code",
    "SIGBUS": "a crash in C code",
    "SIGABRT": "a crash in C code (abort)",
}


def death(code: int | None) -> tuple[str, str]:
    """How a child ended, as its worker saw it, and what usually does that:
    ("died with exit code 13", "os._exit in the task, or code it called")."""
    if code is None:
        return "died", ""
    if code >= 0:
        return f"died with exit code {code}", "os._exit in the task, or code it called"
    said = describe_exit(code)  # "killed by SIGKILL"
    return f"was {said}", SIGNAL_CAUSES.get(said.removeprefix("killed by "), "")


@dataclass(eq=False)
class _Child:
    proc: BaseProcess | zygote.ForkedChild
    conn: Connection  # its reports (read here)
    orders: Connection  # to it (written here)
    shared: Slot  # its counters (jobs begun, jobs ended, skipped and released ones too), its leases
    slot: int
    prefix: str  # every lease token it claims begins with this (Backend.lease_prefix)
    held: dict[str, tuple[int, JobRecord]] = field(default_factory=dict)  # id -> (seq, record)
    taken: int = 0  # the sequence number of the first held job whose records have not come
    limit: tuple[str, float, float] | None = None  # (job id, deadline, limit) of a hard time limit
    terminating: tuple[str, float] | None = None  # (job id, kill-by time)
    ready: bool = False
    leaving: str | None = None  # "retire", "drained" or "stopped", said just before exiting
    gone: bool = False  # replaced (or removed) by the supervisor
    killed: bool = False  # killed by the supervisor: its last messages are read, not obeyed
    told_stop: bool = False

    def unreported(self) -> list[tuple[int, Lease]]:
        """Held jobs known from the shared lease table only: their records have not come."""
        first, leases = self.shared.read_leases()
        return [
            (first + i, Lease(job_id, token))
            for i, (job_id, token) in enumerate(leases)
            if first + i >= self.taken
        ]

    def leases(self) -> list[tuple[int, Lease]]:
        """Every delivery this child holds, with its sequence number."""
        held = [(seq, r.lease) for seq, r in list(self.held.values())]  # a snapshot: any thread
        return held + self.unreported()

    def running(self) -> str | None:
        """The held job this child was running (as of its counters), if any."""
        begun, ended = int(self.shared.counters[0]), int(self.shared.counters[1])
        if begun == ended:
            return None
        return next((lease.job_id for seq, lease in self.leases() if seq == begun - 1), None)


class ProcessPool(Pool):
    kind = "process"
    claims = True

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
        self.start_method = self._choose(start_method)
        self.max_tasks_per_child = max_tasks_per_child
        self.max_memory_per_child = max_memory_per_child
        self._zygote: zygote.Zygote | None = None
        self._ended: list[zygote.ForkedChild] = []
        self._ctx: Any = multiprocessing.get_context(
            "forkserver" if self.start_method == "fork" else self.start_method
        )
        if self._ctx.get_start_method() == "forkserver":
            # Modules imported by the fork server are shared by every child it forks
            # (copy-on-write) instead of imported by each: the child's code and the
            # backend's driver. Not the app: its import errors must reach the worker.
            self._ctx.set_forkserver_preload(
                ["__main__", child_main.__module__, type(app.backend).__module__]
            )
        self._config: ChildConfig | None = None
        self._children: list[_Child] = []
        self._kill: set[str] = set()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = multiprocessing.Pipe(duplex=False)
        self._draining = False  # children told to stop claiming: none is replaced
        self._closing: str | None = None  # None, "wait" or "now"
        self._start_failures = 0
        self.fatal: str | None = None
        self._thread = threading.Thread(
            target=self._supervise, name="conveyor-process-pool", daemon=True
        )

    @staticmethod
    def _choose(asked: str | None) -> str:
        if asked is not None and asked not in START_METHODS:
            raise ConfigurationError(
                f"unknown start method {asked!r}; choose one of {', '.join(START_METHODS)}"
            )
        if asked == "fork" and not zygote.available():
            raise ConfigurationError(
                "the fork start method needs Linux (pidfd support); use forkserver or spawn"
            )
        return asked or default_start_method()

    # -- called from the worker's threads --------------------------------------------------

    def configure(
        self, worker_id: str, queues: list[str], prefetch: int | None, burst: bool
    ) -> None:
        """What children claim, and for whom. ``prefetch`` is the worker's total (None: auto)."""
        per_child = None if prefetch is None else math.ceil(prefetch / self.concurrency)
        self._config = ChildConfig(
            self.app_path, self.app.conf.backend_url, worker_id, tuple(queues), per_child,
            burst, self.max_tasks_per_child, self.max_memory_per_child,
        )  # fmt: skip

    def start(self) -> None:
        if self.start_method == "fork":
            self._start_zygote()
        self._children = [self._spawn(slot) for slot in range(self.concurrency)]
        self._thread.start()

    def _start_zygote(self) -> None:
        """Fork the zygote now, before the worker starts its threads. A worker run inside a
        program that already runs other threads (a test, an embedding application) would
        fork their locks in whatever state they are: it uses the fork server instead."""
        others = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
        if others:
            log.info(
                "other threads are running (%s): children start from a fork server, not by fork",
                ", ".join(others[:5]),
            )
            self.start_method = "forkserver"
            return
        queues = self._config.queues if self._config is not None else ()
        self._zygote = zygote.Zygote(self.concurrency, queues)

    def submit(self, record: JobRecord) -> None:
        raise RuntimeError("the process pool's children claim their own jobs")

    def terminate(self, job_id: str) -> None:
        with self._lock:
            self._kill.add(job_id)
        self._wake()

    def take_unstarted(self) -> list[JobRecord]:
        """Tell every child to stop claiming; each releases its unstarted jobs itself."""
        with self._lock:
            self._draining = True
        self._wake()
        return []

    def shutdown(self, *, wait: bool) -> None:
        with self._lock:
            self._draining = True
            self._closing = "wait" if wait else "now"
        self._wake()
        self._thread.join()

    def unreported_leases(self) -> list[Lease]:
        """Leases the children hold whose records have not reached the worker yet."""
        return [
            lease
            for child in list(self._children)
            if not child.gone
            for _, lease in child.unreported()
        ]

    def running_jobs(self) -> set[str]:
        return {job for child in list(self._children) if (job := child.running())}

    def claim_prefixes(self) -> list[str]:
        return [child.prefix for child in list(self._children)]

    def child_pids(self) -> list[int]:
        return [c.proc.pid for c in self._children if c.proc.pid is not None]

    def _wake(self) -> None:
        self._wake_w.send_bytes(b"!")

    # -- the supervisor thread -------------------------------------------------------------

    def _spawn(self, slot: int) -> _Child:
        """Start the child for ``slot`` (0 .. concurrency-1; a replacement takes the slot
        of the child it replaces)."""
        if self._config is None:
            raise RuntimeError("ProcessPool.configure() must be called before start()")
        orders_r, orders_w = self._ctx.Pipe(duplex=False)
        reports_r, reports_w = self._ctx.Pipe(duplex=False)
        link = Link(orders_r, reports_w)
        prefix = secrets.token_hex(LEASE_PREFIX_BYTES)
        config = replace(self._config, lease_prefix=prefix, slot=slot)
        proc: Any = None
        if self._zygote is not None:
            try:
                proc = self._zygote.spawn(config, link, slot)
                shared: Any = self._zygote.slot_memory(slot)
            except OSError as exc:  # it was killed: its children died with it
                if not self._zygote.told:  # once: not after exit_code killed it and said so
                    log.error("%s; children start from a fork server from now on", exc)
                self._zygote.close()
                self._zygote, self.start_method = None, "forkserver"
        if proc is None:
            shared = self._ctx.RawArray("B", SLOT_BYTES)
            proc = self._ctx.Process(
                target=child_main, args=(config, link, shared), name="conveyor-child"
            )
            proc.start()
        orders_r.close()
        reports_w.close()
        return _Child(proc, reports_r, orders_w, Slot(shared), slot, prefix)

    def _supervise(self) -> None:
        try:
            self._supervise_loop()
        except Exception as exc:  # a bug here must stop the worker, not leave it hanging
            log.exception("the process pool's supervisor failed")
            self.fatal = f"the process pool's supervisor failed: {exc!r}"
        finally:
            if self._zygote is not None:
                self._zygote.close()

    def _supervise_loop(self) -> None:
        while True:
            with self._lock:
                closing, kill, draining = self._closing, self._kill, self._draining
                self._kill = set()
            self._pass_orders(kill, draining)
            if closing == "now":
                self._stop_children()
                return
            if not self._children:
                if closing == "wait" or self.fatal:
                    return
                if not draining:  # every child left drained (burst mode)
                    self.results.put(Drained())
                    with self._lock:
                        self._draining = True
            self._wait_and_handle()
            if self.fatal and closing is None:
                return

    def _pass_orders(self, kill: set[str], draining: bool) -> None:
        for child in self._children:
            if draining and not child.told_stop:
                child.told_stop = True
                self._tell(child, Stop())
            if not kill:
                continue
            for job_id in kill & {lease.job_id for _, lease in child.leases()}:
                self._tell(child, Terminate(job_id))
                if child.terminating is None and child.running() == job_id:
                    child.terminating = (job_id, time.monotonic() + TERMINATE_GRACE)

    def _tell(self, child: _Child, message: ToChild) -> None:
        with contextlib.suppress(OSError):  # it is exiting: its sentinel tells the rest
            child.orders.send(message)

    def _wait_and_handle(self) -> None:
        while self._ended:
            self._ended.pop().close()
        deadlines = [t[1] for c in self._children for t in (c.limit, c.terminating) if t]
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        handles: list[Any] = [self._wake_r]
        for child in self._children:
            handles += [child.conn, child.proc.sentinel]
        ready = set(wait(handles, timeout))
        if self._wake_r in ready:
            while self._wake_r.poll():
                self._wake_r.recv_bytes()
        now = time.monotonic()
        for child in list(self._children):
            if not child.gone:
                self._handle(child, ready, now)

    def _handle(self, child: _Child, ready: set[Any], now: float) -> None:
        """Read what ``child`` said, notice its death, enforce its deadlines."""
        if child.conn in ready or child.proc.sentinel in ready:
            alive = self._receive(child)
            if child.gone:  # its messages had it killed and replaced
                return
            if not alive or child.proc.sentinel in ready:
                self._died(child)
                return
        if child.limit is not None and now >= child.limit[1]:
            self._over_limit(child)
        elif child.terminating is not None and now >= child.terminating[1]:
            self._killed_for_terminate(child, child.terminating[0])

    def _receive(self, child: _Child) -> bool:
        """Take every message waiting from ``child``; False when its pipe has closed."""
        try:
            while not child.gone and child.conn.poll():
                message = child.conn.recv()
                for each in message.messages if isinstance(message, Bundle) else (message,):
                    self._message(child, each)
        except (EOFError, OSError):
            return False
        return True

    def _message(self, child: _Child, message: FromChild) -> None:
        match message:
            case Claimed(first, records):
                for seq, record in enumerate(records, first):
                    child.held[record.id] = (seq, record)
                child.taken = first + len(records)
                self.results.put(Held(records))
            case Acked(outcomes, refused):
                self._forget(child, [Lease(o.job_id, o.token) for o in outcomes])
                self.results.put(Stored(outcomes, refused))
            case Released(leases):
                self._forget(child, leases)
                self.results.put(Dropped(leases))
            case Timed(job_id, limit):
                child.limit = (job_id, time.monotonic() + limit, limit)
            case KillMe(job_id) if child.running() == job_id:
                self._killed_for_terminate(child, job_id)
            case Ready():
                child.ready, self._start_failures = True, 0
            case Bye(why):
                child.leaving = why
            case Fatal(text):
                self.fatal = text

    def _forget(self, child: _Child, leases: list[Lease]) -> None:
        """Drop these deliveries. By lease, not id: the child may hold the same job again
        (requeued after a lost lease) before the end of its earlier delivery reaches us."""
        for lease in leases:
            job_id = lease.job_id
            entry = child.held.get(job_id)
            if entry is None or (entry[1].lease_token or "") != lease.token:  # no Lease built
                continue
            del child.held[job_id]
            if child.limit and child.limit[0] == job_id:
                child.limit = None
            if child.terminating and child.terminating[0] == job_id:
                child.terminating = None

    def _over_limit(self, child: _Child) -> None:
        if child.limit is None:
            return
        job_id, _, limit = child.limit
        child.limit = None
        if child.running() != job_id:
            return  # it ended in time; its outcome is on its way
        self._kill_running(
            child,
            job_id,
            State.FAILURE,
            TimeLimitExceeded(f"the hard time limit of {limit}s fired; the process was killed"),
            limit="hard",
        )

    def _killed_for_terminate(self, child: _Child, job_id: str) -> None:
        child.terminating = None
        if child.running() != job_id:
            return
        self._kill_running(
            child,
            job_id,
            State.REVOKED,
            Terminated("the job was revoked while running; its process was killed"),
        )

    def _kill_running(
        self, child: _Child, job_id: str, state: State, exc: BaseException, **extra: Any
    ) -> None:
        """Kill a child running ``job_id``, report that job's outcome, settle the rest.

        Once only: the messages read from the dead child below may ask again (a job
        revoked with terminate is named by every heartbeat until its outcome is stored,
        and the child answers each ``Terminate`` with a ``KillMe``). A second kill would
        report the job twice, read the replacement's lease table (a forked replacement
        reuses the slot's memory) and swap a child no longer in the list, which stopped
        the pool."""
        if child.killed:
            return
        child.killed = True
        child.proc.kill()
        child.proc.join()
        self._receive(child)  # what it stored before it died is stored
        leases = child.leases()
        killed = next((lease for _, lease in leases if lease.job_id == job_id), None)
        if killed is not None:
            self.results.put(Outcome(job_id, killed.token, state, error=error_info(exc, **extra)))
        why = "revoked with terminate" if state is State.REVOKED else "past its hard time limit"
        self._settle(
            child,
            f"worker child {child.proc.pid} was killed to stop job {job_id} ({why})",
            leases=[(seq, lease) for seq, lease in leases if lease != killed],
        )
        self._swap(child)

    def _died(self, child: _Child) -> None:
        child.proc.join()
        if child.leaving is None:
            how, cause = death(child.proc.exitcode)
            self._settle(child, f"worker child {child.proc.pid} {how}", cause)
            if not child.ready:
                self._start_failures += 1
                if self._start_failures >= MAX_START_FAILURES and self.fatal is None:
                    self.fatal = (
                        f"worker children keep dying at start (exit code {child.proc.exitcode})"
                    )
        else:
            self._settle(child, f"worker child {child.proc.pid} exited")
        self._swap(child)

    def _settle(
        self,
        child: _Child,
        seen: str,
        cause: str = "",
        leases: list[tuple[int, Lease]] | None = None,
    ) -> None:
        """Report what a dead child held (``leases``, else all it held): the job it was
        running as lost (counted: only that job can have caused the death); finished jobs
        whose outcomes died unstored as lost, uncounted (they run again); unstarted jobs
        to release; then whatever it claimed without saying so. ``seen``: what the
        worker saw ("worker child 123 died with exit code 13"); ``cause``: what usually
        does that."""
        begun, ended = int(child.shared.counters[0]), int(child.shared.counters[1])
        running = begun - 1 if begun > ended else None
        leases = child.leases() if leases is None else leases
        for seq, lease in leases:
            if seq == running:
                said = f" ({cause})" if cause else ""
                self.results.put(Lost(lease, f"{seen} while running the job{said}"))
            elif seq < begun:
                finished = f"the job had finished, but {seen} before storing its outcome"
                self.results.put(Lost(lease, finished, counted=False))
        unstarted = [lease for seq, lease in leases if seq >= begun]
        if unstarted:
            self.results.put(Unstarted(unstarted))
        if child.leaving is None:  # it died, not left: a claim of its may have gone unsaid
            self.results.put(Orphaned(child.prefix))  # last: the rest is settled first
        child.held.clear()

    def _swap(self, child: _Child) -> None:
        child.gone = True
        child.conn.close()
        child.orders.close()
        if isinstance(child.proc, zygote.ForkedChild):
            self._ended.append(child.proc)  # its pidfd is closed once no wait can name it
        index = self._children.index(child)
        with self._lock:
            replace = not self._draining and self._closing is None and not self.fatal
        if replace and child.leaving in (None, "retire"):
            self._children[index] = self._spawn(child.slot)
        else:
            del self._children[index]

    def _stop_children(self) -> None:
        for child in self._children:
            child.proc.kill()
        for child in self._children:
            child.proc.join(timeout=10)
