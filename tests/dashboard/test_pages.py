"""The dashboard's pages and forms over ASGI, on the memory backend with a fake clock:
login and sessions, the auth modes, roles and CSRF on every change, pagination, bulk
actions, purge's count, a dead worker's held jobs, schedules. The browser tests
(test_browser.py) show the same pages live in chromium."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import httpx
import pytest

from conveyor import App, control
from conveyor.loader import load_app
from conveyor.records import Lease, WorkerInfo
from conveyor.states import State
from conveyor.testing import FakeClock, drain, use_backend
from conveyor.web import TokenStore, create_api
from conveyor.web.auth import AuthMode
from conveyor.web.dashboard.session import csrf_for
from conveyor.worker.execution import Outcome
from conveyor.workflows import chain, group

T = TypeVar("T")
Scenario = Callable[[httpx.AsyncClient], Awaitable[T]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(clock: FakeClock) -> Iterator[App]:
    app = load_app("tests.dashboard.tasks:app")
    with use_backend(app, "memory://", clock=clock):
        yield app
    app.aio.close()


def browse(
    app: App, scenario: Scenario[T], auth: AuthMode = "required", host: str = "localhost"
) -> T:
    async def main() -> T:
        transport = httpx.ASGITransport(app=create_api(app, auth=auth))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            return await scenario(client)

    return asyncio.run(main())


async def login(client: httpx.AsyncClient, secret: str) -> str:
    """Log in with ``secret``; the CSRF field the session's forms carry."""
    r = await client.post("/ui/login", data={"token": secret, "next": "/ui/queues"})
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/queues"
    return csrf_for(secret)


def token(app: App, role: str) -> str:
    return TokenStore(app.backend).create(f"t-{role}", role)[1]


def read_pages(app: App, secret: str, *paths: str) -> list[str]:
    """The HTML of ``paths``, read in one session logged in with ``secret``."""

    async def scenario(c: httpx.AsyncClient) -> list[str]:
        await login(c, secret)
        return [(await c.get(path)).text for path in paths]

    return browse(app, scenario)


def test_login_sessions_and_the_auth_modes(app: App) -> None:
    secret = token(app, "read")

    async def scenario(c: httpx.AsyncClient) -> None:
        r = await c.get("/ui/jobs?state=FAILURE")
        assert r.status_code == 303
        assert r.headers["location"] == "/ui/login?next=%2Fui%2Fjobs%3Fstate%3DFAILURE"
        assert (await c.get("/ui/events")).status_code == 401  # the stream too
        form = await c.get("/ui/login")
        assert "<nav>" not in form.text  # logged out: no menu of pages it cannot open
        assert 'name="token"' in form.text
        # The app's own command, not a placeholder to edit (a new user copied "yourapp").
        assert f"<code>{app.command} tokens create" in form.text
        assert app.command.startswith("conveyor -A tests.dashboard.tasks")
        bad = await c.post("/ui/login", data={"token": "cvy_nope_x"})
        assert bad.status_code == 401
        assert "not valid" in bad.text
        # A next pointing elsewhere is not followed (no open redirect).
        r = await c.post("/ui/login", data={"token": secret, "next": "https://evil.example/"})
        assert r.headers["location"] == "/ui/"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "path=/ui" in cookie
        page = await c.get("/ui/")
        assert page.headers["x-frame-options"] == "DENY"  # no clickjacking of the buttons
        assert page.status_code == 200
        assert "t-read" in page.text
        workers = await c.get("/ui/workers")
        assert f"Start one: <code>{app.command} worker</code>" in workers.text
        TokenStore(app.backend).revoke(secret.split("_")[1])  # revoked: the session ends
        assert (await c.get("/ui/")).status_code == 303
        assert (await c.get("/")).headers["location"] == "/ui/"

    browse(app, scenario)


def test_no_login_on_loopback_until_a_token_exists(app: App) -> None:
    async def local(c: httpx.AsyncClient) -> int:
        return (await c.get("/ui/")).status_code

    assert browse(app, local, auth="until-first-token") == 200
    assert browse(app, local, auth="until-first-token", host="conveyor.example") == 303
    assert browse(app, local, auth="off", host="conveyor.example") == 200
    token(app, "read")
    assert browse(app, local, auth="until-first-token") == 303


