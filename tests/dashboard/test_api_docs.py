"""The API's docs page in a real browser with no way out of this machine: every request
to another host is aborted, and the page still lists the API's operations (its Swagger
UI files come from the API's own origin, not a CDN)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Route

from conveyor import App
from conveyor.testing import web
from conveyor.web import create_api

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    """The API (no dashboard needed) under uvicorn on a free port."""
    app = App("docs", backend="memory://")
    with web.served(create_api(app)) as url:
        yield url
    app.aio.close()


def test_the_docs_page_renders_with_no_internet(browser: Browser, api_url: str) -> None:
    outside: list[str] = []

    def only_this_machine(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context = browser.new_context()
    try:
        page = context.new_page()
        page.route("**/*", only_this_machine)
        page.goto(f"{api_url}/api/docs")
        page.wait_for_selector(".opblock", timeout=15_000)
        assert page.locator(".opblock").count() >= 20  # one per operation
        wait = page.locator(".opblock-summary-path", has_text="/api/jobs/{job_id}/result")
        assert wait.count() == 1
        assert outside == []  # it did not even try
    finally:
        context.close()
