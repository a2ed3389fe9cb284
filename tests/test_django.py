"""The Django integration on a real project (tests/djangoproject): ``manage.py``
subprocesses enqueue through Django's task API and read results back, a real worker
(``manage.py conveyor worker``) runs the jobs, and the admin pages are driven with
Django's test client. On SQLite (worker children started by spawn) and PostgreSQL
(forked children; the jobs in the same database as the models, so an enqueue joins the
transaction). Django 5.2 with the django-tasks backport: the Python this suite runs on."""

from __future__ import annotations

import html
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import discard
from .services import _free_port as free_port
from .services import postgres_base_url

PROJECT = Path(__file__).parent / "djangoproject"
pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgres"])
def project_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {**os.environ, "RUN_LOG": str(tmp_path / "run.log"), "SIGNAL_LOG": str(tmp_path / "signals.log"),
           "COLUMNS": "200", "PYTHONPATH": str(PROJECT)}  # fmt: skip
    if request.param == "sqlite":
        env |= {
            "CONVEYOR_BACKEND": f"sqlite:///{tmp_path}/jobs.db",
            "SHOP_DB": f"sqlite:{tmp_path}/shop.db",
        }
        yield env
        return
    import psycopg

    schema = f"dj_{uuid.uuid4().hex[:12]}"
    base = postgres_base_url()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    env |= {"CONVEYOR_BACKEND": f"{base}?schema={schema}_q", "SHOP_DB": f"postgresql:{schema}"}
    yield env
    discard(env["CONVEYOR_BACKEND"])
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def manage(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def scenario(env: dict[str, str], step: str, ids: dict[str, Any] | None = None) -> dict[str, Any]:
    out = manage(env, "scenario", step, *([json.dumps(ids)] if ids else [])).stdout
    result: dict[str, Any] = json.loads(out)
    return result


# Its own deadlines (40 s for the jobs, 60 s for each manage.py) exceed the suite's 60 s
# default: a loaded machine starts each of its dozen Django processes in seconds.
@pytest.mark.timeout(180)
def test_django_tasks_run_on_a_real_worker(project_env: dict[str, str], tmp_path: Path) -> None:
    env = project_env
    spawn = env["SHOP_DB"].startswith("sqlite")
    manage(env, "migrate", "-v0")
    ids = scenario(env, "enqueue")
    assert ids["orders"] == 1  # the rolled-back order is gone, the committed one kept
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "conveyor", "worker", "-Q", "default", "-c", "1",
             "--prefetch", "0", *(["--start-method", "spawn"] if spawn else [])],
            cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 40
        while True:
            found = scenario(env, "check", ids)
            waiting = [k for k, v in found.items() if isinstance(v, dict) and k != "idle"
                       and v["status"] not in ("SUCCESSFUL", "FAILED")]  # fmt: skip
            if not waiting:
                break
            assert time.monotonic() < deadline, (
                waiting,
                (tmp_path / "worker.log").read_text()[-3000:],
            )
            time.sleep(0.5)
        # the queue the worker does not consume: doctor exits non-zero and names it
        doctor = manage(env, "conveyor", "doctor", check=False)
        assert doctor.returncode != 0
        assert "'idle'" in doctor.stdout + doctor.stderr
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        assert worker.wait(timeout=30) == 0

    # a @task enqueued with .enqueue() ran; its TaskResult refreshes to SUCCESSFUL
    assert (found["add"]["status"], found["add"]["return_value"]) == ("SUCCESSFUL", 5)
    assert found["refreshed"] == "SUCCESSFUL"
    assert found["add"]["attempts"] == 1
    assert len(found["add"]["worker_ids"]) == 1
    assert found["add"]["started_at"] >= found["add"]["enqueued_at"]
    # a failing task: FAILED with its error class and traceback
    boom = found["boom"]
    assert boom["status"] == "FAILED"
    assert "return_value" not in boom
    [(path, traceback)] = boom["errors"]
    assert path == "shop.tasks.ShopError"
    assert 'raise ShopError(f"cannot ship {x}")' in traceback
    # async tasks run; takes_context gets its context; the ORM works in the worker
    assert found["aping"]["return_value"] == "pong 7"
    assert found["whoami"]["return_value"] == {"id": ids["whoami"], "attempt": 1, "tag": "ctx"}
    # ... and reports progress on the job's record through it
    assert found["whoami_progress"] == [50, "halfway"]
    # Conveyor's own @task takes Conveyor's options on any Django (6.0's own refuses them)
    assert found["tidy"] == ["ConveyorTask", 2, 30]
    assert found["count"]["return_value"] == 1
    # a task outside tasks.py is imported by the worker when its job comes
    assert found["extra"]["return_value"] == "HI"
    # unknown and malformed ids
    assert len(found["missing"]) == 3
    # run_after waits
    assert found["deferred"]["started_at"] >= ids["run_after"]
    # priorities order execution: -100, 0, 100 enqueued in that order, run high first
    assert (tmp_path / "run.log").read_text().split() == ["high", "mid", "low"]
    # the queue no worker consumes still waits
    assert found["idle"]["status"] == "READY"
    # a rolled-back transaction: enqueue_on_commit left no job; a plain enqueue, and the
    # app's send_task and a signature's and a workflow's apply_async, join the transaction
    # on PostgreSQL (no job), not on SQLite (a separate store: the jobs stay)
    payloads = [json.loads(p)["args"] for p in found["add_payloads"]]
    assert [100, 1] not in payloads
    assert [200, 1] in payloads
    assert [200, 2] in payloads
    assert [200, 3] in payloads  # send_task in a committed transaction: stored
    rolled_back = [[100, 2], [100, 3], [100, 4], [100, 5]]  # enqueue, send_task, s(), chain
    if spawn:
        assert found["rolled_back"]["status"] == "SUCCESSFUL"
        assert all(args in payloads for args in rolled_back)
    else:
        assert found["rolled_back"] is None
        assert not [args for args in rolled_back if args in payloads]
    # signals: task_enqueued in the producer, task_started and task_finished in the worker
    signals = [line.split() for line in (tmp_path / "signals.log").read_text().splitlines()]
    by_kind = {kind: {job: (status, pid) for k, job, status, pid in signals if k == kind}
               for kind in ("enqueued", "started", "finished")}  # fmt: skip
    assert by_kind["started"][ids["add"]][0] == "RUNNING"
    assert by_kind["finished"][ids["add"]][0] == "SUCCESSFUL"
    assert by_kind["finished"][ids["boom"]][0] == "FAILED"
    assert by_kind["enqueued"][ids["add"]][1] != by_kind["started"][ids["add"]][1]
    if not spawn:
        assert ids["rolled_back"] not in by_kind["enqueued"]  # told on commit only

    # the admin: pages render, filters and search, cancel and retry actions
    pages = scenario(env, "admin", ids)
    for name in ("jobs", "failed", "search", "job", "schedules", "index"):
        assert pages[name]["status"] == 200, name
    assert ids["add"] in pages["jobs"]["body"]
    assert ids["boom"] in pages["failed"]["body"]
    assert ids["add"] not in pages["failed"]["body"]
    assert ids["idle"] in pages["search"]["body"]
    assert ids["add"] not in pages["search"]["body"]
    assert "shop.tasks.ShopError" in pages["job"]["body"]
    # bad input gets a message, not a 500
    assert pages["bad_state"]["status"] == 200
    assert "unknown state &#x27;BOGUS&#x27;" in pages["bad_state"]["body"]
    assert pages["no_job"]["status"] == 302
    assert pages["idle_state"] == "REVOKED"
    assert pages["boom_state"] == "PENDING"
    assert pages["schedules_after"] == ["nightly-count"]
    # each change is in the audit trail, by the admin's user
    assert pages["audit"] == [
        ["django:ops", "admin cancel", ids["idle"], "ok"],
        ["django:ops", "admin retry", ids["boom"], "ok"],
        ["django:ops", "admin schedule add", "nightly-count", "ok"],
        ["django:ops", "admin schedule pause", "nightly-count", "ok"],
    ]


