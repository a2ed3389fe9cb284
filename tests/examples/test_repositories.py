"""examples/repositories under one ``conveyor up`` with three ``--worker`` groups: its
interval schedules fire, a sync against a mirror that is down is retried on its
countdown (and fails after 3 retries when the mirror stays down), and every inspect
command of its README runs against it. Times are scaled through its settings."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import EXAMPLES, Up, poll

pytestmark = pytest.mark.slow
GROUPS = ["default,warehouse:2", "statistics,access_log,minimap:1", "migration:1"]


def readme_commands() -> list[str]:
    """The ``conveyor`` lines of the README's Inspecting section, in order."""
    readme = (EXAMPLES / "repositories" / "README.md").read_text()
    section = readme.split("\n## Inspecting\n", 1)[1]
    return re.findall(r"^conveyor (.+)$", section, re.MULTILINE)


def text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_repositories_under_up(run_up: Callable[..., Up], example_url: str, tmp_path: Path) -> None:
    """On SQLite and on Redis, as the example's README runs it."""
    data = tmp_path / "data"
    data.mkdir()
    env = {"CONVEYOR_BACKEND": example_url, "REPOSITORIES_TIME_SCALE": "0.02",
           "REPOSITORIES_DATA_ROOT": str(data)}  # fmt: skip
    args = [a for g in GROUPS for a in ("--worker", g)]
    up = run_up("repositories", "repositories.tasks:app", *args, env=env)
    banner = up.log()
    assert "queues statistics, access_log, minimap  (process x 1)" in banner
    assert "not consumed" not in banner
    poll(lambda: len(up.workers()) == 3, 30, "three worker groups")

    # The 30 s flush (1 s here) keeps firing; the 300 s counters (6 s) fire too.
    poll(lambda: text(data / "access_log.jsonl").count("\n") >= 3, 20, "3 access log flushes")
    poll(lambda: "counters" in text(data / "statistics.jsonl"), 20, "the counters refreshed")

    # A mirror that is down: retried on the 60 s countdown (1.2 s) until it answers ...
    (data / "linux.down").touch()
    back = up.submit("repositories.warehouse.sync", "linux")
    up.wait(back, "SCHEDULED", "RETRY")
    (data / "linux.down").unlink()
    synced = up.wait(back, "SUCCESS")
    assert synced["attempt"] >= 2
    assert up.ran_in(synced) == "default,warehouse"
    # ... or fails after 3 retries when it never does.
    (data / "gone.down").touch()
    gone = up.wait(up.submit("repositories.warehouse.sync", "gone"), "FAILURE")
    assert (gone["attempt"], gone["error"]["type"]) == (4, "MirrorUnavailable")

    check_inspect_commands(up)
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(60) == 0


def check_inspect_commands(up: Up) -> None:
    """The README's inspect commands, run at once against the running system."""
    later = up.submit("repositories.default.index", "later", countdown=600)
    runs = {
        command.split(" ", 2)[2]: subprocess.Popen(
            [sys.executable, "-m", "conveyor", *command.split()], cwd=EXAMPLES / "repositories",
            env={**up.env, "COLUMNS": "250"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for command in readme_commands()
    }  # fmt: skip
    outputs = {}
    for command, run in runs.items():
        stdout, stderr = run.communicate(timeout=60)
        assert run.returncode == 0, f"{command}: {stderr}"
        outputs[command] = stdout
    assert later in outputs["inspect jobs --state SCHEDULED"]
    assert "statistics, access_log, minimap" in outputs["inspect workers"]
    assert "flush-access-log" in outputs["schedules list"]
    assert "warehouse" in outputs["inspect queues"]
