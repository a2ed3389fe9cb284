"""The dashboard in a real browser against a real server, worker and scheduler: every
page loads clean, progress moves live, a running job is terminated from its page, a
queue paused from the page stops a live worker's claims, a read token can change
nothing, and a schedule edited on the page fires on its new time.

``CONVEYOR_SCREENSHOTS=docs/images`` also saves each page, light and dark, for
docs/dashboard.md. Every page is also opened at a phone's width, where nothing may
widen the page. No test sleeps: each waits for what it needs (a page is live once its
event stream opened and brought its first refresh, counted in ``body[data-refreshes]``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, Response

from conveyor import control
from conveyor.states import State
from conveyor.testing import wait_for
from conveyor.web.dashboard.session import csrf_for
from conveyor.workflows import chain, group

from .conftest import Served, logged_in
from .tasks import add, archive, encode, fail, steps

# The first test also starts the server, worker, scheduler and browser for the module.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
SHOTS = os.environ.get("CONVEYOR_SCREENSHOTS")
#: A phone's screen (CSS pixels): the dashboard must not be wider.
PHONE = {"width": 390, "height": 844}


class Watch:
    """Everything a page did wrong: console errors, uncaught exceptions, failed requests."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def _failed(self, request: Request) -> None:
        # Leaving a page cuts its event stream and a live refresh in flight: aborted.
        live = request.resource_type in ("eventsource", "fetch")
        if live and "ERR_ABORTED" in (request.failure or ""):
            return
        self.problems.append(f"failed: {request.url} {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")


def demo_data(served: Served) -> dict[str, str]:
    """A little of everything: successes, a failure, a running job, a workflow."""
    app = served.app
    done = [add.delay(i, i) for i in range(5)] + [encode.delay("intro")]
    failed = fail.delay("the disk is full")
    workflow = chain(add.s(1, 2), group(add.s(3), add.s(4)), add.si(5, 6)).apply_async(app)
    running = steps.delay(1000, 0.2)  # running through the screenshots; terminated after
    for job in [*done, failed]:
        job.get(timeout=20, propagate=False)
    workflow.get(timeout=20)
    wait_for(lambda: running.record().progress, timeout=10, what="progress")
    if not any(v.schedule.name == "nightly-report" for v in app.schedules.list()):
        app.schedules.add("nightly-report", "dash.add", cron="0 3 * * *", args=[2, 3])
    return {"failed": failed.id, "running": running.id, "workflow": workflow.id,
            "member": workflow.member_ids()[1]}  # fmt: skip


def pages(served: Served, ids: dict[str, str]) -> dict[str, str]:
    return {
        "overview": "/ui/", "jobs": "/ui/jobs", "jobs-failed": "/ui/jobs?state=FAILURE",
        "job": f"/ui/jobs/{ids['running']}", "job-failed": f"/ui/jobs/{ids['failed']}",
        "queues": "/ui/queues", "workers": "/ui/workers", "schedules": "/ui/schedules",
        "workflows": "/ui/workflows", "workflow": f"/ui/workflows/{ids['workflow']}",
        "job-in-workflow": f"/ui/jobs/{ids['member']}", "audit": "/ui/audit",
    }  # fmt: skip


def settled(page: Page) -> None:
    """Wait until the page is what a user sees: its scripts ran (``goto`` waits for the
    load event, which follows deferred scripts) and, on a live page, its event stream
    opened and brought the first refresh."""
    if page.evaluate("document.body.dataset.live"):
        page.wait_for_selector("body[data-refreshes]", state="attached")


@pytest.fixture(scope="module")
def ids(served: Served) -> dict[str, str]:
    return demo_data(served)


