"""What each common Celery/Flower setting of a Django project meets in ``conveyor.celery``,
by its category in docs/migrating-from-celery.md's settings table: accepted (said at
DEBUG), mapped, not used (one warning), refused (``NotSupported`` with the alternative)
or unknown (with the nearest name). Every message names the setting as it was written:
``CELERY_X in <source>`` when read with ``namespace="CELERY"``."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.celery import Celery, NotSupported, settings
from conveyor.errors import ConfigurationError
from conveyor.testing import use_backend

from ..conftest import backend_url, discard

BROKER = "redis://127.0.0.1:6379/9"


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("settings", set_as_current=False)
    with use_backend(app):
        yield app


def django_style(app: Celery, **names: Any) -> None:
    """``CELERY_<NAME> = value`` lines, read as Django's settings are."""
    app.config_from_object({f"CELERY_{k}": v for k, v in names.items()}, namespace="CELERY")


WHERE = "in the object given to config_from_object"


@pytest.mark.parametrize(
    "backend",
    [
        "django-db",
        "django-cache",
        "db+postgresql://u:secret@h/results",
        "cache+memcached://h:11211/",
    ],
)
def test_a_result_backend_of_another_kind_is_not_used_and_says_so(backend: str) -> None:
    """S1: django-celery-results' backend and the like: a warning that names the setting and
    its value as written and what keeps the results; never a refusal (no result is lost:
    every result is in its job's record)."""
    app = Celery("s1", broker=BROKER, set_as_current=False)
    with pytest.warns(UserWarning, match="is not used") as said:
        django_style(app, RESULT_BACKEND=backend)
    [warning] = said
    text = str(warning.message)
    shown = backend.replace("secret", "***")  # as written, but no password in a log
    assert text.startswith(f"CELERY_RESULT_BACKEND {WHERE} ({shown!r}) is not used: ")
    assert "result in its record, in the broker's store" in text
    assert "drop the setting" in text
    assert "secret" not in text
    assert (warning.filename, warning.lineno) == (
        __file__,
        django_style.__code__.co_firstlineno + 2,
    )
    assert app.conf.backend_url == BROKER  # the broker is the store, as before


def test_a_result_backend_that_is_the_store_or_rpc_is_said_nothing_of() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Celery("same", broker=BROKER, backend=BROKER, set_as_current=False)
        Celery("rpc", broker=BROKER, backend="rpc://", set_as_current=False)


