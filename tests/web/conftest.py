from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from conveyor import App
from conveyor.backends import Backend
from conveyor.loader import load_app
from conveyor.testing import use_backend
from conveyor.web import TokenStore, create_api

T = TypeVar("T")


def run(scenario: Awaitable[T]) -> T:
    async def main() -> T:
        return await scenario

    return asyncio.run(main())


@pytest.fixture
def web_app(make_backend: Callable[..., Backend]) -> Iterator[App]:
    """tests.web.tasks's app on this test's backend."""
    app = load_app("tests.web.tasks:app")
    with use_backend(app, make_backend()):
        yield app
    app.aio.close()


@pytest.fixture
def tokens(web_app: App) -> dict[str, dict[str, str]]:
    """Authorization headers for one token of each role."""
    store = TokenStore(web_app.backend)
    return {
        role: {"Authorization": f"Bearer {store.create(f'test-{role}', role)[1]}"}
        for role in ("read", "operate", "admin")
    }


class Served(httpx.AsyncClient):
    """An httpx client on an ASGI service whose lifespan runs around the client's, as
    uvicorn runs it (httpx's transport runs none): the API's async reads are opened on
    the test's loop, so the tests go through them where the backend has them (Redis)."""

    def __init__(self, service: FastAPI, **options: Any) -> None:
        super().__init__(transport=httpx.ASGITransport(app=service), **options)
        self.lifespan = service.router.lifespan_context(service)

    async def __aenter__(self) -> Served:
        await self.lifespan.__aenter__()
        return await super().__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await super().__aexit__(*exc)
        finally:
            await self.lifespan.__aexit__(*exc)


Client = Callable[..., httpx.AsyncClient]


@pytest.fixture
def client(web_app: App, tokens: dict[str, dict[str, str]]) -> Client:
    """An httpx client on ``create_api(web_app)``, its lifespan run, with an operate token
    unless told."""

    def make(role: str | None = "operate", **options: Any) -> httpx.AsyncClient:
        headers = tokens[role] if role else {}
        return Served(create_api(web_app, **options), base_url="http://localhost", headers=headers)

    return make
