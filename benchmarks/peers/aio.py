"""One event loop for an async peer's producer side, started on first use (its workers
import the same module and must not find a client already bound to another loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


class Loop:
    def __init__(self, startup: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        self.startup, self.loop = startup, None

    def run(self, coro: Coroutine[Any, Any, Any]) -> None:
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            self.loop.run_until_complete(self.startup())
        self.loop.run_until_complete(coro)