def test_checks_name_a_wrong_or_unreachable_backend(tmp_path: Path) -> None:
    env = {**os.environ, "SHOP_DB": f"sqlite:{tmp_path}/shop.db", "PYTHONPATH": str(PROJECT)}
    wrong = manage({**env, "CONVEYOR_BACKEND": "rabbit://localhost"}, "check", check=False)
    assert wrong.returncode != 0
    assert "conveyor.E001" in wrong.stderr
    assert "unknown backend URL 'rabbit://localhost'" in wrong.stderr
    port = free_port()  # nothing listens there
    down = manage({**env, "CONVEYOR_BACKEND": f"redis://127.0.0.1:{port}/0"}, "check", check=False)
    assert down.returncode == 0  # a warning: the backend may start later
    assert "conveyor.W002" in down.stderr
    assert f"redis://127.0.0.1:{port}/0 cannot be reached" in down.stderr


def test_a_django_task_takes_every_option_of_a_conveyor_task() -> None:
    from dataclasses import fields

    from conveyor.contrib.django.task import OPTION_NAMES, ConveyorTask, conveyor_priority

    assert {f.name for f in fields(ConveyorTask)} >= set(OPTION_NAMES)
    assert "max_retries" in OPTION_NAMES
    assert "autoretry_for" in OPTION_NAMES
    # the documented table (docs/django.md)
    table = {-100: 0, -75: 1, -50: 3, -25: 4, 0: 5, 25: 6, 50: 7, 75: 8, 100: 9}
    assert {p: conveyor_priority(p) for p in table} == table
    ranks = [conveyor_priority(p) for p in range(-100, 101)]
    assert ranks == sorted(ranks)  # never inverts an order


