"""examples/visitors: a guest registered through the view gets its device chain run on
the queue "hikvision" by a real worker, each step failing once and retried, and the
visit's page shows it from Conveyor's records; with only a worker that does not consume
"hikvision", ``manage.py conveyor doctor`` exits non-zero and names the queue and the fix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "visitors"
pytestmark = pytest.mark.slow

CLIENT = "from django.test import Client; c = Client(); "


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=EXAMPLE, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def shell(env: dict[str, str], code: str) -> str:
    done = manage(env, "shell", "--no-imports", "-c", CLIENT + code)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def worker(env: dict[str, str], queues: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "conveyor", "worker", "-Q", queues, "-c", "1"],
            cwd=EXAMPLE, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_the_visitors_chain_runs_on_hikvision(tmp_path: Path) -> None:
    env = {**os.environ, "CONVEYOR_BACKEND": f"sqlite:///{tmp_path}/jobs.db",
           "VISITORS_DB": str(tmp_path / "visitors.db"), "HIKVISION_FAILURES": "1",
           "COLUMNS": "200"}  # fmt: skip
    assert manage(env, "migrate", "-v0").returncode == 0
    check = manage(env, "check")
    assert check.returncode == 0
    assert "no issues" in check.stdout + check.stderr
    page = shell(env, "r = c.post('/', {'guest': 'Ada'}); print(r.status_code, r['Location'])")
    assert page.split() == ["302", "/visits/1/"]

    devices = worker(env, "hikvision", tmp_path / "devices.log")
    try:
        deadline = time.monotonic() + 30
        while True:
            page = shell(env, "print(c.get('/visits/1/').content.decode())")
            if page.count("<td>SUCCESS</td>") == 2:
                break
            assert time.monotonic() < deadline, (
                page,
                (tmp_path / "devices.log").read_text()[-3000:],
            )
            time.sleep(0.3)
    finally:
        stop(devices)
    # both steps ran in order on hikvision, each after one failed attempt shown on the page
    assert "<td>enroll_face</td><td>SUCCESS</td><td>2</td>" in page
    assert "<td>assign_access</td><td>SUCCESS</td><td>2</td>" in page
    assert "enroll_face for visit 1: device busy (attempt 1)" in page
    log = (tmp_path / "devices.log").read_text()
    assert "queues       hikvision" in log

    # only a worker for "default": the next guest's chain waits, and doctor says why
    web = worker(env, "default", tmp_path / "web.log")
    try:
        shell(env, "c.post('/', {'guest': 'Grace'})")
        time.sleep(1.0)  # the web worker registered, the job is waiting
        doctor = manage(env, "conveyor", "doctor")
    finally:
        stop(web)
    said = doctor.stdout + doctor.stderr
    assert doctor.returncode == 1, said
    assert "queue 'hikvision' holds 1 waiting job(s)" in said
    assert "python manage.py conveyor worker -Q hikvision" in " ".join(
        said.split()
    )  # its own command
