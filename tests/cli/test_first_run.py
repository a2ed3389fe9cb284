"""What a new user meets first: the command the demo prints, run from another directory;
``doctor`` and ``inspect`` on a store that is not there or never used; why a failed job
was not retried; a lost attempt; the worker's name; progress as people read it; a
result wait on a running job. Real SQLite files, real CLI and worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import click
import pytest

from conveyor import App, State, extras
from conveyor.cli.demo import own_command
from conveyor.cli.inspect import percent
from conveyor.cli.serve import require_web
from conveyor.control import cancel_job
from conveyor.errors import JobTimeout
from conveyor.records import Lease, WorkerInfo

from ..services import drop_schema, postgres_base_url, redis_base_url
from ..worker.conftest import ledger_lines, wait_until
from .conftest import ROOT, cli_env, run_cli

DEMO_APP = "conveyor.demo.tasks:app"


def elsewhere(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``conveyor -A <the demo app> ARGS`` run from a directory of its own, with the
    default backend (no CONVEYOR_BACKEND): what a new user types in another terminal."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("CONVEYOR_BACKEND", "CONVEYOR_APP")}
    return subprocess.run([sys.executable, "-m", "conveyor", "-A", DEMO_APP, *args], cwd=cwd,
                          env=env | {"COLUMNS": "250"}, capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [("doctor",), ("inspect", "jobs"), ("inspect", "queues"), ("audit",), ("schedules", "list"),
     ("tokens", "list")],
)  # fmt: skip
def test_read_only_commands_create_no_store_and_say_there_is_none(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    ran = elsewhere(tmp_path, *args)
    made = tmp_path / "elsewhere" / "conveyor.db"
    assert not made.exists()  # not an empty store to read nothing from
    assert ran.returncode != 0
    assert "healthy" not in ran.stdout
    said = " ".join(ran.stderr.split())
    assert f"there is no store at sqlite:///./conveyor.db: {made} does not exist" in said
    assert (
        f"a relative SQLite path is relative to the current directory, here {made.parent}" in said
    )
    assert "point CONVEYOR_BACKEND (or App(backend=...)) at the store they use" in said


def test_doctor_on_a_store_nothing_used_says_so_not_healthy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    App("fresh", backend=url).backend.workers()  # the store exists: migrated, empty
    env = cli_env(url)
    text, report = run_cli(env, "doctor"), json.loads(run_cli(env, "doctor", "--json").stdout)
    assert "healthy" not in text.stdout
    assert f"the store at {url} holds no jobs and no worker is registered there" in text.stdout
    (finding,) = report["findings"]
    assert (finding["check"], finding["severity"]) == ("empty-store", "warning")


def test_the_demos_advice_names_the_executable_and_store_absolutely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [".venv/bin/conveyor", "demo"])
    told = own_command("sqlite:///./conveyor.db")
    assert (
        told == f"CONVEYOR_BACKEND=sqlite:///{tmp_path}/conveyor.db {tmp_path}/.venv/bin/conveyor"
    )
    assert own_command(f"sqlite:///{tmp_path}/x.db") == f"{tmp_path}/.venv/bin/conveyor"
    assert own_command("redis://127.0.0.1:6379/3") == f"{tmp_path}/.venv/bin/conveyor"
    monkeypatch.setattr(sys, "argv", ["/usr/lib/python3/site-packages/conveyor/__main__.py"])
    assert own_command("redis://h/0") == f"{sys.executable} -m conveyor"


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_cancel_without_terminate_stops_the_demos_archive_job(
    shared_url: str, pool: str, conveyor_proc: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """The documented cooperative stop (the task sees ``self.is_revoked()`` and raises
    ``Terminated``) is recorded as a revoke the task obeyed, not a crash: no traceback."""
    env = {"CONVEYOR_BACKEND": shared_url, "CONVEYOR_APP": DEMO_APP}
    app = App("visitor", backend=shared_url)
    job = app.send_task("demo.export.archive", (600,))
    conveyor_proc("worker", "-Q", "default", "-P", pool, "-c", "1", env=env)
    wait_until(
        lambda: app.backend.get(job.id).state is State.STARTED, 30, "the archive job to start"
    )
    assert cancel_job(app, job.id).outcome == "flagged"  # no terminate: the task must check
    started = time.monotonic()
    wait_until(lambda: app.backend.get(job.id).state.finished, 10, "the cancelled job to end")
    record = app.backend.get(job.id)
    assert record.state is State.REVOKED, record.error
    assert time.monotonic() - started < 5  # within a step (0.5 s), not after 5 minutes
    error = record.error or {}
    assert (error["type"], error.get("traceback")) == ("Revoked", None)
    assert error["message"].startswith(
        "revoked while running; the task saw it (self.is_revoked()) and stopped: cancelled after "
    )
    assert "Terminated" not in error["message"]


def test_a_failure_not_retried_says_why_and_names_its_worker(
    tmp_path: Path, conveyor_proc: Callable[..., subprocess.Popen[bytes]]
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    env = cli_env(url)
    producer = App("producer", backend=url)
    job = producer.send_task("t.fail", ("boom",))  # ValueError; max_retries 3 (the app's default)
    conveyor_proc("worker", "-P", "thread", "-n", "alpha", env=env)
    wait_until(lambda: producer.backend.get(job.id).state is State.FAILURE, 30, "the job to fail")
    detail = json.loads(run_cli(env, "inspect", "job", job.id, "--json").stdout)
    table = " ".join(run_cli(env, "inspect", "job", job.id).stdout.split())
    why = (
        "not retried: ValueError is not in the task's autoretry_for (nor did the task call "
        "self.retry()); max_retries (3) bounds only the retries the task asks for"
    )
    assert detail["retry_note"] == why
    assert why in table
    assert detail["worker_name"] == "alpha"
    assert f"worker alpha ({detail['worker']})" in table
    assert detail["attempts"][0]["worker_name"] == "alpha"


def test_a_lost_attempt_is_said_lost_with_its_worker_and_when(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    app = App("lost", backend=url)
    job = app.send_task("t.add", (1, 2))
    info = WorkerInfo(id="w-1", name="media@vm:20138", host="vm", pid=20138, queues=["default"],
                      pool="process", concurrency=1, version="t", tasks=["t.add"],
                      started_at=app.backend.now())  # fmt: skip
    app.backend.heartbeat(info, [], 30)
    (claimed,) = app.backend.claim(["default"], info.id, 1, 0.5)  # then it "dies"
    time.sleep(1.2)
    assert app.backend.rescue_expired() == [job.id]
    env = cli_env(url)
    detail = json.loads(run_cli(env, "inspect", "job", job.id, "--json").stdout)
    (lost,) = detail["attempts"]
    assert lost["lost"] is True
    message = lost["error"]["message"]
    assert message.startswith("lost: worker media@vm:20138 stopped renewing its lease")
    assert "found when the lease expired (1s after it started)" in message
    table = run_cli(env, "inspect", "job", job.id).stdout
    row = next(line for line in table.splitlines() if line.startswith("1 "))
    assert row.split()[1] == "lost"  # not PENDING, nor a run time of 1.2 s it never ran
    assert "LeaseExpired: lost: worker media@vm:20138" in row
    assert claimed.id == job.id


def test_a_death_the_worker_saw_is_said_lost_with_what_it_saw_and_the_run_time(
    tmp_path: Path,
) -> None:
    """A pool child's death, recorded by its worker (``abandon`` with the cause), ends
    when the worker saw it: the run time is shown, and the retry note names
    max_lost_leases, not autoretry_for."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    app = App("lost", backend=url)
    job = app.send_task("t.add", (1, 2))
    seen = "worker child 4711 died with exit code 13 while running the job"
    for _ in range(app.backend.max_lost_leases):
        (claimed,) = app.backend.claim(["default"], "w-1", 1, 30)
        app.backend.abandon([Lease(job.id, claimed.lease_token or "")], {job.id: seen})
    env = cli_env(url)
    detail = json.loads(run_cli(env, "inspect", "job", job.id, "--json").stdout)
    first = detail["attempts"][0]
    assert first["lost"] is True
    assert first["error"] == {"type": "WorkerLost", "message": f"{seen}; it went back to its queue"}
    assert detail["retry_note"].startswith("not run again: the process running it died 3 times")
    table = run_cli(env, "inspect", "job", job.id).stdout
    row = next(line for line in table.splitlines() if line.startswith("1 "))
    assert row.split()[1] == "lost"
    assert row.split()[5] != "?"  # a run time: it ended when the worker saw it
    assert f"WorkerLost: {seen}" in row


