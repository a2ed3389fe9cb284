"""Which registry entries name a dead process: pid reuse must never make a live worker
look dead, nor a dead one alive; another host's or pid namespace's pids are not ours."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.records import WorkerInfo
from conveyor.worker.deadpids import gone, host_id, proc_start

GONE = "its worker (pid {} on this host) is gone"


def entry(pid: int, start: str | None, host: str | None = None) -> WorkerInfo:
    return WorkerInfo(
        id="w", name="w", host="h", pid=pid, queues=["default"], pool="thread", concurrency=1,
        version="test", tasks=[], started_at=0.0, host_id=host or host_id(), proc_start=start,
    )  # fmt: skip


def test_a_live_process_with_its_start_is_alive() -> None:
    assert gone(entry(os.getpid(), proc_start(os.getpid()))) is None


def test_a_reused_pid_is_another_process() -> None:
    """The entry's pid runs, but started at another time: its worker is dead."""
    info = entry(os.getpid(), "ticks 1")
    assert gone(info) == GONE.format(os.getpid()) + " (the pid names another process now)"


def test_a_pid_no_process_has_is_dead_and_a_zombie_too() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    start = proc_start(child.pid)
    child_entry = entry(child.pid, start or "ticks 1")
    while proc_start(child.pid) is not None:  # it exits; unreaped, it is a zombie
        os.sched_yield()
    assert gone(child_entry) == GONE.format(child.pid)
    child.wait()
    assert gone(child_entry) == GONE.format(child.pid)


def test_other_hosts_and_older_entries_are_never_judged() -> None:
    dead = entry(os.getpid(), "ticks 1")
    assert gone(dataclasses.replace(dead, host_id="elsewhere boot x pid:[1]")) is None
    assert gone(dataclasses.replace(dead, host_id=None)) is None  # an older worker's entry
    assert gone(dataclasses.replace(dead, proc_start=None)) is None


JUDGE = """
import json, sys
from conveyor.records import WorkerInfo
from conveyor.worker.deadpids import gone
print(json.dumps(gone(WorkerInfo(**json.loads(sys.argv[1])))))
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"),
    reason="mounts a /proc of its own and runs as another user: needs root",
)
def test_a_live_worker_of_another_user_hidden_by_hidepid_is_not_dead() -> None:
    """A /proc mounted with hidepid (a hardened host; systemd's ProtectProc=invisible)
    shows a user none of another user's processes: a worker run as another user read as
    gone, and its running jobs were returned to their queues and ran twice."""
    holder = subprocess.Popen(["sleep", "60"])  # a live worker of root's
    try:
        info = dataclasses.asdict(entry(holder.pid, proc_start(holder.pid)))
        src = str(Path(__file__).resolve().parents[2] / "src")
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                     sys.executable, "-c", JUDGE, json.dumps(info)]  # fmt: skip
        mount = 'mount -t proc -o hidepid=invisible proc /proc && exec "$@"'
        said = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh", *as_nobody],
            capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": src},
        )  # fmt: skip
        assert said.returncode == 0, said.stderr
        assert json.loads(said.stdout) is None
    finally:
        holder.kill()
        holder.wait()
