"""``conveyor.testing``, as a user's test suite would use it, and the public API's shape."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

import conveyor
from conveyor import App, State
from conveyor.testing import FakeClock, drain, use_backend, wait_for
from conveyor.testing.web import served

ROOT = Path(__file__).resolve().parents[1]


def make_app() -> App:
    app = App("users-project", backend="sqlite:///never-created.db")

    @app.task(name="shop.total")
    def total(prices: list[float]) -> float:
        return sum(prices)

    @app.task(name="shop.refuse")
    def refuse() -> None:
        raise ValueError("out of stock")

    return app


def test_a_users_test_runs_jobs_in_memory_and_leaves_the_app_as_it_was() -> None:
    app = make_app()
    with use_backend(app) as backend:
        assert backend.url == "memory://"
        ok = app.tasks["shop.total"].delay([1.5, 2.5])
        bad = app.tasks["shop.refuse"].delay()
        assert drain(app) == {"SUCCESS": 1, "FAILURE": 1}
        assert ok.result == 4.0
        assert bad.state is State.FAILURE
    assert app.conf.backend_url == "sqlite:///never-created.db"
    assert not Path("never-created.db").exists()  # nothing touched the configured store


def test_a_fake_clock_brings_a_countdown_due_without_sleeping() -> None:
    app = make_app()
    clock = FakeClock()
    with use_backend(app, clock=clock):
        job = app.tasks["shop.total"].apply_async(([1.0],), countdown=3600)
        assert drain(app) == {}  # not due: a burst worker waits only for jobs due soon
        assert job.state is State.SCHEDULED
        clock.advance(3600)
        assert drain(app) == {"SUCCESS": 1}


def test_wait_for_returns_the_value_or_says_what_it_waited_for() -> None:
    assert wait_for(lambda: [1], 0.1) == [1]
    with pytest.raises(AssertionError, match="waiting for the moon"):
        wait_for(lambda: None, 0.05, "the moon")


def documented_api() -> list[str]:
    """The names docs/architecture.md lists under "Public API"."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Public API", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    return sorted(re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\b", block, re.MULTILINE))


def test_conveyor_all_is_exactly_the_documented_public_api() -> None:
    assert sorted(conveyor.__all__) == documented_api()
    for name in conveyor.__all__:
        assert hasattr(conveyor, name), name


def test_served_answers_over_real_http_between_the_apps_startup_and_shutdown() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    service = FastAPI(lifespan=lifespan)
    service.get("/ping")(lambda: {"events": list(events)})
    with served(service) as url:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), url
        assert httpx.get(f"{url}/ping", timeout=10).json() == {"events": ["startup"]}
    assert events == ["startup", "shutdown"]
    with pytest.raises(httpx.ConnectError):  # stopped: nothing listens there any more
        httpx.get(f"{url}/ping", timeout=10)


def test_served_says_at_once_when_the_server_cannot_start() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield

    started = time.monotonic()
    with (
        pytest.raises(AssertionError, match="stopped before it listened"),
        served(FastAPI(lifespan=lifespan), timeout=30),
    ):
        pass
    assert time.monotonic() - started < 10  # not the whole timeout
