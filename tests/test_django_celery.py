"""The worked example of docs/migrating-from-celery.md after its steps (tests/djceleryproject):
a Django project whose Celery app (``conveyor.celery``, configured from the ``CELERY_``
settings, imported by ``proj/__init__.py``) has ``conveyor.contrib.django`` installed for
the admin. One app: ``delay()``, Django's ``@task``, ``manage.py conveyor up`` and the admin
all use its Redis store and its tasks; ``manage.py check`` refuses a second store."""

from __future__ import annotations

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

from .conftest import backend_url, discard
from .services import _free_port as free_port
from .services import postgres_base_url

PROJECT = Path(__file__).parent / "djceleryproject"
pytestmark = pytest.mark.slow

#: The admin, driven with Django's test client by a logged-in superuser.
ADMIN = """
import json
from django.contrib.auth.models import User
from django.test import Client
client = Client()
client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
jobs = client.get("/admin/conveyor/job/")
schedules = client.get("/admin/conveyor/schedule/")
added = client.post("/admin/conveyor/schedule/add/", {
    "name": "gate-hourly", "task": "cameras.tasks.snapshot", "cron": "0 * * * *", "every": "",
    "tz": "UTC", "args": '["gate"]', "kwargs": "{}", "queue": ""})
print(json.dumps({"jobs": jobs.content.decode(), "schedules": schedules.content.decode(),
                  "added": added.status_code, "added_body": added.content.decode()}))
"""


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    broker = backend_url("redis", tmp_path)
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "COLUMNS": "200", "CELERY_BROKER_URL": broker,
           "PROJ_DB": str(tmp_path / "proj.sqlite3"),
           # another store, named the way the guide's project names it: not used (a warning)
           "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/15"}  # fmt: skip
    for name in ("CONVEYOR_BACKEND", "CONVEYOR_APP", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    yield env
    discard(broker)


def manage(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=90)  # fmt: skip
    if check:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def shell(env: dict[str, str], code: str) -> Any:
    """Run ``code`` in ``manage.py shell``; the JSON of its last line."""
    return json.loads(manage(env, "shell", "-c", code).stdout.splitlines()[-1])


def test_the_guides_django_project_has_one_app(env: dict[str, str], tmp_path: Path) -> None:
    manage(env, "migrate", "-v0")
    checked = manage(env, "check")
    assert "no issues" in checked.stdout, checked.stderr
    ids = shell(env, "import json; from cameras.tasks import snapshot; from reports.tasks import "
                "count; print(json.dumps([snapshot.delay('gate').id, count.enqueue(21).id]))")  # fmt: skip
    snap_id, count_id = ids

    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        up = subprocess.Popen(
            [sys.executable, "manage.py", "conveyor", "up", "--no-web", "-w", "celery,hikvision:2"],
            cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    read = (
        "import json; from conveyor.celery import AsyncResult; from reports.tasks import count; "
        f"s = AsyncResult({snap_id!r}); c = count.get_result({count_id!r}); "
        "print(json.dumps([s.state, s.result, str(c.status), c.return_value if c.is_finished "
        "else None]))"
    )
    try:
        deadline = time.monotonic() + 40
        while (found := shell(env, read))[0] != "SUCCESS" or found[3] is None:
            assert time.monotonic() < deadline, (found, log.read_text()[-3000:])
            time.sleep(0.5)
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        assert up.wait(timeout=60) == 0, log.read_text()[-3000:]
    said = log.read_text()
    # the store delay() wrote to, the Celery app's tasks and its beat_schedule
    assert env["CELERY_BROKER_URL"].split("?")[0] in said
    assert "sqlite" not in said
    assert "nightly-report" in said
    assert found == ["SUCCESS", "jpeg of gate", found[2], 42]
    # the unused result backend is said once (the parent), naming the project's line
    assert said.count("is not used") == 1, said[-3000:]
    assert f"{PROJECT / 'proj' / 'celery.py'}:7" in said

    # the admin reads the same store and knows the Celery-style tasks and schedules
    admin = shell(env, ADMIN)
    assert snap_id in admin["jobs"]
    assert "nightly-report" in admin["schedules"]
    assert admin["added"] == 302, admin["added_body"][-3000:]


#: What ``manage.py check`` finds, and which app the integration runs on.
CHECKS = """
import json
from django.core import checks
from conveyor.celery import Celery
from conveyor.contrib.django import get_app
from proj.celery import app
one = get_app() is app
if OTHER:
    Celery("reports", broker=OTHER)
print(json.dumps({"one": one, "found": [[m.id, m.msg, m.hint] for m in checks.run_checks()]}))
"""


def checks(env: dict[str, str], other: str = "", **conveyor: Any) -> Any:
    env = {**env, "PROJ_CONVEYOR": json.dumps(conveyor)} if conveyor else env
    return shell(env, f"OTHER = {other!r}\n{CHECKS}")


def test_check_refuses_a_second_store(env: dict[str, str], tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path}/other.db"
    done = manage({**env, "PROJ_CONVEYOR": json.dumps({"BACKEND": other})}, "check", check=False)
    assert done.returncode != 0
    assert "conveyor.E007" in done.stderr
    assert f"settings.CONVEYOR['BACKEND'] is {other}" in done.stderr
    assert env["CELERY_BROKER_URL"].split("?")[0] in done.stderr
    # a second conveyor.celery app on another store: named, with the way to have one
    found = checks(env, other)
    assert found["one"]
    [(code, message, hint)] = [m for m in found["found"] if m[0] != "conveyor.W002"]
    assert code == "conveyor.E007"
    assert f"app Celery('reports') keeps its jobs in {other}" in message
    assert "from .celery import app as celery_app" in hint
    # named in the settings: the same app; its own settings beside it are refused
    named = checks(env, APP="proj.celery:app", WORKERS={"all": ["celery", "hikvision"]})
    assert named == {"one": True, "found": []}
    beside = {"APP": "proj.celery:app", "ROUTES": {"reports.*": "reports"}}
    done = manage({**env, "PROJ_CONVEYOR": json.dumps(beside)}, "check", check=False)
    assert done.returncode != 0
    assert "settings.CONVEYOR has ROUTES, but the project's app proj.celery:app" in done.stderr


@pytest.mark.parametrize(
    ("conveyor", "said"),
    [
        ({"QUEUEZ": ["a"]}, "settings.CONVEYOR has QUEUEZ, but the project's app Celery('proj')"),
        ({"APP": "proj.celery:app", "ROUTES": {"reports.*": "reports"}},
         "settings.CONVEYOR has ROUTES, but the project's app proj.celery:app"),
    ],
)  # fmt: skip
def test_a_refused_setting_is_a_check_error_not_a_traceback(
    env: dict[str, str], conveyor: dict[str, Any], said: str
) -> None:
    """A key settings.CONVEYOR does not take beside the project's Celery app: ``manage.py
    check`` and ``runserver`` say so as a system check error, whole, with no traceback out
    of Conveyor (the tasks.py that Django imports at start build tasks on the app)."""
    env = {**env, "PROJ_CONVEYOR": json.dumps(conveyor)}
    done = manage(env, "check", check=False)
    assert done.returncode != 0
    assert f"(conveyor.E001) {said}" in done.stderr, done.stderr[-3000:]
    assert "HINT: Beside the project's app settings.CONVEYOR takes only" in done.stderr
    assert "Traceback" not in done.stderr
    port = free_port()
    served = subprocess.run(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert served.returncode != 0
    assert f"(conveyor.E001) {said}" in served.stderr, served.stderr[-3000:]
    assert "conveyor/" not in served.stderr  # no frame of Conveyor's


#: Settings a Django project moving off Celery (and Flower) commonly has.
COMMON = {"WORKER_SEND_TASK_EVENTS": True, "TASK_SEND_SENT_EVENT": True, "RESULT_EXTENDED": True,
          "TASK_REJECT_ON_WORKER_LOST": True, "WORKER_HIJACK_ROOT_LOGGER": False,
          "WORKER_MAX_MEMORY_PER_CHILD": 200000, "TASK_DEFAULT_PRIORITY": 5, "BROKER_POOL_LIMIT": 10,
          "BROKER_TRANSPORT_OPTIONS": {"visibility_timeout": 3600}}  # fmt: skip


def test_common_celery_settings_meet_manage_py_as_the_guides_table_says(
    env: dict[str, str],
) -> None:
    """django-celery-results' backend and Flower's event settings pass ``manage.py check``:
    the unused ones are said once each, named as settings.py names them; a refused or
    unknown one says which, as written, and what to do."""
    env = {**env, "CELERY_RESULT_BACKEND": "django-db", "PROJ_CELERY": json.dumps(COMMON)}
    done = manage(env, "check")
    said = done.stderr
    where = "in django.conf:settings"
    assert said.count("is not used") == 4, said
    assert f"CELERY_RESULT_BACKEND {where} ('django-db') is not used" in said
    assert f"CELERY_BROKER_POOL_LIMIT {where} (10) is not used" in said
    assert f"CELERY_WORKER_HIJACK_ROOT_LOGGER {where} (False) is not used: " in said
    assert (
        f"visibility_timeout (3600) in CELERY_BROKER_TRANSPORT_OPTIONS {where} is not used" in said
    )
    assert f"{PROJECT / 'proj' / 'celery.py'}:7" in said  # the project's line that read them
    assert "EVENTS" not in said
    for setting, message in [
        ({"BEAT_SCHEDULER": "django_celery_beat.schedulers:DatabaseScheduler"},
         f"CELERY_BEAT_SCHEDULER {where} ('django_celery_beat.schedulers:DatabaseScheduler') "
         "is not supported by conveyor.celery"),
        ({"WORKER_SEND_TASK_EVENT": True}, f"unknown setting: CELERY_WORKER_SEND_TASK_EVENT {where}; "
         "did you mean 'CELERY_WORKER_SEND_TASK_EVENTS'?"),
    ]:  # fmt: skip
        done = manage({**env, "PROJ_CELERY": json.dumps(setting)}, "check", check=False)
        assert done.returncode != 0
        assert message in done.stderr, done.stderr[-3000:]


#: ``delay()`` inside a rolled-back ``atomic()`` in a process that did nothing else with
#: Conveyor first: ``django.setup()`` and a view's code, as a WSGI server runs them (no
#: system checks, no Django task imported).
ROLLED_BACK = """
import json
from django.db import transaction
from cameras.tasks import snapshot
from conveyor.errors import JobNotFound
ids = {}
try:
    with transaction.atomic():
        ids["rolled_back"] = snapshot.delay("gate").id
        raise RuntimeError
except RuntimeError:
    pass
with transaction.atomic():
    ids["committed"] = snapshot.delay("door").id
found = {}
for name, job_id in ids.items():
    try:
        found[name] = snapshot.app.backend.get(job_id).state.value
    except JobNotFound:
        found[name] = None
print(json.dumps(found))
"""


def test_a_celery_apps_delay_joins_the_transaction_in_any_process(tmp_path: Path) -> None:
    """The project's conveyor.celery app learned Django's side (and so joined
    ``transaction.atomic()``) only once something called ``get_app()``: the system checks,
    a Django task's import, the admin. A process that only called ``delay()`` wrote its
    job at once, and a rolled-back transaction's job ran."""
    import psycopg

    schema = f"djc_{uuid.uuid4().hex[:12]}"
    base = postgres_base_url()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    django_db = {"ENGINE": "django.db.backends.postgresql", "NAME": "test", "USER": "postgres",
                 "HOST": "127.0.0.1", "PORT": "5432", "OPTIONS": {"options": f"-c search_path={schema}"}}  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "PROJ_DATABASES": json.dumps({"default": django_db}),
           "PROJ_CELERY_ONLY": "1",
           "CELERY_BROKER_URL": f"{base}?schema={schema}_q"}  # fmt: skip
    for name in (
        "CONVEYOR_BACKEND",
        "CONVEYOR_APP",
        "DJANGO_SETTINGS_MODULE",
        "CELERY_RESULT_BACKEND",
    ):
        env.pop(name, None)
    try:
        code = "import django\ndjango.setup()\n" + ROLLED_BACK  # as a WSGI server starts
        done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True,
                              env={**env, "DJANGO_SETTINGS_MODULE": "proj.settings"}, timeout=90)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        out = done.stdout
        assert json.loads(out.strip().splitlines()[-1]) == {
            "rolled_back": None,
            "committed": "PENDING",
        }
    finally:
        discard(env["CELERY_BROKER_URL"])
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
