from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conveyor import App
from conveyor.testing import wait_for

#: ``spawn_worker``'s answer: ``spawn(*args, app=..., command="worker", env=None)``.
SpawnWorker = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def producer(shared_url: str) -> App:
    """An app that only sends jobs, on the test's store, as a web process does."""
    return App("producer", backend=shared_url)


@pytest.fixture
def spawn_worker(
    shared_url: str, conveyor_proc: Callable[..., subprocess.Popen[bytes]]
) -> SpawnWorker:
    """Start ``conveyor -A APP COMMAND -l info ARGS`` on the test's store: a worker of
    tests.apps.basic unless told another ``app``, or another ``command`` (``up``); ``env``
    adds to its environment."""

    def spawn(
        *args: str,
        app: str = "tests.apps.basic:app",
        command: str = "worker",
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        return conveyor_proc(
            "-A", app, command, "-l", "info", *args,
            env={"CONVEYOR_BACKEND": shared_url, **(env or {})},
        )  # fmt: skip

    return spawn


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    return wait_for(predicate, timeout, what)


def ledger_lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def running(path: Path) -> bool:
    """A ``t.ledger`` job has started and not ended: it holds a lease, its ack to come."""
    events = [line[0] for line in ledger_lines(path)]
    return events.count("start") > events.count("end")
