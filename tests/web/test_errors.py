"""Every client mistake is a 4xx in one JSON shape; no bad input makes a 500 or shows a
traceback; a real bug answers a 500 of the same shape, logged, not shown."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import httpx
import pytest

from conveyor import App
from conveyor.web import create_api

from .conftest import Client, run

LONG = "x" * 201
PAYLOAD_OVER_LIMIT = "y" * (1024 * 1024 + 10)  # over max_payload_bytes, under the body limit

#: (method, path, request options, status, error code)
MISTAKES: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("POST", "/api/jobs", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"content": b'{"task": "web.add"}', "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
    ("POST", "/api/jobs", {"content": b'{"task": "web.add"}'}, 415, "unsupported_media_type"),
    ("POST", "/api/jobs/no-such-job/cancel", {"data": {"terminate": "true"}}, 415, "unsupported_media_type"),
    ("POST", "/api/jobs", {"content": b'{"x": ' + b"9" * 5000 + b"}", "headers": {"content-type": "application/json"}}, 400, "bad_request"),
    ("POST", "/api/jobs", {"content": b"[" * 100_000 + b"]" * 100_000, "headers": {"content-type": "application/json"}}, 400, "bad_request"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "surprise": 1}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"args": [1]}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "args": {"a": 1}}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "kwargs": [1]}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "priority": 10}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "priority": "urgent"}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "priority": True}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "countdown": -1}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "countdown": 1e12}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "eta": "2030-01-01T00:00:00"}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "eta": "tomorrow"}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "expires": -1}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "expires": "60"}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "countdown": True}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "queue": "caf\u00e9"}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "queue": "has space"}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "queue": LONG}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": LONG}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "headers": {"h": {"nested": 1}}}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "args": list(range(1001))}}, 422, "validation_error"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "countdown": 5, "eta": 1}}, 400, "invalid_job"),
    ("POST", "/api/jobs", {"json": {"task": "web.nope"}}, 400, "unknown_task"),
    ("POST", "/api/jobs", {"json": {"task": "internal.secret"}}, 400, "unknown_task"),
    ("POST", "/api/jobs", {"json": {"task": "web.add", "args": [PAYLOAD_OVER_LIMIT]}}, 413, "payload_too_large"),
    ("POST", "/api/jobs", {"content": b"[" + b"1," * 5_000_000 + b"1]", "headers": {"content-type": "application/json"}}, 413, "body_too_large"),
    ("POST", "/api/jobs/batch", {"json": {"jobs": []}}, 422, "validation_error"),
    ("POST", "/api/jobs/batch", {"json": {"jobs": [{"task": "web.add"}] * 1001}}, 422, "validation_error"),
    ("POST", "/api/jobs/batch", {"json": [{"task": "web.add"}]}, 422, "validation_error"),
    ("GET", "/api/jobs", {"params": {"limit": 0}}, 422, "validation_error"),
    ("GET", "/api/jobs", {"params": {"limit": 501}}, 422, "validation_error"),
    ("GET", "/api/jobs", {"params": {"limit": "many"}}, 422, "validation_error"),
    ("GET", "/api/jobs", {"params": {"state": "BOGUS"}}, 422, "validation_error"),
    ("GET", "/api/jobs", {"params": {"created_after": "yesterday"}}, 422, "validation_error"),
    ("GET", "/api/jobs", {"params": {"cursor": LONG}}, 422, "validation_error"),
    ("GET", "/api/jobs/no-such-job", {}, 404, "job_not_found"),
    ("GET", f"/api/jobs/{LONG}", {}, 422, "validation_error"),
    ("GET", "/api/jobs/no-such-job/result", {"params": {"timeout": 1}}, 404, "job_not_found"),
    ("GET", "/api/jobs/no-such-job/result", {"params": {"timeout": 61}}, 422, "validation_error"),
    ("GET", "/api/jobs/no-such-job/result", {"params": {"timeout": -1}}, 422, "validation_error"),
    ("POST", "/api/jobs/no-such-job/cancel", {"json": {"terminate": True}}, 404, "job_not_found"),
    ("POST", "/api/jobs/no-such-job/cancel", {"json": {"terminate": "soon"}}, 422, "validation_error"),
    ("POST", "/api/jobs/no-such-job/cancel", {"json": {"terminate": 0}}, 422, "validation_error"),
    ("POST", "/api/jobs/no-such-job/retry", {}, 404, "job_not_found"),
    ("POST", "/api/jobs/cancel", {"json": {}}, 400, "no_filter"),
    ("POST", "/api/jobs/retry", {"json": {"states": ["SOMETIMES"]}}, 422, "validation_error"),
    ("POST", "/api/jobs/retry", {}, 422, "validation_error"),
    ("GET", "/api/queues/no-such-queue", {}, 404, "queue_not_found"),
    ("POST", "/api/queues/bad%20name/pause", {}, 422, "validation_error"),
    ("GET", "/api/workers/nobody", {}, 404, "worker_not_found"),
    ("GET", "/api/nowhere", {}, 404, "not_found"),
    ("DELETE", "/api/jobs", {}, 405, "method_not_allowed"),
    ("GET", "/api/queues/default/pause", {}, 405, "method_not_allowed"),
]  # fmt: skip


@pytest.fixture
def backend_kind() -> str:
    """Input checks happen before the backend is asked: one backend is enough (this
    overrides the suite's parametrized fixture, so nothing is skipped)."""
    return "memory"


def test_every_mistake_is_a_4xx_in_the_error_shape(client: Client) -> None:
    async def scenario() -> list[str]:
        wrong = []
        async with client() as c:
            for method, path, options, status, code in MISTAKES:
                r = await c.request(method, path, **options)
                body = r.json()
                error = body.get("error", {})
                if (r.status_code, error.get("code")) != (status, code):
                    wrong.append(f"{method} {path} {options!s:.80}: {r.status_code} {r.text:.300}")
                elif not (error.get("message") and error.get("hint")) or "Traceback" in r.text:
                    wrong.append(f"{method} {path}: incomplete error {r.text:.300}")
        return wrong

    assert run(scenario()) == []


PRIORITY = 'an integer from 0 to 9, or one of "low", "normal", "high", "critical" (in any case)'
TASK = "a name of 1 to 200 ASCII letters, digits and _ . : @ / -"


def test_validation_errors_name_the_field_what_is_wrong_and_what_it_accepts(
    client: Client,
) -> None:
    """One entry per field, named by its path in the body (or query), never by pydantic's
    union tags (``priority.constrained-int``), with what the OpenAPI document accepts."""

    async def scenario() -> list[dict[str, Any]]:
        async with client() as c:
            answers = [
                await c.post("/api/jobs", json={"task": "web.add", "priority": 10, "countdown": -1}),
                await c.post("/api/jobs/batch", json={"jobs": [{"task": "web.add"}, {"task": "web.add", "priority": "urgent"}]}),
                await c.post("/api/workflows", json={"chain": [{"task": "web.add"}, {"task": 1}]}),
                await c.post("/api/jobs", json=[{"task": "web.add"}]),
                await c.post("/api/jobs", json={"task": "web.add", "surprise": 1}),
                await c.get("/api/jobs", params={"limit": "many"}),
                await c.post("/api/jobs", json={"task": "web.add", "headers": {"k" * 101: 1}}),
                await c.get("/api/jobs", params={"state": ["SUCCESS", "DONE"]}),
            ]  # fmt: skip
            assert {r.status_code for r in answers} == {422}
            return [dict(r.json()["error"]) for r in answers]

    wrong, batch, workflow, array, extra, query, key, repeated = run(scenario())
    assert wrong["details"] == [
        {"location": "body.priority", "field": "priority", "accepted": PRIORITY,
         "message": f"priority must be {PRIORITY} (got 10)"},
        {"location": "body.countdown", "field": "countdown", "accepted": "a number from 0 to 31622400",
         "message": "countdown must be a number from 0 to 31622400 (got -1)"},
    ]  # fmt: skip
    assert wrong["message"] == f"priority must be {PRIORITY} (got 10) (and 1 more)"
    assert batch["details"] == [{"location": "body.jobs.1.priority", "field": "jobs.1.priority",
                                 "accepted": PRIORITY, "message": f'jobs.1.priority must be {PRIORITY} (got "urgent")'}]  # fmt: skip
    # a workflow step is one of four objects: the one the value came closest to speaks
    assert workflow["details"] == [{"location": "body.chain.1.task", "field": "chain.1.task",
                                    "accepted": TASK, "message": f"chain.1.task must be {TASK} (got 1)"}]  # fmt: skip
    assert array["message"].startswith("the body must be an object with the fields task, args, ")
    assert array["message"].endswith("(got a list)")
    assert extra["message"].startswith("surprise is not a field here; the fields are task, args, ")
    assert query["details"] == [{"location": "query.limit", "field": "limit", "accepted": "an integer from 1 to 500",
                                 "message": 'limit must be an integer from 1 to 500 (got "many")'}]  # fmt: skip
    assert key["message"] == (
        f'the key "{"k" * 56}... in headers must be text of up to 100 characters (got "{"k" * 56}...)'
    )
    # a repeated query parameter is named alone: its values carry no index in the request
    (state,) = repeated["details"]
    assert (state["location"], state["field"]) == ("query.state", "state")
    assert state["message"].startswith('state must be one of "PENDING"')


def test_unknown_task_lists_only_the_exposed_ones(client: Client) -> None:
    async def scenario() -> str:
        async with client() as c:
            r = await c.post("/api/jobs", json={"task": "web.ad"})
            return str(r.json()["error"]["message"])

    message = run(scenario())
    assert "did you mean 'web.add'?" in message  # the typo's nearest exposed name first
    assert "web.media.encode" in message
    assert "internal.secret" not in message  # registered, but not exposed: not revealed


def test_nothing_is_exposed_by_default() -> None:
    app = App("closed", backend="memory://")
    app.task(name="t.anything")(lambda: None)

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_api(app, auth="off"))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            return await c.post("/api/jobs", json={"task": "t.anything"})

    r = run(scenario())
    assert r.status_code == 400
    assert "none (the app's http_tasks setting is empty)" in r.json()["error"]["message"]
    assert app.backend.list_jobs() == []


