"""Each queue's due jobs on Redis (lua/index.lua, ``rd_*``): members "<score><id>" in
pages small enough for Redis's compact encoding, claimed in the contract's order
(priority, then run_at, then id) across pages, single enqueues appended to a due tail that
every reader folds in first, and an earlier version's ready sorted set
(``q:<queue>:ready``) moved into them, lazily by claims and at once by ``migrate``."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
import redis

from conveyor import App
from conveyor.backends import Backend
from conveyor.backends.redis.codec import DUE_BAND, DUE_DIGITS
from conveyor.backends.redis.connection import _lua
from conveyor.records import JobQuery, JobRecord
from conveyor.states import State
from conveyor.testing import FakeClock

from ..contract.helpers import job
from ..worker.conftest import wait_until

pytestmark = pytest.mark.parametrize("backend_kind", ["redis"])


def claim_order(records: list[JobRecord]) -> list[str]:
    """The contract's claim order: highest priority first, then oldest run_at, then id."""
    ordered = sorted(records, key=lambda r: (-r.priority, int(r.run_at * 1000), r.id))
    return [r.id for r in ordered]


def mixed(backend: Backend, n: int, rng: random.Random, queues: str = "d") -> list[JobRecord]:
    """n due jobs of random priorities and queues, due at random times in the last second
    (many at the same time), not in that order. Times 125 ms apart: a claim returns its
    batch sorted by exact run_at, the order the claim itself keeps is by millisecond."""
    return [
        job(
            backend,
            queue="default" if queues == "d" else rng.choice(queues),
            priority=rng.choice([0, 3, 5, 5, 5, 9]),
            delay=-0.125 * rng.randint(0, 8),
        )
        for _ in range(n)
    ]


def pages(backend: Any, queue: str) -> dict[str, str]:
    """Each due page of the queue: its encoding. Checks that the directory names exactly
    the pages that exist (an emptied page leaves it, the first one included)."""
    client, key = backend.client, backend._key("q", queue, "due")
    found = {k: client.object("encoding", k) for k in client.scan_iter(f"{key}:*", count=1000)}
    assert {k[len(key) + 1 :] for k in found} == set(client.zrange(key, 0, -1))
    return found


def drain(backend: Backend, queues: list[str], batch: int) -> list[str]:
    claimed: list[str] = []
    while got := backend.claim(queues, "w", batch, 30):
        claimed += [r.id for r in got]
    return claimed


def test_due_jobs_are_claimed_in_order_across_pages_that_stay_compact(
    backend: Backend, clock: FakeClock
) -> None:
    rng = random.Random(24)
    records = mixed(backend, 700, rng)
    # Batches (one page cut into full ones, or added one by one when they straddle
    # pages), then single jobs (the delay() script).
    assert backend.enqueue(records[:300]) == [True] * 300
    for record in records[300:]:
        assert backend.enqueue([record]) == [True]
    assert backend.enqueue(records[:5]) == [False] * 5  # idempotent: queued once
    encodings = pages(backend, "default")
    assert len(encodings) >= 700 // 120 + 1
    assert set(encodings.values()) == {"listpack"}
    assert backend.counts()[("default", State.PENDING)] == 700

    # A delayed job promoted at its time, and cancelled jobs (their member found from
    # their hash), take or leave their place.
    later = job(backend, priority=7, delay=5.0)
    backend.enqueue([later])
    cancelled = {v.id for v in rng.sample(records, 20)}
    for victim in cancelled:
        backend.cancel(victim)
    clock.advance(5.0)
    expected = claim_order([r for r in records if r.id not in cancelled] + [later])
    first = backend.claim(["default"], "w", 3, 30)
    assert [r.id for r in first] == expected[:3]
    # Released jobs go back to their old place: the next claim takes them again first.
    backend.release([r.lease for r in first])
    assert [r.id for r in backend.claim(["default"], "w", 3, 30)] == expected[:3]
    assert drain(backend, ["default"], 7) == expected[3:]
    assert pages(backend, "default") == {}
    assert not backend.client.exists(backend._key("q", "default", "due"))  # type: ignore[attr-defined]


def test_two_queues_merge_in_claim_order(backend: Backend) -> None:
    records = mixed(backend, 400, random.Random(7), queues="ab")
    backend.enqueue(records)
    assert drain(backend, ["a", "b"], 11) == claim_order(records)


def tail(backend: Any, queue: str = "default") -> list[str]:
    """The queue's due tail: the members single enqueues appended since the last fold."""
    return list(backend.client.lrange(backend._key("q", queue, "newdue"), 0, -1))


