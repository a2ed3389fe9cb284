"""``served(asgi)``: an ASGI app (``create_api(app)``, your FastAPI service) under a real
HTTP server for the length of a ``with`` block, for tests that need real sockets (a
browser, a client in another process, server-sent events) and for benchmarks.

    from conveyor.testing.web import served

    with served(create_api(app)) as url:
        httpx.get(f"{url}/api/health/ready")

It needs the web extra. The server is ``conveyor serve``'s own (``WebService``:
uvicorn, the app's lifespan on), in a thread of this process, so the test and the
server share the app and its backend.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..extras import missing_extra

try:
    from ..web.service import WebService
except ImportError as exc:  # fastapi or uvicorn missing
    raise missing_extra("conveyor.testing.web", "web", exc) from exc

#: How often the wait for the server checks whether its thread ended instead.
_POLL = 0.05


@contextmanager
def served(asgi: Any, *, timeout: float = 20.0) -> Iterator[str]:
    """Serve ``asgi`` on a free port of 127.0.0.1 and yield its base URL
    (``http://127.0.0.1:<port>``, no trailing slash) once it listens and its lifespan
    startup ran. On leaving, the server stops without waiting for open connections
    (event streams would hold it), runs the app's lifespan shutdown and its thread is
    joined. ``timeout`` bounds the start and the stop; either overrunning fails."""
    # Port 0: the kernel picks a free port as the server binds, so no other process can
    # take it between a probe and the bind.
    service = WebService(asgi, port=0, log_level="warning", access_log=False)
    thread = threading.Thread(target=service.run, name="conveyor-served", daemon=True)
    thread.start()
    try:
        yield _listening(service, thread, timeout)
    finally:
        service.stop(graceful=False)
        thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(
            f"the served app's server did not stop within {timeout}s of being asked: a request "
            "handler or the app's lifespan shutdown is still running (its thread is left behind)"
        )


def _listening(service: WebService, thread: threading.Thread, timeout: float) -> str:
    """The base URL, once the server listens; fails as soon as its thread ends without."""
    deadline = time.monotonic() + timeout
    while not service.ready.wait(_POLL):
        if not thread.is_alive():
            raise AssertionError(
                "the served app's server stopped before it listened: uvicorn's log above says "
                "why (an app whose lifespan startup raised, or an ASGI app with no lifespan "
                "support: wrap it in a Starlette or FastAPI app)"
            )
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"the served app's server did not listen within {timeout}s: its lifespan "
                "startup may be waiting on something (a backend that does not answer?)"
            )
    host, port = service.server.servers[0].sockets[0].getsockname()[:2]
    return f"http://{host}:{port}"
