"""Service factories the supervisor tests start in spawned child processes (importable there)."""

from __future__ import annotations

from conveyor.loader import load_app
from conveyor.worker import Worker


def basic_worker(url: str, *queues: str) -> Worker:
    """A thread-pool worker of ``tests.apps.basic`` on ``url``."""
    app = load_app("tests.apps.basic:app")
    app.conf.backend_url = url
    return Worker(app, queues=list(queues) or None, pool="thread", concurrency=2)
