"""``GET /metrics``: a real HTTP server scraped and its text parsed with prometheus_client's
own parser, on every backend; the read token it needs, and the opt-in without one."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from conveyor import App
from conveyor.errors import BackendError, ConfigurationError
from conveyor.records import WorkerInfo
from conveyor.scheduler import Scheduler
from conveyor.scheduler.runner import lock_name
from conveyor.testing import drain
from conveyor.testing.web import served
from conveyor.web import api_router, create_api

from .conftest import Client, Served, run

#: (metric name, sorted label pairs) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def server_url(web_app: App) -> Iterator[str]:
    """``create_api(web_app)`` under uvicorn on a free loopback port: its base URL."""
    with served(create_api(web_app)) as url:
        yield url


def fill(app: App) -> None:
    """Runs that finished (3 succeeded, 2 failed in default), jobs waiting in media with
    no worker for it, a delayed job in default, a live worker on default, and a schedule
    no scheduler fired for two minutes."""
    add, fail, encode = app.tasks["web.add"], app.tasks["web.fail"], app.tasks["web.media.encode"]
    for i in range(3):
        add.delay(i, i)
    for i in range(2):
        fail.delay(f"boom {i}")
    assert drain(app, ["default"]) == {"SUCCESS": 3, "FAILURE": 2}
    for i in range(4):
        encode.delay(f"clip-{i}")
    add.apply_async((1, 1), countdown=3600)
    backend = app.backend
    worker = WorkerInfo(id="w-id", name="w@h1", host="h1", pid=42, queues=["default"],
                        pool="thread", concurrency=3, version="test", tasks=[], started_at=0.0,
                        heartbeat_interval=60)  # fmt: skip
    backend.heartbeat(worker, [], 30)
    app.schedules.add("tick", "web.add", every=1, args=[1, 2])
    now = backend.now()
    backend.set_schedule_state("tick", {"last_tick": now - 120, "next_run": now - 119})


def test_the_scheduler_leader_gauge_says_whether_one_leads(
    web_app: App, server_url: str, tokens: dict[str, dict[str, str]]
) -> None:
    """``conveyor_scheduler_leader``: no series for an app with no schedule (it needs no
    scheduler: a 0 there would fire every "no leader" alert), 0 once it has one and before
    any scheduler of the app runs (before any of its schedules is late), 1 while one holds
    the app's leader lock, 0 once it let go."""

    def leader() -> float | None:
        text = httpx.get(f"{server_url}/metrics", headers=tokens["read"], timeout=30).text
        return value(parse(text), "conveyor_scheduler_leader", app="webtests")

    assert leader() is None
    web_app.schedules.add("nightly", "web.add", cron="0 1 * * *", args=[1, 2])
    assert leader() == 0
    Scheduler(web_app, name="s1").step()  # takes the lead
    assert leader() == 1
    assert web_app.backend.release_lock(lock_name(web_app), "s1")  # as it does when stopped
    assert leader() == 0


