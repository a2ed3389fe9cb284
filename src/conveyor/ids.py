"""Time-sortable job ids in the UUIDv7 layout (RFC 9562)."""

from __future__ import annotations

import hashlib
import os
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_counter = 0
#: Random bytes read ahead from the OS, 10 an id (62 random bits and a fresh millisecond's
#: first counter): one system call per 400 ids instead of one or two each (about 1 µs of
#: a single enqueue's client time on this machine).
_RANDOM_AHEAD = 4000
_random = b""
_used = 0


def _forget_random() -> None:
    """In a forked child: the parent's unread bytes would repeat in the child's ids."""
    global _random, _used
    _random, _used = b"", 0


os.register_at_fork(after_in_child=_forget_random)


def new_id() -> str:
    """A UUIDv7 string: 48-bit milliseconds, then a 12-bit counter and random bits.

    The counter keeps ids from one process strictly increasing within a millisecond, so
    ids sort in creation order wherever one producer made them.
    """
    global _last_ms, _counter, _random, _used
    with _lock:
        if _used >= len(_random):
            _random, _used = os.urandom(_RANDOM_AHEAD), 0
        drawn = int.from_bytes(_random[_used : _used + 10], "big")
        _used += 10
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                ms += 1
                _counter = 0
        else:
            _counter = drawn >> 70  # 10 random bits, below 0x400: room to count up
        _last_ms = ms
        counter = _counter
    return _text(ms, counter, drawn & ((1 << 62) - 1))


def derived_id(ms: int, key: str) -> str:
    """A UUIDv7 for the millisecond ``ms`` whose other 74 bits are a hash of ``key``.

    The same arguments give the same id in every process (a schedule's tick: two
    schedulers firing it enqueue one job), and the id sorts with the ids made at that
    millisecond, as a generated one does.
    """
    if not 0 <= ms < 1 << 48:
        raise ValueError(f"a UUIDv7 holds milliseconds 0 to 2**48 - 1, not {ms}")
    digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=10).digest(), "big")
    return _text(ms, digest >> 68, digest & ((1 << 62) - 1))


def _text(ms: int, counter: int, rand: int) -> str:
    """The UUIDv7 text of a 48-bit millisecond, 12-bit counter and 62 random bits."""
    h = "%032x" % ((ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"  # str(uuid.UUID(...)), faster