def test_every_change_needs_the_role_the_csrf_field_and_this_origin(app: App) -> None:
    operate, admin = token(app, "operate"), token(app, "admin")
    app.schedules.add("nightly", "dash.add", cron="0 3 * * *", args=[1, 2])
    app.schedules.add("berlin", "dash.add", cron="0 1 * * *", tz="Europe/Berlin", args=[1, 2])
    # another app's, in the same store: this app's scheduler does not fire it
    other = App("legacy", backend=app.backend)
    other.task(name="legacy.ping")(lambda: None)
    other.schedules.add("legacy-ping", "legacy.ping", every=30)

    async def scenario(c: httpx.AsyncClient) -> None:
        csrf = await login(c, operate)
        page = (await c.get("/ui/schedules")).text
        assert "nightly" in page
        # only another app's schedule names its app
        assert page.count('data-test="owner"') == 1
        assert "app legacy: its own scheduler fires it" in page
        assert "next fire (UTC)" in page
        assert "berlin" in page
        assert re.search(r'data-test="next-in-zone">\d{4}-\d\d-\d\d 01:00:00 Europe/Berlin<', page)
        assert page.count('data-test="next-in-zone"') == 1  # nightly's cron counts in UTC
        assert "Run now" not in page
        refused = await c.post("/ui/schedules/nightly/run", data={"csrf": csrf})
        assert refused.status_code == 403
        assert "needs the admin role" in refused.text
        assert (await c.post("/ui/queues/default/pause", data={})).status_code == 403
        cross = await c.post("/ui/queues/default/pause", data={"csrf": csrf},
                             headers={"Origin": "https://evil.example"})  # fmt: skip
        assert cross.status_code == 403
        site = await c.post("/ui/queues/default/pause", data={"csrf": csrf},
                            headers={"Sec-Fetch-Site": "cross-site"})  # fmt: skip
        assert site.status_code == 403
        assert app.backend.paused_queues() == set()
        ok = await c.post("/ui/queues/default/pause", data={"csrf": csrf},
                          headers={"Origin": "http://localhost", "Referer": "http://localhost/ui/queues"})  # fmt: skip
        assert ok.status_code == 303
        assert ok.headers["location"] == "/ui/queues"
        assert app.backend.paused_queues() == {"default"}
        shown = await c.get("/ui/queues")
        assert "queue default paused" in shown.text  # the outcome, shown once
        assert "queue default paused" not in (await c.get("/ui/queues")).text

        csrf = await login(c, admin)
        assert (await c.post("/ui/schedules/nightly/run", data={"csrf": csrf})).status_code == 303
        assert app.schedules.get("nightly").schedule.cron == "0 3 * * *"
        both = await c.post(
            "/ui/schedules/nightly/edit", data={"csrf": csrf, "cron": "* * * * *", "every": "5"}
        )
        assert both.status_code == 303
        refused = (await c.get("/ui/schedules")).text
        assert "not both" in refused
        # the refused form comes back as it was filled in, once (no script needed)
        assert 'value="* * * * *"' in refused
        assert 'value="5"' in refused
        assert 'value="5"' not in (await c.get("/ui/schedules")).text
        await c.post("/ui/schedules/nightly/edit", data={"csrf": csrf, "every": "30"})
        assert app.schedules.get("nightly").schedule.every == 30
        await c.post(
            "/ui/queues/файлы/pause", data={"csrf": csrf}
        )  # a message in any script, through a cookie
        flash = (await c.get("/ui/queues")).text
        assert "error: queue &#39;файлы&#39; is not a valid queue name" in flash
        await c.post("/ui/schedules/nightly/pause", data={"csrf": csrf})
        assert app.schedules.get("nightly").schedule.paused
        # Who did what from the dashboard, in the trail the API's GET /audit reads.
        trail = (await c.get("/ui/audit")).text
        assert "POST /ui/schedules/{name}/pause" in trail
        assert "forbidden (403)" in trail  # the operate token's refused run
        assert "bad_request (400)" in trail  # the bad queue name: the code the API answers
        mine = (await c.get("/ui/audit", params={"target": "default"})).text
        assert "t-operate" in mine
        assert "POST /ui/queues/{name}/pause" in mine
        assert "nightly" not in mine

    browse(app, scenario)
    ran = [j for j in app.backend.list_jobs() if j.headers.get("run_now")]
    assert [(j.task, j.headers["schedule"]) for j in ran] == [("dash.add", "nightly")]


def test_cookies_set_over_https_are_secure(app: App) -> None:
    operate = token(app, "operate")

    async def main() -> list[str]:
        transport = httpx.ASGITransport(app=create_api(app, auth="required"))
        async with httpx.AsyncClient(transport=transport, base_url="https://localhost") as c:
            csrf = await login(c, operate)
            done = await c.post("/ui/queues/default/pause", data={"csrf": csrf},
                                headers={"Origin": "https://localhost"})  # fmt: skip
            assert done.status_code == 303
            return done.headers.get_list("set-cookie")

    (flash,) = asyncio.run(main())  # the outcome shown on the next page
    assert "secure" in flash.lower().split("; ")


def test_jobs_pages_filters_and_bulk_actions(app: App, clock: FakeClock) -> None:
    ids = []
    for i in range(5):
        ids.append(app.send_task("dash.add", [i, i]).id)
        clock.advance(1)
    encoded = app.send_task("dash.encode", ["x"]).id
    secret = token(app, "operate")

    async def scenario(c: httpx.AsyncClient) -> None:
        csrf = await login(c, secret)
        first = await c.get("/ui/jobs", params={"queue": "default", "limit": 2})
        assert ids[4][-12:] in first.text
        assert ids[2][-12:] not in first.text
        assert encoded[-12:] not in first.text
        older = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
        second = await c.get(older.replace("&amp;", "&"))
        assert ids[2][-12:] in second.text
        assert ids[4][-12:] not in second.text
        oldest = await c.get("/ui/jobs", params={"queue": "default", "limit": 2, "sort": "oldest"})
        assert ids[0][-12:] in oldest.text
        assert ids[2][-12:] not in oldest.text
        newer = oldest.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
        assert "newer »" in oldest.text
        assert ids[2][-12:] in (await c.get(newer.replace("&amp;", "&"))).text
        assert (await c.get("/ui/jobs", params={"after": "yesterday"})).status_code == 400
        assert (await c.get("/ui/jobs/no-such-job")).status_code == 404

        queues = (await c.get("/ui/queues")).text
        assert "Revoke the 5 waiting jobs of queue default?" in queues
        r = await c.post("/ui/jobs", data={"csrf": csrf, "action": "cancel", "ids": ids[:2]})
        assert r.status_code == 303
        assert "2 of 2 selected jobs cancelled" in (await c.get("/ui/jobs")).text
        await c.post("/ui/jobs", data={"csrf": csrf, "action": "retry", "ids": ids[:1]})
        assert app.job(ids[0]).state is State.PENDING
        await c.post("/ui/queues/default/purge", data={"csrf": csrf})
        assert "4 waiting jobs revoked" in (await c.get("/ui/queues")).text

    browse(app, scenario)
    assert app.job(ids[4]).state is State.REVOKED