def test_the_admins_schedule_form_says_each_error_once_and_where(tmp_path: Path) -> None:
    """A new user's first schedule: a typo'd task, an interval typed as on the dashboard,
    arguments that are not JSON."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "SHOP_DB": f"sqlite:{tmp_path}/shop.db",
           "CONVEYOR_BACKEND": f"sqlite:///{tmp_path}/jobs.db"}  # fmt: skip
    manage(env, "migrate", "-v0")
    pages = scenario(env, "schedule_form")
    text = {name: html.unescape(page["body"]) for name, page in pages.items() if name != "stored"}
    # the typo: said once, next to the field, with the nearest task, naming no process
    typo = text["typo"]
    assert pages["typo"]["status"] == 200
    assert typo.count("no task named 'shop.tasks.count_ordrs'") == 1
    assert "did you mean 'shop.tasks.count_orders'?" in typo
    assert "worker's path" not in typo
    # arguments: where the JSON breaks and what the field takes
    bad_args = text["bad_args"]
    assert "not valid JSON at line 2, column 5" in bad_args
    assert 'give a JSON list, e.g. [1, "a"]' in bad_args
    # 15m is read as the dashboard reads it, and shown back in seconds
    assert pages["every"]["status"] == 302
    assert pages["stored"] == {"quarterly": 900.0}
    assert 'name="every" value="900"' in text["edit"]


def test_conveyor_up_prints_each_django_tasks_line_once(tmp_path: Path) -> None:
    """With DEBUG on, Django logs every task to its own console handler; under
    ``manage.py conveyor up`` the line also reaches Conveyor's, which names the process:
    printed once, by Conveyor's."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "SHOP_DB": f"sqlite:{tmp_path}/shop.db",
           "CONVEYOR_BACKEND": f"sqlite:///{tmp_path}/jobs.db", "SHOP_DEBUG": "1"}  # fmt: skip
    manage(env, "migrate", "-v0")
    code = "from shop.tasks import add; print(add.enqueue(2, 3).id)"
    job_id = manage(env, "shell", "-c", code).stdout.split()[-1]  # after shell's own banner
    up = subprocess.run([sys.executable, "manage.py", "conveyor", "up", "--no-web", "--no-scheduler",
                         "-w", "default:1", "--seconds", "4"],
                        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=90)  # fmt: skip
    out = up.stdout + up.stderr
    assert up.returncode == 0, out[-3000:]
    for state in ("RUNNING", "SUCCESSFUL"):
        said = [line for line in out.splitlines() if f"id={job_id} " in line and state in line]
        assert len(said) == 1, out[-3000:]
        assert "[worker default]" in said[0]


