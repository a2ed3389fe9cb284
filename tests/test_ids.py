"""Job ids: UUIDv7 strings, increasing within a process, never repeated by a fork."""

from __future__ import annotations

import os
import uuid

from conveyor.ids import new_id


def test_ids_are_uuid7_unique_and_increasing() -> None:
    ids = [new_id() for _ in range(5000)]  # past one read-ahead of random bytes
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    parsed = uuid.UUID(ids[0])
    assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, ids[0])


def test_a_forked_child_does_not_reuse_its_parents_random_bytes() -> None:
    new_id()  # the parent has random bytes read ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, new_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    ours = new_id()
    os.waitpid(pid, 0)
    theirs = os.read(read, 100).decode()
    os.close(read)
    # the last 62 bits are random: the same read-ahead would give both the same ones
    assert int(ours.replace("-", "")[-15:], 16) != int(theirs.replace("-", "")[-15:], 16)