def test_a_bug_answers_500_in_the_shape_and_logs_the_traceback(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(app: App) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("conveyor.web.routes.stats.overview", broken)

    async def scenario() -> httpx.Response:
        async with client() as c:
            return await c.get("/api/stats")

    with caplog.at_level(logging.ERROR, logger="conveyor.web"):
        r = run(scenario())
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    assert "secret internals" not in r.text
    assert "Traceback" not in r.text
    assert any("secret internals" in str(rec.exc_info[1]) for rec in caplog.records if rec.exc_info)


#: Every route that reads a JSON body (schedules need an admin token).
BODY_ROUTES = [("POST", "/api/jobs"), ("POST", "/api/jobs/batch"), ("POST", "/api/jobs/cancel"),
               ("POST", "/api/jobs/retry"), ("POST", "/api/jobs/no-such-job/cancel"),
               ("POST", "/api/workflows"), ("POST", "/api/schedules"),
               ("PATCH", "/api/schedules/no-such-schedule")]  # fmt: skip
DEEP = 100_000
#: Bodies no route takes: not JSON, not an object, numbers JSON cannot carry, nesting,
#: text that is not Unicode, junk at every level.
MALFORMED: list[bytes] = [
    b"{not json", b"{", b"", b"\xff\xfe\x00{", b"[]", b"[1, 2]", b'"text"', b"42", b"true",
    b"1e999", b"NaN", b"[" * DEEP + b"]" * DEEP, b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    b'{"x": ' + b"9" * 5000 + b"}", b'{"x": 1e999, "y": -Infinity, "z": NaN}',
    b'{"\\ud800": 1}', b'{"task": "\\udfff", "jobs": "\\ud800", "name": "\\ud800"}',
    b'{"task": {"nested": [1, {"deeper": null}]}, "chain": [[[]]], "jobs": [[{}]]}',
    b'{"task": [], "jobs": {}, "chain": "x", "group": 1, "chord": null, "states": "FAILURE",'
    b' "name": 5, "every": "often", "cron": [], "options": [1], "terminate": "yes"}',
    b'{"priority": 1e400, "countdown": 123456789012345678901234567890, "eta": -1e308,'
    b' "created_after": "9999-99-99", "every": 1e-400, "args": {"a": 1}, "callback": []}',
    b'{"jobs": [{"task": "web.add", "priority": {"nested": [1]}}, 7]}',
    b'{"headers": {"\\ud800": 1, "' + b"k" * 5000 + b'": [], "h": {"n": 1}}, "options": {"headers": 1}}',
    b'{"chain": [{"task": "web.add", "args": "x"}, {"group": []}, {"chord": [], "callback": 1}]}',
]  # fmt: skip
#: pydantic's own words: none may reach a client.
INTERNALS = ("constrained-", "literal[", "function-", "pydantic", "Input should", "TaskCall",
             "ChainSpec", "GroupSpec", "ChordSpec", "JobSubmit", "dict[", "list[", "[key]",
             "Traceback")  # fmt: skip


def test_no_malformed_body_gets_past_a_4xx_or_shows_internals(client: Client) -> None:
    async def scenario() -> list[str]:
        wrong = []
        async with client(role="admin") as c:
            for (method, path), body in itertools.product(BODY_ROUTES, MALFORMED):
                headers = {"content-type": "application/json"}
                r = await c.request(method, path, content=body, headers=headers)
                said = f"{method} {path} {body[:60]!r}: {r.status_code} {r.text:.400}"
                error = (
                    r.json().get("error", {})
                    if r.headers["content-type"].startswith("application/json")
                    else {}
                )
                if not 400 <= r.status_code < 500 or not (
                    error.get("message") and error.get("hint")
                ):
                    wrong.append(said)
                elif any(word in r.text for word in INTERNALS):
                    wrong.append(f"internals: {said}")
                elif any(set(p) - {"location", "field", "message", "accepted"} or
                         not p["message"] for p in error.get("details", [])):  # fmt: skip
                    wrong.append(f"details: {said}")
        return wrong

    assert run(scenario()) == []


def test_the_415_is_documented_with_the_error_body_wherever_a_body_is_read() -> None:
    api = create_api(App("doc", backend="memory://"), auth="off")
    operations = [op for path in api.openapi()["paths"].values() for op in path.values()]
    documented = [op["responses"]["415"] for op in operations if "415" in op["responses"]]
    assert documented  # the routes that read a JSON body
    for response in documented:
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}