def test_progress_is_rounded_in_the_jobs_list(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    app = App("progress", backend=url)
    job = app.send_task("t.add", (1, 2))
    (claimed,) = app.backend.claim(["default"], "w", 1, 30)
    app.backend.update_progress(Lease(job.id, claimed.lease_token or ""),
                                {"percent": 100 / 7.5, "message": "2/15 files"})  # fmt: skip
    listed = run_cli(cli_env(url), "inspect", "jobs").stdout
    assert "13.3% 2/15 files" in listed
    assert "13.333" not in listed
    assert [percent(v) for v in (50, 12.5, 100 / 3, None)] == ["50%", "12.5%", "33.3%", "-"]


def test_a_wait_on_a_running_job_says_it_is_running_and_where(
    tmp_path: Path, conveyor_proc: Callable[..., subprocess.Popen[bytes]]
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    producer = App("producer", backend=url)
    ledger = tmp_path / "ledger.txt"
    job = producer.send_task("t.ledger", (str(ledger), 10.0))
    conveyor_proc("worker", "-P", "thread", "-n", "beta", env=cli_env(url))
    wait_until(lambda: ledger_lines(ledger), 30, "the job to start")
    with pytest.raises(JobTimeout) as raised:
        job.get(timeout=0.3)
    worker = producer.backend.get(job.id).worker
    assert f"is running on worker beta ({worker}) and still going after 0.3s" in str(raised.value)
    assert "is a worker consuming its queue" not in str(raised.value)


@pytest.mark.parametrize(
    ("recorded", "hint"),
    [
        ({"url": "file:///home/me/conveyor", "dir_info": {"editable": True}}, "pip install -e '/home/me/conveyor[web]'"),
        ({"url": "file:///home/me/conveyor", "dir_info": {}}, "pip install '/home/me/conveyor[web]'"),
        ({"url": "file:///srv/dist/conveyor-0.1.0-py3-none-any.whl", "archive_info": {}},
         "pip install '/srv/dist/conveyor-0.1.0-py3-none-any.whl[web]'"),
        (None, "pip install '/path/to/conveyor[web]' (a checkout) or "
               "'/path/to/conveyor-<version>-py3-none-any.whl[web]' (a wheel)"),
    ],
)  # fmt: skip
def test_a_missing_extra_is_added_from_where_this_install_came_from(
    monkeypatch: pytest.MonkeyPatch, recorded: dict[str, object] | None, hint: str
) -> None:
    class Installed:
        def read_text(self, name: str) -> str | None:
            assert name == "direct_url.json"
            return None if recorded is None else json.dumps(recorded)

    monkeypatch.setattr(extras.metadata, "distribution", lambda name: Installed())
    assert extras.install_hint("web") == hint
    monkeypatch.setitem(sys.modules, "fastapi", None)  # the web extra is not installed
    with pytest.raises(click.ClickException) as refused:
        require_web()
    assert refused.value.message == f"the REST API needs the web extra (fastapi is missing): {hint}"


#: ``python -m conveyor`` as an install made before prometheus-client joined the web extra
#: runs it (an editable checkout updated by ``git pull``): every other web module present.
WITHOUT_PROMETHEUS = (
    "import runpy, sys; sys.modules['prometheus_client'] = None; "
    "sys.argv = ['conveyor', *sys.argv[1:]]; runpy.run_module('conveyor', run_name='__main__')"
)


@pytest.mark.parametrize("command", [("serve",), ("up", "--no-scheduler")])
def test_a_web_extra_installed_before_metrics_is_told_to_be_added_not_a_traceback(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'c.db'}")
    done = subprocess.run([sys.executable, "-c", WITHOUT_PROMETHEUS, *command, "--port", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    said = " ".join(done.stderr.split())
    assert "the REST API needs the web extra (prometheus_client is missing)" in said, said


@pytest.mark.parametrize(
    ("driver", "extra"), [("redis", "redis"), ("hiredis", "redis"), ("psycopg", "postgres")]
)
def test_a_missing_driver_says_how_to_add_its_extra_to_this_install(
    driver: str, extra: str
) -> None:
    """As the web extra's hint does: from where this install came, not a bare
    ``conveyor[redis]`` an index would resolve; and doctor does not call it unreachable."""
    url = postgres_base_url() if extra == "postgres" else redis_base_url()
    # python -m conveyor, with the driver missing as if the extra were not installed
    blocked = f"import sys, runpy; sys.modules[{driver!r}] = None; sys.argv[0] = 'conveyor'; " \
              "runpy.run_module('conveyor', run_name='__main__')"  # fmt: skip
    for args in (("inspect", "queues"), ("doctor",)):
        ran = subprocess.run([sys.executable, "-c", blocked, *args], env=cli_env(url),
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        said = " ".join((ran.stdout + ran.stderr).split())
        assert ran.returncode != 0, said
        assert (
            f"needs the {extra} extra ({driver} is missing): {extras.install_hint(extra)}" in said
        )
        assert f"'conveyor[{extra}]'" not in said
        assert "Traceback" not in said
        assert "cannot be reached" not in said


def test_doctor_names_the_store_it_read_in_full(tmp_path: Path) -> None:
    """A producer run from another directory made a second store, and doctor there said
    "no worker is running" without saying which file it had read."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    App("p", backend=f"sqlite:///{cwd / 'conveyor.db'}").send_task("demo.text.count", ["x"])
    text = elsewhere(tmp_path, "doctor")
    assert f"store sqlite:///{cwd / 'conveyor.db'}" in " ".join(text.stdout.split())
    report = json.loads(elsewhere(tmp_path, "doctor", "--json").stdout)
    assert report["store"] == f"sqlite:///{cwd / 'conveyor.db'}"


def test_the_worker_banner_names_the_store_and_who_fires_the_schedules(tmp_path: Path) -> None:
    """A periodic task under a plain worker never ran, and nothing said why; and the
    banner gave a relative SQLite path, which another directory reads as another file."""

    def banner(*extra: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "CONVEYOR_APP"}
        env |= {"CONVEYOR_BACKEND": "sqlite:///./relative.db", "PYTHONPATH": str(ROOT),
                "TICK_LEDGER": str(tmp_path / "ticks"), "COLUMNS": "300"}  # fmt: skip
        ran = subprocess.run([sys.executable, "-m", "conveyor", "-A", "tests.apps.sched:app", "worker",
                              "--burst", *extra], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
        assert ran.returncode == 0, ran.stdout + ran.stderr
        return ran.stdout + ran.stderr

    plain = banner()
    assert f"backend      sqlite:///{tmp_path / 'relative.db'}" in plain
    (line,) = [x for x in plain.splitlines() if x.lstrip().startswith("schedules")]
    assert "tick: not fired by a worker: run a scheduler" in line
    assert "add --beat" in line
    assert "tick: fired by this worker's scheduler (--beat)" in banner("--beat")
    none = run_cli(cli_env(f"sqlite:///{tmp_path / 'other.db'}"), "worker", "--burst")
    assert none.returncode == 0
    assert "schedules" not in none.stdout  # an app that declares none: no line


def test_doctor_on_an_unsupported_url_says_to_fix_it_not_that_a_server_is_down() -> None:
    ran = run_cli(cli_env("mysql://db.example/app"), "doctor")
    said = " ".join(ran.stdout.split())
    assert ran.returncode == 1
    assert "the backend at mysql://db.example/app cannot be used: unknown backend URL" in said
    assert "cannot be reached" not in said
    assert "that the server runs" not in said


def test_inspect_job_says_why_a_pending_job_waits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'waits.db'}"
    producer = App("p", backend=url)
    job = producer.send_task("t.add", (1, 2), queue="nobody")
    producer.backend.close()
    said = " ".join(run_cli(cli_env(url), "inspect", "job", job.id).stdout.split())
    assert "waiting: no live worker consumes queue 'nobody'; start a worker for it" in said


def test_inspect_job_says_an_expired_waiting_job_will_not_run(tmp_path: Path) -> None:
    """It said only "start a worker for it", as if a worker would run it."""
    url = f"sqlite:///{tmp_path / 'expired.db'}"
    producer = App("p", backend=url)
    job = producer.send_task("t.add", (1, 2), queue="nobody", expires=0.01)
    producer.backend.close()  # its 10 ms are past before the command has started
    said = " ".join(run_cli(cli_env(url), "inspect", "job", job.id).stdout.split())
    assert "waiting: no live worker consumes queue 'nobody'; start a worker for it" in said
    assert "it expired at " in said
    assert "and will not run: it ends REVOKED (Expired) when a worker reaches it" in said


def test_read_only_commands_create_no_postgres_schema_and_name_the_stores_there(
    tmp_path: Path,
) -> None:
    """``?schema=`` mistyped: the read-only commands say there is no store there and which
    schemas hold one, and create nothing; a producer still creates the store on first use."""
    import psycopg

    base, tag = postgres_base_url(), uuid.uuid4().hex[:10]
    real, typo = f"t_real_{tag}", f"t_typo_{tag}"
    App("real", backend=f"{base}?schema={real}").send_task("t.add", (1, 2))
    env = cli_env(f"{base}?schema={typo}")

    def schema_exists(name: str) -> bool:
        with psycopg.connect(base, autocommit=True) as conn:
            found = conn.execute(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (name,)
            ).fetchone()
        return found is not None

    try:
        for args in (("doctor",), ("inspect", "jobs"), ("inspect", "queues"), ("audit",),
                     ("schedules", "list"), ("tokens", "list")):  # fmt: skip
            ran = run_cli(env, *args)
            said = " ".join(ran.stderr.split())
            assert ran.returncode != 0, (args, ran.stdout)
            assert f"no Conveyor store in schema '{typo}' of {base}; stores there: " in said
            assert f"'{real}'" in said
            assert "a worker or `conveyor migrate` creates one" in said
            assert not schema_exists(typo), args
        sent = run_cli(env, "enqueue", "t.add", "--args", "[1, 2]")
        assert sent.returncode == 0, sent.stderr
        assert schema_exists(typo)
        assert run_cli(env, "inspect", "jobs").returncode == 0
    finally:
        for name in (real, typo):
            drop_schema(f"{base}?schema={name}")


def test_read_only_commands_on_an_unused_redis_prefix_write_no_key() -> None:
    """Why Redis needs no store check (docs/operations.md): reading a prefix nothing has
    used creates no key, so a mistyped ``?prefix=`` leaves nothing behind."""
    import redis

    prefix = f"t-typo-{uuid.uuid4().hex[:10]}"
    env = cli_env(f"{redis_base_url()}?prefix={prefix}")
    for args in (("doctor",), ("inspect", "jobs"), ("inspect", "queues"), ("audit",)):
        run_cli(env, *args)
    client = redis.Redis.from_url(redis_base_url())
    try:
        assert list(client.scan_iter(match=f"conveyor:{{{prefix}}}*")) == []
    finally:
        client.close()
