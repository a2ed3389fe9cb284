"""Time-sortable job ids in the UUIDv7 layout (RFC 9562)."""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    """A UUIDv7 string: 48-bit milliseconds, then a 12-bit counter and random bits.

    The counter keeps ids from one process strictly increasing within a millisecond, so
    ids sort in creation order wherever one producer made them.
    """
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                ms += 1
                _counter = 0
        else:
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        _last_ms = ms
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    h = "%032x" % ((ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"  # str(uuid.UUID(...)), faster
