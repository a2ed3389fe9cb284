"""The ``fork`` start method of the process pool (Linux): children forked from a zygote.

A bare ``fork`` of the worker is unsafe once it runs threads (a lock another thread
held at that moment stays locked forever in the child), which is why the process pool
used to start children with ``forkserver``: a fresh interpreter that imports the app
again, so nothing is shared with the worker and the tree carries a second copy of
every module, plus multiprocessing's resource tracker (docs/benchmarks.md: 92 MiB PSS
for 2 children on Redis).

The zygote is a fork of the worker made when the pool starts, while the worker has no
thread but its main one. It stays single-threaded for its whole life: it waits for
spawn requests on a socket and forks a child for each, so every child is a fork of a
quiet, single-threaded process that has the app, the driver and Conveyor loaded, and
shares those pages with the worker and its siblings (about half the PSS).

Protocol, over one ``SOCK_SEQPACKET`` socket pair (messages keep their boundaries and
can carry file descriptors):

- worker -> zygote: ``(config, slot)`` with the child's end of its pipe attached;
- zygote -> worker: ``("spawned", pid)`` with a pidfd of the child attached (opened by
  the zygote, the child's parent, so it cannot name a recycled pid), then, whenever a
  child exits, ``("exit", pid, exit code)`` (the zygote reaps its children).

Each child's shared memory (its counters and lease table; see ``pools/shared.py``) is a
slot of one anonymous shared mapping made before the zygote was forked, one slot per
child index.
The zygote dies with the worker (``PR_SET_PDEATHSIG``), and each child with the zygote.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import mmap
import os
import pickle
import select
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any, NoReturn

from ...proctitle import set_title, worker_title
from .child import ChildConfig, Link, child_main, die_with_parent
from .shared import SLOT_BYTES

log = logging.getLogger("conveyor.worker")
_MAX_MESSAGE = 1 << 16
#: The longest the worker waits for the zygote to answer (a fork, or a child's exit code:
#: milliseconds): a zygote that does not is killed, and children start from a fork
#: server from then on (``ProcessPool._spawn``), instead of the worker waiting for ever
#: (before its first heartbeat, or for a child's replacement).
ANSWER_TIMEOUT = 10.0


@functools.cache
def available() -> bool:
    """Whether this platform can run the zygote: Linux with pidfds (kernel 5.3 or later)."""
    if not (sys.platform.startswith("linux") and hasattr(signal, "pidfd_send_signal")):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


def _slot_view(memory: mmap.mmap, slot: int) -> memoryview:
    """The bytes of one child's slot in the shared mapping."""
    return memoryview(memory)[slot * SLOT_BYTES : (slot + 1) * SLOT_BYTES]


class ForkedChild:
    """A zygote's child, with the parts of ``multiprocessing.Process`` the pool uses."""

    def __init__(self, zygote: Zygote, pid: int, pidfd: int) -> None:
        self.zygote, self.pid, self.sentinel = zygote, pid, pidfd
        self.exitcode: int | None = None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, OSError):
            signal.pidfd_send_signal(self.sentinel, signal.SIGKILL)

    def join(self, timeout: float | None = None) -> None:
        """Wait until the zygote reports this child's exit code (``exitcode`` stays None if
        the zygote is gone or ``timeout`` passes first)."""
        if self.exitcode is None:
            self.exitcode = self.zygote.exit_code(self.pid, timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.sentinel)


