"""The API with real worker subprocesses (jobs run, fail, are cancelled while running,
queues pause), and ``conveyor serve`` as a real process, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor import App
from conveyor.backends import from_url
from conveyor.loader import load_app
from conveyor.testing import drain, use_backend, wait_for
from conveyor.web import TokenStore, create_api

from ..services import drop_schema, postgres_base_url
from .conftest import run

pytestmark = pytest.mark.slow
Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def api_app(shared_url: str) -> Iterator[App]:
    app = load_app("tests.web.tasks:app")
    with use_backend(app, shared_url):
        yield app
    app.aio.close()


@pytest.fixture
def spawn_worker(shared_url: str, conveyor_proc: Spawn) -> Spawn:
    def spawn(*args: str) -> subprocess.Popen[bytes]:
        return conveyor_proc("-A", "tests.web.tasks:app", "worker", "-l", "info", *args,
                             env={"CONVEYOR_BACKEND": shared_url})  # fmt: skip

    return spawn


def client(app: App) -> httpx.AsyncClient:
    _, secret = TokenStore(app.backend).create("tests", "operate")
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_api(app)), base_url="http://localhost",
        headers={"Authorization": f"Bearer {secret}"}, timeout=30,
    )  # fmt: skip


async def until(
    c: httpx.AsyncClient, path: str, check: Callable[[Any], bool], timeout: float = 20
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        body = (await c.get(path)).json()
        if check(body):
            return body
        assert time.monotonic() < deadline, f"timed out waiting on {path}: {body}"
        await asyncio.sleep(0.05)


async def submit(c: httpx.AsyncClient, task: str, *args: Any) -> str:
    r = await c.post("/api/jobs", json={"task": task, "args": list(args)})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def result(c: httpx.AsyncClient, job_id: str) -> Any:
    return (await c.get(f"/api/jobs/{job_id}/result", params={"timeout": 20})).json()


def test_run_fail_retry_and_terminate_with_a_real_worker(
    api_app: App, spawn_worker: Spawn, tmp_path: Path
) -> None:
    spawn_worker("-P", "process", "-c", "2")
    flag = tmp_path / "flag"

    async def scenario() -> None:
        async with client(api_app) as c:
            await until(c, "/api/workers", lambda b: len(b["workers"]) == 1)
            done = await result(c, await submit(c, "web.add", 20, 22))
            assert (done["state"], done["result"]) == ("SUCCESS", 42)

            failing = await submit(c, "web.fail_until", str(flag))
            assert (await result(c, failing))["state"] == "FAILURE"
            flag.write_text("fixed")
            retried = await c.post(f"/api/jobs/{failing}/retry")
            assert retried.json()["state"] == "PENDING"
            again = await result(c, failing)
            assert (again["state"], again["result"]) == ("SUCCESS", "fixed")
            history = (await c.get(f"/api/jobs/{failing}")).json()["attempts"]
            assert [a["state"] for a in history] == ["FAILURE", "REQUEUED", "SUCCESS"]

            sleeper = await submit(c, "web.sleep", 30)
            running = await until(c, f"/api/jobs/{sleeper}", lambda b: b["state"] == "STARTED")
            (now,) = running["attempts"]  # the attempt running now, before it ends
            assert (now["attempt"], now["state"], now["running"], now["finished_at"]) == (
                1, "STARTED", True, None)  # fmt: skip
            assert (now["worker"], now["started_at"]) == (running["worker"], running["started_at"])
            assert now["worker_name"]  # the name the worker registered (host:pid here)
            started = time.monotonic()
            cancel = await c.post(f"/api/jobs/{sleeper}/cancel", json={"terminate": True})
            assert cancel.status_code == 200
            ended = await result(c, sleeper)
            assert ended["state"] == "REVOKED"
            (then,) = (await c.get(f"/api/jobs/{sleeper}")).json()["attempts"]
            assert (then["state"], then["running"]) == ("REVOKED", False)
            assert time.monotonic() - started < 10  # stopped, not left to sleep its 30 s

    run(scenario())


def test_pause_stops_claims_and_resume_restarts_them(api_app: App, spawn_worker: Spawn) -> None:
    spawn_worker("-P", "thread", "-c", "2")

    async def scenario() -> None:
        async with client(api_app) as c:
            await until(c, "/api/workers", lambda b: len(b["workers"]) == 1)
            assert (await c.post("/api/queues/default/pause")).json()["paused"] is True
            held = await submit(c, "web.add", 1, 1)
            # The worker claims from another queue meanwhile, so it is not merely idle:
            assert (await result(c, await submit(c, "web.media.encode", "a")))["state"] == "SUCCESS"
            waited = (await c.get(f"/api/jobs/{held}/result", params={"timeout": 1})).json()
            assert (waited["state"], waited["done"]) == ("PENDING", False)
            assert (await c.post("/api/queues/default/resume")).json()["paused"] is False
            assert (await result(c, held))["result"] == 2

    run(scenario())


def test_100_concurrent_submissions_none_lost(api_app: App, spawn_worker: Spawn) -> None:
    spawn_worker("-P", "thread", "-c", "8")

    async def scenario() -> None:
        async with client(api_app) as c:
            ids = await asyncio.gather(*(submit(c, "web.add", i, i) for i in range(100)))
            assert len(set(ids)) == 100
            outcomes = await asyncio.gather(*(result(c, job_id) for job_id in ids))
            assert [o["result"] for o in outcomes] == [2 * i for i in range(100)]
            listed = (await c.get("/api/jobs", params={"limit": 500, "state": "SUCCESS"})).json()
            assert {j["id"] for j in listed["jobs"]} == set(ids)

    run(scenario())


def test_a_job_whose_worker_is_killed_recovers_on_a_new_worker(
    api_app: App, spawn_worker: Spawn
) -> None:
    """SIGKILL the worker holding a job (no goodbye, no release), start another: the
    lease runs out, the job is delivered again and succeeds; the stream saw both workers."""
    first = spawn_worker("-P", "thread", "-c", "1")

    async def scenario() -> None:
        async with client(api_app) as c:
            one = (await until(c, "/api/workers", lambda b: len(b["workers"]) == 1))["workers"][0]
            job = await submit(c, "web.sleep", 1.0)
            held = await until(c, f"/api/jobs/{job}", lambda b: b["state"] == "STARTED")
            assert held["worker"] == one["id"]
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
            spawn_worker("-P", "thread", "-c", "1")
            done = await result(c, job)
            assert (done["state"], done["result"]) == ("SUCCESS", 1.0)
            record = (await c.get(f"/api/jobs/{job}")).json()
            assert record["lost_leases"] == 1
            assert record["worker"] != one["id"]
            feed = await c.get("/api/events", params={"after": 0, "timeout": 0.5})  # a fresh store
            online = [line for line in feed.text.splitlines() if line == "event: worker.online"]
            assert len(online) == 2

    run(scenario())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'serve.db'}"


def serve(conveyor_proc: Spawn, url: str, *args: str) -> subprocess.Popen[bytes]:
    return conveyor_proc("-A", "tests.web.tasks:app", "serve", *args, env={"CONVEYOR_BACKEND": url})


def answers(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=1)
    except httpx.TransportError:
        return None


def test_serve_answers_and_stops_on_sigterm(conveyor_proc: Spawn, sqlite_url: str) -> None:
    port = free_port()
    proc = serve(conveyor_proc, sqlite_url, "--port", str(port))
    base = f"http://127.0.0.1:{port}/api"
    live = wait_for(lambda: answers(f"{base}/health/live"), 20, "the server to listen")
    assert live.json() == {"status": "ok"}
    # Loopback and no token stored: open to this machine until a token exists.
    assert httpx.get(f"{base}/queues").status_code == 200
    TokenStore(App("tokens", backend=sqlite_url).backend).create("ci", "read")
    assert httpx.get(f"{base}/queues").status_code == 401
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert answers(f"{base}/health/live") is None


def test_serve_refuses_a_public_address_without_a_token(
    conveyor_proc: Spawn, sqlite_url: str
) -> None:
    proc = serve(conveyor_proc, sqlite_url, "--host", "0.0.0.0", "--port", str(free_port()))
    assert proc.wait(20) != 0
    log = proc.log_path.read_text()  # type: ignore[attr-defined]
    assert "refusing to serve the API on 0.0.0.0" in log
    assert "tokens create --role operate" in log


def test_serve_on_a_public_address_with_a_token_requires_it(
    conveyor_proc: Spawn, sqlite_url: str
) -> None:
    _, secret = TokenStore(App("tokens", backend=sqlite_url).backend).create("ci", "read")
    port = free_port()
    serve(conveyor_proc, sqlite_url, "--host", "0.0.0.0", "--port", str(port))
    base = f"http://127.0.0.1:{port}/api"
    wait_for(lambda: answers(f"{base}/health/live"), 20, "the server to listen")
    assert httpx.get(f"{base}/queues").status_code == 401
    assert (
        httpx.get(f"{base}/queues", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 200
    )


def test_serve_refuses_a_body_not_sent_as_json(conveyor_proc: Spawn, sqlite_url: str) -> None:
    """``curl -d '{...}'`` alone sends a form's Content-Type: a 415 that names the header
    to send, and nothing queued; with the header, the same body is a job."""
    port = free_port()
    serve(conveyor_proc, sqlite_url, "--port", str(port))
    base = f"http://127.0.0.1:{port}/api"
    wait_for(lambda: answers(f"{base}/health/live"), 20, "the server to listen")
    body = b'{"task": "web.add", "args": [1, 2]}'
    as_form = {"content-type": "application/x-www-form-urlencoded"}  # what curl -d sends
    for headers in (as_form, {}):
        refused = httpx.post(f"{base}/jobs", content=body, headers=headers)
        assert refused.status_code == 415
        error = refused.json()["error"]
        assert error["code"] == "unsupported_media_type"
        assert "Content-Type: application/json" in error["hint"]
    assert httpx.get(f"{base}/jobs").json()["jobs"] == []
    sent = httpx.post(f"{base}/jobs", content=body, headers={"content-type": "application/json"})
    assert sent.status_code == 201


def test_serve_refuses_a_job_that_would_expire_before_it_could_run(
    conveyor_proc: Spawn, sqlite_url: str
) -> None:
    """An expires shorter than the countdown (seconds count from submission) is a 422
    naming both times, alone or in a batch, and nothing is queued."""
    port = free_port()
    serve(conveyor_proc, sqlite_url, "--port", str(port))
    base = f"http://127.0.0.1:{port}/api"
    wait_for(lambda: answers(f"{base}/health/live"), 20, "the server to listen")
    never = {"task": "web.add", "args": [1, 2], "countdown": 60, "expires": 30}
    for path, body in (
        ("jobs", never),
        ("jobs/batch", {"jobs": [{"task": "web.add", "args": [1, 2]}, never]}),
    ):
        refused = httpx.post(f"{base}/{path}", json=body)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "expires_before_run"
        assert "expires=30 s (counted from enqueue: " in error["message"]
        assert "is not after the job's run time" in error["message"]
        assert "counts from submission, not from the countdown" in error["hint"]
    assert httpx.get(f"{base}/jobs").json()["jobs"] == []
    sent = httpx.post(f"{base}/jobs", json={**never, "expires": 90})
    assert sent.status_code == 201, sent.text


def test_serve_names_the_job_and_argument_that_do_not_fit_their_task(
    conveyor_proc: Spawn, sqlite_url: str
) -> None:
    """A batch whose job 2 misses an argument, a value of the wrong kind for a parameter
    annotated ``float``: 422s whose details name the field (``jobs.2.kwargs.b``), as the
    body's own validation errors do, and nothing is queued; an int for a float is fine."""
    port = free_port()
    serve(conveyor_proc, sqlite_url, "--port", str(port))
    base = f"http://127.0.0.1:{port}/api"
    wait_for(lambda: answers(f"{base}/health/live"), 20, "the server to listen")
    add = {"task": "web.add", "args": [1, 2]}
    for path, body, field, said in (
        ("jobs/batch", {"jobs": [add, add, {"task": "web.add", "kwargs": {"a": 1}}]},
         "jobs.2.kwargs.b", "job 2 of the batch (from 0; task 'web.add'): task 'web.add' "
         "takes (a, b); missing a required argument: 'b' (nothing was queued)"),
        ("jobs", {"task": "web.sleep", "kwargs": {"seconds": "fast"}}, "kwargs.seconds",
         "task 'web.sleep': argument 'seconds' (float) takes a number, not str 'fast'"),
        ("jobs/batch", {"jobs": [add, {"task": "web.add", "args": [1, "2"]}]}, "jobs.1.args.1",
         "argument 'b' (int) takes an integer, not str '2'"),
    ):  # fmt: skip
        refused = httpx.post(f"{base}/{path}", json=body)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "invalid_arguments"
        assert said in error["message"]
        assert error["details"] == [
            {"location": f"body.{field}", "field": field, "message": error["message"]}
        ]
    assert httpx.get(f"{base}/jobs").json()["jobs"] == []
    sent = httpx.post(f"{base}/jobs", json={"task": "web.sleep", "kwargs": {"seconds": 0}})
    assert sent.status_code == 201, sent.text


