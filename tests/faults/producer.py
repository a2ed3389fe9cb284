"""A producer process for fault tests: enqueues harness jobs until killed or ``seconds``
pass, and prints each id the backend acknowledged, one per line, flushed at once.

    python -m tests.faults.producer URL LEDGER SECONDS [RATE]
"""

from __future__ import annotations

import sys
import time

from conveyor import App
from conveyor.task import Signature
from conveyor.testing.ledger import LEDGER_TASK


def main() -> None:
    url, ledger, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    rate = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0  # jobs per second; 0: flat out
    app = App("producer", backend=url)
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        if n % 10 == 0:  # every tenth round a bulk enqueue, the rest single calls
            jobs = app.enqueue_many([Signature(LEDGER_TASK, (ledger,)) for _ in range(10)])
            ids = [job.id for job in jobs]
        else:
            ids = [app.send_task(LEDGER_TASK, (ledger,)).id]
        sys.stdout.write("".join(f"{i}\n" for i in ids))
        sys.stdout.flush()
        if rate:
            time.sleep(len(ids) / rate)


if __name__ == "__main__":
    main()
