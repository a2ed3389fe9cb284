"""``conveyor up``'s edges, without starting it: worker group specs, what it says it will
run (and which queues nothing would consume), a port already taken. The run itself is
tested end to end in tests/examples/."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from conveyor import App
from conveyor.cli import cli
from conveyor.cli.stack import Stack, WorkerGroup
from conveyor.errors import ConveyorError


def test_worker_group_specs() -> None:
    assert WorkerGroup.parse("video:1") == WorkerGroup(("video",), 1)
    assert WorkerGroup.parse("image, document:4") == WorkerGroup(("image", "document"), 4)
    assert WorkerGroup.parse("default") == WorkerGroup(("default",), None)
    for bad, says in [("video:x", "not a number"), ("video:0", "at least 1"),
                      ("video,:2", "queue"), ("bad queue:1", "queue")]:  # fmt: skip
        with pytest.raises(ConveyorError, match=says):
            WorkerGroup.parse(bad)


def test_a_bad_worker_option_is_refused_before_anything_starts() -> None:
    result = CliRunner().invoke(cli, ["-A", "tests.apps.basic:app", "up", "--worker", "video:x"])
    assert result.exit_code == 2
    assert "'x' is not a number of jobs" in result.output


def app_with_queues() -> App:
    app = App("up-tests", backend="memory://", worker_groups=["video:1"])
    app.task(name="t.video", queue="video")(lambda: None)
    app.task(name="t.image", queue="image")(lambda: None)
    app.conf.task_routes = {"t.reports.*": "reports"}
    return app


def test_it_says_what_runs_where_and_what_nothing_consumes() -> None:
    app = app_with_queues()
    app.conf.backend_url = "redis://:s3cret@redis.internal:6379/0"
    stack = Stack("proj.tasks:app", app, Stack.groups_for(app, []), port=8123)
    text = stack.describe()
    assert "s3cret" not in text
    assert "redis.internal:6379" in text
    assert "http://127.0.0.1:8123/" in text
    assert "queues video  (process x 1)" in text
    assert "image, reports: no worker group takes these queues" in text
    chosen = Stack.groups_for(app, ["image,reports:4"])  # --worker beats the configuration
    assert chosen == [WorkerGroup(("image", "reports"), 4)]
    everything = Stack.groups_for(App("plain", backend="memory://"), [])
    assert everything == [WorkerGroup(("default",), None)]


def test_it_says_when_the_store_holds_other_apps_schedules() -> None:
    """Two apps on one store by accident: the banner listed this app's schedules only,
    and its scheduler fired the other app's into a queue nothing consumed."""
    app = app_with_queues()
    app.schedules.add("videos-hourly", "t.video", every=3600)
    legacy = App("legacy", backend=app.backend)
    legacy.task(name="legacy.ping")(lambda: None)
    for n in range(7):
        legacy.schedules.add(f"ping-{n}", "legacy.ping", every=30)
    stack = Stack("proj.tasks:app", app, Stack.groups_for(app, []))
    (line,) = [line for line in stack.describe().splitlines() if "other apps" in line]
    assert "app 'legacy': 7 (ping-0, ping-1, ping-2, ping-3, ping-4, +2 more)" in line
    assert "videos-hourly" not in line
    assert "the scheduler of app 'up-tests' does not fire them" in line
    alone = App("up-tests", backend="memory://")
    assert "other apps" not in Stack("p:app", alone, Stack.groups_for(alone, [])).describe()


def test_a_port_in_use_is_refused_before_any_child_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = Stack("proj.tasks:app", app_with_queues(), [WorkerGroup(("video",))], port=port)
        with pytest.raises(ConveyorError, match=f"cannot serve on 127.0.0.1:{port}.*--port"):
            stack.check()


def test_a_metrics_opt_in_that_is_not_a_bool_is_refused_before_any_child_starts() -> None:
    """Else the web child died on it at each restart, a traceback every two seconds."""
    app = app_with_queues()
    app.conf.metrics_without_token = "false"  # type: ignore[assignment]
    stack = Stack("proj.tasks:app", app, [WorkerGroup(("video",))], port=0)
    with pytest.raises(ConveyorError, match="metrics_without_token is 'false'; it takes True"):
        stack.check()
    stack.web = False  # without the API the setting is not read
    stack.check()