def test_bulk_actions_are_audited_with_their_verb_the_jobs_and_who(app: App) -> None:
    """A bulk cancel or retry from the jobs page says in the audit trail what it did to
    which jobs, and by whom, as the API's bulk routes do: a count and the first ids."""
    ids = [app.send_task("dash.add", [i, i]).id for i in range(25)]
    secret = token(app, "operate")
    token_id = TokenStore(app.backend).all()[0].id

    async def scenario(c: httpx.AsyncClient) -> None:
        csrf = await login(c, secret)
        await c.post("/ui/jobs", data={"csrf": csrf, "action": "cancel", "ids": ids[:2]})
        await c.post("/ui/jobs", data={"csrf": csrf, "action": "retry", "ids": ids[:1]})
        await c.post("/ui/jobs", data={"csrf": csrf, "action": "cancel", "ids": ids})
        api = {"Authorization": f"Bearer {secret}"}
        await c.post("/api/jobs/retry", json={"states": ["REVOKED"]}, headers=api)

    browse(app, scenario)
    retried, many, one, two = app.backend.audit()[:4]
    assert (two.action, two.target, two.actor, two.actor_id) == (
        "POST /ui/jobs (cancel)", "2 jobs", "t-operate", token_id
    )  # fmt: skip
    assert (two.detail["count"], two.detail["ids"], two.detail["done"]) == (2, ids[:2], 2)
    assert (one.action, one.target, one.detail["ids"]) == ("POST /ui/jobs (retry)", ids[0], ids[:1])
    assert (many.target, many.detail["count"], many.detail["done"]) == ("25 jobs", 25, 24)
    assert many.detail["ids"] == ids[:20]  # the first ones, and how many
    assert (retried.action, retried.target, retried.detail["count"]) == (
        "POST /jobs/retry", "25 jobs", 25
    )  # fmt: skip


def test_a_job_in_a_big_group_lists_its_nearest_members_only(app: App) -> None:
    add = app.tasks["dash.add"]
    wide = group(*(add.s(i, i) for i in range(40))).apply_async(app)
    ids = wide.member_ids()
    secret = token(app, "read")

    async def scenario(c: httpx.AsyncClient) -> str:
        await login(c, secret)
        return (await c.get(f"/ui/jobs/{ids[30]}")).text

    page = browse(app, scenario)
    group_part = page.split('data-test="group"')[1].split("</ul>")[0]
    assert group_part.count("<li>") == 24  # of 39 mates: those around it
    assert ids[30][-12:] not in group_part
    assert ids[29][-12:] in group_part
    assert ids[0][-12:] not in group_part
    assert "and 15 more" in page
    assert 'start="16"' in page  # nodes 16 to 40 of 40
    assert "25 of 40 shown" in page


def test_a_dead_worker_shows_the_jobs_it_held_and_when_they_return(
    app: App, clock: FakeClock
) -> None:
    job = app.send_task("dash.add", [1, 2])
    info = WorkerInfo(id="w1-id", name="w1", host="h1", pid=7, queues=["default"], pool="thread",
                      concurrency=2, version="9.9", tasks=["dash.add"], started_at=clock.now)  # fmt: skip
    (claimed,) = app.backend.claim(["default"], info.id, 1, 30)
    info.running = [claimed.id]
    app.backend.heartbeat(info, [Lease(claimed.id, claimed.lease_token or "")], 30)
    clock.advance(20)  # silent for 20 s: past its 3 heartbeats, within the registry's minute
    secret = token(app, "read")

    other = app.send_task("dash.add", [3, 4])

    async def scenario(c: httpx.AsyncClient) -> tuple[str, str, str]:
        await login(c, secret)
        pages = [await c.get(p) for p in ("/ui/workers", "/ui/", "/ui/jobs?worker=w1-id")]
        return pages[0].text, pages[1].text, pages[2].text

    workers, overview, held = browse(app, scenario)
    assert job.id[-12:] in held  # the jobs it ran, by the worker filter
    assert other.id[-12:] not in held
    assert '<option value="w1-id" selected>w1</option>' in held
    assert "PRESUMED DEAD" in workers
    assert "Jobs it held" in workers
    assert job.id[-12:] in workers
    assert "in 10.0 s" in workers
    assert "presumed dead" in overview
    assert workers.count("<form") == 1
    assert 'action="/ui/logout"' in workers


