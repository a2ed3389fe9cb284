"""Reads on an event loop (``Backend.async_reads``, behind ``app.aio.record`` once
``app.aio.open`` ran on the loop): the same records as the synchronous read, the same
errors, connections closed on ``aclose``; on Redis, a cut connection retried and an
unreachable server a ``BackendError`` (the API's 503)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import httpx
import pytest

from conveyor import App
from conveyor.backends import Backend
from conveyor.context import TaskContext
from conveyor.errors import BackendError, JobNotFound
from conveyor.testing import FakeClock, drain, use_backend
from conveyor.web import create_api

from ..web.conftest import Served


@pytest.fixture
def shapes_app(make_backend: Callable[..., Backend]) -> Iterator[App]:
    app = App("reads")

    @app.task(name="r.add")
    def add(a: int, b: int) -> dict[str, list[int]]:
        return {"sum": [a + b], "args": [a, b]}

    @app.task(name="r.fail")
    def fail(message: str) -> None:
        raise ValueError(message)

    @app.task(name="r.progress", bind=True)
    def progress(self: TaskContext) -> str:
        self.update_progress(40, message="on the way", meta={"step": 2})
        return "done"

    with use_backend(app, make_backend()):
        yield app


def jobs_of_every_shape(app: App) -> tuple[list[str], str]:
    """Job ids (finished, failed, with progress, in a chain, waiting with headers and an
    eta) and a workflow's id."""
    add, fail, progress = (app.tasks[n] for n in ("r.add", "r.fail", "r.progress"))
    done = [add.delay(1, 2).id, fail.delay("boom").id, progress.delay().id]
    flow = (add.s(1, 1) | add.si(2, 2)).delay()
    drain(app)
    waiting = add.apply_async((3, 4), countdown=60, headers={"who": "test"}, priority=7).id
    return [*done, waiting, *flow.member_ids()], flow.id


def test_the_async_record_is_the_sync_record(shapes_app: App) -> None:
    app = shapes_app
    ids, workflow_id = jobs_of_every_shape(app)
    has_async_reads = app.backend.async_reads() is not None

    async def scenario() -> None:
        await app.aio.open()
        try:
            for job_id in ids:
                assert await app.aio.record(job_id) == app.record(job_id)
            if has_async_reads:  # every read above was made on the loop: no thread started
                assert app.aio._executor is None
            for missing in ("no-such-job", workflow_id):
                with pytest.raises(JobNotFound) as sync_error:
                    app.record(missing)
                with pytest.raises(JobNotFound) as async_error:
                    await app.aio.record(missing)
                assert str(async_error.value) == str(sync_error.value)
            assert "app.workflow(" in str(async_error.value)
        finally:
            await app.aio.aclose()

    asyncio.run(scenario())
    app.aio.close()


def test_close_releases_the_connections_and_reads_go_to_the_threads(shapes_app: App) -> None:
    app = shapes_app
    job_id = app.tasks["r.add"].delay(2, 3).id

    async def scenario() -> None:
        await app.aio.open()
        await app.aio.open()  # a second service on the same loop: the first close keeps them
        opened = app.aio._reads.get(asyncio.get_running_loop())
        reads = getattr(opened[0] if opened else None, "open", None)  # Redis's connections
        assert (await app.aio.record(job_id)).id == job_id
        await app.aio.aclose()
        assert (await app.aio.record(job_id)).id == job_id
        assert reads is None or len(reads) == 1
        await app.aio.aclose()
        assert app.aio._reads == {}
        assert reads is None or len(reads) == 0
        assert (await app.aio.record(job_id)).id == job_id  # on a thread now

    asyncio.run(scenario())
    app.aio.close()


@pytest.mark.parametrize("backend_kind", ["redis"], indirect=True)
def test_redis_retries_a_cut_connection_once(shapes_app: App) -> None:
    app = shapes_app
    job_id = app.tasks["r.add"].delay(2, 3).id
    reads = app.backend.async_reads()
    assert reads is not None

    async def scenario() -> None:
        try:
            assert await reads.get(job_id) == app.record(job_id)
            own = await reads._command("CLIENT", "ID")  # type: ignore[attr-defined]
            assert app.backend.client.client_kill_filter(_id=own) == 1
            assert await reads.get(job_id) == app.record(job_id)  # on a new connection
            assert len(reads.open) == 1  # type: ignore[attr-defined]
        finally:
            await reads.close()

    asyncio.run(scenario())


def test_redis_unreachable_is_a_backend_error_and_the_api_answers_503() -> None:
    app = App("down", backend="redis://127.0.0.1:9/0")  # nothing listens on port 9
    reads = app.backend.async_reads()
    assert reads is not None

    async def scenario() -> httpx.Response:
        with pytest.raises(BackendError, match="unreachable"):
            await reads.get("some-job")
        await reads.close()
        async with Served(create_api(app, auth="off"), base_url="http://localhost") as c:
            return await c.get("/api/jobs/some-job")

    r = asyncio.run(scenario())
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "backend_unavailable"
    app.aio.close()


def test_kv_get_on_the_loop_reads_what_the_synchronous_read_does(
    make_backend: Callable[..., Backend], clock: FakeClock
) -> None:
    """``app.aio.kv_get`` (the API's token check): on the loop where the backend reads
    there, else on the threads; a missing key and an expired entry give the default."""
    app = App("kv")
    with use_backend(app, make_backend(clock=clock)):
        app.backend.kv_set("kept", {"sha256": "ab", "n": [1, 2]})
        app.backend.kv_set("gone", "old", ttl=5)
        clock.advance(6)

        async def scenario() -> list[object]:
            await app.aio.open()
            try:
                return [await app.aio.kv_get(k, "none") for k in ("kept", "gone", "nokey")]
            finally:
                await app.aio.aclose()

        expected = [{"sha256": "ab", "n": [1, 2]}, "none", "none"]
        assert asyncio.run(scenario()) == expected
        assert [app.backend.kv_get(k, "none") for k in ("kept", "gone", "nokey")] == expected
        app.aio.close()