def test_every_page_loads_with_no_console_error_and_no_failed_request(
    browser: Browser, admin: BrowserContext, served: Served, ids: dict[str, str]
) -> None:
    page = admin.new_page()
    watch = Watch(page)
    for name, path in pages(served, ids).items():
        page.goto(served.url + path)
        settled(page)
        assert page.locator("main").count() == 1
        assert not watch.problems, f"{name}: {watch.problems}"
    page.goto(f"{served.url}/ui/jobs/{ids['failed']}")
    assert "ValueError: the disk is full" in page.inner_text("main")
    assert "Traceback" in page.inner_text("pre.traceback")
    assert page.locator("[data-test=progress]").count() == 0  # it never reported any
    page.goto(f"{served.url}/ui/workflows")  # each listed with its state
    row = page.locator("table.workflows tr", has_text=ids["workflow"])
    assert row.locator(".state").inner_text() == "SUCCESS"
    page.goto(f"{served.url}/ui/workflows/{ids['workflow']}")
    assert page.locator(".node.task").count() == 4
    assert page.locator(".node.task.s-success").count() == 4
    page.goto(f"{served.url}/ui/jobs/{ids['member']}")  # a group member links its mate
    assert page.locator("[data-test=group] a").count() == 1
    assert page.locator("[data-test=nodes] li").count() == 4
    page.click("[data-test=group] a")
    assert page.locator("[data-test=nodes] b").inner_text() != ""
    page.goto(f"{served.url}/ui/workers")
    assert "MiB (its own process)" in page.inner_text("main")  # from the worker's heartbeat
    page.goto(f"{served.url}/ui/jobs?state=FAILURE")  # filters live in a shareable URL
    assert page.locator("table.jobs tbody tr").count() == 1
    page.goto(f"{served.url}/ui/schedules")  # a change from the page, in the audit trail
    page.click("form[action$='/schedules/nightly-report/run'] button")
    page.wait_for_selector(".flash")  # back on the schedules page, saying the job was queued
    page.goto(f"{served.url}/ui/audit?target=nightly-report")
    row = page.inner_text("table.audit tbody tr")
    assert "POST /ui/schedules/{name}/run" in row
    assert "test-admin" in row
    assert not watch.problems, watch.problems
    page.close()
    if SHOTS:
        screenshots(browser, served, ids, Path(SHOTS))
    served.app.job(ids["running"]).revoke(terminate=True)


def screenshots(browser: Browser, served: Served, ids: dict[str, str], folder: Path) -> None:
    """Every page (the failed jobs' list is the jobs page again), light and dark, and the
    login form as a logged-out visitor sees it."""
    folder.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        context = logged_in(browser, served, "admin", color_scheme=scheme)
        page = context.new_page()
        for name, path in pages(served, ids).items():
            if name == "jobs-failed":
                continue
            page.goto(served.url + path)
            settled(page)
            if name == "queues":  # two samples at least: the depth drawn since opening
                page.wait_for_selector("svg[data-spark] polyline", state="attached")
            page.screenshot(path=str(folder / f"dashboard-{name}-{scheme}.png"), full_page=False)
        context.close()
        visitor = browser.new_context(viewport={"width": 1100, "height": 760}, color_scheme=scheme)
        page = visitor.new_page()
        page.goto(f"{served.url}/ui/login")
        page.screenshot(path=str(folder / f"dashboard-login-{scheme}.png"), full_page=False)
        visitor.close()


def test_every_page_fits_a_phone_screen_and_the_login_form_shows_no_menu(
    browser: Browser, served: Served, ids: dict[str, str]
) -> None:
    visitor = browser.new_context(viewport=PHONE)
    page = visitor.new_page()
    page.goto(f"{served.url}/ui/jobs")
    assert "/ui/login" in page.url
    assert page.locator("header nav").count() == 0  # logged out: no menu of pages
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    visitor.close()
    context = logged_in(browser, served, "operate", viewport=PHONE)
    page = context.new_page()
    watch = Watch(page)
    scrolled = set()
    for name, path in pages(served, ids).items():
        page.goto(served.url + path)
        settled(page)
        # Nothing widens the page: the menu wraps, a wide table scrolls in its own box.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
        links = page.locator("header nav a")
        assert links.count() == 7
        for i in range(links.count()):
            box = links.nth(i).bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= PHONE["width"], f"{name}: menu cut off"
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SHOTS) / f"phone-{name}.png"), full_page=True)
        # One look at every table (a live page may swap its tables between two looks).
        tables = page.evaluate("""() => [...document.querySelectorAll('main table')].map(t => ({
            wide: t.scrollWidth > t.clientWidth, overflow: getComputedStyle(t).overflowX,
            kv: t.classList.contains('kv'), line: parseFloat(getComputedStyle(t).lineHeight),
            tallest: Math.max(0, ...[...t.querySelectorAll('tbody tr')].map(r => r.offsetHeight)),
        }))""")
        for table in tables:
            if table["wide"]:
                assert table["overflow"] == "auto", name
                scrolled.add(name)
            # No column of a list squeezed to a word a line: a row is a few lines at most
            # (the overview's failures were 170 px a row, their error text off-screen).
            # A key-value table's row may be as long as its value.
            if not table["kv"]:
                limit = 5 * table["line"]
                assert table["tallest"] <= limit, f"{name}: a row {table['tallest']}px tall"
    assert "jobs" in scrolled  # its nine columns do not fit: the table scrolls, not the page
    assert not watch.problems, watch.problems
    context.close()