def test_single_enqueues_wait_in_the_due_tail_and_are_claimed_in_order_with_the_pages(
    backend: Backend, clock: FakeClock
) -> None:
    """A single delay() appends its job's due member to the queue's due tail (one RPUSH);
    the tail is folded into the pages at 120 and by each claim before it reads, so jobs in
    the pages and in the tail, of mixed priorities and times, are claimed in order."""
    rng = random.Random(11)
    records = mixed(backend, 650, rng)
    assert backend.enqueue(records[:300]) == [True] * 300  # a batch: into the pages
    for record in records[300:]:
        assert backend.enqueue([record]) == [True]
    assert len(tail(backend)) == 350 - 240  # folded at 120 and at 240, the rest waits
    # Idempotent: a job in the tail, or one folded from it, is a job already.
    assert backend.enqueue([records[-1]]) == [False]
    assert backend.enqueue([records[310]]) == [False]
    extra = job(backend, priority=3)  # a batch with one of them: only the new job is added
    assert backend.enqueue([records[-2], extra]) == [False, True]
    records.append(extra)
    assert len(tail(backend)) == 110
    assert backend.counts()[("default", State.PENDING)] == 651
    assert set(pages(backend, "default").values()) == {"listpack"}
    expected = claim_order(records)
    assert [r.id for r in backend.claim(["default"], "w", 5, 30)] == expected[:5]
    assert tail(backend) == []  # the claim folded it before it picked
    # New jobs behind the pages (one priority, growing times) while some are claimed.
    clock.advance(1.0)
    later = [job(backend) for _ in range(200)]
    for record in later:
        backend.enqueue([record])
    assert drain(backend, ["default"], 7) == claim_order(records + later)[5:]
    assert pages(backend, "default") == {}
    assert tail(backend) == []


def test_a_full_due_tail_of_new_jobs_becomes_pages_as_it_is(backend: Backend) -> None:
    """Jobs of one priority due at once sort after every page: a full tail becomes a page
    of its own (no page rewritten), so an earlier worker, which reads the pages only,
    sees them once 120 are queued (docs/redis.md, upgrading)."""
    records = [job(backend) for _ in range(370)]
    for record in records[:119]:
        backend.enqueue([record])
    assert pages(backend, "default") == {}
    assert len(tail(backend)) == 119
    backend.enqueue([records[119]])
    assert tail(backend) == []
    assert len(pages(backend, "default")) == 1
    for record in records[120:]:
        backend.enqueue([record])
    due = backend._key("q", "default", "due")  # type: ignore[attr-defined]
    client: Any = backend.client  # type: ignore[attr-defined]
    sizes = [client.zcard(f"{due}:{start}") for start in client.zrange(due, 0, -1)]
    assert sizes == [120, 120, 120]
    assert len(tail(backend)) == 10
    assert set(pages(backend, "default").values()) == {"listpack"}
    assert drain(backend, ["default"], 50) == [r.id for r in records]


def test_a_job_in_the_due_tail_is_seen_cancelled_and_purged(backend: Backend) -> None:
    """Every reader of the due pages sees the tail: the worker's next-due check counts
    it; the doctor's and `inspect queues`' views, cancel (which takes the job's member
    out) and purge fold it in first."""
    first = [job(backend, priority=p) for p in (5, 9, 0, 5)]
    for record in first:
        backend.enqueue([record])
    assert len(tail(backend)) == 4
    assert backend.next_due(["default"]) == backend.now()
    assert backend.waiting_tasks() == {"default": {"tests.noop"}}
    assert len(tail(backend)) == 0  # folded
    second = [job(backend, priority=p) for p in (7, 3)]
    for record in second:
        backend.enqueue([record])
    elsewhere = job(backend, queue="other")
    backend.enqueue([elsewhere])
    # Every queue's tail (what `conveyor inspect queues` reads: docs/redis.md, going back).
    assert backend.oldest_waiting() == {"default": first[0].run_at, "other": elsewhere.run_at}
    assert tail(backend) == tail(backend, "other") == []
    victim = job(backend, priority=9)
    backend.enqueue([victim])
    assert tail(backend) != []
    assert backend.cancel(victim.id).state is State.REVOKED
    assert tail(backend) == []
    counts = backend.counts()
    assert (counts[("default", State.PENDING)], counts[("default", State.REVOKED)]) == (6, 1)
    claimed = backend.claim(["default"], "w", 3, 30)
    assert [r.id for r in claimed] == claim_order(first + second)[:3]
    more = [job(backend) for _ in range(3)]
    for record in more:
        backend.enqueue([record])
    assert len(tail(backend)) == 3
    assert backend.purge("default") == 3 + 3  # three left of the six, and the tail's three
    assert tail(backend) == []
    assert pages(backend, "default") == {}
    assert all(backend.get(r.id).state is State.REVOKED for r in more)
    assert backend.claim(["default"], "w", 10, 30) == []