def test_a_jobs_worker_is_named_when_it_stopped_or_died_and_said_gone_after(
    app: App, clock: FakeClock
) -> None:
    def run(worker_id: str, name: str) -> str:
        app.send_task("dash.add", [1, 2])
        info = WorkerInfo(id=worker_id, name=name, host="box", pid=int(name[-2:]), queues=["default"],
                          pool="thread", concurrency=1, version="9.9", tasks=["dash.add"],
                          started_at=clock.now)  # fmt: skip
        app.backend.heartbeat(info, [], 30)
        (job,) = app.backend.claim(["default"], worker_id, 1, 30)
        app.backend.complete(Lease(job.id, job.lease_token or ""), 3)
        return job.id

    stopped, killed, live = (
        run("id-a", "a@box:42"),
        run("id-b", "b@box:43"),
        run("id-c", "c@box:44"),
    )
    app.backend.unregister_worker("id-a")
    clock.advance(20)  # b and c silent: presumed dead; c beats again
    app.backend.heartbeat(app.backend.worker_directory(["id-c"])["id-c"], [], 30)
    app.send_task("dash.add", [5, 6])
    (orphan,) = app.backend.claim(["default"], "0190aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee", 1, 30)
    secret = token(app, "read")

    async def scenario(c: httpx.AsyncClient) -> list[str]:
        await login(c, secret)
        paths = ["/ui/jobs", f"/ui/jobs/{stopped}", f"/ui/jobs/{killed}", f"/ui/jobs/{live}",
                 f"/ui/jobs/{orphan.id}", "/ui/jobs?worker=id-a"]  # fmt: skip
        return [(await c.get(p)).text for p in paths]

    jobs, job_a, job_b, job_c, job_orphan, filtered = browse(app, scenario)
    named = '<span class="worker-name" title="host box · pid {}">{}</span>'
    assert named.format(42, "a@box:42") + ' <small class="worker-state">(stopped)</small>' in jobs
    assert (
        named.format(43, "b@box:43") + ' <small class="worker-state">(presumed dead)</small>'
        in jobs
    )
    assert named.format(44, "c@box:44") + "</a>" in jobs  # running: no state said
    assert '>eeeeeeeeeeee</span> <small class="worker-state">(gone)' in jobs  # no entry: the id
    assert 'a@box:42</span> <small class="worker-state">(stopped)' in job_a
    assert 'b@box:43</span> <small class="worker-state">(presumed dead)' in job_b
    assert "c@box:44</span></a>" in job_c
    assert "(gone)" in job_orphan
    assert '<option value="id-a" selected>a@box:42 (stopped)</option>' in filtered
    clock.advance(86_400)  # a day after the last heartbeats: no longer known

    async def later(c: httpx.AsyncClient) -> str:
        await login(c, secret)
        return (await c.get(f"/ui/jobs/{stopped}")).text

    assert "(gone)" in browse(app, later)


