"""Retrying a workflow step that never ran (a chord's callback after a member failed, a
chain's step after an earlier one failed), from every surface, with a real worker
subprocess and a real HTTP server: refused alike by the CLI, REST (409) and the
dashboard (a message), naming the failed member; retrying that member resumes it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from conveyor import App, State, chain, chord
from conveyor.loader import load_app
from conveyor.testing import use_backend, wait_for
from conveyor.testing.web import served
from conveyor.web import TokenStore, create_api
from conveyor.web.dashboard.session import csrf_for

from ..cli.conftest import cli_env, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture
def app_served(shared_url: str) -> Iterator[tuple[App, str]]:
    """tests.web.tasks's app on ``shared_url``, its API and dashboard served by uvicorn."""
    app = load_app("tests.web.tasks:app")
    with use_backend(app, shared_url), served(create_api(app)) as url:
        yield app, url
    app.aio.close()


def test_a_never_run_step_is_refused_everywhere_and_its_failed_member_resumes_it(
    app_served: tuple[App, str],
    shared_url: str,
    tmp_path: Path,
    conveyor_proc: Callable[..., subprocess.Popen[bytes]],
) -> None:
    app, url = app_served
    secret = TokenStore(app.backend).create("ops", "operate")[1]
    add, gate, total = (app.tasks[n] for n in ("web.add", "web.gate", "web.total"))
    flag = tmp_path / "open"
    fan = chord([add.s(1, 1), gate.si(str(flag), 5)], total.s()).apply_async()
    line = chain(add.s(1, 1), gate.si(str(flag), 7), add.s(10)).apply_async()
    conveyor_proc("-A", "tests.web.tasks:app", "worker", "-P", "thread",
                  env={"CONVEYOR_BACKEND": shared_url})  # fmt: skip
    callback, member = fan.spec["callback"]["id"], fan.member_ids()[1]
    failed, later = line.member_ids()[1], line.member_ids()[2]
    wait_for(lambda: len(_ended(app, callback, later)) == 2, 30, "the chord's and chain's failure")

    cli = run_cli({**cli_env(shared_url), "CONVEYOR_APP": "tests.web.tasks:app"}, "retry", callback)
    assert cli.returncode != 0
    assert f"retry the failed member {member}: the chord resumes" in " ".join(cli.stderr.split())

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}) as c:
        refused = c.post(f"/api/jobs/{later}/retry")
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "step_not_run"
        assert error["hint"] == f"retry the failed step {failed}; the chain resumes from it"
        note = c.get(f"/api/jobs/{callback}").json()["retry_note"]  # the page says so too
        assert note == (
            f"never ran: a member of its chord failed ({member}); retry that one and the chord "
            "resumes from it"
        )

    with httpx.Client(base_url=url) as ui:
        ui.post("/ui/login", data={"token": secret, "next": "/ui/"})
        answer = ui.post(f"/ui/jobs/{callback}/retry", data={"csrf": csrf_for(secret)},
                         headers={"Origin": url})  # fmt: skip
        assert answer.status_code == 303
        said = unquote(answer.cookies["conveyor_flash"])
        assert f"retry the failed member {member}: the chord resumes" in said
    entry = app.backend.audit(target=callback)[0]
    assert (entry.outcome, entry.status) == ("step_not_run", 409)

    for never in (callback, later):  # nothing changed: the abort is still on record
        record = app.job(never).record()
        assert record.state in (State.FAILURE, State.REVOKED)
        assert record.error["type"] in ("ChordError", "WorkflowAborted")  # type: ignore[index]
        assert not record.attempts

    flag.touch()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}) as c:
        for job_id in (member, failed):
            assert c.post(f"/api/jobs/{job_id}/retry").status_code == 200
    # The never-run steps run again once the retried members succeed, a few ms later on
    # the worker; until then a workflow reads FAILURE from their old records.
    aborted = (State.FAILURE, State.REVOKED)
    wait_for(lambda: all(app.job(j).record().state not in aborted for j in (callback, later)),
             30, "the never-run steps to run again")  # fmt: skip
    assert fan.get(timeout=30) == 7
    assert line.get(timeout=30) == 17
    assert app.job(callback).record().attempts[0]["error"]["type"] == "ChordError"


def _ended(app: App, *job_ids: str) -> list[str]:
    return [r.id for r in app.backend.get_many(job_ids).values() if r.state.finished]
