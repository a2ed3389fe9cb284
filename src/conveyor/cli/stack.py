"""What ``conveyor up`` runs: worker groups, the scheduler and the web server, each a
``ProcessService`` (a spawned child, restarted when it dies), described before they start.

The children are built from module-level factories below, called in the child with the
app's path (never the app object: a spawned child imports it afresh, as ``worker``
does), so the same plan runs on Windows, macOS and Linux.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from rich.markup import escape

from ..app import App
from ..control.util import hide_password
from ..errors import ConfigurationError, ConveyorError
from ..loader import load_app
from ..names import check_queue_name
from ..proctitle import set_title, worker_title
from ..scheduler import Scheduler, sync_code_schedules
from ..schedules import owners
from ..worker import Worker
from ..worker.pools import default_concurrency
from ..worker.supervisor import ProcessService, Service, ServiceFactory, Supervisor
from . import setup_logging

if TYPE_CHECKING:
    from ..web.auth import AuthMode

log = logging.getLogger("conveyor.up")


@dataclass(frozen=True)
class WorkerGroup:
    """One worker process: the queues it consumes and how many jobs it runs at once."""

    queues: tuple[str, ...]
    concurrency: int | None = None

    @property
    def label(self) -> str:
        return ",".join(self.queues)

    @classmethod
    def parse(cls, spec: str) -> WorkerGroup:
        """``"video:1"``, ``"image,document:4"`` or ``"default"`` (concurrency: the pool's default)."""
        queues, _, count = spec.rpartition(":") if ":" in spec else (spec, "", "")
        if count and not count.strip().isdigit():
            raise ConfigurationError(
                f"worker group {spec!r}: {count!r} is not a number of jobs; "
                "write QUEUE[,QUEUE...][:CONCURRENCY], e.g. 'image,document:4'"
            )
        if count and int(count) < 1:
            raise ConfigurationError(f"worker group {spec!r}: concurrency must be at least 1")
        names = tuple(check_queue_name(q.strip(), "worker group") for q in queues.split(","))
        return cls(names, int(count) if count else None)


@dataclass
class Stack:
    """The services of one ``up``: what it starts, and how it says so."""

    app_path: str
    app: App
    groups: list[WorkerGroup]
    pool: str = "process"
    host: str = "127.0.0.1"
    port: int = 8000
    auth: str = "until-first-token"
    web: bool = True
    scheduler: bool = True
    loglevel: str = "info"
    worker_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def groups_for(cls, app: App, specs: Sequence[str]) -> list[WorkerGroup]:
        """``--worker`` values, else the app's ``worker_groups``, else one group for every queue."""
        chosen = list(specs) or list(app.conf.worker_groups)
        if not chosen:
            return [WorkerGroup(tuple(app.declared_queues()))]
        return [WorkerGroup.parse(spec) for spec in chosen]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def unconsumed(self) -> list[str]:
        """Queues the app's tasks and routes send to that no group consumes: their jobs
        would wait forever (the default queue counts only when a task lands there)."""
        conf = self.app.conf
        named = {t.options.queue or conf.default_queue for t in self.app.tasks.values()}
        named.update(
            t if isinstance(t, str) else str(t.get("queue")) for t in conf.task_routes.values()
        )
        consumed = {q for g in self.groups for q in g.queues}
        return sorted(named - consumed)

    def services(self) -> list[Service]:
        """Workers first and the web server last: the supervisor stops the last started
        first, so nothing new arrives while the workers drain."""
        factories: list[tuple[str, ServiceFactory]] = [
            (f"worker {g.label}", functools.partial(worker_service, self.app_path, g.queues,
             g.concurrency, self.pool, self.loglevel, self.worker_options))
            for g in self.groups
        ]  # fmt: skip
        if self.scheduler:
            factories.append(("scheduler", functools.partial(scheduler_service, self.app_path, self.loglevel)))  # fmt: skip
        if self.web:
            factories.append(("web", functools.partial(web_service, self.app_path, self.host, self.port,
                                                       self.auth, self.loglevel)))  # fmt: skip
        return [ProcessService(name, factory) for name, factory in factories]

    def describe(self) -> str:
        """What runs where, printed before anything starts."""
        lines = [f"[bold]conveyor up[/bold] {self.app_path}",
                 f"  backend      {hide_password(self.app.conf.backend_url)}"]  # fmt: skip
        if self.web:
            lines += [f"  dashboard    {self.url}/",
                      f"  API          {self.url}/api  (docs: {self.url}/api/docs)",
                      f"  metrics      {self.url}/metrics  (Prometheus)"]  # fmt: skip
        for g in self.groups:
            count = g.concurrency or default_concurrency(self.pool)
            lines.append(f"  worker       queues {', '.join(g.queues)}  ({self.pool} x {count})")
        if self.scheduler:
            names = ", ".join(sorted(self.app.declared_schedules())) or "none in code"
            lines.append(f"  scheduler    schedules: {names}")
            lines += self.other_apps()
        missing = self.unconsumed()
        if missing:
            lines.append(
                f"  [yellow]not consumed[/yellow] {', '.join(missing)}: no worker group takes "
                "these queues, so their jobs wait (add a --worker for them)"
            )
        return "\n".join(lines)

    def other_apps(self) -> list[str]:
        """The banner's line on other apps' schedules in this store, which this app's
        scheduler does not fire (none when it cannot read them: the scheduler says why)."""
        try:
            line = owners.summary(self.app, self.app.schedules.survey()[0])
        except ConveyorError as exc:
            log.debug("the stored schedules could not be read for the banner: %s", exc)
            return []
        return [f"  [yellow]other apps[/yellow]   {escape(line)}"] if line else []

    def check(self) -> None:
        """Fail before starting anything when the web server could not start: a setting
        it refuses, or a port it could not bind."""
        if not self.web:
            return
        self.app.conf.metrics_open()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, self.port))
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot serve on {self.host}:{self.port} ({exc.strerror}): "
                    "another process holds it; pass --port, or --no-web"
                ) from None

    def run(
        self, *, seconds: float | None = None, on_stop: Callable[[], None] | None = None
    ) -> int:
        """Run every service until Ctrl-C/SIGTERM (or ``seconds``); the worst exit code.
        ``on_stop`` runs once the stop begins, before any worker is asked to stop."""
        services = self.services()
        if on_stop is not None:
            services.append(OnStop(on_stop))  # the last started is the first stopped
        supervisor = Supervisor(services)
        url = self.url if self.web else None
        threading.Thread(target=_when_ready, args=(supervisor, services, url, seconds),
                         name="conveyor-up-ready", daemon=True).start()  # fmt: skip
        return supervisor.run()


