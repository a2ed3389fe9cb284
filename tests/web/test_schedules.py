"""Schedules over HTTP: list, create, edit, pause, resume, delete, run now; changes
need the admin role."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from conveyor import App

from .conftest import Client, run


def test_schedule_lifecycle(web_app: App, client: Client) -> None:
    async def scenario() -> None:
        async with client(role="admin") as c:
            assert (await c.get("/api/schedules")).json() == {"schedules": []}
            r = await c.post("/api/schedules", json={
                "name": "nightly-add", "task": "web.add", "cron": "0 1 * * *", "tz": "Europe/Berlin",
                "args": [1, 2], "options": {"queue": "media", "priority": "high"},
            })  # fmt: skip
            assert r.status_code == 201, r.text
            created = r.json()
            assert (created["cron"], created["tz"], created["paused"]) == (
                "0 1 * * *",
                "Europe/Berlin",
                False,
            )
            assert created["options"] == {"queue": "media", "priority": "high"}
            assert created["source"] == "runtime"
            assert created["app"] == web_app.name  # whose scheduler fires it
            assert created["next_run"] is not None  # before any scheduler has seen it
            # and on the clocks of its zone, with their offset (Unix seconds have none)
            local = datetime.fromisoformat(created["next_run_local"])
            assert (local.hour, local.minute) == (1, 0)
            assert local.utcoffset() in (timedelta(hours=1), timedelta(hours=2))  # CET, CEST
            assert local.timestamp() == created["next_run"]
            edited = (await c.patch("/api/schedules/nightly-add", json={"every": 60})).json()
            assert (edited["every"], edited["cron"], edited["args"]) == (60.0, None, [1, 2])
            assert (await c.post("/api/schedules/nightly-add/pause")).json()["paused"] is True
            assert (await c.get("/api/schedules/nightly-add")).json()["paused"] is True
            assert (await c.post("/api/schedules/nightly-add/resume")).json()["paused"] is False
            ran = await c.post("/api/schedules/nightly-add/run")
            assert ran.status_code == 201
            job = (await c.get(f"/api/jobs/{ran.json()['id']}")).json()
            assert (job["task"], job["args"], job["queue"], job["priority"]) == (
                "web.add",
                [1, 2],
                "media",
                7,
            )
            assert job["headers"] == {"schedule": "nightly-add", "run_now": True}
            listed = (await c.get("/api/schedules")).json()["schedules"]
            assert [s["name"] for s in listed] == ["nightly-add"]
            assert (await c.delete("/api/schedules/nightly-add")).json() == {
                "name": "nightly-add",
                "deleted": True,
            }
            gone = await c.get("/api/schedules/nightly-add")
            assert gone.status_code == 404
            assert gone.json()["error"]["code"] == "schedule_not_found"

    run(scenario())


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "s", "task": "internal.secret", "every": 60}, 400, "unknown_task"),
        ({"name": "s", "task": "web.add"}, 400, "bad_request"),  # neither cron nor every
        ({"name": "s", "task": "web.add", "cron": "61 * * * *"}, 400, "bad_request"),
        ({"name": "s", "task": "web.add", "every": 60, "tz": "Mars/Olympus"}, 400, "bad_request"),
        ({"name": "s", "task": "web.add", "every": 0.5}, 422, "validation_error"),
        ({"name": "has space", "task": "web.add", "every": 60}, 422, "validation_error"),
        (
            {"name": "s", "task": "web.add", "every": 60, "options": {"job_id": "x"}},
            422,
            "validation_error",
        ),
    ],
)
def test_bad_schedules_are_refused(
    client: Client, body: dict[str, object], status: int, code: str
) -> None:
    async def scenario() -> None:
        async with client(role="admin") as c:
            r = await c.post("/api/schedules", json=body)
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
            assert (await c.get("/api/schedules")).json() == {"schedules": []}

    run(scenario())


def test_a_bad_cron_is_refused_naming_its_field_value_and_range(client: Client) -> None:
    async def scenario() -> None:
        async with client(role="admin") as c:
            body = {"name": "s", "task": "web.add", "cron": "0 25 * * *", "args": [1, 2]}
            r = await c.post("/api/schedules", json=body)
            assert r.status_code == 400, r.text
            assert r.json()["error"]["message"] == (
                "schedule 's': cron '0 25 * * *' is not valid: the hour field is '25'; it "
                "takes 0-23, as a value, a list a,b, a range a-b, or a step */n or a-b/n"
            )

    run(scenario())


def test_schedule_changes_need_admin(client: Client) -> None:
    async def scenario() -> None:
        async with client(role="admin") as admin:
            made = await admin.post(
                "/api/schedules", json={"name": "s", "task": "web.add", "args": [1, 2], "every": 60}
            )
            assert made.status_code == 201, made.text
        async with client(role="operate") as c:
            assert (await c.get("/api/schedules")).status_code == 200
            for method, path in [("POST", "/api/schedules"), ("PATCH", "/api/schedules/s"),
                                 ("POST", "/api/schedules/s/pause"), ("POST", "/api/schedules/s/resume"),
                                 ("POST", "/api/schedules/s/run"), ("DELETE", "/api/schedules/s")]:  # fmt: skip
                r = await c.request(
                    method, path, json={"name": "t", "task": "web.add", "every": 60}
                )
                assert r.status_code == 403, (method, path, r.text)
                assert "needs 'admin'" in r.json()["error"]["message"]
            assert [s["name"] for s in (await c.get("/api/schedules")).json()["schedules"]] == ["s"]

    run(scenario())
