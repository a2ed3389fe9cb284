"""Workflows from JSON: chains, groups and chords of exposed tasks; status node by node."""

from __future__ import annotations

from typing import Any

from conveyor import App
from conveyor.testing import drain

from .conftest import Client, run


def add(*args: int) -> dict[str, Any]:
    return {"task": "web.add", "args": list(args)}


def test_chain_with_a_chord_runs_and_reports_every_node(web_app: App, client: Client) -> None:
    spec = {"chain": [
        {"chord": [add(1, 1), add(2, 2)], "callback": {"task": "web.total"}},  # [2, 4] -> 6
        add(10),  # 6 + 10
    ]}  # fmt: skip

    async def scenario() -> None:
        async with client() as c:
            r = await c.post("/api/workflows", json=spec)
            assert r.status_code == 201, r.text
            started = r.json()
            assert len(started["jobs"]) == 4
            status = (await c.get(started["url"])).json()
            assert status["state"] == "PENDING"
            root = status["root"]
            assert root["kind"] == "chain"
            chord_node, last = root["nodes"]
            assert chord_node["kind"] == "chord"
            members, callback = chord_node["nodes"]
            assert [n["state"] for n in members["nodes"]] == ["PENDING", "PENDING"]
            assert (callback["task"], callback["state"], last["state"]) == ("web.total", None, None)
            drain(web_app)
            done = (await c.get(f"/api/workflows/{started['id']}")).json()
            assert (done["state"], done["result"]) == ("SUCCESS", 16)
            members, callback = done["root"]["nodes"][0]["nodes"]
            assert [n["result"] for n in members["nodes"]] == [2, 4]
            assert (callback["result"], done["root"]["nodes"][1]["result"]) == (6, 16)

    run(scenario())


def test_group_result_and_immutable_steps(web_app: App, client: Client) -> None:
    async def scenario() -> None:
        async with client() as c:
            group = (await c.post("/api/workflows", json={"group": [add(1, 2), add(3, 4)]})).json()
            chained = {"chain": [add(1, 1), {**add(5, 5), "immutable": True}]}
            chain = (await c.post("/api/workflows", json=chained)).json()
            drain(web_app)
            assert (await c.get(group["url"])).json()["result"] == [3, 7]
            assert (await c.get(chain["url"])).json()["result"] == 10  # not given the 2

    run(scenario())


def test_workflow_mistakes(web_app: App, client: Client) -> None:
    async def scenario() -> None:
        async with client() as c:
            hidden = {"chain": [add(1, 1), {"group": [add(1), {"task": "internal.secret"}]}]}
            r = await c.post("/api/workflows", json=hidden)
            assert (r.status_code, r.json()["error"]["code"]) == (400, "unknown_task")
            assert web_app.backend.list_jobs() == []  # checked before anything was stored
            for bad in (
                {"task": "web.add"},
                {"chain": []},
                {"chord": [add(1)]},
                {"group": [add(1)], "x": 1},
            ):
                r = await c.post("/api/workflows", json=bad)
                assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error"), bad
            big = {"group": [{"group": [add(1, 1)] * 600}, {"group": [add(1, 1)] * 600}]}
            r = await c.post("/api/workflows", json=big)
            assert (r.status_code, r.json()["error"]["code"]) == (400, "workflow_too_large")
            missing = await c.get("/api/workflows/nope")
            assert (missing.status_code, missing.json()["error"]["code"]) == (404, "job_not_found")

    run(scenario())
