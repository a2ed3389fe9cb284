"""Test-only hooks for the fault tests (``tests/faults``); never set them in production.

Each is read from the environment once, when a worker or a pool child starts; unset, a
hook is ``None`` and costs one attribute check per batch (of outcomes, or claimed jobs),
nothing per job.

``CONVEYOR_TEST_HOLD_ACK=<path>``: before storing a batch of outcomes (in a process-pool
child's storer thread; in the worker's main loop for the other pools), write the
process's pid to ``<path>`` and wait until it is removed. The file says "a job's body has
returned and its outcome is not stored yet", so a test can SIGKILL the worker in exactly
that window. Held in the
main loop, the worker sends no heartbeats either: its leases run out if the test waits.

``CONVEYOR_TEST_HOLD_CLAIM=<path>``: in a process-pool child, when a claim has returned
jobs and before the child writes them into the lease table it shares with its worker,
write the child's pid to ``<path>`` and wait until it is removed: "the backend has leased
these jobs to this child and nobody else knows", the window a killed child strands them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

HOLD_ACK = "CONVEYOR_TEST_HOLD_ACK"
HOLD_CLAIM = "CONVEYOR_TEST_HOLD_CLAIM"


def ack_hold() -> Callable[[], None] | None:
    """The hold to call before storing outcomes, or None when the hook is unset."""
    return _file_hold(HOLD_ACK)


def claim_hold() -> Callable[[], None] | None:
    """The hold to call between a claim and the lease table, or None when unset."""
    return _file_hold(HOLD_CLAIM)


def _file_hold(variable: str) -> Callable[[], None] | None:
    """Write this process's pid to the file the variable names, then wait until the file
    is removed; None when the variable is unset."""
    path = os.environ.get(variable)
    if not path:
        return None

    def hold() -> None:
        Path(path).write_text(str(os.getpid()))
        while os.path.exists(path):
            time.sleep(0.01)

    return hold
