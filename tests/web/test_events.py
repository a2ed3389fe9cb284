"""The server-sent events stream: job state changes and progress (and workers come and
gone) from the backend's feed, filtered, resumable with Last-Event-ID, starting from now
by default."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from conveyor import App
from conveyor.testing import drain

from .conftest import Client, run


def parse(text: str) -> list[dict[str, Any]]:
    """The events in an SSE body (keep-alive comments dropped)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if fields:
            events.append(
                {
                    "id": fields.get("id"),
                    "event": fields.get("event"),
                    "data": json.loads(fields["data"]),
                }
            )
    return events


async def stream(c: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    headers = (
        {"Last-Event-ID": str(params.pop("last_event_id"))} if "last_event_id" in params else {}
    )
    r = await c.get("/api/events", params=params, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    return parse(r.text)


def test_history_filters_and_resume(web_app: App, client: Client) -> None:
    async def scenario() -> None:
        async with client(role="read") as reader, client() as c:
            add = (await c.post("/api/jobs", json={"task": "web.add", "args": [1, 2]})).json()["id"]
            progress = (await c.post("/api/jobs", json={"task": "web.progress"})).json()["id"]
            drain(web_app)
            everything = await stream(reader, after=0, limit=9, timeout=5)  # with the worker's 2
            assert {e["event"] for e in everything} - {"job.state", "job.progress"} == {
                "worker.online",
                "worker.offline",
            }
            events = [e for e in everything if e["event"].startswith("job.")]
            assert len(events) == 7
            assert [int(e["id"]) for e in events] == sorted(int(e["id"]) for e in events)
            assert [e["data"]["state"] for e in events if e["data"]["job_id"] == add] == [
                "PENDING",
                "STARTED",
                "SUCCESS",
            ]
            mine = [
                (e["event"], e["data"]["state"]) for e in events if e["data"]["job_id"] == progress
            ]
            assert mine == [("job.state", "PENDING"), ("job.state", "STARTED"), ("job.progress", "STARTED"),
                            ("job.state", "SUCCESS")]  # fmt: skip
            resumed = await stream(reader, last_event_id=everything[2]["id"], limit=6, timeout=5)
            assert [e["id"] for e in resumed] == [e["id"] for e in everything[3:]]
            only = await stream(reader, after=0, job=add, timeout=0.5)
            assert {e["data"]["job_id"] for e in only} == {add}
            assert len(only) == 3
            elsewhere = await stream(reader, after=0, queue="media", timeout=0.3)
            assert elsewhere == []

    run(scenario())


def test_starts_from_now_and_delivers_what_happens_next(client: Client) -> None:
    async def scenario() -> None:
        async with client() as c:
            await c.post("/api/jobs", json={"task": "web.add", "args": [1, 1]})  # history: not sent
            listening = asyncio.create_task(stream(c, limit=1, timeout=10))
            # Submit until the stream has delivered: however late it found the feed's end,
            # what it sends is one of these, never the job queued before it started.
            sent: list[str] = []
            while not listening.done() and len(sent) < 200:
                r = await c.post("/api/jobs", json={"task": "web.add", "args": [2, 2]})
                sent.append(r.json()["id"])
                await asyncio.wait({listening}, timeout=0.05)
            events = await listening
            assert [(e["data"]["job_id"] in sent, e["data"]["state"]) for e in events] == [
                (True, "PENDING")
            ]

    run(scenario())


def test_bad_last_event_id_is_a_422(client: Client) -> None:
    async def scenario() -> httpx.Response:
        async with client() as c:
            return await c.get("/api/events", headers={"Last-Event-ID": "yesterday"})

    r = run(scenario())
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"
