"""A process-pool child: it imports the app itself (so it works under spawn, the only
start method on Windows), then claims, runs and acknowledges jobs for its worker, with
no job passing through the worker's process.

Three threads:

- the **main thread** claims a batch (one backend call), writes the leases it now holds
  into the lease table it shares with the parent (``pools/shared.py``: no system call,
  no message to wait for; the parent renews those leases from it), and runs the jobs one
  by one. When the batch is done it asks the storer to store the batch's last outcomes
  and claim the next batch in the same call (``Backend.ack_and_claim``: one Redis
  script, one SQL transaction), so a busy child pays one round trip per batch;
- the **storer** settles finished jobs in batches (``worker/settle.py`` stores them,
  their workflow follow-ups and emits their events, as the worker does for the other
  pools), and tells the parent what it stored. Group commit: woken by a job's outcome,
  it waits up to ``BATCH_ACK_WINDOW`` (20 ms, the work a batch is sized to) for the
  next ones while the main thread still runs jobs of its batch; the batch's end cuts the
  wait short, and its outcomes go with the next claim. So short jobs are acknowledged
  together even when their task releases the GIL (any I/O does, and would otherwise let
  the storer wake and store after nearly every job), an idle worker's job (a batch of
  one) is stored the moment it ends, and a result waits at most 20 ms even when a long
  job runs next. Each time it wakes, it sends the parent the records of the batches
  claimed since together with the outcomes it stored, in one message (``Bundle``: the
  parent wakes once for both); the main thread does not wake it for the records (a
  wake-up costs the job about to run), and until they arrive the shared lease table
  stands for them;
- the **listener** takes the parent's orders (``pools/messages.py``): ``Stop`` (finish
  the running job, release the rest, exit) and ``Terminate`` (skip a held job; for the
  running one, store what is finished, then ask the parent to kill this process).

Held jobs are numbered in claim order, in the table and in the records' message alike.
Two shared counters (held jobs begun, held jobs ended; a skipped or released job counts
as both) tell the parent, if this process dies, which held job was running, which had
finished and which never started. A job with a hard time limit is announced when it
starts, so the parent can kill it at the limit.

Batch size: ``prefetch`` jobs beyond the one to run. Auto (``None``) starts slow: a fresh
child claims one job, then each batch as many jobs as the last batch's runs say fit in
``BATCH_BUDGET`` seconds of work, but never more than twice as many as the last batch
ran (and at most ``MAX_BATCH``): 1, 2, 4, ... 128 for short jobs, back to one after a long
one, so a job never waits long behind another while a sibling could run it. One cold
run (a first call importing a library) costs one batch of one, not the dozens an average
over many runs took to forget it.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import functools
import logging
import os
import pickle
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any

from ...errors import BackendError, Terminated
from ...loader import load_app
from ...outage import Outage
from ...proctitle import set_title, worker_title
from ...records import JobRecord, Outcome
from ...states import State
from ..execution import error_info, execute
from ..settle import Claim, settle_and_claim
from ..testhooks import ack_hold, claim_hold
from ..timing import BATCH_ACK_WINDOW, BURST_HORIZON, ERROR_BACKOFF, IDLE_WAIT
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
)
from .shared import Slot

log = logging.getLogger("conveyor.worker")

#: Auto batch: claim as many jobs as fit in this many seconds of the last batch's mean
#: run time...
BATCH_BUDGET = 0.02
#: ... but never more than this many at once (each batch costs a round trip, decoding
#: its records and a message to the worker: at 32, a drain of jobs that make one Redis
#: call ran 25-30% slower than at 128, docs/benchmarks.md)...
MAX_BATCH = 128
#: ... nor more than this many times as many as the last batch ran (slow start: a fresh
#: child claims one job, then 2, 4, ... while its jobs are short).
BATCH_GROWTH = 2
#: A job that has run this long gives back the jobs claimed with it that have not begun
#: (released: back in their queue for an idle child or worker, the attempt not counted),
#: so a short job never waits behind a long one it happened to share a claim with.
GIVE_BACK_AFTER = 0.5
#: How often the child looks (so a batch-mate waits at most about 0.75 s).
GIVE_BACK_EVERY = 0.25
#: Longest preview of a result sent to the parent for its log.
PREVIEW = 200
#: What a forked child inherited and must neither use nor let the collector close.
_INHERITED: list[Any] = []


@dataclass(frozen=True)
class ChildConfig:
    app_path: str
    backend_url: str
    worker_id: str
    queues: tuple[str, ...]
    prefetch: int | None  # jobs claimed beyond the one to run now; None: auto
    burst: bool = False
    max_tasks: int | None = None
    max_memory: int | None = None  # KiB of resident memory
    lease_prefix: str = ""  # this child's claims' lease tokens begin with it (set per child)
    slot: int = 0  # which of the worker's children it is (0 .. concurrency - 1; set per child)


class Preview(str):
    """A result's repr, cut short, standing in for the result in the parent's log."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def slim(outcome: Outcome) -> Outcome:
    """The outcome as the parent logs it: a short result preview, the error's first lines."""
    result = outcome.result
    if outcome.error is None and (result is None or isinstance(result, bool | int | float)):
        return outcome  # nothing to trim (most outcomes): no copy
    if not (result is None or isinstance(result, bool | int | float)):
        result = Preview(repr(result)[:PREVIEW])
    error = outcome.error
    if error is not None:
        error = {"type": error.get("type"), "message": str(error.get("message"))[:PREVIEW]}
    return replace(outcome, result=result, error=error)


