"""Which registry entries name a dead process: pid reuse must never make a live worker
look dead, nor a dead one alive; another host's or pid namespace's pids are not ours."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

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
