"""The body of the PostgreSQL comparison's benchmark task, the same for every contender,
chosen by $BENCH_BODY:

- ``noop`` (the default): nothing;
- ``file``: append one line to a file of this process in $BENCH_BODY_DIR;
- ``redis``: one Redis round trip (an INCR of a key of this run on $BENCH_BODY_REDIS):
  the I/O of a real task, which releases the GIL while it waits;
- ``sleep``: ``time.sleep(0)`` (it releases the GIL too).

Stdlib only, and ``redis`` for the ``redis`` body: imported inside each peer's own venv,
when this module loads (with the app, before a worker claims anything), as a task module
imports its client library. Imported in the first job instead, it cost that job 0.2 to
1.5 s here (more under load), the same for every contender, and took most of a 1,000-job
drain's 0.3 s for Conveyor (docs/benchmarks.md). The connection is still made by the
first job, as a real client's is.
"""

from __future__ import annotations

import os
import time
from typing import Any

BODIES = ("noop", "file", "redis", "sleep")
_state: dict[str, tuple[int, Any]] = {}  # body -> (pid, fd or client): reopened after a fork

if os.environ.get("BENCH_BODY") == "redis":
    import redis  # noqa: F401  (with the app: see above)


def _handle(body: str) -> Any:
    pid = os.getpid()
    held = _state.get(body)
    if held is None or held[0] != pid:
        if body == "redis":
            import redis

            handle: Any = redis.Redis.from_url(os.environ["BENCH_BODY_REDIS"])
        else:
            path = f"{os.environ['BENCH_BODY_DIR']}/{pid}.txt"
            handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        held = _state[body] = (pid, handle)
    return held[1]


def run() -> None:
    body = os.environ.get("BENCH_BODY", "noop")
    if body == "file":
        os.write(_handle(body), b"%17.6f\n" % time.time())
    elif body == "redis":
        _handle(body).incr(os.environ.get("BENCH_BODY_KEY", "bench:body"))
    elif body == "sleep":
        time.sleep(0)
