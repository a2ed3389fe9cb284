"""What ``ps`` shows for each of Conveyor's processes: a title saying what it is, not
``python -c from multiprocessing.spawn import spawn_main; ...`` (``conveyor up``'s
services, a process pool's children under spawn) or a copy of the worker's command line
(forked children). Real ``conveyor up`` and worker subprocesses, their titles read from
``/proc`` as ``ps`` reads them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from ..services import _free_port
from .conftest import wait_until

pytestmark = pytest.mark.slow


def titles(proc: subprocess.Popen[bytes]) -> list[str]:
    """The command lines of ``proc``'s descendants, as ``ps -o args`` shows them."""
    found = []
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            found.append(" ".join(child.cmdline()).strip())
        except psutil.Error:  # gone meanwhile
            continue
    return sorted(found)


def test_conveyor_ups_processes_say_what_they_are(
    tmp_path: Path, conveyor_proc: Callable[..., subprocess.Popen[bytes]]
) -> None:
    port = _free_port()
    up = conveyor_proc(
        "-A", "tests.apps.basic:app", "up", "-w", "default,video:2", "--port", str(port),
        env={"CONVEYOR_BACKEND": f"sqlite:///{tmp_path / 'q.db'}"},
    )  # fmt: skip
    want = [
        f"conveyor api 127.0.0.1:{port}",
        "conveyor scheduler",
        "conveyor worker [default,video]",
        "conveyor worker [default,video] child 1",
        "conveyor worker [default,video] child 2",
        "conveyor worker [default,video] zygote",
    ]
    wait_until(lambda: set(want) <= set(titles(up)), 30, "every process's title")
    untitled = [t for t in titles(up) if "multiprocessing.spawn" in t]
    assert not untitled, titles(up)


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_a_workers_children_say_which_they_are(
    tmp_path: Path, conveyor_proc: Callable[..., subprocess.Popen[bytes]], start_method: str
) -> None:
    worker = conveyor_proc(
        "-A", "tests.apps.basic:app", "worker", "-Q", "default", "-c", "2",
        "--start-method", start_method,
        env={"CONVEYOR_BACKEND": f"sqlite:///{tmp_path / 'q.db'}"},
    )  # fmt: skip
    want = {"conveyor worker [default] child 1", "conveyor worker [default] child 2"}
    wait_until(lambda: want <= set(titles(worker)), 30, "the children's titles")


def test_without_setproctitle_a_process_keeps_its_title() -> None:
    """An install without the library (a platform with no wheel for it) runs as before."""
    code = (
        "import sys; sys.modules['setproctitle'] = None\n"
        "from conveyor.proctitle import set_title\n"
        "set_title('worker [default]')\n"
        "print(open('/proc/self/cmdline').read().split(chr(0))[0])"
    )
    shown = subprocess.run(
        [__import__("sys").executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "conveyor" not in shown.stdout
