"""The Django admin's job page in chromium, as a user porting a project sees it: the
test project (tests/djangoproject) served by ``manage.py runserver``, its jobs run by a
real worker, the page read after logging in through the admin's form."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from ..services import _free_port as free_port

PROJECT = Path(__file__).parents[1] / "djangoproject"
pytestmark = pytest.mark.slow
WIDTH = 1100


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The project's admin at a URL, with a job that failed on a real worker (``boom``)
    and one waiting in a queue no worker consumes (``idle``)."""
    folder = tmp_path_factory.mktemp("djadmin")
    path = os.pathsep.join(p for p in (str(PROJECT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "SHOP_DB": f"sqlite:{folder}/shop.db",
           "CONVEYOR_BACKEND": f"sqlite:///{folder}/jobs.db"}  # fmt: skip
    manage(env, "migrate", "-v0")
    code = ("from django.contrib.auth.models import User; from shop import tasks; "
            "User.objects.create_superuser('ops', 'ops@example.com', 'pw'); "
            "print(tasks.boom.enqueue('parcel').id, tasks.never_run.enqueue(1).id)")  # fmt: skip
    boom, idle = manage(env, "shell", "-c", code).split()[-2:]
    manage(env, "conveyor", "worker", "-Q", "default", "--burst")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", "--insecure", f"127.0.0.1:{port}"],
        cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while subprocess.run(["curl", "-sf", "-o", "/dev/null", f"{url}/admin/login/"]).returncode:
            assert time.monotonic() < deadline, "runserver did not start"
            time.sleep(0.2)
        yield url, {"boom": boom, "idle": idle}
    finally:
        server.terminate()
        server.wait(10)


def job_page(browser: Browser, url: str, job_id: str) -> Page:
    page = browser.new_context(viewport={"width": WIDTH, "height": 800}).new_page()
    page.goto(f"{url}/admin/login/?next=/admin/conveyor/job/{job_id}/change/")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"**/admin/conveyor/job/{job_id}/change/")
    return page


def test_a_failed_jobs_page_shows_its_attempts_worker_and_only_retry(
    browser: Browser, site: tuple[str, dict[str, str]]
) -> None:
    url, ids = site
    page = job_page(browser, url, ids["boom"])
    # its attempts as a table, not the history's JSON
    table = page.locator("[data-test=attempts]")
    headers = table.locator("thead th").all_text_contents()  # the admin shows them in capitals
    assert headers == ["Attempt", "Worker", "Started (UTC)", "Ended (UTC)", "Outcome"]
    [row] = table.locator("tbody tr").all()
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "1"
    assert cells[4] == "FAILURE: ShopError: cannot ship parcel"
    assert '"worker_name"' not in page.content()
    # the worker by name, host and pid (and that it stopped), not its bare id
    for worker in (page.locator("[data-test=worker]").inner_text(), cells[1]):
        assert "host " in worker, worker
        assert "pid " in worker, worker
        assert "(stopped)" in worker, worker
        assert "-" not in worker.split()[0]  # a name, not the worker's UUID
    # a failed job can be retried, not cancelled
    buttons = page.locator("[data-test=actions] button").all_inner_texts()
    assert buttons == ["Retry"]
    # the traceback's long lines do not widen the page
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    page.context.close()


def test_a_waiting_jobs_page_offers_cancel_only(
    browser: Browser, site: tuple[str, dict[str, str]]
) -> None:
    url, ids = site
    page = job_page(browser, url, ids["idle"])
    assert page.locator("[data-test=actions] button").all_inner_texts() == ["Cancel"]
    assert "None yet" in page.locator("#conveyor-job-page").inner_text()
    page.locator("[data-test=actions] button").click()
    page.wait_for_url(f"{url}/admin/conveyor/job/")
    page.goto(f"{url}/admin/conveyor/job/{ids['idle']}/change/")
    assert page.locator("[data-test=actions] button").all_inner_texts() == ["Retry"]
    page.context.close()
