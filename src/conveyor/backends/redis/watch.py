"""The Redis backend's revocation watch: a subscription to the channel revokes publish on."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from ..base import RevocationWatch
from .connection import CUT, RedisConnection


class PubSubWatch(RevocationWatch):
    """Subscribed to the channel ``cancel.lua`` publishes a job's id on when it is revoked
    with terminate while running. Messages published while the connection was down are
    lost: the worker's heartbeat still brings those revocations."""

    def __init__(self, backend: RedisConnection) -> None:
        self.backend = backend
        self.pubsub: Any = backend.client.pubsub(ignore_subscribe_messages=True)
        with self._unreachable():
            self.pubsub.subscribe(backend._key("revoked"))

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._unreachable():
            # None also for a subscription's confirmation, before the timeout: wait on.
            while (left := deadline - time.monotonic()) > 0:
                if self.pubsub.get_message(timeout=left) is not None:
                    while self.pubsub.get_message(timeout=0) is not None:
                        pass  # one heartbeat answers for every revocation waiting
                    return True
        return False

    @contextlib.contextmanager
    def _unreachable(self) -> Iterator[None]:
        try:
            yield
        except CUT as exc:
            raise self.backend.unreachable(exc) from exc

    def close(self) -> None:
        self.pubsub.close()
