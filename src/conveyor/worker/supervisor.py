"""The supervisor: runs services (workers, the scheduler, the web server) and owns their
lifecycle, so every command that runs something long has one way to start and stop it.

A *service* is anything with ``name``, ``ready``, ``run()`` and ``stop(graceful)``
(``Service`` below): the worker and the scheduler are services; ``conveyor up`` is a list
of them. The supervisor alone installs signal handlers:

- every service's ``prepare()`` runs first, on the calling thread, before the supervisor
  starts a thread of its own (a worker's process pool forks its zygote there: a fork is
  safe only while one thread runs);
- the first SIGINT/SIGTERM (Ctrl-C, ``kill``, systemd's stop) asks every service to stop
  gracefully, the last started first (so the producers of work stop before its
  consumers); a worker drains its running jobs;
- a second one asks them to hurry: a worker returns its running jobs to their queues;
- a service that ends by itself (a burst worker drained, or one that failed) ends the
  whole run when ``until="first"``, or waits for the others (``until="all"``).

Services run in threads of this process (``run``) or, one each, in child processes
(``ProcessService``): children are started with ``spawn`` on every platform and told to
stop through a pipe, not a signal, so the same path works on Windows, macOS and Linux.
A child that dies without being asked is restarted with a growing pause (1 s, 2 s, 4 s,
... up to ``MAX_RESTART_DELAY``), and the log says why it died.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any, Literal, Protocol

log = logging.getLogger("conveyor.supervisor")

#: Longest pause before a dead child service is started again (seconds).
MAX_RESTART_DELAY = 30.0
#: A child that ran this long before dying is restarted at once, as if for the first time.
HEALTHY_RUN = 60.0
#: Signals that ask the supervisor to stop; SIGBREAK is Ctrl-Break on Windows.
#: How often the main thread wakes while it waits (seconds). Python runs a signal's
#: handler on the main thread, when that thread next runs; the kernel may deliver the
#: signal to any thread (another one, when the main thread already has one pending, as
#: after SIGCONT), and then nothing wakes the main thread from a wait without a timeout.
SIGNAL_CHECK = 0.25
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGBREAK") if hasattr(signal, name)
)


class Service(Protocol):
    """Something the supervisor runs until it is stopped."""

    @property
    def name(self) -> str: ...

    @property
    def ready(self) -> threading.Event:
        """Set once the service does its work (a worker registered, a server listening)."""
        ...

    def prepare(self) -> None:
        """Whatever must happen while the process runs one thread only (the process pool
        forks its zygote here); called on the main thread before any service runs."""
        ...

    def run(self) -> int:
        """Run until stopped (or done); returns an exit code, 0 for a normal end."""
        ...

    def stop(self, graceful: bool = True) -> None:
        """Ask ``run`` to return: graceful lets work in hand finish; called from any thread."""
        ...


@dataclass
class _Running:
    service: Service
    thread: threading.Thread
    code: int | None = None
    #: The strongest stop asked of it: 0 none, 1 graceful, 2 hurry (each asked once).
    asked: int = 0


@dataclass
class Supervisor:
    """Runs ``services`` on threads of this process until they end or a signal stops them.

    ``until``: ``"first"`` ends the run as soon as any service ends by itself (what a
    single worker or ``up`` wants: a failed part is never left half-running); ``"all"``
    waits for every service.
    """

    services: Sequence[Service]
    until: Literal["first", "all"] = "first"
    _stop_level: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _running: list[_Running] = field(default_factory=list)

    def run(self) -> int:
        """Start every service, wait, stop them in reverse order; returns the worst exit code."""
        for service in self.services:  # before any thread of ours exists
            service.prepare()
        restore = self._install_signal_handlers()
        try:
            for service in self.services:
                self._start(service)
            self._wait()
            self._stop_all(graceful=self._stop_level < 2)
            for running in reversed(self._running):
                while running.thread.is_alive():  # woken often: a second signal is handled
                    running.thread.join(SIGNAL_CHECK)
        finally:
            restore()
        return max((r.code or 0 for r in self._running), default=0)

    def stop(self, graceful: bool = True) -> None:
        """What a signal does: the first call stops gracefully, a second hurries."""
        with self._changed:
            self._stop_level = max(self._stop_level + 1, 1 if graceful else 2)
            level = self._stop_level
            self._changed.notify_all()
        self._stop_all(graceful=level < 2)

    def _start(self, service: Service) -> None:
        running = _Running(service, threading.Thread(name=f"conveyor-{service.name}", daemon=True,
                                                     target=lambda: self._run_one(running)))  # fmt: skip
        self._running.append(running)
        running.thread.start()

    def _run_one(self, running: _Running) -> None:
        try:
            running.code = running.service.run()
        except Exception:
            log.exception("%s failed", running.service.name)
            running.code = 1
        with self._changed:
            self._changed.notify_all()

    def _wait(self) -> None:
        with self._changed:
            while not self._stop_level:
                ended = [r for r in self._running if r.code is not None]
                if ended and (self.until == "first" or len(ended) == len(self._running)):
                    for r in ended:
                        if r.code:
                            log.error("%s ended with exit code %d", r.service.name, r.code)
                    return
                self._changed.wait(SIGNAL_CHECK)

    def _stop_all(self, *, graceful: bool) -> None:
        level = 1 if graceful else 2
        with self._changed:  # a signal's thread and run() may both get here: ask each once
            asked = [r for r in self._running if r.code is None and r.asked < level]
            for running in asked:
                running.asked = level
        for running in reversed(asked):  # last started first: producers, then consumers
            running.service.stop(graceful=graceful)

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # only the main thread may; its caller owns signals then

        def handle(signum: int, _frame: FrameType | None) -> None:
            what = (
                "stopping now"
                if self._stop_level
                else "stopping gracefully; signal again to stop now"
            )
            log.warning("received %s, %s", signal.Signals(signum).name, what)
            # Stopping services may take locks the interrupted code holds: not in a handler.
            threading.Thread(target=self.stop, name="conveyor-stop", daemon=True).start()

        previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore


# -- services in child processes ----------------------------------------------------------

#: Builds a service inside the child process: a module-level function (picklable), e.g.
#: ``functools.partial(worker_service, "proj.tasks:app", queues=["video"])``.
ServiceFactory = Callable[[], Service]
_STOP, _HURRY = "stop", "hurry"


class ProcessService:
    """A service run in a child process of its own, restarted if it dies unasked.

    It is itself a ``Service``, so a ``Supervisor`` runs a list of them (one thread each,
    each watching its child) exactly as it runs in-process services.
    """

    def __init__(self, name: str, factory: ServiceFactory, *, restart: bool = True) -> None:
        self._name, self.factory, self.restart = name, factory, restart
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._orders: Connection | None = None
        self._lock = threading.Lock()
        #: How many times the child was started again after dying.
        self.restarts = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def ready(self) -> threading.Event:
        return self._ready

    def prepare(self) -> None:
        """Nothing here: the child prepares its own service before its own threads."""

    @property
    def pid(self) -> int | None:
        """The running child's process id."""
        process = self._process
        return None if process is None else int(process.pid)

    def run(self) -> int:
        delay = 1.0
        while True:
            started = time.monotonic()
            code = self._run_child()
            if self._stopping.is_set() or not self.restart:
                return code
            if time.monotonic() - started >= HEALTHY_RUN:
                delay = 1.0
            log.error("%s (pid %s) died: %s; restarting in %.0fs",
                      self.name, self.pid, describe_exit(code), delay)  # fmt: skip
            if self._stopping.wait(delay):
                return 0
            delay = min(delay * 2, MAX_RESTART_DELAY)
            self.restarts += 1

    def _run_child(self) -> int:
        ours, theirs = self._context.Pipe()
        with self._lock:
            if self._stopping.is_set():
                return 0
            self._process = self._context.Process(
                target=_child_main, args=(self.factory, theirs), name=f"conveyor-{self.name}"
            )
            self._process.start()
            self._orders = ours
        theirs.close()
        # The child closed its end: it is exiting. A reset, not an end of file, when it
        # exits with an order unread (a second Ctrl-C sent while it was already stopping).
        with contextlib.suppress(EOFError, ConnectionResetError):
            while self._process.is_alive():
                if ours.poll(0.2) and ours.recv() == "ready":
                    self._ready.set()
        self._process.join()
        ours.close()  # one pipe per start: a child that keeps dying must not leak them
        self._ready.clear()
        return int(self._process.exitcode or 0)

    def stop(self, graceful: bool = True) -> None:
        with self._lock:
            self._stopping.set()
            orders = self._orders
        if orders is not None:
            with contextlib.suppress(OSError):  # the child is gone already
                orders.send(_STOP if graceful else _HURRY)