def test_serve_says_when_it_creates_the_store_of_a_schema_that_had_none(
    conveyor_proc: Spawn,
) -> None:
    """A mistyped ``?schema=`` serves an empty dashboard: the banner says there was no
    store there, and names the schemas that hold one."""
    base, tag = postgres_base_url(), uuid.uuid4().hex[:10]
    real, typo = f"t_real_{tag}", f"t_typo_{tag}"
    App("real", backend=f"{base}?schema={real}").send_task("web.add", (1, 2))
    try:
        port = free_port()
        proc = serve(conveyor_proc, f"{base}?schema={typo}", "--port", str(port))
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/api/health/live"), 20, "the server")
        log = " ".join(proc.log_path.read_text().split())  # type: ignore[attr-defined]
        assert f"new store no Conveyor store in schema '{typo}' of {base}" in log
        assert f"'{real}'" in log
        assert "serving created an empty one" in log
    finally:
        for name in (real, typo):
            drop_schema(f"{base}?schema={name}")


def test_a_job_read_over_http_says_what_became_of_its_revoke(
    conveyor_proc: Spawn, sqlite_url: str
) -> None:
    """``revoke_note``, as the dashboard and the Django admin show it: a cancel that came
    after the job ended is said to be too late; a job never cancelled has none (null)."""
    port = free_port()
    serve(conveyor_proc, sqlite_url, "--port", str(port))
    base = f"http://127.0.0.1:{port}/api"
    wait_for(lambda: answers(f"{base}/health/live"), 20, "the server to listen")
    late, kept = (
        httpx.post(f"{base}/jobs", json={"task": "web.add", "args": [1, i]}).json()["id"]
        for i in range(2)
    )
    app = load_app("tests.web.tasks:app")
    with use_backend(app, from_url(sqlite_url)):
        assert drain(app, ["default"]) == {"SUCCESS": 2}
    cancelled = httpx.post(f"{base}/jobs/{late}/cancel", json={})
    assert cancelled.json()["outcome"] == "too_late"
    body = httpx.get(f"{base}/jobs/{late}").json()
    assert body["state"] == "SUCCESS"
    assert body["revoke_note"].startswith("too late: the job had already finished SUCCESS at ")
    body = httpx.get(f"{base}/jobs/{kept}").json()
    assert body["revoke_note"] is None  # present, and null
    schema = httpx.get(f"{base}/openapi.json").json()["components"]["schemas"]["JobDetail"]
    assert "revoke_note" in schema["properties"]