class OnStop:
    """Not a service of its own: a call made when the stop begins (``Stack.run``'s
    ``on_stop``), before the workers are asked to stop."""

    name = "on stop"

    def __init__(self, call: Callable[[], None]) -> None:
        self.call = call
        self.ready = threading.Event()
        self.ready.set()
        self._stopped = threading.Event()
        self._once = threading.Lock()

    def prepare(self) -> None:
        pass

    def run(self) -> int:
        self._stopped.wait()
        return 0

    def stop(self, graceful: bool = True) -> None:
        if self._once.acquire(blocking=False):
            try:
                self.call()
            except Exception:  # the stop goes on: the call was a courtesy
                log.exception("stopping: %s failed", getattr(self.call, "__name__", "a call"))
        self._stopped.set()


def _when_ready(
    supervisor: Supervisor, services: Sequence[Service], url: str | None, seconds: float | None
) -> None:
    """Say when every service is ready; with ``seconds``, stop that long after."""
    for service in services:
        service.ready.wait()
    where = f"; dashboard at {url}/" if url else ""
    count = sum(not isinstance(s, OnStop) for s in services)
    log.info("all %d services ready%s; Ctrl-C stops them", count, where)
    if seconds is not None:
        time.sleep(seconds)
        log.info("served for %gs as asked (--seconds): stopping", seconds)
        supervisor.stop()


# -- built inside each child process ------------------------------------------------------


def _child_app(app_path: str, loglevel: str, source: str) -> App:
    setup_logging(loglevel, source)
    try:
        return load_app(app_path)
    except ConveyorError as exc:
        raise SystemExit(f"error: {exc}") from None


def worker_service(app_path: str, queues: Sequence[str], concurrency: int | None, pool: str,
                   loglevel: str, options: dict[str, Any]) -> Worker:  # fmt: skip
    """A worker consuming one group's queues, named after them in the registry."""
    label = ",".join(queues)
    set_title(worker_title(queues))
    app = _child_app(app_path, loglevel, f"worker {label}")
    name = f"{label}@{socket.gethostname()}:{os.getpid()}"
    worker = Worker(app, queues=list(queues), pool=pool, concurrency=concurrency, name=name,
                    **options)  # fmt: skip
    log.info("worker %s (pid %d): queues %s, %s x %d", name, os.getpid(), ", ".join(worker.queues),
             worker.pool_kind, worker.concurrency)  # fmt: skip
    return worker


def scheduler_service(app_path: str, loglevel: str) -> Scheduler:
    set_title("scheduler")
    app = _child_app(app_path, loglevel, "scheduler")
    sync_code_schedules(app)
    return Scheduler(app)


def web_service(app_path: str, host: str, port: int, auth: str, loglevel: str) -> Service:
    """The REST API (and the dashboard it mounts) under uvicorn."""
    from ..web import WebService, create_api

    set_title(f"api {host}:{port}")
    app = _child_app(app_path, loglevel, "web")
    api = create_api(app, auth=cast("AuthMode", auth))
    # One line per request would drown the workers' lines; `serve` keeps them.
    return WebService(api, host=host, port=port, log_level=loglevel, access_log=loglevel == "debug")