def test_progress_moves_without_reload_and_terminate_ends_the_job_revoked(
    admin: BrowserContext, served: Served
) -> None:
    job = steps.delay(40, 0.25)
    page = admin.new_page()
    watch = Watch(page)
    page.goto(f"{served.url}/ui/jobs/{job.id}")
    page.evaluate("window.stayedOnPage = true")  # a reload would lose it
    bar = page.locator("[data-test=progress] progress")

    def value() -> float:
        return float(bar.get_attribute("value") or 0)

    first = wait_for(lambda: value() > 0 and value(), timeout=10, what="progress shown")
    wait_for(lambda: value() > first, timeout=10, what="the bar to move")
    assert page.evaluate("window.stayedOnPage") is True
    assert "step" in page.inner_text("[data-test=progress] .msg")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("form[action$='/cancel'] button.danger")  # Terminate, after its confirmation
    page.wait_for_selector(".summary .state.s-revoked", timeout=15_000)
    assert job.record().state is State.REVOKED
    # The options follow without a reload: the job ended, so it is kept until a time.
    page.evaluate("window.stayedOnPage = true")  # the cancel's redirect loaded this page
    kept = page.locator("tr:has(th:text-is('kept until')) td")
    wait_for(lambda: kept.inner_text() != "-", timeout=10, what="'kept until' to be shown")
    assert page.evaluate("window.stayedOnPage") is True
    assert not watch.problems, watch.problems
    page.close()


