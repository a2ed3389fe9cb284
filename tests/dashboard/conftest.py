"""One served dashboard per module: a SQLite store, a real uvicorn server on a free port
(``conveyor.testing.web.served``: ``conveyor serve``'s server), a worker and a scheduler as
subprocesses, and one chromium (Debian's, driven by Playwright) for every test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright

from conveyor import App
from conveyor.loader import load_app
from conveyor.testing import use_backend, wait_for, web
from conveyor.web import TokenStore, create_api

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run",
                 "--disable-lcd-text"]  # fmt: skip


@dataclass
class Served:
    app: App
    url: str
    #: Token secrets by role.
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("dashboard")
    store = f"sqlite:///{folder / 'conveyor.db'}"
    app = load_app("tests.dashboard.tasks:app")
    procs: list[subprocess.Popen[bytes]] = []
    with use_backend(app, store):
        tokens = {role: TokenStore(app.backend).create(f"test-{role}", role)[1]
                  for role in ("read", "operate", "admin")}  # fmt: skip
        env = {**os.environ, "CONVEYOR_BACKEND": store}
        for args in (["worker", "-P", "thread", "-c", "4"], ["scheduler"]):
            log = open(folder / f"{args[0]}.log", "wb")  # noqa: SIM115 - closed below
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "conveyor", "-A", "tests.dashboard.tasks:app", *args],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            ))  # fmt: skip
            log.close()
        try:
            with web.served(create_api(app, auth="required")) as url:
                wait_for(lambda: len(app.backend.workers()) == 1, timeout=30)
                yield Served(app, url, tokens)
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    app.aio.close()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    path = shutil.which("chromium") or CHROMIUM
    if not os.path.exists(path):
        message = "chromium is missing: apt-get install -y chromium (.ci/run does it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)  # CI must run the browser tests, never skip them
        pytest.skip(message)
    browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def logged_in(browser: Browser, served: Served, role: str, **options: object) -> BrowserContext:
    """A browser context whose session is the token of ``role``, logged in through the form."""
    options = {"viewport": {"width": 1100, "height": 760}, **options}
    context = browser.new_context(**options)  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(f"{served.url}/ui/")
    assert "/ui/login" in page.url  # no session: the login form first
    page.fill("input[name=token]", served.tokens[role])
    page.click("form.login button")
    page.wait_for_url(f"{served.url}/ui/")
    page.close()
    return context


@pytest.fixture(scope="module")
def admin(browser: Browser, served: Served) -> Iterator[BrowserContext]:
    context = logged_in(browser, served, "admin")
    yield context
    context.close()
