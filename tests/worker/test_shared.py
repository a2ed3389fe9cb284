"""The memory a process-pool child shares with its worker: counters and the lease table."""

from __future__ import annotations

import pytest

from conveyor.worker.pools.shared import SLOT_BYTES, TABLE_BYTES, Slot


def test_a_zeroed_slot_holds_no_leases_and_zero_counters() -> None:
    slot = Slot(bytearray(SLOT_BYTES))
    assert slot.read_leases() == (0, [])
    assert list(slot.counters) == [0.0, 0.0]


def test_the_last_published_table_is_read_whole() -> None:
    slot = Slot(bytearray(SLOT_BYTES))
    for n in range(5):  # both buffers in turn
        table = (n * 3, [(f"job-{n}-{i}", f"token{i}") for i in range(n + 1)])
        assert slot.write_leases(table)
        assert slot.read_leases() == table
    odd = (7, [("ünïcode id with spaces\n", ""), ("x" * 200, "t")])
    assert slot.write_leases(odd)
    assert slot.read_leases() == odd


def test_a_table_too_big_is_refused_and_the_last_one_stays() -> None:
    slot = Slot(bytearray(SLOT_BYTES))
    small = (0, [("a", "1")])
    slot.write_leases(small)
    huge = (1, [(f"{i:0200d}", "token") for i in range(TABLE_BYTES // 200)])
    assert not slot.write_leases(huge)
    assert slot.read_leases() == small


def test_a_write_cut_short_leaves_the_published_table() -> None:
    """A child killed while it fills the spare buffer: the version was not bumped."""
    memory = bytearray(SLOT_BYTES)
    slot = Slot(memory)
    slot.write_leases((1, [("old", "t")]))  # version 1, in the second buffer
    slot.write_leases((4, [("kept", "t")]))  # version 2, in the first
    second = SLOT_BYTES - TABLE_BYTES  # where version 3 would go
    memory[second : second + 64] = b"\xff" * 64
    assert slot.read_leases() == (4, [("kept", "t")])


def test_a_slot_must_be_its_size() -> None:
    with pytest.raises(ValueError, match="bytes"):
        Slot(bytearray(SLOT_BYTES - 1))


def test_a_table_rewritten_while_it_is_copied_is_read_again() -> None:
    """The child publishes two tables while the worker copies one: the second reuses the
    buffer being copied, so the copy is torn and must be thrown away."""
    memory = bytearray(SLOT_BYTES)
    child = Slot(memory)
    child.write_leases((1, [("first", "t1")]))
    interleaved = []

    class Worker(Slot):
        def _copy(self, version: int) -> bytes:
            head = super()._copy(version)[:20]
            if not interleaved:
                interleaved.append(version)
                child.write_leases((2, [("second", "t2")]))
                child.write_leases((3, [("a much longer third id", "token three")]))
            return head + super()._copy(version)[20:]

    assert Worker(memory).read_leases() == (3, [("a much longer third id", "token three")])
    assert interleaved == [1]
