"""The Redis id index (lua/index.lua): job ids in pages of at most 120, each page small
enough for Redis's compact encoding, listed in id order across pages, and ids indexed
by an earlier version (one `all` sorted set) moved into it."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from conveyor.backends import Backend
from conveyor.records import JobQuery
from conveyor.testing import FakeClock

from ..contract.helpers import job

pytestmark = pytest.mark.parametrize("backend_kind", ["redis"])


def listed(backend: Backend, oldest_first: bool, limit: int) -> list[str]:
    """Every id, page after page through the list cursor."""
    ids: list[str] = []
    while True:
        cursor = ids[-1] if ids else None
        where = {"after": cursor} if oldest_first else {"before": cursor}
        page = backend.list_jobs(JobQuery(limit=limit, oldest_first=oldest_first, **where))
        if not page:
            return ids
        ids += [r.id for r in page]


def pages(backend: Any) -> dict[str, str]:
    """Each page of the index: its encoding. Checks that the directory names each page
    (but the first page, "", which may be empty and so gone)."""
    client, key = backend.client, backend._key("ids")
    found = {k: client.object("encoding", k) for k in client.scan_iter(f"{key}:*", count=1000)}
    starts = set(client.zrange(key, 0, -1))
    assert {k[len(key) + 1 :] for k in found} | {""} == starts | {""}
    return found


def test_jobs_list_in_id_order_across_many_pages_that_stay_compact(
    backend: Backend, clock: FakeClock
) -> None:
    rng = random.Random(24)
    # Ids out of order (user-given, split pages in halves) and growing ones (generated,
    # each full last page starts a new one), in two queues.
    given = [
        job(backend, id=str(uuid.UUID(int=rng.getrandbits(128))), queue="a") for _ in range(400)
    ]
    generated = [job(backend, queue="b") for _ in range(400)]
    # A batch into an empty index, one whose ids straddle pages (added one by one), one
    # past the last page (added at once, the page cut into full ones), then single jobs.
    for batch in (given[:100] + generated[:100], given[100:200], generated[100:300]):
        assert backend.enqueue(batch) == [True] * len(batch)
    for record in given[200:] + generated[300:]:  # the single-job script
        assert backend.enqueue([record]) == [True]
    assert backend.enqueue(given[:5]) == [False] * 5  # idempotent: indexed once
    everything = sorted(r.id for r in given + generated)

    assert listed(backend, oldest_first=False, limit=97) == everything[::-1]
    assert listed(backend, oldest_first=True, limit=97) == everything
    encodings = pages(backend)
    assert len(encodings) >= 800 // 120 + 1
    assert set(encodings.values()) == {"listpack"}

    # Finished and pruned: their ids leave the index, emptied pages leave the directory.
    # The prune sorts a batch's ids in a set of its own, which goes with the call; one
    # left by a call that failed midway holds nothing the next call removes.
    redis: Any = backend
    client, scratch = redis.client, redis._key("ids") + "-gone"
    client.zadd(scratch, {generated[0].id: 0})
    client.sadd(scratch + ":set", generated[1].id)
    assert backend.purge("a") == 400
    clock.advance(backend.result_ttl + 1)
    assert backend.prune(limit=10_000) == 400
    assert not client.exists(scratch, scratch + ":set")
    left = sorted(r.id for r in generated)
    assert listed(backend, oldest_first=False, limit=150) == left[::-1]
    assert listed(backend, oldest_first=True, limit=150) == left
    assert len(pages(backend)) <= 400 // 60 + 2


def test_a_cursor_between_pages_and_bounds_on_both_sides(backend: Backend) -> None:
    records = [job(backend) for _ in range(500)]
    backend.enqueue(records)
    ids = sorted(r.id for r in records)
    for i in (0, 119, 120, 121, 250, 499):
        newer = [
            r.id for r in backend.list_jobs(JobQuery(limit=1000, oldest_first=True, after=ids[i]))
        ]
        assert newer == ids[i + 1 :]
        older = [r.id for r in backend.list_jobs(JobQuery(limit=1000, before=ids[i]))]
        assert older == ids[:i][::-1]


def test_ids_indexed_by_an_earlier_version_move_into_the_index(
    backend: Backend, make_backend: Callable[..., Backend]
) -> None:
    client, key = backend.client, backend._key  # type: ignore[attr-defined]
    records = [job(backend) for _ in range(300)]
    backend.enqueue(records)
    # The layout of an earlier version: every id in one sorted set, no pages; one of its
    # jobs was pruned by that version (a Redis without it).
    for k in [key("ids"), *client.scan_iter(f"{key('ids')}:*")]:
        client.delete(k)
    client.zadd(key("all"), {r.id: 0 for r in records} | {"gone-job": 0})
    fresh = make_backend()  # a process started after the upgrade

    assert fresh.migrate() == [2]  # type: ignore[attr-defined]
    assert not client.exists(key("all"))
    assert fresh.migrate() == []  # type: ignore[attr-defined]
    ids = sorted(r.id for r in records)
    assert [r.id for r in fresh.list_jobs(JobQuery(limit=1000))] == ids[::-1]
    # The id without a job was found by that listing and taken out of the index.
    assert "gone-job" not in listed_raw(fresh)

    # A producer of the earlier version still running during an upgrade adds to `all`:
    # the next listing moves its id in first.
    late = job(backend, id="late-" + ids[-1])
    client.hset(key("job", late.id), mapping={"task": "tests.noop", "queue": "default",
                "priority": 5, "payload": "{}", "state": "PENDING",
                "created_at": repr(late.created_at), "max_retries": 0})  # fmt: skip
    client.zadd(key("all"), {late.id: 0})
    assert fresh.list_jobs(JobQuery(limit=1))[0].id == late.id
    assert not client.exists(key("all"))


def listed_raw(backend: Any) -> list[str]:
    return list(backend._run("ids_list", "0", "-", "+", 100_000))


def test_an_id_whose_job_is_gone_is_skipped_and_dropped_by_the_listing(backend: Backend) -> None:
    """A worker of the earlier version prunes a job without knowing the pages: its id
    stays in one until a listing meets it."""
    client, key = backend.client, backend._key  # type: ignore[attr-defined]
    records = [job(backend) for _ in range(200)]
    backend.enqueue(records)
    ids = sorted(r.id for r in records)
    client.delete(key("job", ids[-1]), key("job", ids[50]))  # as that worker's prune does

    assert [r.id for r in backend.list_jobs(JobQuery(limit=1000))] == [
        i for i in ids[::-1] if i not in (ids[-1], ids[50])
    ]
    assert listed_raw(backend) == [i for i in ids if i not in (ids[-1], ids[50])]


def test_forgetting_a_gone_id_keeps_it_when_its_job_exists_again(backend: Backend) -> None:
    """Between a listing finding a job gone and dropping its id, the same id may be
    enqueued anew (a caller-chosen id): the new job stays listed."""
    records = [job(backend) for _ in range(3)]
    backend.enqueue(records)
    ids = sorted(r.id for r in records)
    backend._run("ids_forget", ids[0], "never-stored")  # type: ignore[attr-defined]
    assert listed_raw(backend) == ids


def test_single_enqueues_append_to_the_tail_that_every_reader_folds_in_first(
    backend: Any, clock: FakeClock
) -> None:
    """A single delay() appends its id to the index's tail (a list, no page search);
    a full tail is folded into the pages, and listing, pruning and forgetting fold what
    is there before they read: they see every id, in order."""
    client, tail = backend.client, backend._key("newids")
    early = [job(backend) for _ in range(300)]
    backend.enqueue(early)  # a batch: into the pages
    singles = [job(backend) for _ in range(250)]  # generated ids, in order
    given = [job(backend, id=f"user-{i:03d}") for i in range(5)]  # anywhere in the order
    for record in singles + given:
        assert backend.enqueue([record]) == [True]
    assert 0 < client.llen(tail) < 120  # two folds (at 120 and 240 ids), then the rest
    assert backend.enqueue([given[0]]) == [False]  # an id in the tail is a job already
    assert backend.enqueue([singles[0]]) == [False]  # and one folded into the pages

    everything = sorted(r.id for r in early + singles + given)
    assert listed(backend, oldest_first=True, limit=97) == everything
    assert not client.exists(tail)  # the listing folded it
    assert set(pages(backend).values()) == {"listpack"}

    # Pruned while in the tail: the prune folds first, so the id leaves the index.
    last = [job(backend) for _ in range(3)]
    for record in last:
        backend.enqueue([record])
    assert client.llen(tail) == 3
    assert backend.purge("default") == len(everything) + 3
    clock.advance(backend.result_ttl + 1)
    assert backend.prune(limit=100_000) == len(everything) + 3
    assert listed_raw(backend) == []
    assert not client.exists(tail)


def test_a_full_tail_on_an_empty_index_becomes_its_first_page(backend: Any) -> None:
    records = [job(backend) for _ in range(130)]
    for record in records:
        backend.enqueue([record])
    assert backend.client.llen(backend._key("newids")) == 10
    assert backend.client.zrange(backend._key("ids"), 0, -1) == [""]
    assert listed_raw(backend) == sorted(r.id for r in records)
