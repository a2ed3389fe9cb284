"""The memory a process-pool child shares with its worker: one ``Slot`` per child.

A slot holds, with no system call to write or read it:

- two **counters** (held jobs begun, held jobs ended; doubles, see ``pools/child.py``):
  if the child dies, they tell which held job was running and which never started;
- the **lease table**: the jobs the child has claimed whose records the worker may not
  have received yet, as ``(first sequence number, [(job id, lease token), ...])``. A
  child writes it right after a claim and runs the first job at once; the records follow
  over its pipe from another thread. Until they arrive the worker renews those leases,
  terminates those jobs and settles them if the child dies, all from the table.

The table is double-buffered: a write fills the buffer not in use, then publishes it by
bumping the version (one aligned 8-byte store), so a dead child always leaves a whole
table behind. A reader copies the published buffer and reads again if the version moved
meanwhile. The encoding is plain lengths and UTF-8 (job ids are any string up to 200
characters), never pickle: nothing read from shared memory can run code. A table that
does not fit ``TABLE_BYTES`` is not written; the child then sends its records before
running the batch.
"""

from __future__ import annotations

import struct
from typing import Any

#: Bytes of each of the two table buffers: about 240 entries of UUID ids and 28-character
#: tokens (a child's 12-character prefix, then 16 random), a batch of ``MAX_BATCH`` (128)
#: with room to spare.
TABLE_BYTES = 16384
_HEADER = 32  # the two counters, then the table's version (and padding)
SLOT_BYTES = _HEADER + 2 * TABLE_BYTES
_READ_ATTEMPTS = 100
_HEAD = struct.Struct("<QI")
_LENGTH = struct.Struct("<H")

Table = tuple[int, list[tuple[str, str]]]
_EMPTY: Table = (0, [])


class Slot:
    """One child's shared memory, viewed from either side (``buffer``: ``SLOT_BYTES`` of
    memory both processes map; zeroed, it is an empty table and zero counters)."""

    def __init__(self, buffer: Any) -> None:
        view = memoryview(buffer).cast("B")
        if len(view) != SLOT_BYTES:
            raise ValueError(f"a child's shared slot is {SLOT_BYTES} bytes, not {len(view)}")
        self.buffer = buffer  # kept alive with its views
        self.counters = view[:16].cast("d")
        self._version = view[16:24].cast("Q")
        self._tables = (view[_HEADER : _HEADER + TABLE_BYTES], view[_HEADER + TABLE_BYTES :])

    def write_leases(self, table: Table) -> bool:
        """Publish ``table`` (child side, one writer); False when it does not fit."""
        data = encode(table)
        if len(data) > TABLE_BYTES:
            return False
        version = self._version[0] + 1
        self._tables[version % 2][: len(data)] = data
        self._version[0] = version
        return True

    def read_leases(self) -> Table:
        """The last published table (worker side): whole, even while the child writes."""
        for _ in range(_READ_ATTEMPTS):
            version = self._version[0]
            if version == 0:
                return _EMPTY
            data = self._copy(version)
            if self._version[0] == version:  # else the child may have reused that buffer
                return decode(data)
        raise RuntimeError("a child's lease table kept changing while it was read")

    def _copy(self, version: int) -> bytes:
        return bytes(self._tables[version % 2])


def encode(table: Table) -> bytes:
    """``<first seq: u64><count: u32>`` then, per entry, ``<u16 length><id>`` and
    ``<u16 length><token>`` in UTF-8."""
    base, leases = table
    parts = [_HEAD.pack(base, len(leases))]
    for job_id, token in leases:
        for text in (job_id.encode(), token.encode()):
            parts += (_LENGTH.pack(len(text)), text)
    return b"".join(parts)


def decode(data: bytes) -> Table:
    base, count = _HEAD.unpack_from(data, 0)
    offset, leases = _HEAD.size, []
    for _ in range(count):
        pair = []
        for _ in range(2):
            (size,) = _LENGTH.unpack_from(data, offset)
            offset += _LENGTH.size
            pair.append(data[offset : offset + size].decode())
            offset += size
        leases.append((pair[0], pair[1]))
    return base, leases