def test_a_jobs_page_reads_the_worker_registry_once(
    app: App, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The filters' queues and names and the jobs' worker labels come from one read;
    the directory is read only for workers no longer registered (here, one stopped)."""
    for worker_id in ("id-a", "id-b"):
        info = WorkerInfo(id=worker_id, name=f"{worker_id}@box", host="box", pid=1,
                          queues=["default"], pool="thread", concurrency=1, version="9.9",
                          tasks=["dash.add"], started_at=clock.now)  # fmt: skip
        app.backend.heartbeat(info, [], 30)
        app.send_task("dash.add", [1, 2])
        (job,) = app.backend.claim(["default"], worker_id, 1, 30)
        app.backend.complete(Lease(job.id, job.lease_token or ""), 3)
    reads: list[str] = []
    for verb in ("workers", "worker_directory"):
        monkeypatch.setattr(app.backend, verb, spy(reads, verb, getattr(app.backend, verb)))
    secret = token(app, "read")

    async def scenario(c: httpx.AsyncClient) -> list[str]:
        await login(c, secret)
        page = (await c.get("/ui/jobs")).text
        assert "id-a@box</span>" in page
        assert "id-b@box</span>" in page
        first = list(reads)
        reads.clear()
        app.backend.unregister_worker("id-a")
        page = (await c.get("/ui/jobs")).text
        assert 'id-a@box</span> <small class="worker-state">(stopped)' in page
        return first

    assert browse(app, scenario) == ["workers"]
    assert reads == ["workers", "worker_directory"]


def spy(reads: list[str], name: str, verb: Callable[..., T]) -> Callable[..., T]:
    def counted(*args: object) -> T:
        reads.append(name)
        return verb(*args)

    return counted


def test_throughput_counts_finished_and_failed_jobs_per_step(app: App, clock: FakeClock) -> None:
    for fails in (False, True, False):
        app.send_task("dash.add", [1, 1])
        (job,) = app.backend.claim(["default"], "w", 1, 30)
        lease = Lease(job.id, job.lease_token or "")
        if fails:
            app.backend.fail(lease, {"type": "ValueError", "message": "bad"})
        else:
            app.backend.complete(lease, 2)
        clock.advance(70)  # each in its own minute
    buckets = control.throughput(app, window=600, step=60)
    assert len(buckets) == 10
    assert [(b.finished, b.failed) for b in buckets[-4:-1]] == [(1, 0), (1, 1), (1, 0)]
    assert sum(b.finished for b in control.throughput(app, window=600, step=60, queue="media")) == 0
    with pytest.raises(ValueError, match="step"):
        control.throughput(app, window=60, step=120)


def test_the_last_minute_count_says_it_is_an_estimate(app: App, clock: FakeClock) -> None:
    for _ in range(2):
        app.send_task("dash.add", [1, 1])
        (job,) = app.backend.claim(["default"], "w", 1, 30)
        app.backend.complete(Lease(job.id, job.lease_token or ""), 2)
    clock.advance(30)

    async def scenario(client: httpx.AsyncClient) -> str:
        r = await client.get("/ui/")
        assert r.status_code == 200
        return r.text

    page = browse(app, scenario, auth="off")
    block = page.split('class="state">LAST MIN</span>')[1].split("</span>")[0]
    assert "<b>~2</b>" in block  # read from per-minute counts: an estimate, shown as one
    title = page.split('class="state">LAST MIN')[0].rsplit('<span class="total"', 1)[1]
    assert "estimated from per-minute counts" in title


def test_refusals_under_the_dashboard_are_pages_and_the_api_keeps_json(app: App) -> None:
    """Each refusal's title says what happened (a missing job and a bad filter were both
    titled "Not found", a refused form "Refused")."""
    secret, read_only = token(app, "operate"), token(app, "read")

    async def scenario(c: httpx.AsyncClient) -> None:
        await login(c, secret)
        for path, status, title, said in [
            ("/ui/nope", 404, "No such page", "Not Found"),
            ("/ui/jobs/nope", 404, "No such job", "nope"),
            ("/ui/workflows/nope", 404, "No such workflow", "no workflow has the id"),
            ("/ui/jobs?after=yesterday", 400, "The address asks for something not valid",
             "not a date and time"),
            ("/ui/queues/media/pause", 405, "Not a page: a form&#39;s address", "not a visit"),
            ("/ui/jobs?limit=abc", 422, "A value in the address is not valid", "limit"),
        ]:  # fmt: skip
            r = await c.get(path)
            assert (r.status_code, r.headers["content-type"].split(";")[0]) == (status, "text/html")
            assert f"<title>{title} · Conveyor</title>" in r.text, path  # what happened, by name
            assert f"<h1>{title}</h1>" in r.text, path
            assert said in r.text, path
            assert 'href="/ui/"' in r.text  # a way back, in the dashboard's layout
        forged = await c.post("/ui/queues/media/pause", data={})
        assert forged.status_code == 403
        assert "<h1>Refused: the form did not come from this dashboard</h1>" in forged.text
        transport = httpx.ASGITransport(app=create_api(app, auth="required"))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as reader:
            await login(reader, read_only)
            refused = await reader.post(
                "/ui/queues/media/pause", data={"csrf": csrf_for(read_only)}
            )
        assert refused.status_code == 403
        assert "<h1>Not allowed for the read role</h1>" in refused.text
        assert "it needs the operate role" in refused.text
        assert "CSRF" in forged.text
        assert "<nav>" in forged.text
        api = await c.get("/api/nope")
        assert api.status_code == 404
        assert api.json()["error"]["code"] == "not_found"

    browse(app, scenario)


def test_a_running_job_cancelled_without_terminate_says_so_on_its_page(app: App) -> None:
    """Cancelled while it runs, a job stays STARTED until its task looks: the page says
    the revoke is pending (it read as if the cancel had done nothing)."""
    job = app.tasks["dash.add"].delay(1, 2)
    (claimed,) = app.backend.claim(["default"], "w", 1, 30)
    assert claimed.id == job.id
    job.revoke()
    secret = token(app, "read")

    async def scenario(c: httpx.AsyncClient) -> str:
        await login(c, secret)
        return (await c.get(f"/ui/jobs/{job.id}")).text

    page = browse(app, scenario)
    assert "STARTED" in page
    assert "revoked while running, without terminate" in page
    assert (
        "it stops only if the task checks is_revoked() on its context (the task must check for it)"
        in page
    )


def test_the_banner_after_cancel_says_what_the_cancel_has_done_by_now(app: App) -> None:
    """It said "flagged as revoked ... else it runs to the end" beside a job the page showed
    REVOKED already (its task had stopped on the revoke in between)."""
    running, waiting = app.tasks["dash.add"].delay(1, 2), app.tasks["dash.add"].delay(3, 4)
    (claimed,) = app.backend.claim(["default"], "w", 1, 30)
    assert claimed.id == running.id
    secret = token(app, "operate")

    def summary(page: str) -> str:
        return page.split('<p class="summary">', 1)[1].split("</p>", 1)[0]

    def banner(page: str) -> str:
        return page.split('data-test="revoke-status">', 1)[1].split("</p>", 1)[0]

    async def cancel(c: httpx.AsyncClient, csrf: str, job_id: str) -> str:
        r = await c.post(f"/ui/jobs/{job_id}/cancel", data={"csrf": csrf})
        assert (r.status_code, r.headers["location"]) == (303, f"/ui/jobs/{job_id}?cancelled=1")
        page = (await c.get(r.headers["location"])).text
        assert page.count('class="flash') == 1  # the live one only, no one-time message
        return page

    async def scenario(c: httpx.AsyncClient) -> list[str]:
        csrf = await login(c, secret)
        flagged = await cancel(c, csrf, running.id)
        # the task sees it and stops (the worker stores REVOKED): the same page, refreshed
        assert not app.backend.ack([Outcome(claimed.id, claimed.lease_token or "", State.REVOKED, error={
            "type": "Revoked", "message": "revoked while running; the task saw it "
            "(self.is_revoked()) and stopped", "traceback": None})])  # fmt: skip
        stopped = (await c.get(f"/ui/jobs/{running.id}?cancelled=1")).text
        return [flagged, stopped, await cancel(c, csrf, waiting.id)]

    flagged, stopped, never = browse(app, scenario)
    assert "STARTED" in summary(flagged)
    assert banner(flagged) == (
        f"job {running.id} is running; flagged as revoked: the task sees it through "
        "is_revoked() on its context (self in a bind=True task, context in a Django task), "
        "else it runs to the end (revoke with terminate to stop it)"
    )
    assert "REVOKED" in summary(stopped)
    assert banner(stopped) == (
        f"job {running.id} was running when it was revoked and has stopped: it ended REVOKED "
        "(revoked while running; the task saw it (self.is_revoked()) and stopped)"
    )
    assert "REVOKED" in summary(never)
    assert banner(never) == f"job {waiting.id} was revoked while it waited: it will never run"


def test_the_schedule_form_refuses_an_interval_that_is_not_a_finite_duration_in_range(
    app: App,
) -> None:
    admin = token(app, "admin")
    app.schedules.add("nightly", "dash.add", every=60, args=[1, 2])

    async def scenario(c: httpx.AsyncClient) -> None:
        csrf = await login(c, admin)
        for typed, error in [
            ("nan", "error: &#39;nan&#39; is not a duration"),
            ("inf", "error: &#39;inf&#39; is not a duration"),
            ("1e999", "error: &#39;1e999&#39; is not a duration"),
            ("-5", "error: &#39;-5&#39; is not a duration"),
            ("9" * 30, "every must be 1 s to 366 days (a year)"),
            ("0.5", "every must be 1 s to"),
        ]:
            r = await c.post("/ui/schedules/nightly/edit", data={"csrf": csrf, "every": typed})
            assert r.status_code == 303
            page = await c.get("/ui/schedules")
            assert page.status_code == 200
            assert error in page.text, typed
            assert app.schedules.get("nightly").schedule.every == 60
        await c.post("/ui/schedules/nightly/edit", data={"csrf": csrf, "every": "15m"})
        assert "now fires every 900 s" in (await c.get("/ui/schedules")).text
        assert app.schedules.get("nightly").schedule.every == 900
        # what the form shows is what it takes back: 30 days was filled in as 2.592e+06,
        # which the duration parser refuses, so Save without a change was refused
        app.schedules.update("nightly", every=30 * 86400)
        shown = (await c.get("/ui/schedules")).text
        every = shown.split('name="every"')[1].split('value="')[1].split('"')[0]
        assert every == "2592000"
        await c.post("/ui/schedules/nightly/edit", data={"csrf": csrf, "every": every})
        assert "error" not in (await c.get("/ui/schedules")).text.split("<main")[1][:400]
        assert app.schedules.get("nightly").schedule.every == 30 * 86400
        await c.post("/ui/schedules/nightly/edit", data={"csrf": csrf, "every": "900"})
        # as an earlier version stored it: the page says what is wrong, and the form fixes it
        spec = app.backend.schedules()["nightly"][0]
        app.backend.put_schedule("nightly", {**spec, "every": float("nan")})
        app.schedules.add("other", "dash.add", every=60, args=[1, 2])
        assert (await c.get("/ui/")).status_code == 200  # the overview runs doctor's checks
        page = await c.get("/ui/schedules")
        assert page.status_code == 200
        assert "schedules/other/edit" in page.text  # the others still show
        assert "schedules/nightly/edit" not in page.text
        await c.post("/ui/schedules/nightly/edit", data={"csrf": csrf, "every": "60"})
        assert "schedules/nightly/edit" in (await c.get("/ui/schedules")).text
        assert app.schedules.get("nightly").schedule.every == 60

    browse(app, scenario)


def test_a_failure_not_retried_says_why_and_a_lost_attempt_says_lost(
    app: App, clock: FakeClock
) -> None:
    """``max_retries=3`` and a RuntimeError: FAILURE at once (it is not in autoretry_for).
    The page read "attempt 1 of 4"; a killed worker's attempt read PENDING, LeaseExpired
    with no message, and a run time that was the lease's."""
    failed = app.send_task("dash.fail", ("boom",), max_retries=3)
    (claimed,) = app.backend.claim(["default"], "w", 1, 30)
    app.backend.fail(Lease(failed.id, claimed.lease_token or ""),
                     {"type": "RuntimeError", "message": "boom"})  # fmt: skip
    lost = app.tasks["dash.add"].delay(1, 2)
    info = WorkerInfo(id="w-2", name="default@vm:20138", host="vm", pid=20138, queues=["default"],
                      pool="process", concurrency=1, version="t", tasks=["dash.add"],
                      started_at=clock.now)  # fmt: skip
    app.backend.heartbeat(info, [], 30)
    app.backend.claim(["default"], info.id, 1, 30)
    clock.advance(36)
    assert app.backend.rescue_expired() == [lost.id]
    secret = token(app, "read")
    failed_page, lost_page = read_pages(app, secret, f"/ui/jobs/{failed.id}", f"/ui/jobs/{lost.id}")
    assert "attempt 1 of" not in failed_page
    assert (
        "not retried: RuntimeError is not in the task&#39;s autoretry_for (nor did the task call "
        "self.retry()); max_retries (3) bounds only the retries the task asks for"
    ) in failed_page
    assert "<b>lost</b>" in lost_page
    assert (
        "lost: worker default@vm:20138 stopped renewing its lease (killed, or its machine lost); "
        "found when the lease expired (36s after it started)"
    ) in lost_page


