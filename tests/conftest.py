from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import App
from conveyor.backends import Backend, from_url
from conveyor.loader import load_app
from conveyor.records import WorkerInfo
from conveyor.testing import FakeClock, use_backend
from conveyor.worker import Worker

from .services import delete_prefix, drop_schema, postgres_base_url, redis_base_url

BACKENDS = ["memory", "sqlite", "redis", "postgres"]
#: Backends several processes can share (memory:// lives inside one process).
SHARED_BACKENDS = ["sqlite", "redis", "postgres"]


def backend_url(kind: str, tmp_path: Path) -> str:
    """A fresh, empty store of this kind for one test."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'conveyor.db'}"
    if kind == "redis":
        return f"{redis_base_url()}?prefix=t-{uuid.uuid4().hex[:12]}"
    if kind == "postgres":
        return f"{postgres_base_url()}?schema=t_{uuid.uuid4().hex[:12]}"
    raise AssertionError(kind)


def discard(url: str) -> None:
    """Delete what a test left in a shared service."""
    if url.startswith("redis"):
        delete_prefix(url, url.rsplit("prefix=", 1)[1])
    elif url.startswith("postgres"):
        drop_schema(url)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_backend(backend_kind: str, tmp_path: Path) -> Iterator[Callable[..., Backend]]:
    made: list[Backend] = []
    url = backend_url(backend_kind, tmp_path)  # one store per test, however many handles

    def make(**options: object) -> Backend:
        backend = from_url(url, **options)  # type: ignore[arg-type]
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()
    discard(url)


@pytest.fixture
def backend(make_backend: Callable[..., Backend], clock: FakeClock) -> Backend:
    return make_backend(clock=clock)


@pytest.fixture
def app(backend: Backend) -> App:
    return App("tests", backend=backend)


@pytest.fixture
def worker_info() -> WorkerInfo:
    return WorkerInfo(
        id="w1-id", name="w1", host="localhost", pid=1, queues=["default"], pool="thread",
        concurrency=2, version="test", tasks=["tests.noop"], started_at=0.0,
    )  # fmt: skip


@pytest.fixture
def worker_app(make_backend: Callable[..., Backend]) -> Iterator[App]:
    """tests.apps.basic's app, bound to this test's backend (real clock)."""
    app = load_app("tests.apps.basic:app")
    with use_backend(app, make_backend()):
        yield app


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


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=SHARED_BACKENDS)
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store on each backend several processes can share; removed afterwards."""
    store = backend_url(request.param, tmp_path)
    yield store
    discard(store)


@pytest.fixture
def conveyor_proc(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``python -m conveyor ARGS`` in its own session (so the whole process group,
    pool children included, can be signalled), logging to a file (``proc.log_path``).
    Every process started is killed at the end of the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log_path = tmp_path / f"proc-{len(procs)}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "conveyor", *args], cwd=ROOT,
                env={**os.environ, "COLUMNS": "200", **(env or {})},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        proc.log_path = log_path  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGCONT)
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
