"""``WebService``: the API served by uvicorn as a supervisor ``Service``, so ``conveyor
serve`` (and ``conveyor up``) stop it the way they stop a worker; and the rule for
which addresses may be served without a token."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from ..errors import ConfigurationError
from .auth import AuthMode


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def auth_for(host: str, has_tokens: bool, command: str = "conveyor -A <app>") -> AuthMode:
    """The auth mode to serve ``host`` with. A loopback address serves without a token
    until the first one exists; any other address needs a token stored first."""
    if is_loopback(host):
        return "until-first-token"
    if not has_tokens:
        raise ConfigurationError(
            f"refusing to serve the API on {host}, a non-loopback address, with no API token: "
            "anyone who can reach it could run and cancel jobs. Create a token first:\n"
            f"  {command} tokens create --role operate --name NAME\n"
            "then send it as 'Authorization: Bearer <token>'; or serve on 127.0.0.1"
        )
    return "required"


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """None: the supervisor owns signals, also where this runs on a main thread (a
        child of ``conveyor up``, which ignores Ctrl-C and stops when its parent says)."""
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._started_event.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Hurried (a second Ctrl-C), uvicorn skips the app's shutdown, whose task is then
        cancelled as the loop closes and logged as a traceback: it still runs here (it
        returns at once if it ran already). Open connections are not waited for."""
        await super().shutdown(sockets)
        done = getattr(self.lifespan, "shutdown_event", None)  # None: no lifespan ("off")
        if self.force_exit and self.started and done is not None and not done.is_set():
            await self.lifespan.shutdown()


class WebService:
    """An ASGI app under uvicorn, on a thread of the supervisor (uvicorn leaves signals
    alone off the main thread: the supervisor owns them and calls ``stop``)."""

    name = "web"

    def prepare(self) -> None:
        """Nothing before other threads start (``Service``)."""

    def __init__(
        self,
        asgi: Any,
        host: str = "127.0.0.1",
        port: int = 8000,
        log_level: str = "info",
        *,
        access_log: bool = True,
    ) -> None:
        self._ready = threading.Event()
        config = uvicorn.Config(asgi, host=host, port=port, log_level=log_level, log_config=None,
                                access_log=access_log,
                                lifespan="on", server_header=False,
                                # open event streams must not hold a stop forever
                                timeout_graceful_shutdown=5)  # fmt: skip
        self.server = _Server(config, self._ready)

    @property
    def ready(self) -> threading.Event:
        """Set once the server listens."""
        return self._ready

    def run(self) -> int:
        try:
            self.server.run()
        except SystemExit as exc:  # uvicorn exits when it cannot bind; a thread must return
            return exc.code if isinstance(exc.code, int) else 1
        return 0 if self.server.started else 1

    def stop(self, graceful: bool = True) -> None:
        """Stop accepting; graceful lets requests in flight finish (a long poll ends at its timeout)."""
        self.server.should_exit = True
        if not graceful:
            self.server.force_exit = True