def test_the_local_viewer_is_told_no_login_is_needed_until_a_token_exists(app: App) -> None:
    async def scenario(c: httpx.AsyncClient) -> str:
        return (await c.get("/ui/")).text

    page = browse(app, scenario, auth="until-first-token")
    assert "no login needed on this machine until a token exists; role" in page
    assert "no token stored yet" not in page


@pytest.mark.parametrize(("auth", "csrf", "actor"),
                         [("until-first-token", "local", "local"), ("off", "off", "service")])  # fmt: skip
def test_a_tokenless_change_is_audited_by_one_name_from_the_api_and_the_dashboard(
    app: App, auth: AuthMode, csrf: str, actor: str
) -> None:
    """The same user in the same state (no token: on this machine before the first one,
    or with auth off) changes a queue through the API, then through the dashboard."""

    async def scenario(c: httpx.AsyncClient) -> None:
        assert (await c.post("/api/queues/default/pause")).status_code == 200
        r = await c.post("/ui/queues/default/resume", data={"csrf": csrf_for(csrf)})
        assert r.status_code == 303

    browse(app, scenario, auth=auth)
    trail = [(e.actor, e.action) for e in reversed(app.backend.audit())]
    assert trail == [(actor, "POST /queues/{name}/pause"), (actor, "POST /ui/queues/{name}/resume")]


