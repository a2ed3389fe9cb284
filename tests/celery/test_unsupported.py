"""Every Celery option Conveyor cannot honour raises ``NotSupported`` naming the option
and the alternative: none is dropped silently. And the names that map, map."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor.celery import Celery, NotSupported, canvas, chain, control, crontab, settings, task
from conveyor.celery.schedules import solar
from conveyor.errors import ConfigurationError
from conveyor.testing import use_backend
from conveyor.worker import Worker


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("unsupported")
    with use_backend(app):
        yield app


def _task(app: Celery, **options: Any) -> Callable[[], Any]:
    return lambda: app.task(name="t.x", **options)(lambda: None)


CASES: list[tuple[str, Callable[[Celery], Any], str]] = [
    ("rate_limit", lambda a: _task(a, rate_limit="10/m")(), "-c N"),
    ("base", lambda a: _task(a, base=object)(), "app.events"),
    ("reject_on_worker_lost=False", lambda a: _task(a, reject_on_worker_lost=False)(), "reject_on_worker_lost=True"),
    ("serializer", lambda a: _task(a, serializer="pickle")(), "json"),
    ("routing_key", lambda a: a.send_task("t.x", routing_key="k"), "queue="),
    ("exchange", lambda a: a.send_task("t.x", exchange="e"), "queue="),
    ("time_limit", lambda a: a.send_task("t.x", time_limit=5), "on the task"),
    ("retry_policy", lambda a: a.send_task("t.x", retry_policy={}), "BackendError"),
    ("compression", lambda a: a.send_task("t.x", compression="zlib"), "key"),
    ("amqp://", lambda a: setattr(a.conf, "broker_url", "amqp://guest@localhost//"), "redis://"),
    ("task_always_eager", lambda a: a.conf.update(task_always_eager=True), "drain"),
    ("task_serializer ('pickle')", lambda a: a.conf.update(task_serializer="pickle"), "drop"),
    ("router function", lambda a: a.conf.update(task_routes=[lambda *x: None]), "dict"),
    ("task_routes['t.*'] keys exchange", lambda a: a.conf.update(task_routes={"t.*": {"queue": "q", "exchange": "x"}}), "'queue'"),
    ("relative=True", lambda a: a.conf.update(beat_schedule={"b": {"task": "t.x", "schedule": 5, "relative": True}}), "drop"),
    ("solar()", lambda a: solar("sunset", 0, 0), "crontab"),
    ("revoke(destination=...)", lambda a: a.control.revoke("x", destination=["w"]), "drop destination"),
    ("revoke(signal='SIGUSR1')", lambda a: a.control.revoke("x", terminate=True, signal="SIGUSR1"), "terminate=True"),
    ("add_consumer(destination=...)", lambda a: a.control.add_consumer("q", destination=["w"]), "-Q"),
    ("app.control.shutdown", lambda a: a.control.shutdown(), "SIGTERM"),
    ("app.control.rate_limit", lambda a: a.control.rate_limit("t.x", "1/s"), "-c N"),
    ("partial arguments", lambda a: chain(a.signature("t.x"), a.signature("t.x")).apply_async((1,)), "first step"),
    ("task_id= on a chain", lambda a: chain(a.signature("t.x")).apply_async(task_id="i"), ".set(task_id"),
]  # fmt: skip


def test_an_unknown_setting_or_task_option_is_refused(app: Celery) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown setting: the app's conf\.task_nonsense"):
        app.conf.task_nonsense = 1
    with pytest.raises(ConfigurationError, match="unknown option 'retries'"):
        app.task(retries=3)(lambda: None)


def test_celery_names_map_onto_conveyor_settings(app: Celery) -> None:
    assert app.conf.default_queue == "celery"  # Celery's name: `-Q celery` start scripts carry over
    app.config_from_object({"CELERY_TASK_DEFAULT_QUEUE": "main", "CELERY_RESULT_EXPIRES": timedelta(hours=1),
                            "CELERY_TIMEZONE": "Europe/Berlin", "DEBUG": True,
                            "CELERY_BROKER_URL": "db+postgresql://h/db",
                            "CELERY_BEAT_SCHEDULE": {"n": {"task": "t.x", "schedule": crontab(0, 1, day_of_week="mon-fri")}},
                            "CELERY_WORKER_MAX_TASKS_PER_CHILD": 100, "CELERY_TASK_MAX_RETRIES": None},
                           namespace="CELERY")  # fmt: skip
    conf = app.conf
    assert (conf.default_queue, conf.result_ttl, conf.worker_max_tasks_per_child) == (
        "main",
        3600,
        100,
    )
    assert conf.backend_url == "postgresql://h/db"
    assert conf.default_max_retries == 10_000
    assert conf.schedule["n"] == {"task": "t.x", "args": [], "kwargs": {}, "cron": "0 1 * * mon-fri",
                                  "tz": "Europe/Berlin"}  # fmt: skip

    @app.task(
        bind=True, autoretry_for=(KeyError,), retry_backoff=2, retry_kwargs={"max_retries": 5}
    )
    def fetch(self: Any, key: str) -> str:
        return f"{self.request.called_directly} {key}"

    assert (fetch.options.autoretry_for, fetch.options.retry_backoff, fetch.options.max_retries) == (
        (KeyError,), 2, 5)  # fmt: skip
    assert fetch("k") == "True k"  # called directly, as in Celery
    app.conf.task_soft_time_limit = 30  # a later setting reaches tasks declared before it
    assert fetch.options.soft_time_limit == 30


@pytest.mark.parametrize(
    ("multiplier", "prefetch"), [(1, "no prefetch"), (3, "+4 prefetch"), (0, "auto")]
)
def test_worker_prefetch_multiplier_means_what_it_means_in_celery(
    app: Celery, multiplier: int, prefetch: str
) -> None:
    """Jobs each slot holds, the running one included: 1 claims none ahead (the usual
    setting for long tasks), N claims N - 1 per slot, 0 leaves it to the worker."""
    app.conf.worker_prefetch_multiplier = multiplier
    worker = Worker(app, pool="thread", concurrency=2)
    assert prefetch in worker.prefetch_text
    app.conf.worker_prefetch_multiplier = -1
    with pytest.raises(ConfigurationError, match="worker_prefetch_multiplier must be"):
        Worker(app, pool="thread", concurrency=2)


def _tables() -> list[tuple[str, Callable[[Celery], Any], str]]:
    """Every entry of every table of unsupported names, called as Celery code calls it."""
    cases: list[tuple[str, Callable[[Celery], Any], str]] = []
    for key, (_, instead) in settings.UNSUPPORTED.items():
        cases.append((key, lambda a, k=key: a.conf.update({k: 1}), instead))
    for key, (_, instead) in task.UNSUPPORTED_OPTIONS.items():
        cases.append((f"{key}=", lambda a, k=key: _task(a, **{k: 1})(), instead))
    for key, (_, instead) in canvas.UNSUPPORTED_CALL_OPTIONS.items():
        cases.append(
            (f"apply_async({key}=", lambda a, k=key: a.send_task("t.x", **{k: 1}), instead)
        )
    for key, (_, instead) in control.UNSUPPORTED_CONTROL.items():
        cases.append((f"app.control.{key}", lambda a, k=key: getattr(a.control, k)(), instead))
    for key, values in settings.ALREADY_SO.items():
        if key in settings.IGNORED:  # another value is warned of (tests/celery/test_settings.py)
            continue
        instead = settings.OTHER_VALUE[key][1] if key in settings.OTHER_VALUE else f"{values[0]!r}"
        cases.append((f"{key} ('other')", lambda a, k=key: a.conf.update({k: "other"}), instead))
    return cases


ALL = CASES + _tables()


@pytest.mark.parametrize(("what", "call", "instead"), ALL, ids=[c[0] for c in ALL])
def test_an_unsupported_option_says_what_and_what_instead(
    app: Celery, what: str, call: Callable[[Celery], Any], instead: str
) -> None:
    with pytest.raises(NotSupported) as raised:
        call(app)
    assert what in str(raised.value)
    assert instead in str(raised.value)


def test_the_result_backend_warning_names_the_users_line() -> None:
    """Not Conveyor's own line: the one in the user's code that set it, by any route."""
    sqlite, redis = "sqlite:///./a.db", "redis://127.0.0.1:6379/0"
    app = Celery("warned", broker=sqlite, set_as_current=False)
    routes: list[Callable[[], Any]] = [
        lambda: Celery("warned", broker=sqlite, backend=redis, set_as_current=False),
        lambda: app.config_from_object({"CELERY_RESULT_BACKEND": redis}, namespace="CELERY"),
        lambda: app.conf.update(result_backend=redis),
        lambda: setattr(app.conf, "result_backend", redis),
    ]
    for route in routes:
        with pytest.warns(UserWarning, match=r"\('redis://127.0.0.1:6379/0'\) is not used") as said:
            route()
        [warning] = said
        assert (warning.filename, warning.lineno) == (__file__, route.__code__.co_firstlineno)


def test_the_guides_settings_step_says_what_the_code_does(app: Celery) -> None:
    """docs/migrating-from-celery.md, step 2: a setting it says raises raises, and no other."""
    guide = (Path(__file__).parents[2] / "docs" / "migrating-from-celery.md").read_text()
    step = " ".join(guide[guide.index("2. Settings:") : guide.index("3. Start scripts:")].split())
    sentences = re.split(r"(?<=\.) ", step)
    claims = re.findall(r"`(CELERY_\w+) = ([^`]+)`", step)
    assert len(claims) >= 2
    for name, value in claims:
        [said] = [s for s in sentences if f"`{name} = " in s]
        try:
            app.config_from_object({name: ast.literal_eval(value)}, namespace="CELERY")
        except ConfigurationError:
            raised = True
        else:
            raised = False
        assert ("raises" in said) == raised, said
