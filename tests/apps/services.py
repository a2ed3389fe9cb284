"""Service factories the supervisor tests start in spawned child processes (importable there)."""

from __future__ import annotations

import threading
import time

from conveyor.loader import load_app
from conveyor.worker import Worker


def basic_worker(url: str, *queues: str) -> Worker:
    """A thread-pool worker of ``tests.apps.basic`` on ``url``."""
    app = load_app("tests.apps.basic:app")
    app.conf.backend_url = url
    return Worker(app, queues=list(queues) or None, pool="thread", concurrency=2)


class SlowToHearStop:
    """Ends at once on a graceful stop but is slow to return from it, so a second order (a
    hurry) reaches the child while it exits, unread."""

    name = "slow to hear"

    def __init__(self) -> None:
        self.ready = threading.Event()
        self._stopped = threading.Event()

    def prepare(self) -> None:
        pass

    def run(self) -> int:
        self.ready.set()
        self._stopped.wait()
        time.sleep(1)  # ending: a hurry sent now waits in the pipe, unread
        return 0

    def stop(self, graceful: bool = True) -> None:
        self._stopped.set()
        time.sleep(5)  # the child's order thread is here when its main thread exits


def slow_to_hear_stop() -> SlowToHearStop:
    return SlowToHearStop()