def test_a_scrape_tells_the_store_on_every_backend(web_app: App, server_url: str, tokens: dict[str, dict[str, str]]) -> None:  # fmt: skip
    fill(web_app)
    response = httpx.get(f"{server_url}/metrics", headers=tokens["read"], timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse(response.text)

    def jobs(queue: str, state: str) -> float | None:
        return value(samples, "conveyor_jobs", queue=queue, state=state)

    assert (jobs("default", "SUCCESS"), jobs("default", "FAILURE")) == (3, 2)
    assert (jobs("default", "SCHEDULED"), jobs("media", "PENDING"), jobs("media", "STARTED")) == (
        1,
        4,
        0,
    )
    assert value(samples, "conveyor_queue_length", queue="media") == 4
    assert value(samples, "conveyor_queue_length", queue="default") == 1
    # media waits with no worker for it; default has one
    assert value(samples, "conveyor_queue_unconsumed", queue="media") == 1
    assert value(samples, "conveyor_queue_unconsumed", queue="default") == 0
    assert value(samples, "conveyor_queue_consumers", queue="default") == 1
    assert 0 <= value(samples, "conveyor_queue_oldest_waiting_age_seconds", queue="media") < 60  # type: ignore[operator]
    # default's only waiting job is due in an hour: no age
    assert value(samples, "conveyor_queue_oldest_waiting_age_seconds", queue="default") is None
    for window in ("1m", "5m", "15m"):
        assert value(samples, "conveyor_queue_recent_finished", queue="default", window=window) == 5
        assert value(samples, "conveyor_queue_recent_failed", queue="default", window=window) == 2
        assert value(samples, "conveyor_queue_recent_finished", queue="media", window=window) == 0
    p99 = value(
        samples, "conveyor_queue_recent_run_seconds", queue="default", window="5m", quantile="0.99"
    )
    assert p99 is not None
    assert 0 <= p99 < 10
    group = {"host": "h1", "queues": "default"}
    assert value(samples, "conveyor_workers_alive", **group) == 1
    assert value(samples, "conveyor_workers_concurrency", **group) == 3
    assert value(samples, "conveyor_workers_jobs_running", **group) == 0
    # the drain's own worker stopped: it is in no group
    assert sum(v for (name, _), v in samples.items() if name == "conveyor_workers_alive") == 1
    # by the app whose scheduler fires it: apps sharing a store each alert on their own
    assert value(samples, "conveyor_schedules_late", app=web_app.name) == 1
    assert value(samples, "conveyor_schedules_broken") == 0
    tick = {"schedule": "tick", "app": web_app.name}
    assert value(samples, "conveyor_schedule_last_tick_timestamp_seconds", **tick) is not None
    assert not [key for key in samples if any(k in ("job_id", "pid", "id") for k, _ in key[1])]


def test_openmetrics_when_asked(
    web_app: App, server_url: str, tokens: dict[str, dict[str, str]]
) -> None:
    accept = {"accept": "application/openmetrics-text; version=1.0.0"}
    response = httpx.get(f"{server_url}/metrics", headers={**tokens["read"], **accept}, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


@pytest.mark.parametrize("backend_kind", ["sqlite"])
def test_a_token_is_needed_and_only_get_answers(web_app: App, client: Client) -> None:
    async def scenario() -> None:
        async with client(role=None) as anonymous, client(role="read") as reader:
            r = await anonymous.get("/metrics")
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "unauthorized"
            # a scrape needs only a read token, and the hint says so (it said operate)
            assert "tokens create --role read" in r.json()["error"]["hint"]
            bad = await anonymous.get("/metrics", headers={"Authorization": "Bearer cvy_wrong"})
            assert bad.status_code == 401
            assert (await reader.get("/metrics")).status_code == 200
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                assert (await reader.request(method, "/metrics")).status_code == 405, method

    run(scenario())


@pytest.mark.parametrize("backend_kind", ["sqlite"])
def test_the_opt_in_serves_metrics_alone_without_a_token(
    web_app: App, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web_app.conf, "metrics_without_token", True)

    async def scenario() -> None:
        async with client(role=None) as anonymous:
            r = await anonymous.get("/metrics")
            assert r.status_code == 200
            assert "conveyor_queue_length" in r.text
            assert (await anonymous.get("/api/jobs")).status_code == 401  # the rest keeps its auth

    run(scenario())


@pytest.mark.parametrize("backend_kind", ["sqlite"])
@pytest.mark.parametrize("given", ["false", "0", "", 1])
def test_the_opt_in_takes_true_or_false_not_a_string_that_would_open_metrics(
    web_app: App, client: Client, monkeypatch: pytest.MonkeyPatch, given: object
) -> None:
    """``os.environ.get("METRICS_OPEN", "false")`` or a Django setting's string: "false"
    is truthy, and served /metrics to anyone; refused where the API is built."""
    monkeypatch.setattr(web_app.conf, "metrics_without_token", given)
    with pytest.raises(ConfigurationError, match=r"metrics_without_token .* True or False"):
        create_api(web_app)
    with pytest.raises(ConfigurationError, match="metrics_without_token"):
        api_router(web_app)


@pytest.mark.parametrize("backend_kind", ["sqlite"])
def test_a_service_mounting_the_router_serves_it_under_its_prefix(
    web_app: App, tokens: dict[str, dict[str, str]]
) -> None:
    service = FastAPI()
    service.include_router(api_router(web_app), prefix="/ops/queue")
    web_app.tasks["web.media.encode"].delay("clip")

    async def scenario() -> None:
        async with Served(service, base_url="http://localhost", headers=tokens["read"]) as c:
            r = await c.get("/ops/queue/metrics")
            assert r.status_code == 200
            assert value(parse(r.text), "conveyor_queue_length", queue="media") == 1
            assert (
                await c.get("/ops/queue/metrics", headers={"Authorization": ""})
            ).status_code == 401

    run(scenario())


@pytest.mark.parametrize("backend_kind", ["sqlite"])
def test_a_store_that_fails_is_a_503_not_a_500(
    web_app: App, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> None:
        raise BackendError("the store is gone")

    monkeypatch.setattr(web_app.backend, "counts", unreachable)

    async def scenario() -> None:
        async with client(role="read") as reader:
            r = await reader.get("/metrics")
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "backend_unavailable"

    run(scenario())
