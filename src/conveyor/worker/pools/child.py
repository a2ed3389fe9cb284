"""The main function of a process-pool child. It imports the app itself (so it works
under spawn, the only start method on Windows), then runs jobs sent by its parent."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from multiprocessing.connection import Connection

from ...loader import load_app
from ..execution import execute


def _die_with_parent() -> None:
    """On Linux, ask the kernel to SIGKILL this child if its parent dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def rss_kib() -> int:
    """This process's resident memory in KiB (0 where it cannot be read)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, AttributeError):
        try:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return peak // 1024 if sys.platform == "darwin" else peak
        except ImportError:
            return 0


def child_main(app_path: str, backend_url: str, conn: Connection, report_memory: bool) -> None:
    """Run jobs from ``conn`` until told to stop; ``report_memory``: send this process's
    RSS with each outcome (for ``max_memory_per_child``; reading it costs a file read)."""
    _die_with_parent()
    # The parent decides when children stop: a Ctrl-C or a SIGTERM sent to the whole
    # process group must not kill jobs that a graceful shutdown lets finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        app = load_app(app_path)
        if (
            app.conf.backend_url != backend_url
        ):  # the parent's backend wins over import-time defaults
            app.conf.backend_url, app._backend = backend_url, None
    except Exception as exc:
        conn.send(("fatal", f"worker child could not load the app {app_path!r}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            record = conn.recv()
        except EOFError:  # the parent is gone
            return
        if record is None:
            return
        outcome = execute(app, record, thread_limits=(True, False))
        conn.send(("done", outcome, rss_kib() if report_memory else 0))
