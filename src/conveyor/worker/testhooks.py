"""Test-only hooks for the fault tests (``tests/faults``); never set them in production.

Each is read from the environment once, when a worker or a pool child starts; unset, a
hook is ``None`` and costs one attribute check per batch of outcomes, nothing per job.

``CONVEYOR_TEST_HOLD_ACK=<path>``: before storing a batch of outcomes (in a process-pool
child's storer thread; in the worker's main loop for the other pools), create ``<path>``
and wait until it is removed. The file says "a job's body has returned and its outcome is
not stored yet", so a test can SIGKILL the worker in exactly that window. Held in the
main loop, the worker sends no heartbeats either: its leases run out if the test waits.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

HOLD_ACK = "CONVEYOR_TEST_HOLD_ACK"


def ack_hold() -> Callable[[], None] | None:
    """The hold to call before storing outcomes, or None when the hook is unset."""
    path = os.environ.get(HOLD_ACK)
    if not path:
        return None

    def hold() -> None:
        Path(path).touch()
        while os.path.exists(path):
            time.sleep(0.01)

    return hold