def test_a_due_tail_entry_whose_job_an_earlier_version_cancelled_is_dropped(
    backend: Backend,
) -> None:
    """An earlier version's cancel does not know the tail: it marks the job REVOKED and
    leaves its member there; folded in, the claim drops it, as in the pages."""
    revoked, waiting = job(backend), job(backend)
    for record in (revoked, waiting):
        backend.enqueue([record])
    client: Any = backend.client  # type: ignore[attr-defined]
    client.hset(backend._key("job", revoked.id), "state", "REVOKED")  # type: ignore[attr-defined]
    assert len(tail(backend)) == 2
    assert [r.id for r in backend.claim(["default"], "w", 3, 30)] == [waiting.id]
    assert backend.claim(["default"], "w", 3, 30) == []
    assert tail(backend) == []


def test_a_fold_cut_short_leaves_its_tail_and_the_next_adds_nothing_twice(
    backend: Backend,
) -> None:
    """A fold deletes a tail only once its members are in the pages: a script that fails in
    between (what it wrote stays: a write Redis refuses when it is out of memory) leaves
    them in the tail, some in a page too, and the next fold adds what a page holds already
    as a no-op: each job listed and claimed once, in order."""
    records = [job(backend, priority=p) for p in [5, 9, 0] * 50]
    for record in records:
        backend.enqueue([record])
    assert len(tail(backend)) == 30  # the 120 before were folded
    # Each fold run with Redis refusing its second ZADD (the due tail: after its first page
    # took its members; the id tail: after its first id went in).
    refused = "\n".join(
        [
            """
local real, n = redis, 0
local redis = {call = function(cmd, ...)
  if cmd == "ZADD" then
    n = n + 1
    if n == 2 then return real.error_reply("OOM command not allowed (test)") and error("OOM") end
  end
  return real.call(cmd, ...)
end}
""",
            _lua("layout"),
            _lua("pages"),
            _lua("tail"),
            "if ARGV[2] == 'due' then rd_fold(ARGV[1], 'default') else ix_fold(ARGV[1]) end",
        ]
    )
    client: Any = backend.client  # type: ignore[attr-defined]
    for which in ("due", "ids"):
        with pytest.raises(redis.ResponseError, match="OOM"):
            client.eval(refused, 1, backend._key("ids"), backend.prefix, which)  # type: ignore[attr-defined]
    assert len(tail(backend)) == 30
    assert client.llen(backend._key("newids")) == 30  # type: ignore[attr-defined]
    listed = backend.list_jobs(JobQuery(limit=1000))
    assert sorted(r.id for r in listed) == sorted(r.id for r in records)
    assert drain(backend, ["default"], 7) == claim_order(records)
    assert tail(backend) == []
    assert pages(backend, "default") == {}


def to_earlier_layout(backend: Any, queue: str) -> None:
    """Rewrite a queue's due pages, and its jobs' hashes, as the version before them kept
    them: one sorted set, ``q:<queue>:ready``, scored (9 - priority) * 2^42 + run_at in
    ms; hashes with every field's long name and the priority stored."""
    client = backend.client
    for job_id in backend._run("ids_list", "0", "-", "+", 100_000):
        key = backend._key("job", job_id)
        fields = client.hgetall(key)
        if fields.get("queue") != queue:
            continue
        long = {"p": "payload", "c": "created_at", "m": "max_retries"}
        client.delete(key)
        client.hset(key, mapping={"priority": "5"} | {long.get(k, k): v for k, v in fields.items()})
    due = backend._key("q", queue, "due")
    members = [
        m for start in client.zrange(due, 0, -1) for m in client.zrange(f"{due}:{start}", 0, -1)
    ]
    for key in [due, *client.scan_iter(f"{due}:*")]:
        client.delete(key)
    client.zadd(backend._key("q", queue, "ready"), {m[15:]: int(m[:15]) for m in members})


