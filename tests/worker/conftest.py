from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import App
from conveyor.backends import Backend
from conveyor.loader import load_app
from conveyor.worker import Worker


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def worker_app(make_backend: Callable[..., Backend]) -> Iterator[App]:
    """tests.apps.basic's app, bound to this test's backend (real clock)."""
    app = load_app("tests.apps.basic:app")
    saved = app._backend, app.conf.backend_url
    backend = make_backend()
    app._backend, app.conf.backend_url = backend, backend.url
    yield app
    app._backend, app.conf.backend_url = saved


@pytest.fixture
def start_worker(worker_app: App) -> Iterator[Callable[..., tuple[Worker, threading.Thread]]]:
    """Run a Worker on a thread; every one started is stopped at the end of the test."""
    running: list[tuple[Worker, threading.Thread]] = []

    def start(**options: Any) -> tuple[Worker, threading.Thread]:
        options.setdefault("pool", "thread")
        options.setdefault("concurrency", 2)
        worker = Worker(worker_app, **options)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        worker.started.wait(10)
        running.append((worker, thread))
        return worker, thread

    yield start
    for worker, thread in running:
        worker.stop(graceful=False)
        thread.join(10)


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger.txt"


def ledger_lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []
