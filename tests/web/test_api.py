"""Every endpoint through HTTP (httpx on the ASGI app), on every backend; jobs run by a
burst worker in this process (real worker subprocesses: test_processes.py)."""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from conveyor import App, State, control
from conveyor.errors import BackendError
from conveyor.records import JobRecord, WorkerInfo
from conveyor.testing import drain, wait_for
from conveyor.web import TokenStore, WebService, api_router, create_api, use_error_shape
from conveyor.worker import Worker

from ..examples.conftest import free_port
from .conftest import Client, Served, run


async def submit(c: httpx.AsyncClient, task: str = "web.add", **body: Any) -> str:
    r = await c.post("/api/jobs", json={"task": task, **body})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_submit_run_read_and_wait(web_app: App, client: Client) -> None:
    async def scenario() -> None:
        async with client() as c:
            r = await c.post(
                "/api/jobs", json={"task": "web.add", "args": [2, 3], "priority": "high"}
            )
            assert r.status_code == 201
            job_id = r.json()["id"]
            assert r.json()["url"] == f"http://localhost/api/jobs/{job_id}"
            job = (await c.get(f"/api/jobs/{job_id}")).json()
            assert (job["state"], job["priority"], job["args"], job["queue"]) == (
                "PENDING",
                7,
                [2, 3],
                "default",
            )
            waited = (await c.get(f"/api/jobs/{job_id}/result", params={"timeout": 0})).json()
            assert (waited["done"], waited["state"]) == (False, "PENDING")
            assert drain(web_app) == {"SUCCESS": 1}
            waited = (await c.get(f"/api/jobs/{job_id}/result", params={"timeout": 5})).json()
            assert waited == {
                "id": job_id,
                "state": "SUCCESS",
                "done": True,
                "result": 5,
                "error": None,
            }
            job = (await c.get(f"/api/jobs/{job_id}")).json()
            assert job["attempt"] == 1
            assert job["timings"]["ran"] is not None

    run(scenario())


def test_wait_answers_when_the_job_finishes_not_at_the_timeout(
    web_app: App, client: Client
) -> None:
    async def scenario() -> float:
        async with client() as c:
            job_id = await submit(c, args=[1, 1])
            threading.Timer(0.3, drain, (web_app,)).start()
            started = time.monotonic()
            r = await c.get(f"/api/jobs/{job_id}/result", params={"timeout": 20})
            assert r.json()["result"] == 2
            return time.monotonic() - started

    assert 0.25 < run(scenario()) < 10


def test_wait_times_out_with_done_false(client: Client) -> None:
    async def scenario() -> None:
        async with client() as c:
            job_id = await submit(c, args=[1, 1])
            started = time.monotonic()
            r = await c.get(f"/api/jobs/{job_id}/result", params={"timeout": 0.3})
            assert time.monotonic() - started >= 0.3
            assert r.status_code == 200
            assert r.json()["done"] is False

    run(scenario())


def test_submit_options_are_stored(client: Client) -> None:
    eta = datetime(2100, 1, 1, tzinfo=UTC)

    async def scenario() -> None:
        async with client() as c:
            later = await submit(c, "web.media.encode", args=["a"], countdown=60, priority=2,
                                 headers={"trace": "abc"}, expires=3600)  # fmt: skip
            at = await submit(c, kwargs={"a": 1, "b": 2}, queue="other", eta=eta.isoformat())
            first = (await c.get(f"/api/jobs/{later}")).json()
            assert (first["state"], first["queue"], first["priority"]) == ("SCHEDULED", "media", 2)
            token = (await c.get("/api/audit")).request.headers["authorization"].split("_")[1]
            assert first["headers"] == {"trace": "abc", "submitted_by": f"test-operate ({token})"}
            assert first["run_at"] - first["created_at"] == pytest.approx(60, abs=1)
            assert first["expires_at"] - first["created_at"] == pytest.approx(3600, abs=1)
            second = (await c.get(f"/api/jobs/{at}")).json()
            assert (second["queue"], second["run_at"], second["kwargs"]) == (
                "other",
                eta.timestamp(),
                {"a": 1, "b": 2},
            )

    run(scenario())


def test_batch_is_all_or_nothing(client: Client) -> None:
    async def scenario() -> None:
        async with client() as c:
            jobs = [{"task": "web.add", "args": [i, i]} for i in range(3)] + [
                {"task": "web.media.encode", "args": ["x"]}
            ]
            r = await c.post("/api/jobs/batch", json={"jobs": jobs})
            assert r.status_code == 201
            ids = [j["id"] for j in r.json()["jobs"]]
            assert len(set(ids)) == 4
            listed = (await c.get("/api/jobs")).json()["jobs"]
            assert {j["id"] for j in listed} == set(ids)
            bad = await c.post(
                "/api/jobs/batch", json={"jobs": [jobs[0], {"task": "internal.secret"}]}
            )
            assert bad.status_code == 400
            error = bad.json()["error"]
            assert error["code"] == "unknown_task"
            # which of the batch's jobs: a caller sending a thousand must find it
            assert error["message"].startswith(
                "job 1 of the batch (from 0): task 'internal.secret'"
            )
            assert error["details"][0]["field"] == "jobs.1.task"
            refused = await c.post(
                "/api/jobs/batch",
                json={"jobs": [jobs[0], {"task": "web.add", "countdown": 1, "eta": 1}]},
            )
            assert refused.status_code == 400
            assert len((await c.get("/api/jobs")).json()["jobs"]) == 4  # neither stored a job

    run(scenario())


def test_list_filters_and_cursor_pages(client: Client) -> None:
    async def scenario() -> None:
        async with client() as c:
            ids = [await submit(c, args=[i, 1000 + i]) for i in range(5)]
            media = await submit(c, "web.media.encode", args=["needle"])
            seen: list[str] = []
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 2, "task": "web.add"}
                if cursor:
                    params["cursor"] = cursor
                page = (await c.get("/api/jobs", params=params)).json()
                seen += [j["id"] for j in page["jobs"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert seen == ids[::-1]  # newest first, each once
            first = {"limit": 2, "task": "web.add", "order": "oldest"}
            up = (await c.get("/api/jobs", params=first)).json()
            after = {**first, "cursor": up["next_cursor"]}
            up2 = (await c.get("/api/jobs", params=after)).json()
            assert [j["id"] for j in up["jobs"] + up2["jobs"]] == ids[:4]  # oldest first
            by_queue = (await c.get("/api/jobs", params={"queue": "media"})).json()["jobs"]
            assert [j["id"] for j in by_queue] == [media]
            by_text = (await c.get("/api/jobs", params={"text": "1003"})).json()["jobs"]
            assert [j["id"] for j in by_text] == [ids[3]]
            by_state = (
                await c.get("/api/jobs", params=[("state", "SUCCESS"), ("state", "FAILURE")])
            ).json()
            assert by_state["jobs"] == []
            future = (
                await c.get("/api/jobs", params={"created_after": "2100-01-01T00:00:00Z"})
            ).json()
            past = (await c.get("/api/jobs", params={"created_before": 0})).json()
            assert future["jobs"] == past["jobs"] == []
            assert len((await c.get("/api/jobs", params={"created_after": 0})).json()["jobs"]) == 6

    run(scenario())


def test_cancel_and_retry_one_job(web_app: App, client: Client) -> None:
    async def scenario() -> None:
        async with client() as c:
            job_id = await submit(c, args=[1, 2])
            r = await c.post(f"/api/jobs/{job_id}/cancel", json={"terminate": True})
            answer = r.json()
            assert (answer["id"], answer["was"], answer["state"]) == (job_id, "PENDING", "REVOKED")
            assert (answer["outcome"], answer["took_effect"], answer["terminate"]) == (
                "revoked",
                True,
                True,
            )
            assert "it will never run" in answer["message"]
            late = (await c.post(f"/api/jobs/{job_id}/cancel")).json()
            assert (late["outcome"], late["took_effect"]) == ("already_revoked", False)
            r = await c.post(f"/api/jobs/{job_id}/retry")
            assert r.json()["state"] == "PENDING"
            drain(web_app)
            assert (await c.get(f"/api/jobs/{job_id}")).json()["result"] == 3
            failing = await submit(c, "web.fail", args=["boom"])
            drain(web_app)
            failed = (await c.get(f"/api/jobs/{failing}")).json()
            assert failed["state"] == "FAILURE"
            assert "boom" in failed["error"]["message"]
            summary = (await c.get("/api/jobs", params={"state": "FAILURE"})).json()["jobs"][0]
            assert summary["error"]["message"] == failed["error"]["message"]
            assert "traceback" not in summary["error"]
            ran = {"worker": failed["worker"]}  # the worker that ran it, by id
            by_worker = (await c.get("/api/jobs", params=ran)).json()["jobs"]
            assert failing in [j["id"] for j in by_worker]
            assert (await c.get("/api/jobs", params={"worker": "nobody"})).json()["jobs"] == []
            assert (await c.post(f"/api/jobs/{failing}/retry")).json()["attempt"] == 1
            without_body = await c.post(f"/api/jobs/{failing}/cancel")
            assert without_body.json()["state"] == "REVOKED"

    run(scenario())


def test_bulk_cancel_and_retry_by_filter(client: Client) -> None:
    async def scenario() -> None:
        async with client() as c:
            media = [await submit(c, "web.media.encode", args=[str(i)]) for i in range(3)]
            other = await submit(c, args=[1, 1])
            r = await c.post("/api/jobs/cancel", json={"queues": ["media"]})
            assert r.json()["count"] == 3
            assert set(r.json()["ids"]) == set(media)
            assert (await c.get(f"/api/jobs/{other}")).json()["state"] == "PENDING"
            r = await c.post("/api/jobs/retry", json={"tasks": ["web.media.encode"]})
            assert set(r.json()["ids"]) == set(media)
            r = await c.post("/api/jobs/cancel", json={})
            assert r.status_code == 400
            assert r.json()["error"]["code"] == "no_filter"
            assert (await c.get(f"/api/jobs/{other}")).json()["state"] == "PENDING"

    run(scenario())


def test_queues_list_pause_resume_purge(client: Client) -> None:
    async def scenario() -> None:
        async with client() as c:
            for i in range(2):
                await submit(c, "web.media.encode", args=[str(i)])
            queues = {q["name"]: q for q in (await c.get("/api/queues")).json()["queues"]}
            assert {"default", "media"} <= set(queues)
            media = queues["media"]
            assert (media["depth"], media["waiting"], media["paused"]) == ({"PENDING": 2}, 2, False)
            assert media["oldest_waiting_age"] is not None
            assert set(media["windows"]) == {
                "1m",
                "5m",
                "15m",
            }
            assert (await c.post("/api/queues/media/pause")).json() == {
                "queue": "media",
                "paused": True,
                "warning": None,  # a queue the app declares
            }
            assert (await c.get("/api/queues/media")).json()["paused"] is True
            assert (await c.post("/api/queues/media/resume")).json()["paused"] is False
            assert (await c.get("/api/queues/media")).json()["paused"] is False
            assert (await c.post("/api/queues/media/purge")).json() == {
                "queue": "media",
                "purged": 2,
            }
            assert (await c.get("/api/queues/media")).json()["depth"] == {"REVOKED": 2}
            missing = await c.get("/api/queues/nowhere")
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "queue_not_found"

    run(scenario())


@pytest.fixture
def live_worker(web_app: App) -> Iterator[Worker]:
    worker = Worker(web_app, pool="thread", concurrency=2, name="api-test-worker")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert worker.started.wait(10)
    yield worker
    worker.stop(graceful=False)
    thread.join(10)


def test_workers_list_and_one(client: Client, live_worker: Worker) -> None:
    async def scenario() -> None:
        async with client() as c:
            workers = (await c.get("/api/workers")).json()["workers"]
            assert [w["name"] for w in workers] == ["api-test-worker"]
            one = (await c.get(f"/api/workers/{live_worker.id}")).json()
            assert (one["name"], one["pool"], one["concurrency"]) == (
                "api-test-worker",
                "thread",
                2,
            )
            assert "web.add" in one["tasks"]
            assert one["heartbeat_age"] >= 0
            assert (await c.get("/api/workers/api-test-worker")).json()["id"] == live_worker.id
            missing = await c.get("/api/workers/nobody")
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "worker_not_found"
            ready = (await c.get("/api/health/ready")).json()
            assert ready["workers_alive"] == 1

    run(scenario())


def test_a_submit_whose_warning_check_fails_is_still_a_201(
    client: Client, web_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job is stored before the workers are read for its warnings: a failed read must
    not answer 503, or a client retrying it would submit the job twice."""

    def down() -> list[object]:
        raise BackendError("workers unreadable")

    monkeypatch.setattr(web_app.backend, "workers", down)

    async def scenario() -> None:
        async with client() as c:
            one = await c.post("/api/jobs", json={"task": "web.add", "args": [1, 2]})
            assert (one.status_code, one.json()["warnings"]) == (201, [])
            batch = await c.post(
                "/api/jobs/batch", json={"jobs": [{"task": "web.add", "args": [1, 1]}]}
            )
            assert batch.status_code == 201

    run(scenario())
    assert sum(web_app.backend.counts().values()) == 2  # each stored once


def test_submit_warns_when_no_live_worker_consumes_the_queue(
    client: Client, live_worker: Worker
) -> None:
    async def scenario() -> None:
        async with client() as c:
            consumed = await c.post("/api/jobs", json={"task": "web.sleep", "args": [0]})
            assert (consumed.status_code, consumed.json()["warnings"]) == (201, [])
            body = {"task": "web.sleep", "args": [0], "queue": "nobody-here"}
            stray = await c.post("/api/jobs", json=body)
            assert stray.status_code == 201  # queued all the same
            (warning,) = stray.json()["warnings"]
            assert warning["code"] == "no_consumer"
            assert "'nobody-here'" in warning["message"]
            batch = await c.post(
                "/api/jobs/batch", json={"jobs": [{"task": "web.add", "args": [1, 1]}, body]}
            )
            assert [len(j["warnings"]) for j in batch.json()["jobs"]] == [0, 1]
            # doctor's check and fix, word for word
            findings = (await c.get("/api/doctor")).json()["findings"]
            (unconsumed,) = [f for f in findings if f["check"] == "queue-without-worker"]
            assert "'nobody-here'" in unconsumed["problem"]
            assert unconsumed["fix"] == warning["hint"]

    run(scenario())


def test_submit_warns_when_the_queue_is_paused(
    web_app: App, client: Client, live_worker: Worker
) -> None:
    """A paused queue holds its jobs as surely as one no worker consumes: the submit says
    so, with the resume command doctor gives (a new user got ``warnings: []``)."""
    control.pause_queue(web_app, "default")

    async def scenario() -> None:
        async with client() as c:
            paused = await c.post("/api/jobs", json={"task": "web.add", "args": [1, 2]})
            assert paused.status_code == 201  # queued all the same
            (warning,) = paused.json()["warnings"]
            assert warning["code"] == "queue_paused"
            assert "'default' is paused" in warning["message"]
            findings = (await c.get("/api/doctor")).json()["findings"]
            (doctor,) = [f for f in findings if f["check"] == "paused-queue"]
            assert doctor["fix"] == warning["hint"]

    run(scenario())
    assert web_app.backend.counts()[("default", State.PENDING)] == 1


def test_stats_and_doctor(web_app: App, client: Client) -> None:
    async def scenario() -> None:
        async with client() as c:
            await submit(c, args=[1, 1])
            await submit(c, "web.media.encode", args=["x"])
            stats = (await c.get("/api/stats")).json()
            assert (stats["total"], stats["by_state"], stats["workers"]) == (2, {"PENDING": 2}, 0)
            doctor = (await c.get("/api/doctor")).json()
            assert doctor["ok"] is False
            assert {f["check"] for f in doctor["findings"]} == {"queue-without-worker"}
            drain(web_app, ["default", "media"])
            assert (await c.get("/api/doctor")).json() == {"ok": True, "findings": []}
            assert (await c.get("/api/stats")).json()["finished_last_minute"] == 2

    run(scenario())


def test_health_live_and_ready(client: Client) -> None:
    async def scenario() -> None:
        async with client(role=None) as c:  # probes need no token
            live = await c.get("/api/health/live")
            assert (live.status_code, live.json()) == (200, {"status": "ok"})
            ready = await c.get("/api/health/ready")
            assert ready.status_code == 200
            body = ready.json()
            assert body["ready"] is True
            assert body["backend"]["reachable"] is True
            assert isinstance(body["backend"]["latency_ms"], float)

    run(scenario())


def test_ready_is_503_when_the_backend_is_unreachable() -> None:
    app = App("down", backend="redis://127.0.0.1:9/0")  # nothing listens on port 9
    api = create_api(app)

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            return await c.get("/api/health/ready")

    r = run(scenario())
    assert r.status_code == 503
    assert r.json() == {
        "ready": False,
        "backend": {"reachable": False, "latency_ms": None},
        "workers_alive": 0,
    }


def test_openapi_document_and_docs(client: Client) -> None:
    async def scenario() -> None:
        async with client(role=None) as c:
            doc = (await c.get("/api/openapi.json")).json()
            assert doc["openapi"].startswith("3.1")
            assert {"/api/jobs", "/api/jobs/{job_id}/result", "/api/queues/{name}/pause",
                    "/api/workers/{worker}", "/api/health/ready"} <= set(doc["paths"])  # fmt: skip
            post = doc["paths"]["/api/jobs"]["post"]
            assert post["security"] == [{"HTTPBearer": []}]
            assert post["responses"]["422"]["content"]["application/json"]["schema"][
                "$ref"
            ].endswith("/ErrorBody")
            docs = await c.get("/api/docs")
            assert docs.status_code == 200
            assert "swagger" in docs.text.lower()

    run(scenario())


def test_two_apps_in_one_process_do_not_see_each_other() -> None:
    first, second = (
        App("first", backend="memory://", http_tasks=["*"]),
        App("second", backend="memory://", http_tasks=["*"]),
    )
    for app in (first, second):
        app.task(name="echo")(lambda x: x)
    keys = {app.name: TokenStore(app.backend).create("t", "operate")[1] for app in (first, second)}

    async def scenario() -> None:
        clients = {
            app.name: httpx.AsyncClient(transport=httpx.ASGITransport(app=create_api(app)), base_url="http://localhost",
                                        headers={"Authorization": f"Bearer {keys[app.name]}"})
            for app in (first, second)
        }  # fmt: skip
        async with clients["first"] as a, clients["second"] as b:
            job_id = (await a.post("/api/jobs", json={"task": "echo", "args": [1]})).json()["id"]
            assert (await a.get(f"/api/jobs/{job_id}")).status_code == 200
            assert (await b.get(f"/api/jobs/{job_id}")).status_code == 404
            assert (await b.get("/api/jobs")).json()["jobs"] == []
            crossed = await b.get("/api/jobs", headers={"Authorization": f"Bearer {keys['first']}"})
            assert crossed.status_code == 401

    run(scenario())


class Thing(BaseModel):
    name: str = Field(min_length=1)


def test_router_mounted_in_a_users_service(web_app: App, tokens: dict[str, dict[str, str]]) -> None:
    service = FastAPI()

    @service.get("/")
    async def home() -> dict[str, str]:
        return {"service": "mine"}

    @service.post("/things")
    async def things(thing: Thing) -> Thing:
        return thing

    @service.post("/coupons/{code}")
    async def redeem(code: str) -> dict[str, str]:
        try:
            int(code)
        except ValueError as exc:  # a 400 of the service's own, raised from its cause
            raise HTTPException(400, f"coupon {code} is not a number") from exc
        return {"code": code}

    service.include_router(api_router(web_app), prefix="/api/queue")
    use_error_shape(service)

    async def scenario() -> None:
        # Served: the router's lifespan runs with the service's (the API's reads opened)
        async with Served(service, base_url="http://localhost", headers=tokens["operate"]) as c:
            assert (await c.get("/")).json() == {"service": "mine"}
            mine = await c.post("/things", json={"name": ""})  # the service's own route
            assert (mine.status_code, mine.json()["error"]["code"]) == (422, "validation_error")
            assert mine.json()["error"]["details"][0]["location"] == "body.name"
            assert mine.json()["error"]["hint"].endswith("the schema is at /openapi.json")
            coupon = await c.post("/coupons/abc")  # keeps its own message
            assert (coupon.status_code, coupon.json()["error"]["message"]) == (
                400,
                "coupon abc is not a number",
            )
            nowhere = await c.get("/nowhere")
            assert nowhere.json()["error"] == {"code": "not_found", "message": "Not Found",
                                               "hint": "see the API's routes at /docs"}  # fmt: skip
            r = await c.post("/api/queue/jobs", json={"task": "web.add", "args": [1, 2]})
            assert r.status_code == 201
            assert r.json()["url"].startswith("http://localhost/api/queue/jobs/")
            assert (await c.get(r.json()["url"])).json()["state"] == "PENDING"
            bad = await c.post("/api/queue/jobs", json={"task": "web.add", "args": "x"})
            assert bad.status_code == 422
            assert bad.json()["error"]["code"] == "validation_error"
            assert (
                await c.get("/api/queue/jobs", headers={"Authorization": ""})
            ).status_code == 401

    run(scenario())


def test_waiting_clients_hold_no_threads() -> None:
    """Many long polls at once on a 2-thread pool: they wait on the loop, not on threads."""
    app = App("pool", backend="memory://", aio_threads=2, http_tasks=["*"])
    app.task(name="echo")(lambda x: x)
    api = create_api(app, auth="off")
    looks: collections.Counter[asyncio.Task[Any] | None] = collections.Counter()
    record = app.aio.record

    async def counted(job_id: str) -> JobRecord:  # each request's looks at the job
        looks[asyncio.current_task()] += 1
        return await record(job_id)

    app.aio.record = counted  # type: ignore[method-assign]

    async def all_waiting(waits: list[asyncio.Task[Any]]) -> None:
        # every poll looked twice: it found the job unfinished, slept, and looks on
        while not all(looks[w] >= 2 for w in waits):
            await asyncio.sleep(0.01)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            job_id = (await c.post("/api/jobs", json={"task": "echo", "args": [7]})).json()["id"]
            waits = [
                asyncio.create_task(c.get(f"/api/jobs/{job_id}/result", params={"timeout": 20}))
                for _ in range(20)
            ]
            await asyncio.wait_for(all_waiting(waits), 10)
            r = await asyncio.wait_for(c.get("/api/queues"), 5)  # the pool is not tied up
            assert not any(w.done() for w in waits)  # answered while all 20 were waiting
            assert r.status_code == 200
            await asyncio.to_thread(drain, app)
            results = await asyncio.gather(*waits)
            assert {r.json()["result"] for r in results} == {7}

    run(scenario())


def test_a_jobs_attempts_name_the_worker_and_say_a_lost_one_lost(
    web_app: App, client: Client
) -> None:
    """On every backend (each writes its rescue in its own script, with no message)."""
    job = web_app.send_task("web.add", (1, 2))
    info = WorkerInfo(id="w-lost", name="default@vm:20138", host="vm", pid=20138,
                      queues=["default"], pool="process", concurrency=1, version="t",
                      tasks=["web.add"], started_at=web_app.backend.now())  # fmt: skip
    web_app.backend.heartbeat(info, [], 30)
    web_app.backend.claim(["default"], info.id, 1, 0.3)
    # the lease runs out (by the backend's clock: the server's on Redis and PostgreSQL)
    wait_for(lambda: web_app.backend.rescue_expired() == [job.id], 10, "the lease to expire")
    web_app.backend.claim(["default"], info.id, 1, 30)

    async def scenario() -> dict[str, Any]:
        async with client(role="read") as c:
            return dict((await c.get(f"/api/jobs/{job.id}")).json())

    shown = asyncio.run(scenario())
    assert (shown["worker"], shown["worker_name"]) == ("w-lost", "default@vm:20138")
    (lost, running) = shown["attempts"]  # the attempt running now is listed too
    assert (lost["lost"], lost["worker_name"], lost["state"], lost["running"]) == (
        True,
        "default@vm:20138",
        "PENDING",
        False,
    )
    assert running == {"attempt": 2, "worker": "w-lost", "worker_name": "default@vm:20138",
                       "started_at": shown["started_at"], "finished_at": None,
                       "state": "STARTED", "error": None, "lost": False, "running": True}  # fmt: skip
    assert lost["error"]["message"].startswith(
        "lost: worker default@vm:20138 stopped renewing its lease"
    )


def test_priority_names_are_taken_in_any_case_and_a_wrong_one_lists_the_accepted(
    web_app: App, client: Client
) -> None:
    """As enqueue and the CLI take them: "HIGH" is "high", over HTTP too."""
    assert web_app.send_task("web.add", (1, 2), priority="Critical").record().priority == 9

    async def scenario() -> None:
        async with client() as c:
            one = await submit(c, args=[1, 2], priority="HIGH")
            r = await c.post("/api/jobs/batch", json={"jobs": [
                {"task": "web.add", "args": [1, 2], "priority": "Low"},
                {"task": "web.add", "args": [1, 2], "priority": "NORMAL"},
            ]})  # fmt: skip
            assert r.status_code == 201, r.text
            ids = [one, *(j["id"] for j in r.json()["jobs"])]
            got = [(await c.get(f"/api/jobs/{i}")).json()["priority"] for i in ids]
            assert got == [7, 0, 5]
            wrong = await c.post("/api/jobs", json={"task": "web.add", "priority": "URGENT"})
            assert wrong.status_code == 422
            (detail,) = wrong.json()["error"]["details"]
            assert detail["location"] == "body.priority"
            for accepted in ("0 to 9", '"low"', '"normal"', '"high"', '"critical"', "any case"):
                assert accepted in detail["message"], detail

    run(scenario())


def test_a_hurried_stop_of_the_server_logs_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """A second Ctrl-C while the server stops: uvicorn skipped the app's shutdown, whose
    task was cancelled as the loop closed and logged as an error with a traceback."""
    caplog.set_level(logging.INFO)
    service = WebService(create_api(App("hurried", backend="memory://")), port=free_port())
    thread = threading.Thread(target=service.run)
    thread.start()
    assert service.ready.wait(20)
    service.stop(graceful=True)
    service.stop(graceful=False)  # at once: before the graceful stop reached the app's shutdown
    thread.join(20)
    assert not thread.is_alive()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "Application shutdown complete." in caplog.text