def test_a_ready_set_of_an_earlier_version_is_claimed_in_order_while_it_moves(
    backend: Backend, clock: FakeClock
) -> None:
    rng = random.Random(3)
    old = mixed(backend, 500, rng)
    backend.enqueue(old)
    delayed = job(backend, priority=7, delay=0.2)  # promoted later, from its old hash
    backend.enqueue([delayed])
    to_earlier_layout(backend, "default")
    assert "payload" in backend.client.hgetall(backend._key("job", old[0].id))  # type: ignore[attr-defined]
    legacy = backend._key("q", "default", "ready")  # type: ignore[attr-defined]
    assert backend.client.zcard(legacy) == 500  # type: ignore[attr-defined]
    # Read before anything moved: the doctor's views see the earlier layout's jobs.
    assert backend.waiting_tasks() == {"default": {"tests.noop"}}
    assert backend.oldest_waiting() == {"default": min(r.run_at for r in old)}
    # Jobs queued after the upgrade go to the pages; some outrank the earlier ones.
    clock.advance(0.25)
    new = mixed(backend, 100, rng)
    backend.enqueue(new[:50])
    for record in new[50:]:
        backend.enqueue([record])
    gone = rng.sample(old, 10)  # cancelled while still in the earlier set
    for victim in gone:
        backend.cancel(victim.id)
    expected = [i for i in claim_order(old + new) if i not in {v.id for v in gone}]
    # A job claimed and released goes back to its place, read from its old hash.
    first = backend.claim(["default"], "w", 2, 30)
    assert [r.id for r in first] == expected[:2]
    was = {r.id: r for r in old}[first[0].id]
    assert (first[0].payload, first[0].created_at, first[0].run_at, first[0].priority) == (
        was.payload,
        was.created_at,
        was.run_at,
        was.priority,
    )
    backend.release([r.lease for r in first])
    # Listing filters on fields of old and new records alike (text: the payload).
    marked = job(backend, args=("needle",))
    backend.enqueue([marked])
    found = backend.list_jobs(JobQuery(limit=10, text="needle"))
    assert [r.id for r in found] == [marked.id]
    clock.advance(0.2)  # the delayed job is due: it outranks the priority 5 jobs
    expected = [
        i for i in claim_order([*old, *new, delayed, marked]) if i not in {v.id for v in gone}
    ]

    assert drain(backend, ["default"], 9) == expected
    assert not backend.client.exists(legacy)  # type: ignore[attr-defined]
    # Listing reads every job, and the counters held through it all.
    listed = backend.list_jobs(JobQuery(limit=1000))
    assert sorted(r.id for r in listed) == sorted(r.id for r in [*old, *new, delayed, marked])
    assert backend.counts()[("default", State.STARTED)] == 592


def test_a_claim_that_empties_the_pages_wakes_for_what_the_earlier_set_still_holds(
    backend: Backend,
) -> None:
    """A claim moves at most ``max(limit, 200)`` jobs from an earlier version's ready
    set; when it takes all it moved, the jobs left there still wake the next idle worker."""
    backend.enqueue([job(backend) for _ in range(300)])
    to_earlier_layout(backend, "default")
    client: Any = backend.client  # type: ignore[attr-defined]
    wake = backend._key("q", "default", "wake")  # type: ignore[attr-defined]
    client.delete(wake)
    assert len(backend.claim(["default"], "w", 250, 30)) == 250
    assert client.zcard(backend._key("q", "default", "ready")) == 50  # type: ignore[attr-defined]
    assert client.llen(wake) == 1


def test_a_due_entry_whose_job_no_longer_waits_is_dropped_not_run(backend: Backend) -> None:
    """An earlier version's cancel (an API server not yet upgraded) marks the job REVOKED
    and removes it from the ready set it knows, not from the due pages: the claim drops
    that entry and runs the next job, and a missing hash is dropped the same way."""
    revoked, missing, waiting = (job(backend) for _ in range(3))
    backend.enqueue([revoked, missing, waiting])
    client: Any = backend.client  # type: ignore[attr-defined]
    client.hset(backend._key("job", revoked.id), "state", "REVOKED")  # type: ignore[attr-defined]
    client.delete(backend._key("job", missing.id))  # type: ignore[attr-defined]
    assert [r.id for r in backend.claim(["default"], "w", 3, 30)] == [waiting.id]
    assert backend.get(revoked.id).state is State.REVOKED
    assert backend.claim(["default"], "w", 3, 30) == []
    assert not client.exists(backend._key("job", missing.id))  # type: ignore[attr-defined]