def test_a_terminate_from_the_job_page_is_audited_as_a_terminate(app: App) -> None:
    job = app.tasks["dash.add"].delay(1, 2)
    app.backend.claim(["default"], "w", 1, 30)
    secret = token(app, "operate")

    async def scenario(c: httpx.AsyncClient) -> str:
        csrf = await login(c, secret)
        r = await c.post(f"/ui/jobs/{job.id}/cancel", data={"csrf": csrf, "terminate": "true"})
        assert r.status_code == 303
        return (await c.get("/ui/audit")).text

    trail = browse(app, scenario)
    assert "POST /ui/jobs/{job_id}/cancel (terminate)" in trail
    (entry,) = app.backend.audit(limit=5, target=job.id)
    assert entry.detail == {"params": {"job_id": job.id}, "did": "terminate"}


def test_the_dashboard_works_mounted_under_a_path_of_a_service(app: App) -> None:
    """A FastAPI user mounted ``create_api(app)`` at /ops: the pages redirected to /ui/,
    loaded their CSS from /ui/static and posted the login to /ui/login, all 404s."""
    from fastapi import FastAPI

    secret = token(app, "operate")
    service = FastAPI()
    service.mount("/ops", create_api(app, auth="required"))

    async def main() -> None:
        transport = httpx.ASGITransport(app=service)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            assert (await c.get("/ops/")).headers["location"] == "/ops/ui/"
            first = await c.get("/ops/ui/jobs")
            assert first.headers["location"] == "/ops/ui/login?next=%2Fops%2Fui%2Fjobs"
            form = await c.get("/ops/ui/login")
            assert form.status_code == 200
            assert 'href="/ops/ui/static/dashboard.css"' in form.text
            assert 'action="/ops/ui/login"' in form.text
            assert (await c.get("/ops/ui/static/dashboard.css")).status_code == 200
            r = await c.post("/ops/ui/login", data={"token": secret, "next": "/ops/ui/queues"})
            assert r.headers["location"] == "/ops/ui/queues"
            assert "path=/ops/ui" in r.headers["set-cookie"].lower()
            page = await c.get("/ops/ui/queues")
            assert page.status_code == 200
            assert 'href="/ops/ui/jobs"' in page.text
            assert 'aria-current="page"' in page.text  # the menu knows where it is
            assert 'action="/ops/ui/logout"' in page.text
            csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
            paused = await c.post("/ops/ui/queues/media/pause", data={"csrf": csrf},
                                  headers={"referer": "http://localhost/ops/ui/queues"})  # fmt: skip
            assert paused.headers["location"] == "/ops/ui/queues"
            assert "media" in app.backend.paused_queues()
            # a page of the service beside the dashboard is not where a form returns
            elsewhere = await c.post("/ops/ui/queues/media/resume", data={"csrf": csrf},
                                     headers={"referer": "http://localhost/ops/api/docs"})  # fmt: skip
            assert elsewhere.headers["location"] == "/ops/ui/queues"
            missing = await c.get("/ops/ui/nope")
            assert missing.status_code == 404
            assert 'href="/ops/ui/static/dashboard.css"' in missing.text  # a page, styled
            out = await c.post("/ops/ui/logout")
            assert out.headers["location"] == "/ops/ui/login"

    asyncio.run(main())
    app.aio.close()