def test_the_result_backend_warning_is_said_once_per_line() -> None:
    """As Python shows it by default (a settings module imported by every manage.py
    command, an app built per test): once, however many apps the line builds."""
    code = textwrap.dedent(f"""
        from conveyor.celery import Celery
        for _ in range(3):
            Celery("x", broker={BROKER!r}, backend="django-db", set_as_current=False)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("is not used") == 1, done.stderr
    assert "Celery(..., backend=...) ('django-db') is not used" in done.stderr


@pytest.mark.parametrize("key", sorted(settings.ACCEPTED))
def test_what_conveyor_always_does_is_accepted_and_said_at_debug(
    app: Celery, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="conveyor.celery")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        django_style(app, **{key.upper(): False})
        django_style(app, **{key.upper(): True})
    said = [r.getMessage() for r in caplog.records if r.name == "conveyor.celery"]
    assert len(said) == 2
    assert said[0].startswith(f"CELERY_{key.upper()} {WHERE} (False): nothing to do, ")


def test_acks_late_family_takes_conveyors_values_and_refuses_the_others(app: Celery) -> None:
    """A killed worker's job is always delivered again: True is what Conveyor does; False
    (Celery's default: fail it) is refused, pointing at acks_late=False."""
    django_style(app, TASK_REJECT_ON_WORKER_LOST=True, TASK_ACKS_ON_FAILURE_OR_TIMEOUT=True,
                 WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS=False)  # fmt: skip
    with pytest.raises(NotSupported, match=r"CELERY_TASK_REJECT_ON_WORKER_LOST .* acks_late=False"):
        django_style(app, TASK_REJECT_ON_WORKER_LOST=False)
    with pytest.raises(NotSupported, match="autoretry_for"):
        django_style(app, TASK_ACKS_ON_FAILURE_OR_TIMEOUT=False)


def test_task_default_priority_is_the_priority_of_tasks_that_set_none(app: Celery) -> None:
    """On Conveyor's scale, as every priority here (9 runs first)."""

    @app.task(name="t.plain")
    def plain() -> None: ...

    @app.task(name="t.own", priority=2)
    def own() -> None: ...

    django_style(app, TASK_DEFAULT_PRIORITY=7)  # after the tasks: they take it too
    assert app.record(plain.delay().id).priority == 7
    assert app.record(own.delay().id).priority == 2
    # a task this process does not know, sent by name: Celery gives it the default too
    assert app.record(app.send_task("elsewhere.task").id).priority == 7
    assert app.record(app.send_task("elsewhere.task", priority=1).id).priority == 1
    assert app.record(app.send_task("t.own").id).priority == 2
    with pytest.raises(ConfigurationError) as raised:
        django_style(app, TASK_DEFAULT_PRIORITY=10)
    assert str(raised.value).startswith(f"CELERY_TASK_DEFAULT_PRIORITY {WHERE}: priority 10")
    assert "9 runs first" in str(raised.value)


def test_worker_max_memory_per_child_is_the_workers_kib(
    tmp_path: Path, conveyor_proc: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """Celery's name and unit (KiB): `conveyor worker` replaces a child over it after a
    job. 1 KiB: every child is over it after its first job."""
    store = backend_url("sqlite", tmp_path)
    (tmp_path / "memproj.py").write_text(
        textwrap.dedent(f"""
        import os
        from conveyor.celery import Celery
        app = Celery("memproj", broker={store!r})
        app.config_from_object({{"CELERY_WORKER_MAX_MEMORY_PER_CHILD": int(os.environ["KIB"])}},
                               namespace="CELERY")

        @app.task(name="t.pid")
        def pid():
            return os.getpid()
    """)
    )
    app = Celery("sender", broker=store, set_as_current=False)
    try:
        for kib, children in ((1, 3), (10**9, 1)):
            jobs = [app.send_task("t.pid") for _ in range(3)]
            worker = conveyor_proc("-A", "memproj:app", "worker", "--burst", "-P", "process", "-c", "1",
                                   env={"PYTHONPATH": str(tmp_path), "KIB": str(kib)})  # fmt: skip
            assert worker.wait(timeout=90) == 0, worker.log_path.read_text()[-3000:]  # type: ignore[attr-defined]
            assert len({job.get(timeout=1) for job in jobs}) == children
    finally:
        discard(store)


@pytest.mark.parametrize("key", sorted(set(settings.IGNORED) - {"broker_transport_options"}))
def test_a_setting_nothing_reads_is_warned_of_once_with_why(app: Celery, key: str) -> None:
    # for those with a value Conveyor behaves as (accepted, silent), the other value
    value = {"worker_hijack_root_logger": False,
             "worker_cancel_long_running_tasks_on_connection_loss": True}.get(key, "x")  # fmt: skip
    with pytest.warns(UserWarning, match="is not used") as said:
        django_style(app, **{key.upper(): value})
    [warning] = said
    assert str(warning.message) == (f"CELERY_{key.upper()} {WHERE} ({value!r}) is not used: "
                                    f"{settings.IGNORED[key]}; drop the setting to silence this")  # fmt: skip


def test_visibility_timeout_is_not_a_lease_and_says_what_is(app: Celery) -> None:
    with pytest.warns(UserWarning, match="is not used") as said:
        django_style(
            app, BROKER_TRANSPORT_OPTIONS={"visibility_timeout": 3600, "max_connections": 20}
        )
    timeout, other = (str(w.message) for w in said)
    assert timeout.startswith(
        f"visibility_timeout (3600) in CELERY_BROKER_TRANSPORT_OPTIONS {WHERE}"
    )
    assert "it is not a lease" in timeout
    assert "lease_seconds" in timeout
    assert "{'max_connections': 20}" in other
    assert app.conf.lease_seconds == 30  # not mapped: a dead worker's jobs would wait an hour


def test_django_celery_beat_is_refused_naming_conveyors_schedules(app: Celery) -> None:
    django_style(app, BEAT_SCHEDULER="celery.beat:PersistentScheduler")  # Celery's default
    with pytest.raises(NotSupported) as raised:
        django_style(app, BEAT_SCHEDULER="django_celery_beat.schedulers:DatabaseScheduler")
    said = str(raised.value)
    assert said.startswith(f"CELERY_BEAT_SCHEDULER {WHERE} ('django_celery_beat.schedulers:")
    assert "move the periodic tasks to beat_schedule" in said
    assert "Schedules (the Django admin, the dashboard, `conveyor schedules add`)" in said


def test_compression_is_refused_unless_none(app: Celery) -> None:
    django_style(app, TASK_COMPRESSION=None, RESULT_COMPRESSION=None)
    with pytest.raises(NotSupported, match=r"CELERY_TASK_COMPRESSION .*'gzip'.* uncompressed"):
        django_style(app, TASK_COMPRESSION="gzip")


def test_an_unknown_setting_names_itself_as_written_with_the_nearest_known_one(app: Celery) -> None:
    with pytest.raises(ConfigurationError) as raised:
        django_style(app, TASK_TIME_LIMT=30)
    said = str(raised.value)
    assert said.startswith(f"unknown setting: CELERY_TASK_TIME_LIMT {WHERE}; ")
    assert "did you mean 'CELERY_TASK_TIME_LIMIT'?" in said
    with pytest.raises(ConfigurationError, match="did you mean 'worker_send_task_events'"):
        app.conf.update(worker_send_task_event=True)