def test_migrate_moves_every_queue_and_a_worker_drains_the_store(
    make_backend: Callable[..., Backend],
    worker_app: App,
    start_worker: Callable[..., Any],
) -> None:
    producer = worker_app.backend
    client, key = producer.client, producer._key  # type: ignore[attr-defined]
    sent = [
        worker_app.send_task("t.add", (i, 1), queue=q) for q in ("q1", "q2") for i in range(300)
    ]
    for queue in ("q1", "q2"):
        to_earlier_layout(producer, queue)
    assert make_backend().migrate() == [3]  # type: ignore[attr-defined]
    assert not client.exists(key("q", "q1", "ready"), key("q", "q2", "ready"))
    assert make_backend().migrate() == []  # type: ignore[attr-defined]
    assert set(pages(producer, "q1").values()) == {"listpack"}

    start_worker(queues=["q1", "q2"])

    def finished() -> bool:
        found = producer.get_many([r.id for r in sent]).values()
        return all(r.state is State.SUCCESS for r in found)

    wait_until(finished, 60, "the migrated backlog to be drained")
    results = {r.id: r.result for r in producer.get_many([r.id for r in sent]).values()}
    assert results == {r.id: i + 1 for r, i in zip(sent, [*range(300), *range(300)], strict=True)}


def page_sizes(backend: Any, key: str) -> list[int]:
    """The sizes of the pages of the paged set at key, in order."""
    client = backend.client
    return [client.zcard(f"{key}:{start}") for start in client.zrange(key, 0, -1)]


def test_a_batch_in_order_after_every_page_becomes_pages_of_its_own(backend: Any) -> None:
    """A batch of new jobs of one priority due at once, from one producer (ids that grow),
    sorts after every due member and every id: written as new pages in the order given
    (no sort of the batch, no page rewritten), checked by Redis page by page."""
    first = [job(backend) for _ in range(150)]
    assert backend.enqueue(first) == [True] * 150
    due, ids = backend._key("q", "default", "due"), backend._key("ids")
    assert page_sizes(backend, due) == page_sizes(backend, ids) == [120, 30]
    batch = [job(backend) for _ in range(1000)]
    assert backend.enqueue(batch) == [True] * 1000
    # The earlier pages as they were; the batch in full pages but its last.
    assert page_sizes(backend, due) == page_sizes(backend, ids) == [120, 30] + [120] * 8 + [40]
    assert set(pages(backend, "default").values()) == {"listpack"}
    assert backend.enqueue(batch[500:560]) == [False] * 60  # idempotent
    assert drain(backend, ["default"], 64) == [r.id for r in first + batch]


def test_a_batch_out_of_order_is_paged_as_far_as_it_is_in_order_then_each_in_its_place(
    backend: Any,
) -> None:
    """The caller's order is checked, not trusted: a batch whose 300th job sorts before
    the others (a higher priority) keeps the pages that came in order, and the rest go
    where each belongs; ids given out of order likewise."""
    rng = random.Random(5)
    batch = [job(backend) for _ in range(600)]
    batch[299] = job(backend, priority=9)
    assert backend.enqueue(batch) == [True] * 600
    due = backend._key("q", "default", "due")
    sizes = page_sizes(backend, due)
    assert sum(sizes) == 600
    assert max(sizes) <= 120
    assert set(pages(backend, "default").values()) == {"listpack"}
    shuffled = [job(backend, id=str(rng.getrandbits(64))) for _ in range(300)]
    assert backend.enqueue(shuffled) == [True] * 300
    ids = backend._key("ids")
    assert sum(page_sizes(backend, ids)) == 900
    assert max(page_sizes(backend, ids)) <= 120
    listing = backend.list_jobs(JobQuery(limit=1000, oldest_first=True))
    assert [r.id for r in listing] == sorted(r.id for r in batch + shuffled)
    assert drain(backend, ["default"], 64) == claim_order(batch + shuffled)


def test_a_batch_writes_one_event_a_job_and_the_stream_stays_capped(backend: Any) -> None:
    """Each new job of a batch gets the event a single enqueue writes (same fields, same
    order: the stream's nodes store them without field names); the stream is trimmed
    once a batch, to near 10,000 entries as every write keeps it."""
    client, events = backend.client, backend._key("events")
    backend.enqueue([job(backend)])
    batch = [job(backend) for _ in range(4000)]
    assert backend.enqueue(batch + batch[:3]) == [True] * 4000 + [False] * 3
    entries = client.xrange(events, "-", "+")
    assert len(entries) == 4001
    assert list(entries[0][1]) == list(entries[-1][1]) == ["t", "k", "j", "q", "n", "s"]
    assert [f["j"] for _, f in entries[1:]] == [r.id for r in batch]
    assert entries[1][1] == {"t": str(round(batch[0].created_at * 1e6)), "k": "", "j": batch[0].id,
                             "q": "default", "n": "tests.noop", "s": "PENDING"}  # fmt: skip
    for _ in range(2):
        assert backend.enqueue([job(backend) for _ in range(4000)]) == [True] * 4000
    assert 10_000 <= client.xlen(events) <= 10_100


