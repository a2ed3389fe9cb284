"""Memory of N queued jobs in Redis, measured in a throwaway redis-server.

    .venv/bin/python -m benchmarks.redis_memory [N] [--single]   # default 1,000,000

Starts redis-server on a free port (nothing else in it), enqueues N small no-op jobs
(in batches of 1,000, or with ``--single`` one ``delay()`` each), and reports used_memory before and after, then where it went: ``MEMORY USAGE`` of
each structure per job (the job hashes from a sample of 1,000, with their keys; the
pages of the id index and of each queue's due jobs summed).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from conveyor import App
from conveyor.task import Signature


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--single"]
    single = "--single" in sys.argv[1:]
    n = int(args[0]) if args else 1_000_000
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tempfile.mkdtemp()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--dir", folder], stdout=subprocess.DEVNULL
    )
    try:
        app = App("memory", backend=f"redis://127.0.0.1:{port}/0")
        client = app.backend.client  # type: ignore[attr-defined]
        for _ in range(100):
            try:
                client.ping()
                break
            except Exception:
                time.sleep(0.05)
        app.send_task("bench.noop")  # scripts loaded, structures created
        before = client.info("memory")["used_memory"]
        started = time.perf_counter()
        if single:
            for i in range(n):
                app.send_task("bench.noop", (i,))
        else:
            for i in range(0, n, 1000):
                batch = [Signature("bench.noop", (i + k,)) for k in range(min(1000, n - i))]
                app.enqueue_many(batch)
        took = time.perf_counter() - started
        used = client.info("memory")["used_memory"] - before
        how = "single delay() calls" if single else "batches of 1,000"
        print(f"{n:,} queued jobs ({how}): {used / 2**20:,.0f} MiB, {used / n:,.0f} bytes per job "
              f"(enqueued in {took:.0f}s, {n / took:,.0f} jobs/s)")  # fmt: skip
        for name, size in breakdown(client, app.backend._key("")).items():  # type: ignore[attr-defined]
            print(f"  {name:20} {size / n:7.1f} bytes per job")
    finally:
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)


def breakdown(client: Any, prefix: str) -> dict[str, float]:
    """Bytes per structure (``MEMORY USAGE``, key included), largest first."""
    sizes: dict[str, float] = {}
    jobs, sample = 0, []
    for key in client.scan_iter(f"{prefix}*", count=10_000):
        name = key[len(prefix) :]
        if name.startswith("job:"):
            jobs += 1
            if len(sample) < 1000:
                sample.append(client.memory_usage(key, samples=0))
            continue
        if name.startswith("ids:"):
            name = "ids:<page>"
        elif name.startswith("q:") and ":due:" in name:
            name = name[: name.index(":due:")] + ":due:<page>"
        sizes[name] = sizes.get(name, 0) + client.memory_usage(key, samples=0)
    if sample:
        sizes["job:<id> (hashes)"] = sum(sample) / len(sample) * jobs
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))


if __name__ == "__main__":
    main()