def describe_exit(code: int) -> str:
    """An exit code as a person reads it: "exit code 1", "killed by SIGKILL"."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _child_main(factory: ServiceFactory, orders: Connection) -> None:
    """The child's side: build the service, obey orders from the pipe, exit with its code."""
    # Ctrl-C reaches the whole process group; the parent decides for its children.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    service = factory()
    service.prepare()  # before the threads below: the process pool forks its zygote here
    stop = _OnceEach(service)
    if hasattr(signal, "SIGTERM"):  # a SIGTERM sent straight to the child: drain, as asked
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=stop).start())

    def report_ready() -> None:
        service.ready.wait()
        with contextlib.suppress(OSError):  # the supervisor is gone; obey() stops the service
            orders.send("ready")

    def obey() -> None:
        try:
            while True:
                stop(graceful=orders.recv() == _STOP)
        except (EOFError, OSError):  # the supervisor died: stop gracefully, jobs finish
            stop()

    threading.Thread(target=report_ready, name="conveyor-ready", daemon=True).start()
    threading.Thread(target=obey, name="conveyor-orders", daemon=True).start()
    sys.exit(service.run())


class _OnceEach:
    """Passes a service each kind of stop once. A child can be told to stop twice for one
    stop: systemd (and a terminal) signal the whole process group, so a child gets its
    own SIGTERM beside its supervisor's order; a worker takes a second stop as "hurry"."""

    def __init__(self, service: Service) -> None:
        self.service, self.asked, self.lock = service, 0, threading.Lock()

    def __call__(self, graceful: bool = True) -> None:
        level = 1 if graceful else 2
        with self.lock:
            if level <= self.asked:
                return
            self.asked = level
        self.service.stop(graceful=graceful)