def test_a_single_enqueue_writes_the_due_member_the_pages_use(backend: Any) -> None:
    """The producer makes a single enqueue's due member (codec.due_member: the script then
    parses and formats no number): it must be index.lua's rd_member, with layout.lua's
    band and width, and layout.lua's format as wide as the digits the claims cut at."""
    records = [job(backend, priority=p) for p in (0, 5, 9)]
    for record in records:
        backend.enqueue([record])
    written = backend.client.lrange(backend._key("q", "default", "newdue"), 0, -1)
    script = "\n".join(
        [_lua("layout"), _lua("pages"), _lua("tail"), _lua("index"),
         "local out = {} for i = 2, #ARGV, 3 do"
         " out[#out + 1] = rd_member(tonumber(ARGV[i]), tonumber(ARGV[i + 1]), ARGV[i + 2]) end"
         " return {out, RD_DIGITS, #string.format(RD_FORMAT, 0), tostring(RD_BAND)}"]
    )  # fmt: skip
    args = [v for r in records for v in (r.priority, repr(r.run_at), r.id)]
    expected, digits, width, band = backend.client.eval(script, 0, "-", *args)
    assert written == expected
    assert digits == width == DUE_DIGITS == len(written[0]) - len(records[0].id)
    assert int(band) == DUE_BAND


def test_single_enqueues_trim_the_stream_once_a_tail(backend: Any) -> None:
    """A single enqueue's event is added untrimmed (XADD's MAXLEN rewrote its arguments at
    every call); the call that starts the id tail trims, so the stream stays near 10,000
    entries whoever empties the tail: the 120th call's fold, or a listing's."""
    client, events = backend.client, backend._key("events")
    assert backend.enqueue([job(backend) for _ in range(10_000)]) == [True] * 10_000
    for i in range(400):
        backend.enqueue([job(backend)])
        if i > 250 and i % 7 == 0:
            backend.list_jobs(JobQuery(limit=1))  # folds the id tail: the next call starts it
        # ~ trims whole nodes of 100 entries; at most a tail's calls come in between.
        assert client.xlen(events) <= 10_000 + 100 + 120
    assert client.xlen(events) >= 10_000


def test_a_batch_after_a_last_page_named_but_gone_takes_the_general_way(backend: Any) -> None:
    """A directory whose last page is gone (a store a failed write left): a batch in
    order is not written as pages after it but where it belongs, and every job whose
    place is kept is claimed once, in order."""
    first = [job(backend) for _ in range(130)]
    assert backend.enqueue(first) == [True] * 130
    due, client = backend._key("q", "default", "due"), backend.client
    last = client.zrange(due, -1, -1)[0]
    client.delete(f"{due}:{last}")  # its 10 jobs' places lost with it
    batch = [job(backend) for _ in range(100)]
    assert backend.enqueue(batch) == [True] * 100
    assert page_sizes(backend, due) == [120, 100]  # the page named, filled again
    assert drain(backend, ["default"], 64) == [r.id for r in first[:120] + batch]


def test_a_batch_after_the_id_index_emptied_by_pruning_is_its_first_page(
    backend: Any, clock: FakeClock
) -> None:
    """The id index keeps its first page's entry ("") when pruning empties it: the next
    batch in order becomes that page."""
    records = [job(backend) for _ in range(130)]
    assert backend.enqueue(records) == [True] * 130
    assert backend.purge("default") == 130
    clock.advance(backend.result_ttl + 1)
    assert backend.prune(limit=10_000) == 130
    ids = backend._key("ids")
    assert backend.client.zrange(ids, 0, -1) == [""]
    again = [job(backend) for _ in range(100)]
    assert backend.enqueue(again) == [True] * 100
    assert page_sizes(backend, ids) == [100]
    listing = backend.list_jobs(JobQuery(limit=1000, oldest_first=True))
    assert [r.id for r in listing] == [r.id for r in again]
