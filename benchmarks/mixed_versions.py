"""A rolling upgrade on Redis, checked with two checkouts: one version's producer writes
jobs that the other version's worker and readers must serve (each direction run apart).

    # producer of checkout A, worker and readers of checkout B, on one redis-server:
    export MIXED_URL='redis://127.0.0.1:6379/9?prefix=mixed'   # emptied first by produce
    (cd A && .venv/bin/python -m benchmarks.mixed_versions produce)
    (cd B && .venv/bin/python -m benchmarks.mixed_versions serve)

``produce`` enqueues single and batched jobs (priorities, a delayed one, one without
arguments, one to revoke while queued), claims one with a short lease and leaves it (a
dead worker), and lists the ids in ``kv``. ``serve`` (the other checkout) reads every
record and its events, finds jobs by filter, revokes one, rescues the abandoned lease
and drains the queue with a real worker process (``conveyor worker --burst``) of its own
checkout; it prints what it checked and exits 1 on any mismatch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conveyor import App
from conveyor.records import JobQuery
from conveyor.serialization import decode_payload
from conveyor.states import State
from conveyor.task import Signature

APP = App("mixed", backend=os.environ.get("MIXED_URL", "redis://127.0.0.1:6379/9?prefix=mixed"))


@APP.task(name="mixed.add")
def add(a: int = 0, b: int = 0) -> int:
    return a + b


def produce() -> None:
    backend = APP.backend
    client = backend.client  # type: ignore[attr-defined]
    for key in client.scan_iter(match=backend._key("*")):  # type: ignore[attr-defined]
        client.delete(key)
    single = [add.delay(i, 1) for i in range(130)]  # past a fold of both tails
    urgent = add.apply_async(args=(1, 2), priority=9)
    later = add.apply_async(args=(2, 2), countdown=1.0)
    bare = add.delay()  # a payload without args or kwargs
    batch = APP.enqueue_many([Signature("mixed.add", (i, 2)) for i in range(200)])
    doomed = add.delay(100, 0)  # revoked while queued, by the other version
    [held] = backend.claim(["default"], "dead-worker", 1, 1.0)  # its lease runs out
    ids = [j.id for j in (*single, urgent, later, bare, *batch)]
    backend.kv_set("mixed", {"ids": ids, "doomed": doomed.id, "held": held.id})
    print(f"produced {len(ids) + 1} jobs, one held under a 1 s lease")


def serve() -> None:
    backend = APP.backend
    plan = backend.kv_get("mixed")
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    ids: list[str] = plan["ids"]
    records = backend.get_many([*ids, plan["doomed"]])
    check(len(records) == len(ids) + 1, f"every record read ({len(records)})")
    check(decode_payload(records[ids[132]].payload) == ([], {}), "a payload without arguments")
    events = backend.events(0, 10_000)
    now = time.time()
    check(all(abs(e.time - now) < 600 for e in events), f"{len(events)} event times in seconds")
    found = backend.list_jobs(JobQuery(limit=5000, text="[100,0]"))
    check([r.id for r in found] == [plan["doomed"]], "a queued job found by a text filter")
    check(backend.cancel(plan["doomed"]).state is State.REVOKED, "a queued job revoked")
    time.sleep(1.2)  # the held lease runs out (and the delayed job falls due)
    check(plan["held"] in backend.rescue_expired(), "an abandoned lease rescued")
    root = Path(__file__).resolve().parents[1]
    worker = [str(Path(sys.executable).parent / "conveyor"), "-A", "benchmarks.mixed_versions:APP",
              "worker", "--burst", "-c", "2", "-P", "thread", "-l", "warning"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run(worker, cwd=root, env=env, check=True, timeout=120)
    done = backend.get_many(ids)
    states = {r.state for r in done.values()}
    check(states == {State.SUCCESS}, f"every job ran: {sorted(s.value for s in states)}")
    check(done[ids[0]].result == 1 and done[ids[130]].result == 3, "results stored")
    check(backend.get(plan["doomed"]).state is State.REVOKED, "the revoked job never ran")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    {"produce": produce, "serve": serve}[sys.argv[1]]()
