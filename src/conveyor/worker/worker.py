"""The worker: claims jobs, runs them in a pool, acknowledges them, keeps leases alive.

Three parts, each on its own thread:

- the **consumer** claims up to the free capacity (concurrency + prefetch, minus what it
  holds) and otherwise waits for the backend's wake-up hint;
- the **pool** runs jobs and posts each delivery's outcome to ``results``;
- the **main loop** (the thread that called ``run``) acknowledges outcomes in batches,
  heartbeats every held lease in one call (learning revocations and lost leases), rescues
  expired leases of dead workers, and carries out shutdown;
- the **revocation watch** waits on the backend's push (``Backend.watch_revocations``)
  and, when a running job is revoked with terminate, wakes the main loop to heartbeat at
  once: the reply names the held jobs to stop, so a revoke reaches its job in
  milliseconds instead of at the next heartbeat.

The process pool claims and acknowledges its jobs itself, in its children (see
``pools/process.py``): the worker starts no consumer for it, and its main loop learns
from the pool's reports which jobs are held (to renew their leases) and which are done.

Shutdown: the first ``stop()`` (SIGTERM/SIGINT) stops claiming, releases claimed jobs
that have not started, and lets running ones finish for up to ``shutdown_timeout``
seconds; the second (or the timeout) stops running jobs and releases them to the queue
at once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import random
import socket
import threading
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from ..backends.base import RevocationWatch
from ..errors import BackendError, ConfigurationError
from ..events import JobLost, JobRevoked, WorkerDown, WorkerUp
from ..ids import new_id
from ..outage import Outage
from ..records import JobRecord, Lease, Outcome, WorkerInfo
from ..version import __version__
from ..workflows.engine import follow_ups, has_follow_ups
from .deadpids import gone, host_id, own_start
from .pools import (
    Drained,
    Dropped,
    Held,
    Lost,
    Orphaned,
    Report,
    Stored,
    Unstarted,
    default_concurrency,
    make_pool,
)  # fmt: skip
from .pools.child import MAX_BATCH
from .pruning import Pruner
from .settle import lost_events, settle
from .stall import StallWatch, check_timing
from .testhooks import ack_hold
from .timing import ACK_WINDOW, BURST_HORIZON, ERROR_BACKOFF, IDLE_WAIT

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("conveyor.worker")

#: ``prefetch=None`` (auto): while jobs are short, claim up to this many per slot beyond
#: the running ones, so a slot never waits for a claim round trip; once jobs are long,
#: claim none ahead, so a job never waits behind a long one while another worker idles.
AUTO_PREFETCH_PER_SLOT = 4
#: Auto prefetch turns on when the average time a job is held (waiting in the worker plus
#: running) falls below SHORT_JOBS seconds, and off when it rises above LONG_JOBS.
SHORT_JOBS, LONG_JOBS = 0.05, 0.2
#: A draining worker names at most this many of the running jobs it waits for.
DRAIN_NAMED = 5
_WAKE = object()


def prefetch_from_settings(multiplier: object, concurrency: int) -> int | None:
    """The prefetch a ``worker_prefetch_multiplier`` setting means (None: auto)."""
    if multiplier is None or multiplier == 0:
        return None
    if isinstance(multiplier, bool) or not isinstance(multiplier, int) or multiplier < 0:
        raise ConfigurationError(
            f"worker_prefetch_multiplier must be a whole number >= 0 (0: auto), not {multiplier!r}"
        )
    return (multiplier - 1) * concurrency


class Worker:
    def __init__(
        self,
        app: App,
        *,
        queues: list[str] | None = None,
        pool: str = "process",
        concurrency: int | None = None,
        name: str | None = None,
        prefetch: int | None = None,
        burst: bool = False,
        shutdown_timeout: float = 30.0,
        dead_pids: bool = True,
        **pool_options: Any,
    ) -> None:
        check_timing(app.conf.lease_seconds, app.conf.heartbeat_interval)
        self.app, self.backend = app, app.backend
        self.queues = list(queues or app.declared_queues())
        self.pool_kind = pool
        self.concurrency = concurrency or default_concurrency(pool)
        if prefetch is None:
            prefetch = prefetch_from_settings(app.conf.worker_prefetch_multiplier, self.concurrency)
        self.auto_prefetch = prefetch is None
        self.max_prefetch = (
            AUTO_PREFETCH_PER_SLOT * self.concurrency if prefetch is None else max(0, prefetch)
        )
        self._prefetching = not self.auto_prefetch  # auto starts fair, until jobs prove short
        self._held_since: dict[str, float] = {}
        self._avg_held: float | None = None
        self.burst, self.shutdown_timeout = burst, shutdown_timeout
        #: Whether to return at once the jobs of this host's workers whose process is gone
        #: (``deadpids.py``); off, they wait for their leases (a host whose /proc is not
        #: to be trusted: ``--no-dead-pids``, ``CONVEYOR_DEAD_PIDS=0``).
        self.dead_pids = dead_pids
        self.id = new_id()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.results: queue.SimpleQueue[Report | object] = queue.SimpleQueue()
        self.pool = make_pool(pool, app, self.concurrency, self.results, **pool_options)  # type: ignore[arg-type]
        self.pool.configure(self.id, self.queues, prefetch, burst)
        self._held: dict[str, JobRecord] = {}
        self._room = threading.Condition()
        self._stop_level = 0
        self._drained = False
        self._unacked: list[Outcome] = []
        self._unlost: list[Lost] = []
        self._orphans: list[Orphaned] = []
        self.started = threading.Event()
        self._prepared = False
        self._hold_ack = ack_hold()  # test-only (testhooks.py); None in production
        self._revoked = False  # set by the revocation watch: heartbeat now
        self._watching = True
        self.outage = Outage(log, named_by=app.conf.backend_named_by())
        self.pruner = Pruner(self.backend, self.id, app.conf, self.outage)
        self.counts = {"SUCCESS": 0, "FAILURE": 0, "RETRY": 0, "REVOKED": 0, "LOST": 0}

    @property
    def capacity(self) -> int:
        """Jobs this worker holds at most: its slots, plus prefetched ones while allowed."""
        return self.concurrency + (self.max_prefetch if self._prefetching else 0)

    @property
    def prefetch_text(self) -> str:
        """How this worker claims ahead, for its banner."""
        if self.pool.claims:
            if self.auto_prefetch:
                return f"prefetch auto: each child claims up to {MAX_BATCH} short jobs at once"
            return f"each child claims up to {1 + math.ceil(self.max_prefetch / self.concurrency)} at once"
        if self.auto_prefetch:
            return f"prefetch auto, up to {self.max_prefetch}"
        return f"+{self.max_prefetch} prefetch" if self.max_prefetch else "no prefetch"

    def _note_done(self, job_id: str, now: float) -> None:
        """Fold one job's held time into the average that switches auto prefetch."""
        since = self._held_since.pop(job_id, None)
        if since is None or not self.auto_prefetch:
            return
        held = now - since
        self._avg_held = held if self._avg_held is None else 0.8 * self._avg_held + 0.2 * held
        if self._avg_held < SHORT_JOBS:
            self._prefetching = True
        elif self._avg_held > LONG_JOBS:
            self._prefetching = False

    # -- control -----------------------------------------------------------------------

    @property
    def ready(self) -> threading.Event:
        """Set once the worker is registered and its pool started (``Service``)."""
        return self.started

    def stop(self, graceful: bool = True) -> None:
        """Ask the worker to stop: the first call drains, a second (or graceful=False) hurries."""
        self._stop_level = max(self._stop_level + 1, 1 if graceful else 2)
        if self._stop_level > 1:  # the first: the main loop says what it waits for (_draining)
            log.warning("stopping now: running jobs go back to their queues")
        self.results.put(_WAKE)
        with self._room:
            self._room.notify_all()

    def info(self) -> WorkerInfo:
        return WorkerInfo(
            id=self.id, name=self.name, host=socket.gethostname(), pid=os.getpid(), queues=self.queues,
            pool=self.pool_kind, concurrency=self.concurrency, version=__version__,
            tasks=sorted(self.app.tasks), started_at=self._started_at,
            clock_skew=time.time() - self.backend.now(), heartbeat_interval=self.app.conf.heartbeat_interval,
            memory_rss=resident_memory(), host_id=host_id(), proc_start=own_start(),
        )  # fmt: skip

    # -- running -------------------------------------------------------------------------

    def prepare(self) -> None:
        """Start the pool (``Service``): before the process runs any other thread, so the
        process pool can fork its zygote (a fork is safe only while one thread runs)."""
        if not self._prepared:
            self._prepared = True
            self.pool.start()

    def run(self) -> int:
        """Run until stopped (or drained, in burst mode). Returns the process exit code."""
        self._started_at = self.backend.now()
        self.prepare()
        watcher = threading.Thread(
            target=self._watch, args=(self._open_watch(),), name="conveyor-revocations", daemon=True
        )
        watcher.start()
        self._beat()
        self._rescue()  # a worker restarted after a kill: its jobs now
        with contextlib.suppress(BackendError):  # a notice for live views; the registry has it
            self.backend.emit("worker.online", subject=self.id)
        consumer = threading.Thread(target=self._consume, name="conveyor-consumer", daemon=True)
        if not self.pool.claims:
            consumer.start()
        pruning = threading.Thread(target=self.pruner.run, name="conveyor-pruner", daemon=True)
        pruning.start()
        self._tell(WorkerUp)
        self.started.set()
        try:
            code = self._main_loop()
        finally:
            self._watching = False
            self._stop_level = max(self._stop_level, 1)
            with self._room:
                self._room.notify_all()
            if consumer.is_alive():
                consumer.join(timeout=IDLE_WAIT * 4)
            self.pruner.stop()  # within one batch; it frees its lock before unregistering
            pruning.join(timeout=IDLE_WAIT * 4)
            self._unregister()
            self._tell(WorkerDown)
        return code

    def _tell(self, kind: type[WorkerUp | WorkerDown]) -> None:
        if self.app.events.wants(kind):
            self.app.events.emit(kind(self.backend.now(), self.id, self.name, tuple(self.queues)))

    def _main_loop(self) -> int:
        now = time.monotonic()
        next_beat, next_rescue = now, now + random.uniform(0, self.app.conf.rescue_interval)
        drain_deadline: float | None = None
        stall = StallWatch(self.app.conf.lease_seconds, self.app.conf.heartbeat_interval)
        while True:
            wait = min(next_beat, next_rescue) - time.monotonic()
            reports = self._collect(wait)
            stalled = stall.check(max(0.0, min(wait, 1.0)))
            self._handle(reports)
            now = time.monotonic()
            self._answer_revocations()
            next_beat, next_rescue = self._tend(now, next_beat, next_rescue, stalled, stall)
            if getattr(self.pool, "fatal", None):
                log.error("the pool cannot run jobs: %s", self.pool.fatal)  # type: ignore[attr-defined]
                self._stop_now()
                return 1
            if self._stop_level == 0 and not (self._drained and not self._held):
                continue
            if drain_deadline is None:
                drain_deadline = now + self.shutdown_timeout
                self._release_unstarted()
                if self._stop_level == 1:
                    self._draining()
            if not self._held and not self._unacked and not self.pool.unreported_leases():
                self.pool.shutdown(wait=True)
                return 0
            if self._stop_level >= 2 or now >= drain_deadline:
                self._stop_now()
                return 0

    def _tend(
        self, now: float, next_beat: float, next_rescue: float, stalled: float, stall: StallWatch
    ) -> tuple[float, float]:
        """Heartbeat and rescue when due; returns when they are due next. After a stall
        of ``stalled`` seconds: heartbeat at once (this worker's leases may have run
        out), and hold the rescue back ``stall.grace`` seconds, until live holders stalled
        with it have renewed theirs (``stall.py``)."""
        conf = self.app.conf
        if stalled:
            log.warning(
                "this worker was stalled for %.1fs (a backend call that hung, its machine "
                "paused or starved of CPU, or the clock stepped): heartbeat now; rescue of "
                "expired leases in %.1fs, after live workers renew theirs",
                stalled,
                stall.grace,
            )
            next_beat, next_rescue = now, max(next_rescue, now + stall.grace)
        if now >= next_beat:
            self._beat()
            next_beat = now + conf.heartbeat_interval
        if now >= next_rescue:
            # A freeze in this very turn (before the rescue reads the clock) is a stall too.
            late = self._rescue(stall)
            next_rescue = now + (stall.grace if late else conf.rescue_interval)
        return next_beat, next_rescue

    def _collect(self, timeout: float) -> list[Report]:
        reports: list[Report] = []
        try:
            item = self.results.get(timeout=max(0.001, min(timeout, 1.0)))
        except queue.Empty:
            return reports
        if isinstance(item, Outcome) and len(self._held) > 1:
            # Group commit: other held jobs may end within the window; one ack for all.
            time.sleep(ACK_WINDOW)
        while True:
            if item is not _WAKE:
                reports.append(item)  # type: ignore[arg-type]
            try:
                item = self.results.get_nowait()
            except queue.Empty:
                return reports

    def _handle(self, reports: list[Report]) -> None:
        self._note_pool_reports(reports)
        unstarted = [lease for r in reports if isinstance(r, Unstarted) for lease in r.leases]
        if unstarted:
            self._release(unstarted)  # never kept: a held job no child runs would stay leased
        # All kept until stored: a backend error here is retried in the next tick.
        self._unacked += [r for r in reports if isinstance(r, Outcome)]
        self._unlost += [r for r in reports if isinstance(r, Lost)]
        self._orphans += [r for r in reports if isinstance(r, Orphaned)]
        lost = self._unlost
        done = [Lease(o.job_id, o.token) for o in self._unacked] + [r.lease for r in lost]
        if self._hold_ack is not None and self._unacked:
            self._hold_ack()
        try:
            records = self._records_of(self._unacked)
            if self._unacked:
                self._warn_refused(settle(self.app, self.backend, records, self._unacked))
            ended, requeued = self._settle_lost(lost) if lost else ([], 0)
            for orphaned in self._orphans:  # last: what the child reported is settled above
                self._release_orphans(orphaned.prefix)
        except BackendError as exc:  # retried in the next tick
            self.outage.failed("storing outcomes", exc)
            return
        if self._unacked or lost or self._orphans:  # a store answered (not an idle tick)
            self.outage.over("storing outcomes")
        self._count_and_log(self._unacked, requeued, records)
        if ended:
            self._count_and_log([o for o, _ in ended], 0, {o.job_id: r for o, r in ended})
        self._unacked, self._unlost, self._orphans = [], [], []
        self._forget(done)

    def _settle_lost(self, lost: list[Lost]) -> tuple[list[tuple[Outcome, JobRecord]], int]:
        """Settle the deliveries of a dead pool process and log what became of each.

        The job it was running is abandoned (requeued, or ended once ``max_lost_leases``
        processes died running it), its record saying what the worker saw. A job that had
        finished there, its outcome lost unstored, is released to run again: its attempt
        is recorded, not counted (it did not cause the death); once released it is done
        with, so a failed abandon retried next tick neither releases nor warns again.
        Returns, for the jobs the abandon ended, their outcome as stored with its record
        (to count and log, once, as their end), and how many it returned to their queues
        (the worker's LOST count)."""
        for reason in dict.fromkeys(r.reason for r in lost if not r.counted):
            again = [r.lease for r in lost if not r.counted and r.reason == reason]
            error = {"type": "OutcomeLost", "message": f"{reason}; it runs again (not counted "
                     "as a lost delivery)"}  # fmt: skip
            self.backend.release(again, error=error)
            for lease in again:
                log.warning("job %s: %s", lease.job_id, error["message"])
            lost[:] = [r for r in lost if r.counted or r.reason != reason]
            self._forget(again)
        counted = [r for r in lost if r.counted]
        if not counted:
            return [], 0
        causes = {r.lease.job_id: r.reason for r in counted}
        touched = self.backend.abandon([r.lease for r in counted], causes)
        records = self._after_rescue(touched, causes)  # the touched ones: all read below
        ended: list[tuple[Outcome, JobRecord]] = []
        requeued = 0
        for report in counted:
            job_id, record = report.lease.job_id, records.get(report.lease.job_id)
            if record is None or job_id not in touched:
                log.warning("job %s: %s; its lease was no longer held (its outcome stored, or "
                            "the job delivered again): nothing to return", job_id, report.reason)  # fmt: skip
            elif record.state.finished:
                log.error("job %s: %s; the job ended %s", job_id, report.reason, record.state.value)
                outcome = Outcome(job_id, report.lease.token, record.state, error=record.error)
                ended.append((outcome, record))
            else:
                log.error("job %s: %s; returned to its queue (lost delivery %d of at most %d)",
                          job_id, report.reason, record.lost_leases, self.backend.max_lost_leases)  # fmt: skip
                requeued += 1
        return ended, requeued

    def _release_orphans(self, prefix: str) -> None:
        """Release the jobs a dead process-pool child claimed without saying so (its
        claim's reply died with it): still leased under its token prefix once everything
        it reported is settled. None of them started; the claim does not count."""
        orphans = self.backend.leases_of(prefix)
        if orphans:
            self.backend.release(orphans)
            log.warning(
                "returned %d job(s) to their queues that a worker child claimed and died "
                "before starting: %s",
                len(orphans),
                ", ".join(lease.job_id for lease in orphans),
            )

    def _note_pool_reports(self, reports: list[Report]) -> None:
        """Reports of a pool that claims and stores jobs itself: bookkeeping only."""
        now = time.monotonic()
        with self._room:
            for report in reports:
                if isinstance(report, Held):
                    for job in report.records:
                        self._held[job.id] = job
                        self._held_since[job.id] = now
        for report in reports:
            if isinstance(report, Stored):
                self._warn_refused(report.refused)
                self._count_and_log(report.outcomes, 0)
                self._forget([Lease(o.job_id, o.token) for o in report.outcomes])
            elif isinstance(report, Dropped):
                self._forget(report.leases)
            elif isinstance(report, Drained):
                self._drained = True

    def _forget(self, leases: list[Lease]) -> None:
        """Drop ended deliveries. By lease, not id: a pool may hold the same job again
        (requeued after a lost lease) before the end of the earlier delivery is reported."""
        now = time.monotonic()
        with self._room:
            for lease in leases:
                held = self._held.get(lease.job_id)
                if held is not None and (held.lease_token or "") == lease.token:  # held.lease
                    del self._held[lease.job_id]
                    self._note_done(lease.job_id, now)
            self._room.notify_all()

    @staticmethod
    def _warn_refused(job_ids: list[str]) -> None:
        for job_id in job_ids:
            log.warning(
                "job %s: lease lost before its outcome was stored; another delivery owns it",
                job_id,
            )

    def _records_of(self, outcomes: list[Outcome]) -> Mapping[str, JobRecord]:
        """The outcomes' records (fetched for jobs whose records the worker never received)."""
        records: Mapping[str, JobRecord] = self._held
        missing = [o.job_id for o in outcomes if o.job_id not in records]
        if missing:  # a process-pool child killed before its records reached us
            records = {**self.backend.get_many(missing), **self._held}
        return records

    def _after_rescue(
        self, job_ids: list[str], reasons: Mapping[str, str] | None = None
    ) -> dict[str, JobRecord]:
        """Jobs the backend ended (worker lost, revoked while orphaned) start follow-ups
        too; every rescued delivery is told as ``JobLost`` (``reasons``: what this worker
        saw of the deaths it reported). Returns the records of ``job_ids``, as read."""
        if not job_ids:
            return {}
        records = self.backend.get_many(job_ids)
        ended = [r for r in records.values() if r.state.finished and has_follow_ups(r)]
        follow = [f for record in ended for f in follow_ups(self.app, record)]
        if follow:
            self.backend.enqueue(follow)
        if self.app.events.wants(JobLost) or self.app.events.wants(JobRevoked):
            self.app.events.emit_all(lost_events(self.backend.now(), records, reasons or {}))
        return records

    def _count_and_log(
        self, outcomes: list[Outcome], lost: int, records: Mapping[str, JobRecord] | None = None
    ) -> None:
        self.counts["LOST"] += lost
        counts = self.counts
        for report in outcomes:
            counts[report.state.value] = counts.get(report.state.value, 0) + 1
        if not log.isEnabledFor(logging.INFO):  # -l warning, as for throughput: no line to format
            return
        for report in outcomes:
            record = (records or self._held).get(report.job_id)
            task = record.task if record else "?"
            if report.error:
                log.info("%s %s %s: %s: %s", report.state.value, task, report.job_id,
                         report.error.get("type"), report.error.get("message"))  # fmt: skip
            else:
                log.info("%s %s %s -> %r", report.state.value, task, report.job_id, report.result)

    def _beat(self) -> None:
        with self._room:
            leases = [j.lease for j in self._held.values()]
        leases += self.pool.unreported_leases()
        try:
            reply = self.backend.heartbeat(self.info(), leases, self.app.conf.lease_seconds)
        except BackendError as exc:
            meanwhile = (
                f"the leases of the {len(leases)} job(s) this worker holds expire within "
                f"{self.app.conf.lease_seconds:.0f}s unless it recovers (then they run again elsewhere)"
                if leases
                else ""
            )
            self.outage.failed("a heartbeat", exc, meanwhile)
            return
        self.outage.over("a heartbeat")
        for job_id in reply.terminate:
            log.warning("job %s was revoked with terminate; stopping it", job_id)
            self.pool.terminate(job_id)
        self._warn_lost(reply.lost)

    def _warn_lost(self, lost: Collection[str]) -> None:
        """Warn of leases the heartbeat could not renew, for the jobs still running only.

        A lease also ends when its job's outcome is stored, and an acknowledgement (a
        process-pool child's, or this worker's own) can land between reading the held
        leases and the heartbeat: that job is not running any more and its result is
        already stored, so nothing is said. A running job's result will be refused (a
        lost lease never comes back); a finished one's refusal is warned of when
        ``settle`` reports it (``_warn_refused``)."""
        if not lost:
            return
        running = self.pool.running_jobs()
        for job_id in lost:
            if job_id in running:
                log.warning(
                    "job %s: lease lost (this worker stalled past its lease); its result will be refused",
                    job_id,
                )
            else:
                log.debug(
                    "job %s: lease not renewed (its outcome was stored meanwhile, or it never started)",
                    job_id,
                )

    def _answer_revocations(self) -> None:
        """The watch saw a running job revoked with terminate: if this worker holds any
        job, heartbeat now; the reply names those of ours to stop."""
        if self._revoked:
            self._revoked = False
            if self._held or self.pool.unreported_leases():
                self._beat()

    def _open_watch(self) -> RevocationWatch | None:
        """Opened before the first heartbeat, so no revoke falls between the two."""
        try:
            watch = self.backend.watch_revocations()
        except BackendError as exc:
            self.outage.failed("the revocation watch", exc)
            return None
        self.outage.over("the revocation watch")
        return watch

    def _watch(self, watch: RevocationWatch | None) -> None:
        """The revocation watch thread: wake the main loop when the backend says a
        running job was revoked with terminate. Without it (the backend unreachable),
        revocations still arrive with each heartbeat."""
        while self._watching:
            try:
                if watch is None:
                    time.sleep(ERROR_BACKOFF)
                    watch = self._open_watch()
                elif watch.wait(IDLE_WAIT):
                    self._revoked = True
                    self.results.put(_WAKE)
            except BackendError as exc:
                self.outage.failed("the revocation watch", exc)
                if watch is not None:
                    watch.close()
                watch = None
            except Exception:
                if not self._watching:
                    return  # the worker is done and its backend closed under this wait
                # A driver error of another kind (a socket closed under the wait): never
                # let the watch die silently; say so and open a new one.
                log.exception("revocation watch failed; heartbeats still bring revocations")
                with contextlib.suppress(Exception):
                    if watch is not None:
                        watch.close()
                watch = None
        if watch is not None:
            watch.close()

    def _rescue(self, stall: StallWatch | None = None) -> bool:
        """Return the jobs of workers known dead: those of this host whose process is
        gone (``deadpids.py``), at once, and, given the main loop's ``stall`` watch, any
        whose lease ran out, unless this turn is already running late (then it returns
        True, and the rescue of expired leases waits for the next try)."""
        try:
            if self.dead_pids:
                self._bury_dead()
            if stall is not None and stall.running_late():
                return True
            rescued = self.backend.rescue_expired() if stall is not None else []
            if rescued:
                log.warning(
                    "returned %d job(s) of dead workers to their queues: %s",
                    len(rescued),
                    ", ".join(rescued),
                )
                self._after_rescue(rescued)
        except BackendError as exc:
            self.outage.failed("the rescue of expired leases", exc)
            return False
        self.outage.over("the rescue of expired leases")
        return False

    def _bury_dead(self) -> None:
        """Return at once the jobs of the registered workers of this host whose process
        is gone, as lost deliveries: not after their leases run out."""
        for entry in self.backend.workers():
            cause = None if entry.id == self.id else gone(entry)
            if cause is None:
                continue
            returned = self.backend.abandon_worker(entry.id, cause)
            if returned:
                log.warning(
                    "returned %d job(s) of worker %s to their queues: %s: %s",
                    len(returned),
                    entry.name,
                    cause,
                    ", ".join(returned),
                )
                self._after_rescue(returned)

    # -- claiming (consumer thread) -------------------------------------------------------

    def _consume(self) -> None:
        wait = 0.0  # how long to wait for work before the next claim
        while self._stop_level == 0:
            with self._room:
                free = self.capacity - len(self._held)
                if free <= 0:
                    self._room.wait(IDLE_WAIT)
                    continue
            try:
                jobs = self.backend.wait_and_claim(
                    self.queues, self.id, free, self.app.conf.lease_seconds, wait
                )
                self.outage.over("a claim")
                if jobs:
                    self._dispatch(jobs)
                    wait = 0.0
                    continue
                idle = self._idle_wait()
                if idle is None:
                    return
                wait = idle
            except BackendError as exc:  # the backend is down: keep trying, never die
                self.outage.failed("a claim", exc)
                time.sleep(ERROR_BACKOFF)

    def _dispatch(self, jobs: list[JobRecord]) -> None:
        with self._room:
            if self._stop_level:  # stopped while claiming: give them straight back
                self.backend.release([j.lease for j in jobs])
                return
            now = time.monotonic()
            for job in jobs:
                self._held[job.id] = job
                self._held_since[job.id] = now
        for job in jobs:
            self.pool.submit(job)

    def _idle_wait(self) -> float | None:
        """How long to wait for work; None when a burst worker has drained its queues."""
        # Look at what is held before asking the backend: a job's follow-ups are stored
        # before it leaves _held, so this order cannot miss them.
        with self._room:
            nothing_held = not self._held
        due = self.backend.next_due(self.queues)
        now = self.backend.now()
        if self.burst and nothing_held and (due is None or due > now + BURST_HORIZON):
            self._drained = True
            self.results.put(_WAKE)
            return None
        return IDLE_WAIT if due is None else min(IDLE_WAIT, max(0.0, due - now))

    # -- stopping ----------------------------------------------------------------------------

    def _release_unstarted(self) -> None:
        unstarted = self.pool.take_unstarted()
        if not unstarted:
            return
        self._release([j.lease for j in unstarted])
        log.info("released %d claimed job(s) that had not started", len(unstarted))

    def _draining(self) -> None:
        """Say at once what a graceful stop waits for: which running jobs, how long at most,
        what becomes of one still running then, and that a second stop hurries."""
        ids = sorted(self.pool.running_jobs())
        try:
            records = self.backend.get_many(ids) if ids else {}
        except BackendError:
            records = {}
        # Not those revoked with terminate: they are being stopped now, not waited for.
        waited = [i for i in ids if i not in records or records[i].revoke != "terminate"]
        if not waited:
            log.warning("stopping: no job is running")
            return
        now = time.time()
        named = [
            f"{r.task} {r.id} (running {max(0.0, now - (r.started_at or now)):.0f}s)"
            if (r := records.get(i))
            else i
            for i in waited[:DRAIN_NAMED]
        ]
        more = f" and {len(waited) - DRAIN_NAMED} more" if len(waited) > DRAIN_NAMED else ""
        log.warning(
            "draining: waiting up to %.0fs (the shutdown timeout) for %d running job(s) to "
            "finish: %s%s. One still running then goes back to its queue and runs again from "
            "the start when a worker takes it; stop again (a second Ctrl-C) to send them back now",
            self.shutdown_timeout, len(waited), ", ".join(named), more,
        )  # fmt: skip

    def _stop_now(self) -> None:
        running = self.pool.running_jobs()  # their attempts are recorded as interrupted
        with self._room:
            held = [j.lease for j in self._held.values()]
        if held:
            log.warning("stopping %d running job(s); they go back to their queues", len(held))
            self._release(held, running)
        self.pool.shutdown(wait=False)
        unreported = self.pool.unreported_leases()  # claimed by children just before they died
        if unreported:
            self._release(unreported, running)
        for prefix in self.pool.claim_prefixes():  # claimed as they died, never written down
            try:
                self._release_orphans(prefix)
            except BackendError as exc:
                log.error("could not release jobs (%s); they return when their leases expire", exc)

    def _release(self, leases: list[Lease], running: Collection[str] = ()) -> None:
        """Give jobs back to their queues; those in ``running`` were stopped mid-run."""
        interrupted = [x for x in leases if x.job_id in running]
        unstarted = [x for x in leases if x.job_id not in running]
        try:
            for batch, flag in ((unstarted, False), (interrupted, True)):
                if batch:
                    self.backend.release(batch, interrupted=flag)
        except BackendError as exc:
            log.error("could not release jobs (%s); they return when their leases expire", exc)
        with self._room:
            for lease in leases:
                self._held.pop(lease.job_id, None)
                self._held_since.pop(lease.job_id, None)

    def _unregister(self) -> None:
        try:
            self.backend.unregister_worker(self.id)
        except BackendError as exc:
            log.error("could not unregister the worker: %s", exc)


def resident_memory() -> int | None:
    """This process's resident memory in bytes, from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