class Zygote:
    """The worker's side: start the zygote, ask it for children, learn how they ended."""

    def __init__(self, slots: int, queues: Sequence[str] = ()) -> None:
        self.memory = mmap.mmap(-1, SLOT_BYTES * slots)  # shared with every descendant
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._lock = threading.Lock()
        self._exits: dict[int, int] = {}
        self._gone = False
        #: Whether its end was logged already (killed while waiting for a child's exit):
        #: the next spawn, which finds it gone, says nothing more.
        self.told = False
        # Loaded here, once for all children: each child's first connection to a host name
        # would otherwise import the idna codec (and unicodedata) into pages of its own.
        "localhost".encode("idna")
        # Objects alive now are never collected from here on: a collection would write to
        # every one of them and so copy each page the zygote and its children share.
        gc.freeze()
        self.pid = os.fork()
        if self.pid == 0:  # the zygote
            set_title(f"{worker_title(queues)} zygote")
            self._sock.close()
            _zygote_main(theirs, self.memory)
        theirs.close()

    def spawn(self, config: ChildConfig, conn: Link, slot: int) -> ForkedChild:
        """Fork a child that runs ``child_main(config, conn, <its slot's memory>)``."""
        _slot_view(self.memory, slot)[:] = bytes(SLOT_BYTES)
        with self._lock:
            try:
                fds = [conn.orders.fileno(), conn.reports.fileno()]
                socket.send_fds(self._sock, [pickle.dumps((config, slot))], fds)
            except OSError as exc:
                raise OSError(f"the process pool's zygote (pid {self.pid}) is gone: {exc}") from exc
            deadline = time.monotonic() + ANSWER_TIMEOUT
            while True:
                message, fds = self._receive(max(0.0, deadline - time.monotonic()))
                if message is None and not self._gone:
                    self._unresponsive("fork a child")
                if message is None:
                    raise OSError(f"the process pool's zygote (pid {self.pid}) is gone")
                if message[0] == "spawned":
                    return ForkedChild(self, message[1], fds[0])

    def slot_memory(self, slot: int) -> memoryview:
        return _slot_view(self.memory, slot)

    def exit_code(self, pid: int, timeout: float | None) -> int | None:
        """The exit code the zygote reports for child ``pid``; None if ``timeout`` passes
        first (None: ``ANSWER_TIMEOUT``, after which the zygote is killed) or it is gone."""
        deadline = time.monotonic() + (ANSWER_TIMEOUT if timeout is None else timeout)
        with self._lock:
            while pid not in self._exits:
                message, _ = self._receive(max(0.0, deadline - time.monotonic()))
                if message is None:
                    if timeout is None and not self._gone:
                        try:
                            self._unresponsive("report a child's exit")
                        except OSError as exc:
                            log.error("%s; children start from a fork server from now on", exc)
                            self.told = True
                    return None
            return self._exits.pop(pid)

    def _unresponsive(self, what: str) -> NoReturn:
        """Kill a zygote that did not answer in ``ANSWER_TIMEOUT`` (stopped, or stuck):
        its children die with it; the pool goes on from a fork server."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self._gone = True
        raise OSError(f"the process pool's zygote (pid {self.pid}) did not {what} in "
                      f"{ANSWER_TIMEOUT:g}s: killed")  # fmt: skip

    def _receive(self, timeout: float | None) -> tuple[tuple[Any, ...] | None, list[int]]:
        """The next message (exit reports are filed as they come); None at EOF or timeout."""
        if self._gone or not select.select([self._sock], [], [], timeout)[0]:
            return None, []
        data, fds, _, _ = socket.recv_fds(self._sock, _MAX_MESSAGE, 1)
        if not data:
            self._gone = True
            return None, []
        message = pickle.loads(data)
        if message[0] == "exit":
            self._exits[message[1]] = message[2]
        return message, fds

    def close(self) -> None:
        """Let the zygote go (it exits when its socket closes) and reap it."""
        self._sock.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _zygote_main(sock: socket.socket, memory: mmap.mmap) -> NoReturn:
    """Wait for spawn requests and fork children; report their exits. Never returns."""
    try:
        die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        while True:
            ready = select.select([sock.fileno(), wake_r], [], [])[0]
            if wake_r in ready:
                os.read(wake_r, 4096)
                _reap(sock)
            if sock.fileno() in ready:
                data, fds, _, _ = socket.recv_fds(sock, _MAX_MESSAGE, 2)
                if not data:  # the worker closed the socket, or died
                    os._exit(0)
                config, slot = pickle.loads(data)
                pid = os.fork()
                if pid == 0:
                    os.close(wake_r)
                    os.close(wake_w)
                    _child(sock, config, fds, memory, slot)
                for fd in fds:
                    os.close(fd)
                pidfd = os.pidfd_open(pid)
                socket.send_fds(sock, [pickle.dumps(("spawned", pid))], [pidfd])
                os.close(pidfd)
    except BaseException:  # the zygote must never return into the worker's code
        traceback.print_exc()
        os._exit(1)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        with contextlib.suppress(OSError):  # the worker is gone: nobody to tell
            sock.send(pickle.dumps(("exit", pid, os.waitstatus_to_exitcode(status))))


def _child(
    sock: socket.socket, config: ChildConfig, fds: list[int], memory: mmap.mmap, slot: int
) -> NoReturn:
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sock.close()
        link = Link(Connection(fds[0], writable=False), Connection(fds[1], readable=False))
        child_main(config, link, _slot_view(memory, slot))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # reported; the exit code tells the worker
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
