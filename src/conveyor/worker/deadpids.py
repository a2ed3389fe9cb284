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
time is another process: the worker is dead. A pid ``/proc`` hides from this user
(``hidepid``) while a process runs under it is never judged: it may be the worker.

Linux only: there a process-pool child dies with its killed worker
(``PR_SET_PDEATHSIG``), so a job returned at once cannot still be running. On macOS and
Windows a child may run on until its job ends, so a dead worker's jobs wait for their
lease there, as before.
"""

from __future__ import annotations

import functools
import os
import socket
import sys

from ..records import WorkerInfo

_LINUX = sys.platform.startswith("linux")


@functools.cache
def host_id() -> str | None:
    """This host and pid namespace, as the registry entries of its workers name it; None
    where workers are not judged (off Linux, or without ``/proc``)."""
    if not _LINUX:
        return None
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return None  # no /proc (a sandbox)
    return f"{socket.gethostname()} boot {boot} {namespace}"


def same_host(theirs: str | None) -> bool:
    ours = host_id()
    return ours is not None and theirs == ours


def proc_start(pid: int) -> str | None:
    """When process ``pid`` started, as its kernel counts it (clock ticks since boot);
    None if no such process runs (a zombie, killed and not yet reaped, is none)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and ")"
    return None if fields[0] in "ZX" else f"ticks {fields[19]}"


@functools.cache
def own_start() -> str | None:
    return proc_start(os.getpid()) if host_id() is not None else None


def hidden(pid: int) -> bool:
    """Whether a process runs under ``pid`` that ``/proc`` does not show this user: a
    ``/proc`` mounted with ``hidepid`` (a hardened host, systemd's ``ProtectProc=``)
    hides other users' processes, so their ``stat`` reads as no process at all. Signal
    0 still tells: a process this user may not signal exists."""
    if os.path.exists(f"/proc/{pid}/stat"):
        return False  # shown (a zombie among them): not hidden
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def gone(worker: WorkerInfo) -> str | None:
    """Why ``worker`` is known dead, as its jobs' history says it ("its worker (pid 12
    on this host) is gone"), or None when it may be alive:
    its process runs, or cannot be seen from here (another host or pid namespace, an
    older worker's entry without ``proc_start``, a process this user may not read)."""
    if not worker.proc_start or not same_host(worker.host_id):
        return None
    now = proc_start(worker.pid)
    said = f"its worker (pid {worker.pid} on this host) is gone"
    if now is None:
        # Hidden from this user, it may be the worker (another user's, on a /proc with
        # hidepid): its jobs wait for their leases. Judged gone, they ran twice.
        return None if hidden(worker.pid) else said
    if now != worker.proc_start:
        return f"{said} (the pid names another process now)"
    return None