def test_the_banner_after_cancel_follows_the_job_a_task_that_checks_stops(
    admin: BrowserContext, served: Served
) -> None:
    """Cancel (no terminate) on a running job whose task checks ``self.is_revoked()``: the
    banner never says "flagged ... runs to the end" beside a job shown REVOKED."""
    job = archive.delay(400, 0.05)
    wait_for(lambda: job.record().progress, timeout=10, what="the job to run")
    page = admin.new_page()
    watch = Watch(page)
    page.goto(f"{served.url}/ui/jobs/{job.id}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("form[action$='/cancel'] button:not(.danger)")  # Cancel, after its confirmation
    page.wait_for_selector(".summary .state.s-revoked", timeout=15_000)
    banner = page.locator("[data-test=revoke-status]")
    wait_for(lambda: "has stopped" in banner.inner_text(), timeout=10, what="the banner")
    said = banner.inner_text()
    assert "flagged" not in said
    assert said.startswith(f"job {job.id} was running when it was revoked and has stopped")
    assert "the task saw it (self.is_revoked()) and stopped: stopped after" in said
    assert page.locator(".flash").count() == 1  # no one-time message left beside it
    assert job.record().state is State.REVOKED
    assert not watch.problems, watch.problems
    page.close()


def test_pausing_a_queue_on_the_page_stops_claims_and_resuming_restarts_them(
    admin: BrowserContext, served: Served
) -> None:
    app = served.app
    page = admin.new_page()
    page.goto(f"{served.url}/ui/queues")
    page.click("[data-test=pause-default]")
    page.wait_for_selector("[data-test=paused-default]")
    assert "paused" in page.inner_text(".flash")
    assert "default" in app.backend.paused_queues()

    held = add.delay(20, 22)
    # The live worker goes on claiming from another queue, so it is not merely idle:
    assert encode.delay("b").get(timeout=20) == "b.webm"
    assert held.record().state is State.PENDING

    page.click("[data-test=resume-default]")
    page.wait_for_selector("[data-test=pause-default]")
    assert held.get(timeout=20) == 42
    # The depth drawn since the page opened, from the figures each live refresh brought.
    page.wait_for_selector("svg[data-spark=default] polyline.waiting", state="attached")
    # Paused and resumed elsewhere (CLI, API): the page follows the queue events, well
    # before its 5 s tick would refresh it.
    page.evaluate("window.stayedOnPage = true")
    control.pause_queue(app, "media")
    page.wait_for_selector("[data-test=paused-media]", timeout=3000)
    control.resume_queue(app, "media")
    page.wait_for_selector("[data-test=paused-media]", state="detached", timeout=3000)
    assert page.evaluate("window.stayedOnPage") is True
    page.close()


def test_a_read_token_sees_no_control_and_a_forged_post_is_refused(
    browser: Browser, served: Served
) -> None:
    context = logged_in(browser, served, "read")
    page = context.new_page()
    for path in ("/ui/", "/ui/jobs", "/ui/queues", "/ui/schedules", "/ui/workers"):
        page.goto(served.url + path)
        changes = page.locator("form[method=post]:not([action$='/logout'])")
        assert changes.count() == 0, f"{path} shows a control to a read token"
    assert page.inner_text("[data-role]") == "read"
    secret = served.tokens["read"]
    origin = {"Origin": served.url}
    # The right CSRF field and origin: still refused, by role.
    forged = context.request.post(f"{served.url}/ui/queues/default/pause",
                                  form={"csrf": csrf_for(secret)}, headers=origin)  # fmt: skip
    assert forged.status == 403
    assert "needs the operate role" in forged.text()
    assert "default" not in served.app.backend.paused_queues()
    # Another site's form, with an operator's session: refused, by origin and CSRF.
    operator = logged_in(browser, served, "operate")
    cross = operator.request.post(f"{served.url}/ui/queues/default/pause", form={"csrf": "x"},
                                  headers={"Origin": "https://evil.example"})  # fmt: skip
    assert cross.status == 403
    no_field = operator.request.post(f"{served.url}/ui/queues/default/pause", headers=origin)
    assert no_field.status == 403
    assert operator.request.get(f"{served.url}/ui/queues/default/pause").status in (404, 405)
    assert "default" not in served.app.backend.paused_queues()
    operator.close()
    context.close()


def test_a_schedule_edited_on_the_page_fires_on_its_new_time(
    admin: BrowserContext, served: Served
) -> None:
    app = served.app
    app.schedules.add("yearly", "dash.add", cron="0 0 1 1 *", args=[1, 1])  # not due today
    page = admin.new_page()
    page.goto(f"{served.url}/ui/schedules")
    row = page.locator("#schedule-yearly")
    row.locator("input[name=cron]").fill("")
    row.locator("input[name=every]").fill("1")
    row.locator("form.edit button").click()
    page.wait_for_selector(".flash")
    assert "every 1 s" in page.inner_text(".flash")
    fired = wait_for(lambda: app.schedules.get("yearly").last_job_id, timeout=15, what="a tick")
    assert app.job(fired).get(timeout=20) == 2
    page.reload()
    assert "every 1.0 s" in page.inner_text("#schedule-yearly")
    page.close()


def test_an_interval_schedule_switched_to_a_cron_in_the_form_shows_the_cron(
    admin: BrowserContext, served: Served
) -> None:
    served.app.schedules.add("minutely", "dash.add", every=60, args=[1, 1])
    page = admin.new_page()
    page.goto(f"{served.url}/ui/schedules")
    settled(page)
    form = page.locator("#schedule-minutely form.edit")
    assert form.locator("input[name=every]").input_value() == "60"  # the current interval
    form.locator("input[name=cron]").fill("*/5 * * * *")  # typing a cron empties it
    assert form.locator("input[name=every]").input_value() == ""
    form.locator("button").click()
    page.wait_for_selector(".flash")
    assert "now fires on cron '*/5 * * * *'" in page.inner_text(".flash")
    assert "cron */5 * * * *" in page.inner_text("#schedule-minutely")
    assert served.app.schedules.get("minutely").schedule.cron == "*/5 * * * *"
    # A refused edit comes back as typed, and stays so through the page's live refreshes.
    form.locator("input[name=cron]").fill("61 * * * *")
    form.locator("button").click()
    page.wait_for_selector(".flash.bad")
    assert "'61 * * * *' is not valid: the minute field is '61'; it takes 0-59" in page.inner_text(
        ".flash"
    )
    refreshes = int(page.evaluate("document.body.dataset.refreshes || 0"))
    page.wait_for_function(f"Number(document.body.dataset.refreshes || 0) > {refreshes}")
    assert form.locator("input[name=cron]").input_value() == "61 * * * *"
    assert served.app.schedules.get("minutely").schedule.cron == "*/5 * * * *"
    page.close()
