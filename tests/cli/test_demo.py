"""``conveyor demo`` as the README runs it: the whole stack on a fresh SQLite file, its
API answering while it serves, ended by ``--seconds``, every kind of demo job done."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conveyor import App, State
from conveyor.control import list_jobs

from ..examples.conftest import free_port, poll
from .conftest import ROOT

pytestmark = pytest.mark.slow


def test_the_demo_serves_the_whole_product_then_ends(tmp_path: Path) -> None:
    # The default store, as a new user runs it: ./conveyor.db, relative to the folder.
    url, port = f"sqlite:///{tmp_path / 'conveyor.db'}", free_port()
    log_path = tmp_path / "demo.log"
    env = {**{k: v for k, v in os.environ.items() if k != "CONVEYOR_BACKEND"}, "COLUMNS": "250",
           "PYTHONPATH": str(ROOT / "src")}  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "conveyor", "demo", "--port", str(port),
                                 "--seconds", "7"], cwd=tmp_path, env=env, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
    try:
        poll(lambda: "all 4 services ready" in log_path.read_text(), 60, "the demo to serve")
        assert f"Open the dashboard: http://127.0.0.1:{port}/" in log_path.read_text()
        # The command it prints for another terminal works as printed, from any folder:
        # the executable and the store named absolutely (python -m here).
        (advice,) = re.findall(r"From another terminal: (.+ doctor) \(or", log_path.read_text())
        assert advice.startswith(f"CONVEYOR_BACKEND={url} {sys.executable} -m conveyor -A ")
        other = tmp_path / "other"
        other.mkdir()
        doctor = subprocess.run(["bash", "-c", advice], cwd=other, env=env, capture_output=True,
                                text=True, timeout=60)  # fmt: skip
        assert not (other / "conveyor.db").exists()
        assert "no store" not in doctor.stderr, doctor.stderr
        assert "empty-store" not in doctor.stdout, doctor.stdout
        assert "no app given" not in doctor.stderr, doctor.stderr
        assert "Traceback" not in doctor.stderr, doctor.stderr
        assert doctor.stdout.strip(), doctor.stderr
        health = httpx.get(f"http://127.0.0.1:{port}/api/health/ready", timeout=10)
        assert health.status_code == 200, health.text
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    out = log_path.read_text()
    rows = {m[0]: m[1:] for m in re.findall(r"│ (\S+) +│ \S+ +│ (\d) +│ (\w+) +│ (\d+) +│", out)}
    assert rows["demo.devices.ping"] == ("5", "SUCCESS", "3")  # a retry that then succeeded
    assert rows["demo.reports.send"][1] == "FAILURE"
    assert rows["demo.export.archive"][1] == "REVOKED"  # cancelled while it ran
    assert rows["demo.text.total"][1] == "SUCCESS"  # the chord's callback
    # The periodic job (every minute, and run once at the start), named by its task's
    # name= (not its module path), shown once.
    assert rows["demo.heartbeat"][1] == "SUCCESS"
    assert out.count("│ demo.heartbeat ") == 1
    thumbnails = re.findall(r"│ '(\w+): thumbnail of", out)
    assert thumbnails == ["critical", "high", "normal", "low"]  # one at a time, by priority
    app = App("check", backend=url)
    (failed,) = list_jobs(app, tasks=["demo.reports.send"]).jobs
    assert "raise ValueError" in (failed.error or {})["traceback"]
    assert list_jobs(app, states=["STARTED", "PENDING"]).jobs == []
    app.backend.close()


def start_demo(tmp_path: Path) -> tuple[str, subprocess.Popen[bytes], Path]:
    """``conveyor demo`` with no --seconds, as a visitor runs it: its store, the process,
    and the file its output goes to."""
    url, port = f"sqlite:///{tmp_path / 'conveyor.db'}", free_port()
    log_path = tmp_path / "demo.log"
    env = {**{k: v for k, v in os.environ.items() if k != "CONVEYOR_BACKEND"}, "COLUMNS": "250",
           "PYTHONPATH": str(ROOT / "src")}  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "conveyor", "demo", "--port", str(port)],
                                cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    return url, proc, log_path


def test_ctrl_c_ends_the_long_job_the_demo_left_for_the_visitor(tmp_path: Path) -> None:
    """Without --seconds the demo starts a 5-minute job to stop by hand; Ctrl-C stops it
    too (it made the workers' shutdown wait 30 s, then went back to its queue, and the
    next demo ran it beside a new one)."""
    url, proc, log_path = start_demo(tmp_path)
    app = App("check", backend=url)
    try:
        poll(lambda: "all 4 services ready" in log_path.read_text(), 60, "the demo to serve")
        (mine,) = re.findall(r"running for you to stop: \S+/ui/jobs/(\S+)", log_path.read_text())
        poll(lambda: app.backend.get(mine).state is State.STARTED, 30, "the visitor's job to run")
        proc.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        assert proc.wait(60) == 0
        assert time.monotonic() - stopped < 20  # the workers' 30 s shutdown grace not spent
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    record = app.backend.get(mine)
    assert record.state is State.REVOKED, (record.state, record.attempts)
    assert list_jobs(app, tasks=["demo.export.archive"], states=["PENDING", "STARTED"]).jobs == []
    app.backend.close()


def test_ctrl_c_says_at_once_which_running_job_it_waits_for_and_a_second_hurries(
    tmp_path: Path,
) -> None:
    """A job of the user's own (not the demo's) still running at Ctrl-C: the graceful stop
    waited out its 30 s in silence, then put the job back in its queue."""
    url, proc, log_path = start_demo(tmp_path)
    app = App("check", backend=url)
    try:
        poll(lambda: "all 4 services ready" in log_path.read_text(), 60, "the demo to serve")
        mine = app.send_task("demo.export.archive", (600,))
        poll(lambda: app.backend.get(mine.id).progress, 30, "the user's job to run")
        proc.send_signal(signal.SIGINT)
        told = poll(lambda: re.search(r"draining: .*", log_path.read_text()), 10, "a word")
        said = told.group(0)
        assert f"demo.export.archive {mine.id} (running " in said
        assert "waiting up to 30s (the shutdown timeout) for 1 running job(s)" in said
        assert "goes back to its queue" in said
        assert "second Ctrl-C" in said
        proc.send_signal(signal.SIGINT)  # hurry: it goes back to its queue now
        hurried = time.monotonic()
        assert proc.wait(60) == 0
        assert time.monotonic() - hurried < 20
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    record = app.backend.get(mine.id)
    assert record.state is State.PENDING, (record.state, record.attempts)
    assert record.attempts[-1]["error"]["type"] == "Interrupted"
    app.backend.close()