def die_with_parent() -> None:
    """On Linux, ask the kernel to SIGKILL this process if its parent dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def rss_kib() -> int:
    """This process's resident memory in KiB (0 where it cannot be read)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, AttributeError):
        try:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return peak // 1024 if sys.platform == "darwin" else peak
        except ImportError:
            return 0


@dataclass(frozen=True)
class Link:
    """A child's two one-way pipes to its worker: its orders in, its reports out. Not one
    two-way socket: a blocked reader of a socket is woken whenever its peer reads (the
    kernel wakes the socket's waiters when write space frees up), so each report the
    worker read woke the child's listener for nothing, once a message."""

    orders: Connection
    reports: Connection

    def recv(self) -> Any:
        return self.orders.recv()

    def send(self, message: FromChild) -> None:
        self.reports.send(message)

    def send_bytes(self, data: bytes) -> None:
        self.reports.send_bytes(data)


@dataclass(eq=False)
class _ClaimRequest:
    """The main thread, its batch run: store what has finished and claim ``limit`` more
    jobs, in one backend call (``Backend.ack_and_claim``)."""

    limit: int
    done: threading.Event = field(default_factory=threading.Event)
    jobs: list[JobRecord] = field(default_factory=list)
    error: BaseException | None = None


class _Storer:
    """Sends claimed batches' records and acknowledges finished jobs, on its own thread."""

    def __init__(self, runner: _Runner) -> None:
        self.runner = runner
        self.inbox: queue.SimpleQueue[
            tuple[JobRecord, Outcome] | _ClaimRequest | Callable[[], None] | None
        ] = queue.SimpleQueue()
        #: Outcomes put, and stored (each counted by one thread): equal when none waits.
        self.put_count = self.stored_count = 0
        self.thread = threading.Thread(target=self._run, name="conveyor-storer", daemon=True)
        #: Held jobs whose records have been sent (a count, in claim order).
        self.announced = 0
        self.claims: collections.deque[Claimed] = collections.deque()
        self.hold = ack_hold()  # test-only (testhooks.py); None in production
        #: Set when no outcome is due soon (the batch is done, or a caller waits for a
        #: flush): the storer stores what it has without waiting out the window.
        self.now = threading.Event()

    def announce(self, batch: Claimed) -> None:
        """Send ``batch``'s records the next time this thread wakes (at the latest when
        its first job's outcome comes)."""
        self.claims.append(batch)

    def put(self, record: JobRecord, outcome: Outcome) -> None:
        self.put_count += 1
        self.inbox.put((record, outcome))

    def store_and_claim(self, limit: int) -> list[JobRecord]:
        """Store every outcome put so far and claim up to ``limit`` jobs, in one call on
        this thread's connection; raises what the claim raised (``BackendError``)."""
        request = _ClaimRequest(limit)
        self.inbox.put(request)
        self.now.set()
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.jobs

    def then(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once everything put before it is stored."""
        self.inbox.put(callback)
        self.now.set()

    def flush(self) -> None:
        done = threading.Event()
        self.then(done.set)
        done.wait()

    def _take(self) -> list[Any]:
        """What is in the inbox, waiting for the first item, then (if it is an outcome)
        up to ``BATCH_ACK_WINDOW`` for more (cut short when the batch ends)."""
        items = [self.inbox.get()]
        if isinstance(items[0], tuple):  # group commit: more outcomes may be due
            self.now.wait(BATCH_ACK_WINDOW)
        self.now.clear()
        with contextlib.suppress(queue.Empty):
            while True:
                items.append(self.inbox.get_nowait())
        return items

    def _run(self) -> None:
        while True:
            items = self._take()
            claims = list(self.claims)  # their records go with what this wake stores
            for _ in claims:
                self.claims.popleft()
            pairs = [i for i in items if isinstance(i, tuple)]
            request = next((i for i in items if isinstance(i, _ClaimRequest)), None)
            if pairs and self.hold is not None:
                self.hold()
            if request is not None:
                self._store_and_claim(pairs, request, claims)
            elif pairs:
                self._store(pairs, claims)
            else:
                self._report(claims)
            for item in items:
                if item is None:
                    return
                if callable(item):
                    item()

    def _report(self, claims: list[Claimed], acked: Acked | None = None) -> None:
        """Send the parent the records of ``claims``, then ``acked``: in one message, so
        it wakes once for a job's records and its outcome (a job's ``Claimed`` always
        comes before its ``Acked``)."""
        messages: list[Claimed | Acked] = [*claims, *([acked] if acked is not None else [])]
        if len(messages) > 1:
            self.runner.send(Bundle(tuple(messages)))
        elif messages:
            self.runner.send(messages[0])
        if claims:
            self.announced = claims[-1].first + len(claims[-1].records)

    def _store_and_claim(
        self, pairs: list[tuple[JobRecord, Outcome]], request: _ClaimRequest, claims: list[Claimed]
    ) -> None:
        runner = self.runner
        claim = (runner.queues, runner.conf.worker_id, request.limit, runner.app.conf.lease_seconds)
        try:
            if pairs:
                request.jobs = self._store(pairs, claims, claim)
            else:  # nothing to store: a claim alone, its error the main thread's to handle
                self._report(claims)
                request.jobs = runner.backend.claim(*claim)
        except BaseException as exc:
            request.error = exc
        finally:
            request.done.set()

    def _store(
        self,
        pairs: list[tuple[JobRecord, Outcome]],
        claims: list[Claimed],
        claim: Claim | None = None,
    ) -> list[JobRecord]:
        """Store ``pairs`` (retried until the backend takes them) and, with ``claim``,
        claim in the same call; then tell the parent of ``claims`` and of what was stored.
        Returns the claimed jobs."""
        runner = self.runner
        held = {record.id: record for record, _ in pairs}
        outcomes = [outcome for _, outcome in pairs]
        try:
            while True:
                try:
                    refused, claimed = settle_and_claim(
                        runner.app, runner.backend, held, outcomes, claim
                    )
                    runner.outage.over("storing outcomes")
                    break
                except BackendError as exc:
                    runner.outage.failed("storing outcomes", exc)
                    time.sleep(ERROR_BACKOFF)
        except BaseException:
            self._report(claims)  # the records at least: the parent renews and settles them
            raise
        self.stored_count += len(pairs)
        self._report(claims, Acked([slim(o) for o in outcomes], refused))
        return claimed


class _Runner:
    def __init__(self, app: Any, conf: ChildConfig, conn: Link, shared: Slot) -> None:
        self.app, self.conf, self.conn = app, conf, conn
        self.shared, self.counters = shared, shared.counters
        self.backend = app.backend
        # This child's own account of a backend outage, named: its worker and each other
        # child tell theirs too, in lines that would otherwise read the same.
        self.outage = Outage(
            log, who=f"pool child, pid {os.getpid()}", named_by=app.conf.backend_named_by()
        )
        self.queues = list(conf.queues)
        self._send_lock = threading.Lock()
        self.storer = _Storer(self)
        self.stopping = False
        self.running: str | None = None
        self.running_since = 0.0  # time.monotonic() when ``running`` began
        #: The current batch's jobs not begun yet, taken by the main thread one by one or
        #: given back whole by the give-back thread (under ``_batch_lock``).
        self.rest: list[JobRecord] = []
        self._batch_lock = threading.Lock()
        #: Set while a batch has jobs behind the running one: only then does the give-back
        #: thread look (an idle child's thread sleeps on it instead of waking 4 times a
        #: second, each wake-up a chance to delay the next job's pickup).
        self._behind = threading.Event()
        self._giving = threading.Lock()  # held through a give-back, release and message
        self.given_back = 0  # jobs given back whose counters the main thread owes
        self.skip: set[str] = set()
        self.done = 0
        self.auto_size = 1  # the next auto batch: one job, until runs show jobs are short
        self.batch_ran = 0  # jobs of the current batch run so far ...
        self.batch_took = 0.0  # ... and their run time, summed (seconds)
        self.claimed = 0  # held jobs so far: the next one's sequence number
        self.table: list[tuple[str, str]] = []  # leases in the shared table, from ...
        self.table_first = 0  # ... this sequence number on
        self.claim_hold = claim_hold()  # test-only (testhooks.py); None in production

    def warm_up(self) -> None:
        """Ready the backend's connections for this child's claims and acknowledgements
        before the first claim (``Backend.warm_up``: on PostgreSQL a fresh session's first
        claim and acknowledgement cost a first batch 10-50 ms). A failure is the first
        claim's, told as one (the outage's first line); the child goes on, and its
        first claim that succeeds ends the outage."""
        try:
            self.backend.warm_up()
        except BackendError as exc:
            self.outage.failed("a claim", exc)
        except Exception:  # a bug of the warm-up's own: said, and the child works without it
            log.exception("could not warm the backend's connections up; going on without")

    def send(self, message: FromChild) -> None:
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)  # no fds: no ForkingPickler
        with self._send_lock:
            self.conn.send_bytes(data)

    # -- the listener thread ------------------------------------------------------------

    def listen(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):  # the worker is gone: nobody renews our leases
                os._exit(1)
            match message:
                case Stop():
                    self.stopping = True
                case Terminate(job_id) if self.running == job_id:
                    self.storer.then(functools.partial(self.send, KillMe(job_id)))
                case Terminate(job_id):
                    self.skip.add(job_id)

    # -- the main thread ----------------------------------------------------------------

    def batch_size(self) -> int:
        prefetch = self.conf.prefetch
        size = self.auto_size if prefetch is None else 1 + prefetch
        if self.conf.max_tasks:
            size = min(size, self.conf.max_tasks - self.done)
        return size

    def run(self) -> str:
        """Claim and run jobs until stopped; returns why it stopped."""
        lease_seconds = self.app.conf.lease_seconds
        wait = 0.0  # how long to wait for work before the next claim
        while not self.stopping:
            storer = self.storer
            try:
                if wait == 0.0 and storer.put_count != storer.stored_count:
                    # A batch just ran: store its last outcomes and claim the next batch
                    # in one round trip (the storer's call, after what it is storing now).
                    jobs = storer.store_and_claim(self.batch_size())
                else:
                    jobs = self.backend.wait_and_claim(
                        self.queues, self.conf.worker_id, self.batch_size(), lease_seconds, wait
                    )
                self.outage.over("a claim")
                if not jobs:
                    idle = self._idle_wait()
                    if idle is None:
                        return "drained"
                    wait = idle
                    continue
                wait = 0.0
            except BackendError as exc:  # the backend is down: keep trying, never die
                self.outage.failed("a claim", exc)
                time.sleep(ERROR_BACKOFF)
                continue
            if self.claim_hold is not None:
                self.claim_hold()
            self._hold(jobs)
            retire = self._run_batch(jobs)
            self._size_next_batch()
            if retire or self.stopping:
                self.storer.now.set()  # the batch is done: no outcome is due soon
            if retire:
                return "retire"
        return "stopped"

    def _hold(self, jobs: list[JobRecord]) -> None:
        """Let the parent know of a claimed batch before any of it runs: through the shared
        lease table (the records follow from the storer), or, when the table cannot take
        it, by sending the records first."""
        first = self.claimed
        self.claimed += len(jobs)
        sent = self.storer.announced
        if sent > self.table_first:  # the parent has those records: off the table
            del self.table[: sent - self.table_first]
            self.table_first = sent
        self.table += [(job.id, job.lease_token or "") for job in jobs]
        if self.shared.write_leases((self.table_first, self.table)):
            self.storer.announce(Claimed(first, jobs))
            return
        self.storer.flush()  # earlier batches' records first: the parent numbers them in order
        self.send(Claimed(first, jobs))
        self.storer.announced = self.claimed

    def _run_batch(self, jobs: list[JobRecord]) -> bool:
        """Run a claimed batch; True when this child should retire afterwards."""
        with self._batch_lock:
            self.rest = list(jobs)
        if len(jobs) > 1:
            self._behind.set()
        while True:
            with self._batch_lock:
                if not self.rest:
                    break
                if self.stopping or self._over_limits():
                    left, self.rest = self.rest, []
                    self._release(left)
                    return not self.stopping
                record = self.rest.pop(0)
            self._run_one(record)
            self._count_given_back()
        return self._over_limits()

    def _size_next_batch(self) -> None:
        """Auto batch size from the batch just run: as many jobs as fit ``BATCH_BUDGET`` at
        its mean run time, at most ``BATCH_GROWTH`` times as many as it ran (a batch whose
        jobs were all given back, released or skipped says nothing: the size stays)."""
        ran, took = self.batch_ran, self.batch_took
        self.batch_ran, self.batch_took = 0, 0.0
        if ran:
            fit = int(BATCH_BUDGET * ran / max(took, 1e-6))
            self.auto_size = max(1, min(MAX_BATCH, BATCH_GROWTH * ran, fit))

    def give_back(self) -> None:
        """The give-back thread: while a job has run ``GIVE_BACK_AFTER`` seconds, the
        jobs of its batch not begun go back to their queue (as ``_release`` does). It
        looks every ``GIVE_BACK_EVERY`` seconds while a batch has jobs behind the
        running one, and sleeps until the next such batch otherwise."""
        while not self.stopping:
            with self._batch_lock:  # cleared before a batch can set it again: none missed
                if not self.rest:
                    self._behind.clear()
            self._behind.wait()
            time.sleep(GIVE_BACK_EVERY)
            with self._giving:
                with self._batch_lock:
                    since = time.monotonic() - self.running_since
                    if self.running is None or not self.rest or since < GIVE_BACK_AFTER:
                        continue
                    rest, self.rest = self.rest, []
                self.storer.flush()  # the parent has their records before it hears of this
                try:
                    self.backend.release([j.lease for j in rest])
                except BackendError as exc:
                    log.error(
                        "could not release jobs (%s); they return when their leases expire", exc
                    )
                self.send(Released([j.lease for j in rest]))
                self.given_back += len(rest)

    def _count_given_back(self) -> None:
        """Count jobs given back as begun and ended (as ``_release`` does), once the job
        they waited behind has ended: counted while it ran, the parent would take the
        last of them for the running job (``_Child.running``)."""
        with self._giving:
            given, self.given_back = self.given_back, 0
        if given:
            self.counters[0] += given
            self.counters[1] += given

    def _run_one(self, record: JobRecord) -> None:
        if record.id in self.skip:  # it counts as begun and ended: the parent numbers held jobs
            self.skip.discard(record.id)
            self.counters[0] += 1
            self.counters[1] += 1
            error = error_info(Terminated("the job was revoked before it started"))
            self.storer.put(
                record, Outcome(record.id, record.lease_token or "", State.REVOKED, error=error)
            )
            return
        task = self.app.tasks.get(record.task)
        limit = task.options.time_limit if task else None
        self.running_since = time.monotonic()
        self.running = record.id
        self.counters[0] += 1
        if limit is not None:
            self.send(Timed(record.id, limit))
        started = time.perf_counter()
        outcome = execute(self.app, record, thread_limits=(True, False))
        took = time.perf_counter() - started
        self.counters[1] += 1
        self.running = None
        self.done += 1
        self.batch_ran += 1
        self.batch_took += took
        self.storer.put(record, outcome)

    def _over_limits(self) -> bool:
        conf = self.conf
        if conf.max_tasks and self.done >= conf.max_tasks:
            return True
        return bool(conf.max_memory and self.done and rss_kib() > conf.max_memory)

    def _release(self, jobs: list[JobRecord]) -> None:
        self.storer.flush()
        try:
            self.backend.release([j.lease for j in jobs])
        except BackendError as exc:
            log.error("could not release jobs (%s); they return when their leases expire", exc)
        self.send(Released([j.lease for j in jobs]))
        self.counters[0] += len(jobs)  # passed over: begun and ended, as the parent counts
        self.counters[1] += len(jobs)

    def _idle_wait(self) -> float | None:
        """How long to wait for work; None when a burst child has found its queues drained."""
        due = self.backend.next_due(self.queues)
        now = self.backend.now()
        if self.conf.burst and (due is None or due > now + BURST_HORIZON):
            # Our own follow-ups are stored before their ack: look once more after it.
            self.storer.flush()
            due, now = self.backend.next_due(self.queues), self.backend.now()
            if due is None or due > now + BURST_HORIZON:
                return None
        return IDLE_WAIT if due is None else min(IDLE_WAIT, max(0.0, due - now))


def child_main(conf: ChildConfig, conn: Link, shared: Any) -> None:
    """Run jobs for the worker until told to stop (or drained, or retired). ``conn``: its
    pipes to the worker; ``shared``: the memory of this child's ``Slot``, which the worker
    reads too."""
    die_with_parent()
    set_title(f"{worker_title(conf.queues)} child {conf.slot + 1}")
    # The parent decides when children stop: a Ctrl-C or a SIGTERM sent to the whole
    # process group must not kill jobs that a graceful shutdown lets finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        app = load_app(conf.app_path)
        # The worker's backend URL wins over import-time defaults. A forked child also
        # holds the worker's backend object, whose connections are the worker's: it stays
        # referenced (collecting it would close them under the worker) and unused.
        _INHERITED.append(app.use_backend(None))
        app.conf.backend_url = conf.backend_url
        app.backend.lease_prefix = conf.lease_prefix  # the worker finds our claims by it
    except Exception as exc:
        conn.send(Fatal(f"worker child could not load the app {conf.app_path!r}: {exc}"))
        return
    runner = _Runner(app, conf, conn, Slot(shared))
    runner.storer.thread.start()
    threading.Thread(target=runner.listen, name="conveyor-listener", daemon=True).start()
    threading.Thread(target=runner.give_back, name="conveyor-give-back", daemon=True).start()
    runner.warm_up()
    runner.send(Ready(os.getpid()))
    why = runner.run()
    runner.storer.inbox.put(None)
    runner.storer.thread.join()
    runner.send(Bye(why))
