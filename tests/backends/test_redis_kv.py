"""Redis key-values (`kv`, `kvx`): a read of an expired value leaves the store as it is
(the prune script deletes it, in one step), so a value set again meanwhile stays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conveyor.backends import Backend
from conveyor.testing import FakeClock

pytestmark = pytest.mark.parametrize("backend_kind", ["redis"])


def test_a_read_of_an_expired_value_keeps_one_set_again_meanwhile(
    backend: Any, make_backend: Callable[..., Backend], clock: FakeClock, monkeypatch: Any
) -> None:
    other = make_backend(clock=clock)  # another process's handle on the same store
    backend.kv_set("workflow:1", "first", ttl=10)
    clock.advance(11)
    read = backend.client.hget

    def set_again_after_the_read(*args: Any) -> Any:
        raw = read(*args)
        other.kv_set("workflow:1", "again", ttl=100)  # between this read and what follows
        return raw

    monkeypatch.setattr(backend.client, "hget", set_again_after_the_read)
    assert backend.kv_get("workflow:1") is None  # what it read had expired
    monkeypatch.undo()
    assert backend.kv_get("workflow:1") == "again"
    assert other.kv_get("workflow:1") == "again"
    backend.prune()
    assert other.kv_get("workflow:1") == "again"
