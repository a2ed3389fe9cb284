"""Running an example's ``conveyor up`` as a user does: a real process in the example's
folder, its children spawned, its API on a free port, stopped with real signals."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from ..conftest import ROOT, backend_url, discard

EXAMPLES = ROOT / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """``check()`` every 0.1 s until it is truthy; its value. (A server is polled gently.)"""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)
    return value


@dataclass
class Up:
    proc: subprocess.Popen[bytes]
    log_path: Path
    api: httpx.Client
    #: The environment ``up`` runs in (a CLI command beside it runs in the same).
    env: dict[str, str]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[psutil.Process]:
        """The supervised children (not multiprocessing's resource tracker)."""
        kids = psutil.Process(self.proc.pid).children()
        return [c for c in kids if "resource_tracker" not in " ".join(c.cmdline())]

    def job(self, job_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.api.get(f"/api/jobs/{job_id}").json()
        return body

    def submit(self, task: str, *args: Any, **options: Any) -> str:
        r = self.api.post("/api/jobs", json={"task": task, "args": list(args), **options})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def wait(self, job_id: str, *states: str, timeout: float = 20) -> dict[str, Any]:
        return dict(poll(lambda: (j := self.job(job_id))["state"] in states and j, timeout,
                         f"job {job_id} to be {' or '.join(states)}"))  # fmt: skip

    def ran_in(self, job: dict[str, Any]) -> str:
        """The queues of the worker that ran ``job`` (a job names its worker by id)."""
        found = self.api.get("/api/workers").json()["workers"]
        return next(",".join(w["queues"]) for w in found if w["id"] == job["worker"])

    def workers(self) -> dict[str, dict[str, Any]]:
        """The live workers by the queues they consume ("audio,image,document")."""
        found = self.api.get("/api/workers").json()["workers"]
        return {",".join(w["queues"]): w for w in found}


@pytest.fixture(params=["sqlite", "redis"])
def example_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store for an example, on SQLite and on Redis."""
    url = backend_url(str(request.param), tmp_path)
    yield url
    discard(url)


@pytest.fixture
def run_up(tmp_path: Path) -> Iterator[Callable[..., Up]]:
    """Start ``conveyor -A APP up ARGS`` in ``examples/<example>``; killed at the end."""
    started: list[Up] = []

    def start(example: str, app: str, *args: str, env: dict[str, str]) -> Up:
        port = free_port()
        log_path = tmp_path / f"{example}-up.log"
        env = {**os.environ, "COLUMNS": "200", **env}
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "conveyor", "-A", app, "up", "--port", str(port), *args],
                cwd=EXAMPLES / example, env=env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        up = Up(proc, log_path, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30), env)
        started.append(up)
        poll(lambda: f"dashboard at http://127.0.0.1:{port}/" in up.log() or proc.poll() is not None,
             60, "every service of up to be ready")  # fmt: skip
        assert proc.poll() is None, up.log()
        return up

    yield start
    for up in started:
        up.api.close()
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
            for child in psutil.Process(up.proc.pid).children(recursive=True):
                child.kill()
            os.killpg(up.proc.pid, signal.SIGKILL)
        up.proc.wait()
        print(up.log())  # shown when the test fails
