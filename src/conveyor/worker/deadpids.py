"""Dead workers on this host, told by their pid instead of their lease.

A worker's registry entry names its host and pid. When the process is gone, a worker on
the same host knows it at once, and returns the jobs it held (``Backend.abandon_worker``)
instead of waiting for their leases to run out (30 s by default): a worker killed with
``kill -9``, or by the OOM killer, and restarted by ``conveyor up`` in a second had its
job shown STARTED for half a minute more.

"Same host" must mean that a pid here names the same process as there, so the host
identity (``host_id``) is the hostname, the kernel's boot id (a reboot reuses every pid)
and, on Linux, the pid namespace: two containers on one kernel see different processes
behind one pid, even when they share a hostname (``--network host``), so each judges the
workers of its own pid namespace only (a container started with ``--pid host`` shares
the host's). A pid alone is never proof: the kernel reuses pids, so the entry also holds
the process's start time as the kernel counts it (``proc_start``; on Linux clock ticks
since boot, immune to wall-clock steps), and a live process that started at another
time is another process: the worker is dead. A process that cannot be read (another
user's, on macOS or Windows) is never judged: its jobs wait for their lease, as before.

Linux reads ``/proc``; macOS and Windows ask psutil (a dependency there only), and without
it judge nothing.
"""

from __future__ import annotations

import functools
import os
import socket
import sys
from typing import Any

from ..records import WorkerInfo

_LINUX = sys.platform.startswith("linux")
#: Boot times read on macOS or Windows may differ by a second between processes.
_BOOT_SLACK = 2.0


@functools.cache
def host_id() -> str:
    """This host and pid namespace, as the registry entries of its workers name it."""
    name = socket.gethostname()
    if _LINUX:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                boot = f.read().strip()
            namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
            return f"{name} boot {boot} {namespace}"
        except OSError:
            pass  # no /proc (a sandbox): fall back to the boot time, as elsewhere
    psutil = _psutil()
    return f"{name} booted {psutil.boot_time():.0f}" if psutil else f"{name} unknown"


def same_host(theirs: str | None) -> bool:
    ours = host_id()
    if theirs is None or ours.endswith(" unknown"):
        return False
    if theirs == ours:
        return True
    name, _, booted = ours.rpartition(" booted ")
    their_name, _, their_boot = theirs.rpartition(" booted ")
    if not booted or their_name != name or not their_boot:
        return False
    try:
        return abs(float(booted) - float(their_boot)) <= _BOOT_SLACK
    except ValueError:
        return False


def _psutil() -> Any:
    try:
        import psutil
    except ImportError:
        return None
    return psutil


def proc_start(pid: int) -> str | None:
    """When process ``pid`` started, as its kernel counts it; None if no such process
    runs (a zombie, killed and not yet reaped, is none). Off Linux, psutil's errors
    (``AccessDenied``) are the caller's to handle."""
    if _LINUX:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            return None
        fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and ")"
        return None if fields[0] in "ZX" else f"ticks {fields[19]}"
    psutil = _psutil()
    try:
        process = psutil.Process(pid)
        status = process.status()
    except psutil.NoSuchProcess:
        return None
    if status in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
        return None
    return f"created {process.create_time():.6f}"


@functools.cache
def own_start() -> str | None:
    if not _LINUX and _psutil() is None:
        return None
    try:
        return proc_start(os.getpid())
    except Exception:  # psutil's AccessDenied, read of our own process: judge nothing
        return None


def gone(worker: WorkerInfo) -> str | None:
    """Why ``worker`` is known dead, as its jobs' history says it ("its worker (pid 12
    on this host) is gone"), or None when it may be alive:
    its process runs, or cannot be seen from here (another host or pid namespace, an
    older worker's entry without ``proc_start``, a process this user may not read)."""
    if not worker.proc_start or not same_host(worker.host_id):
        return None
    try:
        now = proc_start(worker.pid)
    except Exception:  # psutil's AccessDenied (another user's process): not ours to judge
        return None
    said = f"its worker (pid {worker.pid} on this host) is gone"
    if now is None:
        return said
    if now != worker.proc_start:
        return f"{said} (the pid names another process now)"
    return None