def test_the_workflows_list_shows_each_workflows_state(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list named workflows only: whether one failed took opening each. Their
    members' records are read at once, not a read per workflow."""
    add, fail = app.tasks["dash.add"], app.tasks["dash.fail"]
    done = chain(add.s(1, 2), add.s(3)).apply_async(app)
    failed = chain(add.s(1, 1), fail.si("boom"), add.si(0, 0)).apply_async(app)
    drain(app)
    revoked = chain(add.s(5, 5), add.s(1)).apply_async(app)
    revoked.revoke()
    waiting = group(add.s(1, 1), add.s(2, 2)).apply_async(app)
    reads: list[str] = []
    monkeypatch.setattr(app.backend, "get_many", spy(reads, "get_many", app.backend.get_many))
    (page,) = read_pages(app, token(app, "read"), "/ui/workflows")
    assert reads == ["get_many"]
    rows = {w.id: row for w in (done, failed, revoked, waiting)
            for row in page.split("<tr>") if f'/ui/workflows/{w.id}"' in row}  # fmt: skip
    assert 's-success">SUCCESS<' in rows[done.id]
    assert 's-failure">FAILURE<' in rows[failed.id]
    assert 's-revoked">REVOKED<' in rows[revoked.id]
    assert 's-pending">PENDING<' in rows[waiting.id]
    assert "<td>3</td>" in rows[failed.id]  # its jobs, the one never run included


def test_the_workflows_list_reads_a_bounded_number_of_members(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every member of every listed workflow was read on each refresh: one group of
    50,000 took 1.9 s on Redis. Past the budget a workflow is listed without its state."""
    add = app.tasks["dash.add"]
    monkeypatch.setattr("conveyor.control.workflows.MEMBERS_READ", 5)
    large = group(*(add.s(i, i) for i in range(6))).apply_async(app)
    small = chain(add.s(1, 2), add.s(3)).apply_async(app)  # newer: listed first
    read: list[int] = []
    get_many = app.backend.get_many
    monkeypatch.setattr(app.backend, "get_many", lambda ids: read.append(len(ids)) or get_many(ids))
    (page,) = read_pages(app, token(app, "read"), "/ui/workflows")
    assert read == [2]  # the small one's members only
    rows = {w.id: row for w in (large, small)
            for row in page.split("<tr>") if f'/ui/workflows/{w.id}"' in row}  # fmt: skip
    assert 's-pending">PENDING<' in rows[small.id]
    assert "large: on its page" in rows[large.id]
    assert "<td>6</td>" in rows[large.id]


def test_the_overviews_recent_failures_come_newest_failure_first(
    app: App, clock: FakeClock
) -> None:
    """Ordered by creation, a job that failed a minute ago sat below one that failed an
    hour ago because it was created earlier."""
    early, late = (app.send_task("dash.add", [i, i]) for i in range(2))
    leases = {r.id: r.lease for r in app.backend.claim(["default"], "w", 2, 600)}
    app.backend.fail(leases[late.id], {"type": "ValueError", "message": "failed first"})
    clock.advance(3600)
    app.backend.fail(leases[early.id], {"type": "ValueError", "message": "failed last"})
    (overview,) = read_pages(app, token(app, "read"), "/ui/")
    failures = overview.split("<h2>Recent failures</h2>")[1]
    assert failures.index("failed last") < failures.index("failed first")


def test_a_job_shows_a_progress_bar_only_once_its_task_reported_progress(app: App) -> None:
    """A running job that never reported progress showed an empty bar at 0 %, as if
    it were stuck at the start."""
    job = app.send_task("dash.add", [1, 2])
    waiting = app.send_task("dash.add", [3, 4])
    (claimed,) = app.backend.claim(["default"], "w", 1, 600)
    assert claimed.id == job.id
    secret = token(app, "read")
    running, queued = read_pages(app, secret, f"/ui/jobs/{job.id}", f"/ui/jobs/{waiting.id}")
    assert "<progress" not in running
    assert "no progress reported" in running
    assert "<progress" not in queued
    assert "no progress reported" not in queued  # it has not started: nothing to report yet
    app.backend.update_progress(claimed.lease, {"percent": 40, "message": "half", "meta": {}})
    (running,) = read_pages(app, secret, f"/ui/jobs/{job.id}")
    assert '<progress max="100" value="40">' in running
    assert "no progress reported" not in running
    # given back to its queue (a worker's stop): waiting, its last run's progress not shown
    app.backend.release([claimed.lease], interrupted=True)
    (given_back,) = read_pages(app, secret, f"/ui/jobs/{job.id}")
    assert "<progress" not in given_back
    assert "half" not in given_back
    claimed = {r.id: r for r in app.backend.claim(["default"], "w", 2, 600)}[job.id]
    # once it succeeded: a full bar, without the last running message ("half" at 100 %)
    app.backend.complete(claimed.lease, 3)
    (done,) = read_pages(app, secret, f"/ui/jobs/{job.id}")
    assert '<progress max="100" value="100">' in done
    assert '<span class="msg"></span>' in done