def test_djangos_console_handler_stands_aside_only_for_what_conveyor_prints() -> None:
    import logging

    from conveyor.cli import LOG_HANDLER
    from conveyor.contrib.django.logs import PrintedByConveyor

    record = logging.LogRecord("django.tasks", logging.INFO, __file__, 1, "Task", None, None)
    conveyors = logging.NullHandler()
    conveyors.set_name(LOG_HANDLER)
    stands_aside = PrintedByConveyor()
    assert stands_aside.filter(record)  # Conveyor's handler is not installed: Django prints
    logging.root.addHandler(conveyors)
    tasks_logger = logging.getLogger("django.tasks")
    try:
        assert not stands_aside.filter(record)  # Conveyor's prints it
        tasks_logger.propagate = False
        assert stands_aside.filter(record)  # it never reaches Conveyor's
    finally:
        tasks_logger.propagate = True
        logging.root.removeHandler(conveyors)


#: Jobs stored inside a rolled-back and a committed ``atomic()`` on the alias $ALIAS.
JOIN = """
import json, os
from django.db import transaction
from conveyor.contrib.django import get_app
from conveyor.errors import JobNotFound
from shop import tasks
alias, ids = os.environ["ALIAS"], {}
try:
    with transaction.atomic(using=alias):
        ids["enqueue"] = tasks.add.enqueue(1, 1).id
        ids["send_task"] = get_app().send_task("shop.tasks.add", (1, 2)).id
        raise RuntimeError
except RuntimeError:
    pass
with transaction.atomic(using=alias):
    ids["committed"] = get_app().send_task("shop.tasks.add", (1, 3)).id
    try:  # read in its own transaction: not there yet, and said so
        get_app().job(ids["committed"]).state
        inside = "found"
    except JobNotFound as exc:
        inside = str(exc)
found = {"inside": inside}
for name, job_id in ids.items():
    try:
        found[name] = get_app().backend.get(job_id).state.value
    except JobNotFound:
        found[name] = None
print(json.dumps(found))
"""


@pytest.mark.parametrize(
    ("named", "store_db", "alias", "joined"),
    [
        ("jobs", "test", "jobs", True),  # a second alias of the jobs' database: it joins there
        ("default", "root", "default", False),  # named, but the jobs are in another database
    ],
)
def test_the_database_conveyor_names_is_the_one_joined(
    tmp_path: Path, named: str, store_db: str, alias: str, joined: bool
) -> None:
    """``CONVEYOR["DATABASE"]`` naming an alias other than ``default`` never joined (the
    default database's transaction was the one asked), and naming one whose database is
    not the jobs' joined all the same: each job was written in a database no worker
    reads (a missing schema there: a raw UndefinedTable)."""
    import psycopg

    schema = f"dj_{uuid.uuid4().hex[:12]}"
    base = postgres_base_url()
    store = base.rsplit("/", 1)[0] + f"/{store_db}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "SHOP_DB": f"postgresql:{schema}",
           "CONVEYOR_BACKEND": f"{store}?schema={schema}_q", "SHOP_CONVEYOR_DATABASE": named,
           "ALIAS": alias}  # fmt: skip
    try:
        manage(env, "migrate", "-v0")
        found = json.loads(manage(env, "shell", "-c", JOIN).stdout.strip().splitlines()[-1])
        gone = None if joined else "PENDING"
        inside = found.pop("inside")
        assert found == {"enqueue": gone, "send_task": gone, "committed": "PENDING"}
        if joined:
            assert "inside a database transaction that jobs stored now join" in inside
        else:
            assert inside == "found"
    finally:
        discard(env["CONVEYOR_BACKEND"])
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
