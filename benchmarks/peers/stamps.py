"""What every contender's benchmark task does, in one of three bodies ($BENCH_BODY):

- ``file`` (the default): append one fixed-width line ``<sent> <now>`` to a file of its
  own process;
- ``redis``: one Redis round trip, an RPUSH of that line onto ``bench:stamps`` on the
  benchmark's server ($BENCH_REDIS_URL): the I/O of a real task, which releases the GIL
  while it waits (the headline body);
- ``sleep``: ``time.sleep(0)`` (it releases the GIL too), then the file line.

Either way the driver counts finished jobs and reads their times the same way for every
queue, without asking any queue. Stdlib only, and ``redis`` (every Redis peer has it)
for the ``redis`` body: imported inside each peer's own venv.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

LINE = 36  # "%17.6f %17.6f\n"
BODIES = ("file", "redis", "sleep")
BODY = os.environ.get("BENCH_BODY", "file")
KEY = "bench:stamps"
_fd: tuple[int, int] | None = None  # (pid, fd): reopened after a fork
_client: tuple[int, Any] | None = None  # (pid, redis client): reconnected after a fork


def _redis() -> Any:
    global _client
    pid = os.getpid()
    if _client is None or _client[0] != pid:
        import redis

        _client = (pid, redis.Redis.from_url(os.environ["BENCH_REDIS_URL"]))
    return _client[1]


def stamp(sent: float = 0.0) -> None:
    if BODY == "redis":
        _redis().rpush(KEY, b"%17.6f %17.6f" % (sent, time.time()))
        return
    if BODY == "sleep":
        time.sleep(0)
    _append(sent)


def _append(sent: float) -> None:
    global _fd
    pid = os.getpid()
    if _fd is None or _fd[0] != pid:
        folder = os.environ["BENCH_STAMPS"]
        _fd = (pid, os.open(f"{folder}/{pid}.txt", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    os.write(_fd[1], b"%17.6f %17.6f\n" % (sent, time.time()))


def nap(seconds: float) -> None:
    started = time.time()
    time.sleep(seconds)
    stamp(started)


def count(folder: str | Path) -> int:
    if BODY == "redis":
        return int(_redis().llen(KEY))
    return sum(p.stat().st_size for p in Path(folder).glob("*.txt")) // LINE


def read(folder: str | Path) -> list[tuple[float, float]]:
    rows = []
    if BODY == "redis":
        for line in _redis().lrange(KEY, 0, -1):
            sent, now = line.split()
            rows.append((float(sent), float(now)))
        return rows
    for path in Path(folder).glob("*.txt"):
        for line in path.read_text().splitlines():
            sent, now = line.split()
            rows.append((float(sent), float(now)))
    return rows


def clear(folder: str | Path) -> None:
    if BODY == "redis":
        _redis().delete(KEY)
    for path in Path(folder).glob("*.txt"):
        path.unlink()
