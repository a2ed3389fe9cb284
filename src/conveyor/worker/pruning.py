"""The pruner: deletes finished records past their ``keep_until`` on a thread of its own.

Every worker runs one, and the holder of the backend lock ``PRUNE_LOCK`` prunes: one
pruner at a time across workers, so adding workers does not add deleting load; when the
holder dies its lock expires and another worker's pruner takes over. While expired
records remain it deletes batch after batch, pacing itself: after a batch that took t
seconds it sleeps t * (1 - share) / share, so it spends at most that share of its time
holding the store's write path and a draining worker's acknowledgements keep the rest.
It paces a short batch the same way (records keep expiring while workers finish jobs: it
follows them). A batch that deletes nothing sends it to look again after
``prune_interval``, or sooner when records were expiring fast: after the time a batch's
worth takes to expire at the rate records expired since its last empty look (at
10,000 a second they would otherwise pile up 50,000 deep during each 5 s nap, then be
deleted in a burst that competes with the workers). A store where records expire slowly sees
no more looks than before: a batch's worth takes longer than the interval there.

While it is behind (a batch deleted all it asked for, so more are waiting) it catches up:
the batch doubles, from ``prune_batch`` up to ``MOST_BATCHES`` times it, as long as a
batch takes under the backend's ``prune_batch_seconds`` (halving again above twice that:
a transaction, and SQLite's one write lock, stays short: 0.1 s), and the share doubles
(``prune_share`` 0.25: 0.5). On Redis a batch is one script, which every other client
of the server waits behind, the worker's claims and acknowledgements too: there a batch
stays under 10 ms and the share does not double.
Measured on PostgreSQL, a batch had a fixed cost (the candidate scan read the expired
backlog's index entries, until it read ``jobs_keep_until`` alone; the event and count
trims; five round trips) that a batch of 1,000 at a quarter of the time could not
amortise past about 3,000 records a second; the first batch that finds fewer than it
asked for restores both. Each batch deletes records and trims the event feed (the
feed grows as records do); the other trims (``Backend.prune``'s ``trim``: the audit
log, key-values, group results, old rollups, on PostgreSQL the rollups' fold) run with
one batch an interval (Redis deletes expired key-values with every batch: prune.lua). docs/worker.md tells why a
thread of the worker rather than the scheduler process.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import TYPE_CHECKING

from ..errors import BackendError
from ..outage import Outage
from .timing import ERROR_BACKOFF

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..config import Settings

log = logging.getLogger("conveyor.worker")

#: The backend lock naming the one worker that prunes.
PRUNE_LOCK = "conveyor-pruner"
#: While behind, a batch grows to at most this many times ``prune_batch``, and only
#: while one takes less than the backend's ``prune_batch_seconds``.
MOST_BATCHES = 16


class Pruner:
    """Run ``run`` on a thread; ``stop`` ends it (within one batch) and frees the lock."""

    def __init__(
        self, backend: Backend, owner: str, conf: Settings, outage: Outage | None = None
    ) -> None:
        if conf.prune_batch < 1 or not 0 < conf.prune_share <= 1 or conf.prune_interval <= 0:
            raise ValueError(
                f"pruning settings out of range: prune_batch={conf.prune_batch!r} (at least 1), "
                f"prune_share={conf.prune_share!r} (above 0, at most 1), "
                f"prune_interval={conf.prune_interval!r} (seconds, above 0)"
            )
        self.backend, self.owner = backend, owner
        self.outage = outage or Outage(log)  # the worker's: one account of an outage
        self.batch, self.share, self.interval = (
            conf.prune_batch,
            conf.prune_share,
            conf.prune_interval,
        )
        self.size = self.batch  # the next batch: prune_batch, more while behind
        self._clock = time.monotonic
        self._since = self._clock()  # the last look that found nothing expired (or the start)
        self._found = 0  # the records deleted since
        self._trimmed: float | None = None  # when a batch last trimmed (Backend.prune)
        self._stopping = threading.Event()
        self._renewed = 0.0  # monotonic time the lock was last taken or extended
        self.deleted = 0

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        # The first look waits up to a second, at random: a worker starting is busy
        # claiming, and workers started together then do not all reach for the lock at once.
        self._stopping.wait(random.uniform(0.2, 1.0) * min(1.0, self.interval))
        try:
            while not self._stopping.is_set():
                try:
                    pause = self._step()
                    self.outage.over("pruning")
                except BackendError as exc:
                    self.outage.failed("pruning", exc)
                    pause = ERROR_BACKOFF
                except Exception:  # a driver error of another kind: say so, never die
                    log.exception("pruning failed; retrying in %.0fs", self.interval)
                    pause = self.interval
                self._stopping.wait(pause)
        finally:
            self._release()

    def _step(self) -> float:
        """One batch if this worker holds the lock; the seconds to wait before the next."""
        if not self._hold():
            return self.interval
        started = self._clock()
        asked = self.size
        # The trims that rarely find anything, once an interval: a statement each.
        trim = self._trimmed is None or started - self._trimmed >= self.interval
        deleted = self.backend.prune(limit=asked, trim=trim)
        if trim:
            self._trimmed = started
        self.deleted += deleted
        took = self._clock() - started
        share = self.share
        self._found += deleted
        if deleted < asked:  # caught up: back to the settings
            self.size = self.batch
            if not deleted:
                return self._next_look(started, took)
        else:  # behind: catch up with bigger batches and, unless that stalls others, share
            if not self.backend.prune_holds_store:
                share = min(1.0, 2 * self.share)
            longest = self.backend.prune_batch_seconds
            if took < longest:
                self.size = min(2 * asked, MOST_BATCHES * self.batch)
            elif took > 2 * longest:
                self.size = max(self.batch, asked // 2)
        pause = took * (1 - share) / share
        log.debug(
            "pruned %d of %d in %.3fs; next %d in %.3fs", deleted, asked, took, self.size, pause
        )
        return pause

    def _next_look(self, started: float, took: float) -> float:
        """The wait after a batch that deleted nothing: ``prune_interval``, or, if records
        were deleted since the last look that found none, the time ``prune_batch`` records
        take to expire at the rate they expired since then (never sooner than the pacing),
        if that is shorter."""
        found, since = self._found, self._since
        self._found, self._since = 0, started
        if not found:
            return self.interval  # nothing expired since the last look either
        rate = found / max(started - since, 1e-3)
        paced = took * (1 - self.share) / self.share
        return min(self.interval, max(self.batch / rate, paced))

    def _hold(self) -> bool:
        """Take the lock, or extend it once per interval while it is ours (the TTL is
        three intervals, so a pruner that stalls for less keeps its turn)."""
        now = time.monotonic()
        if self._renewed and now - self._renewed < self.interval:
            return True
        if self.backend.acquire_lock(PRUNE_LOCK, self.owner, 3 * self.interval):
            self._renewed = now
            return True
        self._renewed = 0.0
        return False

    def _release(self) -> None:
        if self._renewed:
            try:
                self.backend.release_lock(PRUNE_LOCK, self.owner)
            except BackendError as exc:  # it expires by itself
                log.debug("could not release the pruning lock: %s", exc)
