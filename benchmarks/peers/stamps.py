"""What every contender's benchmark task does: append one fixed-width line
``<sent> <now>`` to a file of its own process, so the driver counts finished jobs and
reads their times the same way for every queue, without asking any queue.

Stdlib only: imported inside each peer's own venv.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

LINE = 36  # "%17.6f %17.6f\n"
_fd: tuple[int, int] | None = None  # (pid, fd): reopened after a fork


def stamp(sent: float = 0.0) -> None:
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
    return sum(p.stat().st_size for p in Path(folder).glob("*.txt")) // LINE


def read(folder: str | Path) -> list[tuple[float, float]]:
    rows = []
    for path in Path(folder).glob("*.txt"):
        for line in path.read_text().splitlines():
            sent, now = line.split()
            rows.append((float(sent), float(now)))
    return rows


def clear(folder: str | Path) -> None:
    for path in Path(folder).glob("*.txt"):
        path.unlink()
