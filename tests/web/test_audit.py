"""The audit trail over HTTP (who changed what, when, how it ended) and the queue events
the stream carries beside job events."""

from __future__ import annotations

import json

from click.testing import CliRunner

from conveyor import App
from conveyor.cli import cli

from .conftest import Client, run
from .test_events import stream


def test_changes_are_audited_and_queue_changes_streamed(web_app: App, client: Client) -> None:
    async def scenario() -> None:
        async with client(role="read") as reader, client() as c, client(role=None) as anonymous:
            job = (await c.post("/api/jobs", json={"task": "web.add", "args": [1, 2]})).json()["id"]
            operator = (await c.get("/api/audit")).request.headers["authorization"].split("_")[1]
            submitted = (await reader.get(f"/api/jobs/{job}")).json()["headers"]
            assert submitted == {"submitted_by": f"test-operate ({operator})"}
            for action in ("pause", "resume", "purge"):
                assert (await c.post(f"/api/queues/media/{action}")).status_code == 200
            assert (await c.post("/api/jobs/nope/cancel")).status_code == 404
            # what the cancel did, not just its route: a terminate says so
            stop = await c.post(f"/api/jobs/{job}/cancel", json={"terminate": True})
            assert stop.status_code == 200
            assert (await reader.post("/api/queues/media/pause")).status_code == 403
            assert (await anonymous.post("/api/queues/media/pause")).status_code == 401

            entries = (await reader.get("/api/audit")).json()["entries"]
            assert [
                (e["actor"], e["action"], e["target"], e["outcome"], e["status"]) for e in entries
            ] == [
                ("test-read", "POST /queues/{name}/pause", "media", "forbidden", 403),
                ("test-operate", "POST /jobs/{job_id}/cancel (terminate)", job, "ok", 200),
                (
                    "test-operate",
                    "POST /jobs/{job_id}/cancel (cancel)",
                    "nope",
                    "job_not_found",
                    404,
                ),
                ("test-operate", "POST /queues/{name}/purge", "media", "ok", 200),
                ("test-operate", "POST /queues/{name}/resume", "media", "ok", 200),
                ("test-operate", "POST /queues/{name}/pause", "media", "ok", 200),
            ]  # fmt: skip (no 401: nobody to name; the submit is on the job)
            assert entries[5]["actor_id"] == operator
            assert entries[5]["detail"] == {"params": {"name": "media"}}
            assert entries[1]["detail"] == {"params": {"job_id": job}, "did": "terminate"}
            page = (await reader.get("/api/audit", params={"target": "media", "limit": 2})).json()
            assert [e["seq"] for e in page["entries"]] == [entries[0]["seq"], entries[3]["seq"]]
            rest = await reader.get(
                "/api/audit", params={"target": "media", "before": page["next_cursor"]}
            )
            assert [e["seq"] for e in rest.json()["entries"]] == [
                entries[4]["seq"],
                entries[5]["seq"],
            ]
            assert rest.json()["next_cursor"] is None

            events = [
                e
                for e in await stream(reader, after=0, timeout=0.5)
                if e["event"].startswith("queue.")
            ]
            assert [e["event"] for e in events] == ["queue.paused", "queue.resumed", "queue.purged"]
            assert events[0]["data"] == {"seq": int(events[0]["id"]), "time": events[0]["data"]["time"],
                                         "kind": "queue.paused", "job_id": None, "queue": "media",
                                         "task": None, "state": None, "worker": None}  # fmt: skip

    run(scenario())
    cli_run = CliRunner().invoke(
        cli, ["-A", "tests.web.tasks:app", "audit", "--target", "media", "--json"]
    )
    assert cli_run.exit_code == 0, cli_run.output
    assert [(e["actor"], e["outcome"]) for e in json.loads(cli_run.stdout)] == [
        ("test-read", "forbidden"), ("test-operate", "ok"), ("test-operate", "ok"), ("test-operate", "ok")
    ]  # fmt: skip


def test_a_submit_refused_for_the_role_is_audited(web_app: App, client: Client) -> None:
    """A submit is recorded on the job it stores; one refused for the token's role stores
    no job, and was recorded nowhere (a new user's read token: 403, no trace)."""

    async def scenario() -> None:
        async with client(role="read") as reader:
            one = await reader.post("/api/jobs", json={"task": "web.add", "args": [1, 2]})
            batch = await reader.post(
                "/api/jobs/batch", json={"jobs": [{"task": "web.add", "args": [1, 1]}]}
            )
            assert (one.status_code, batch.status_code) == (403, 403)
            entries = (await reader.get("/api/audit")).json()["entries"]
            assert [(e["actor"], e["action"], e["outcome"]) for e in entries] == [
                ("test-read", "POST /jobs/batch", "forbidden"),
                ("test-read", "POST /jobs", "forbidden"),
            ]

    run(scenario())
    assert sum(web_app.backend.counts().values()) == 0
