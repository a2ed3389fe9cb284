"""Noticing that this worker was stalled, so it does not rescue live workers' jobs.

A rescue returns to their queues the jobs whose lease ran out, on the premise that their
worker died. When the rescuing worker was itself stalled (the machine or VM paused, a
laptop asleep, every process starved of CPU, the wall clock stepped forward), the
workers that hold those leases were most likely stalled with it: they are alive and
renew their leases at their next heartbeat, which comes a moment after they run again.
Rescuing first would run their jobs twice. So the main loop checks ``StallWatch`` each
turn; after a stall its heartbeat goes at once and its rescue waits ``grace`` seconds.

A turn is a stall when it outlasts its wait by more than ``tolerance``: half of what a
lease has left when a heartbeat is due (``lease_seconds - heartbeat_interval``), so any
stall that can let a lease run out is seen, and the ordinary lateness of a loaded
machine is not. The grace is as long (at least ``RESCUE_GRACE`` heartbeat intervals): a
holder's beat may come that late and not be a stall.

A stall is seen on either clock: the monotonic one (the process did not run) or the wall
clock (it stepped). Limits: a stall of the store's machine alone, or of a clock only the
store reads (Redis and PostgreSQL judge leases by their server's clock), is not seen
here, and neither is one before the main loop's first turn (a worker paused while it
starts); a lease then runs out as it would for a worker that died.
"""

from __future__ import annotations

import time

from ..errors import ConfigurationError

#: After a stall, the rescue waits this many heartbeat intervals: the holders' beats,
#: due at once when they run again, land first.
RESCUE_GRACE = 2.0


def check_timing(lease_seconds: float, heartbeat_interval: float) -> None:
    """Refuse a heartbeat that does not come within a lease: each lease would run out
    before its renewal (its job run twice), and every turn of the main loop would read
    as a stall (``tolerance`` not above 0): a heartbeat each turn, a warning each second,
    and the rescue held back for good."""
    if not 0 < heartbeat_interval < lease_seconds:
        raise ConfigurationError(
            f"heartbeat_interval ({heartbeat_interval:g} s) must be above 0 and below "
            f"lease_seconds ({lease_seconds:g} s), well below: each heartbeat renews the "
            "leases for lease_seconds (defaults: 2 s and 30 s)"
        )


class StallWatch:
    def __init__(self, lease_seconds: float, heartbeat_interval: float) -> None:
        #: Lateness beyond which a turn counts as a stall (seconds).
        self.tolerance = (lease_seconds - heartbeat_interval) / 2
        #: How long the rescue waits after a stall (seconds).
        self.grace = max(RESCUE_GRACE * heartbeat_interval, self.tolerance)
        self._mono, self._wall = time.monotonic(), time.time()

    def running_late(self) -> bool:
        """Whether the turn under way (since the last ``check``) has already run longer
        than ``tolerance``: a freeze in the middle of its backend calls, which the next
        ``check`` would only see after a rescue had run on a stale premise."""
        late = max(time.monotonic() - self._mono, time.time() - self._wall)
        return late > self.tolerance

    def check(self, waited: float) -> float:
        """Called once a turn of the loop, after a wait of up to ``waited`` seconds: how
        much longer than that the turn took, by either clock, when more than
        ``tolerance``; else 0. The whole turn counts, its backend calls included: a
        process frozen in the middle of one is stalled as much as one frozen asleep."""
        mono, wall = time.monotonic(), time.time()
        late = max(mono - self._mono, wall - self._wall) - waited
        self._mono, self._wall = mono, wall
        return late if late > self.tolerance else 0.0
