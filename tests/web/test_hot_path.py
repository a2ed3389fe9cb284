"""The status read's short way: the token checked by the route class (not FastAPI's
dependency solving) and, on Redis, read on the event loop; a read by path alone
answered without FastAPI's handler, byte for byte as it answers it."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from conveyor import App
from conveyor.web import api_router, create_api

from .conftest import Served, run


@pytest.mark.parametrize("backend_kind", ["redis"])  # only Redis reads on the event loop
def test_on_redis_a_status_read_with_its_token_hops_to_no_thread(
    web_app: App, tokens: dict[str, dict[str, str]]
) -> None:
    job = web_app.send_task("web.add", [1, 2])

    async def scenario() -> tuple[int, int, bool]:
        async with Served(create_api(web_app), base_url="http://localhost") as c:
            first = await c.get(f"/api/jobs/{job.id}", headers=tokens["read"])
            wrong = await c.get(f"/api/jobs/{job.id}", headers={"Authorization": "Bearer cvy_x_y"})
            # the token's entry, the job: both read on the loop; the thread pool never started
            return first.status_code, wrong.status_code, web_app.aio._executor is None

    assert run(scenario()) == (200, 401, True)


def answers(
    service: FastAPI, paths: list[str], headers: dict[str, str]
) -> list[tuple[int, str, bytes]]:
    async def scenario() -> list[tuple[int, str, bytes]]:
        async with Served(service, base_url="http://localhost") as c:
            found = []
            for path in paths:
                r: httpx.Response = await c.get(path, headers=headers)
                found.append((r.status_code, r.headers["content-type"], r.content))
            return found

    return run(scenario())


def test_the_short_read_answers_as_fastapis_handler_does(
    web_app: App, tokens: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    job = web_app.send_task("web.add", [1, 2], headers={"note": "é"})
    paths = [f"/api/jobs/{job.id}", "/api/jobs/nope", "/api/jobs/" + "x" * 201,
             "/api/workflows/nope", f"/api/jobs/{job.id}?extra=1"]  # fmt: skip
    short = answers(create_api(web_app), paths, tokens["read"])
    assert [code for code, _, _ in short] == [200, 404, 422, 404, 200]
    monkeypatch.setattr("conveyor.web.errors.lean_read", lambda route, handler: None)
    assert answers(create_api(web_app), paths, tokens["read"]) == short


def test_a_mounted_router_checks_tokens_on_the_short_read(
    web_app: App, tokens: dict[str, dict[str, str]]
) -> None:
    """Included in a service, FastAPI builds the routes again (with the service's own
    dependencies): the token is still checked, and before the handler."""
    service = FastAPI()
    service.include_router(api_router(web_app), prefix="/api/queue")
    job = web_app.send_task("web.add", [1, 2])
    path = f"/api/queue/jobs/{job.id}"
    (none,) = answers(service, [path], {})
    assert none[0] == 401
    assert b'"code":"unauthorized"' in none[2]
    (read,) = answers(service, [path], tokens["read"])
    assert read[0] == 200


def test_only_a_get_by_path_alone_takes_the_short_way(web_app: App) -> None:
    service = create_api(web_app)
    short = {r.path for r in service.routes if getattr(r, "lean", False)}
    assert "/api/jobs/{job_id}" in short
    assert "/api/jobs" not in short
    assert "/api/jobs/{job_id}/result" not in short
