"""examples/video2doc end to end: its FastAPI service under a real uvicorn process and a
real worker process on its five queues; both workflows and the mounted API over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor import App
from conveyor.testing import wait_for
from conveyor.web import TokenStore

from ..conftest import ROOT, backend_url, discard
from .test_processes import answers, free_port

pytestmark = pytest.mark.slow
EXAMPLE = ROOT / "examples" / "video2doc"
QUEUES = ["audio", "export", "image", "summary", "video"]


@pytest.fixture(params=["sqlite", "redis"])  # PostgreSQL: the same code as Redis here
def example_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = backend_url(request.param, tmp_path)
    yield url
    discard(url)


@pytest.fixture
def start(tmp_path: Path, example_url: str) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Run a command in the example's folder, as its README says, on this test's store."""
    procs: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "CONVEYOR_BACKEND": example_url, "VIDEO2DOC_STEP": "0.02"}

    def run(*argv: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"example-{len(procs)}.log", "wb") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", *argv], cwd=EXAMPLE, env=env,
                                          stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
        return procs[-1]

    yield run
    for proc in procs:
        proc.kill()
        proc.wait()


def until(c: httpx.Client, path: str, check: Callable[[Any], bool], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not check(body := c.get(path).json()):
        assert time.monotonic() < deadline, f"timed out waiting on {path}: {body}"
        time.sleep(0.05)
    return body


def test_video2doc_runs_both_workflows_and_serves_the_api(
    start: Callable[..., subprocess.Popen[bytes]], example_url: str
) -> None:
    _, secret = TokenStore(App("tokens", backend=example_url).backend).create("test", "operate")
    port = free_port()
    start("uvicorn", "service:service", "--host", "127.0.0.1", "--port", str(port))
    start(
        "conveyor", "-A", "tasks:app", "worker", "-Q", ",".join(QUEUES), "-P", "thread", "-c", "4"
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(f"{base}/api/queue/health/live"), 30, "the service to listen")
    bearer = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=base, headers=bearer, timeout=30) as c:
        until(c, "/api/queue/workers", lambda b: len(b["workers"]) == 1)
        # The service's own endpoints refuse in the API's one error shape.
        anonymous = httpx.post(f"{base}/documents/complete", json={"video_url": "x.mp4"})
        assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthorized")
        invalid = c.post("/documents/complete", json={"video_url": "", "format": "doc"})
        assert (invalid.status_code, invalid.json()["error"]["code"]) == (422, "validation_error")
        assert {p["location"] for p in invalid.json()["error"]["details"]} == {
            "body.video_url",
            "body.format",
        }
        assert "/openapi.json" in invalid.json()["error"]["hint"]
        unknown = c.post("/documents/sideways", json={"video_url": "x.mp4"})
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (422, "validation_error")
        started = {}
        for mode in ("complete", "parallel"):
            r = c.post(f"/documents/{mode}", json={"video_url": "https://cdn.example/talk.mp4"})
            assert r.status_code == 201, r.text
            started[mode] = r.json()["status_url"]
        done = {mode: until(c, url, lambda b: b["state"] in ("SUCCESS", "FAILURE"))
                for mode, url in started.items()}  # fmt: skip
        assert done["complete"]["result"] == {
            "format": "md", "document": "# Document\n\nsummary of transcript of talk.wav\n"
        }  # fmt: skip
        parallel = done["parallel"]
        assert parallel["state"] == "SUCCESS"
        assert "summary of caption of talk-0.jpg" in parallel["result"]["document"]
        assert [node["kind"] for node in parallel["root"]["nodes"]] == ["task", "chord", "task"]

        # The mounted API, as the service documents it.
        job = c.post("/api/queue/jobs", json={"task": "video2doc.audio.transcribe",
                                               "args": [{"audio": "a.wav"}]}).json()  # fmt: skip
        outcome = c.get(f"/api/queue/jobs/{job['id']}/result", params={"timeout": 20}).json()
        assert (outcome["state"], outcome["result"]) == ("SUCCESS", "transcript of a.wav")
        # The service's own status endpoint (docs/api.md, "Your own status endpoint").
        assert c.get(f"/documents/steps/{job['id']}").json() == {
            "state": "SUCCESS", "percent": None, "message": None, "meta": {},
            "result": "transcript of a.wav", "error": None,
        }  # fmt: skip
        missing = c.get("/documents/steps/01a2349e-0000-7000-8000-000000000000")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
        queues = c.get("/api/queue/queues").json()["queues"]
        assert {q["name"] for q in queues} >= set(QUEUES)
        by_task = c.get("/api/queue/jobs", params={"task": "video2doc.export.render"}).json()
        assert len(by_task["jobs"]) == 2
        assert {j["queue"] for j in by_task["jobs"]} == {"export"}
        paths = c.get("/openapi.json").json()["paths"]
        assert {
            "/documents/{mode}",
            "/api/queue/jobs",
            "/api/queue/workflows",
            "/api/queue/audit",
        } <= set(paths)
        assert c.get("/api/queue/health/ready").json()["workers_alive"] == 1
