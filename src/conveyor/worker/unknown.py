"""Why a worker does not know a job's task, said so that the user knows what to do.

The usual cause is not a typo: a task was added (or renamed) and the producer, restarted
or newly deployed, sends it to workers still running the code they loaded before. When
a source file of the task's module, or of the app's task modules, changed on disk after
this process loaded its code, the error says so and says to restart the workers.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from typing import TYPE_CHECKING

from ..errors import UnknownTask
from ..version import LOADED_AT

if TYPE_CHECKING:
    from ..app import App

RESTART = "restart the workers so they load the new code, then retry the job"


def unknown_task(app: App, name: str, exc: Exception) -> UnknownTask:
    """The error a job of task ``name`` fails with, ``exc`` (what ``get_task`` raised)
    its cause."""
    changed = newest_change(source_files(app, name))
    if changed is None:
        error = UnknownTask(
            f"{exc}; if the task was added after this worker started, {RESTART}; "
            "else fix the task name, or run a worker whose app registers it"
        )
    else:
        path, mtime = changed
        error = UnknownTask(
            f"task {name!r} is not in this worker's code, which is older than the code that "
            f"sent the job: {path} changed at {stamp(mtime)}, after this worker loaded its "
            f"code at {stamp(LOADED_AT)}; {RESTART}"
        )
    error.__cause__ = exc
    return error


def source_files(app: App, name: str) -> set[str]:
    """The files the task could be in: the module its dotted name points to (a Celery
    style name, ``proj.tasks.add``), and the modules of the tasks the app registers."""
    modules = {getattr(task.fn, "__module__", None) for task in app.tasks.values()}
    files = {getattr(sys.modules.get(m or ""), "__file__", None) for m in modules}
    files.add(named_file(name))
    return {f for f in files if f}


def named_file(name: str) -> str | None:
    """The source file of the longest module prefix of ``name`` that exists, looked up
    without importing anything new (only a prefix whose parent is imported)."""
    parts = name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:end])
        parent = module.rpartition(".")[0]
        if module in sys.modules:
            return getattr(sys.modules[module], "__file__", None)
        if parent and parent not in sys.modules:
            continue
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin and os.path.isfile(spec.origin):
            return spec.origin  # a module created after this process loaded its code
    return None


def newest_change(files: set[str]) -> tuple[str, float] | None:
    """The most recently changed of ``files`` if it changed after this process loaded
    its code, else None."""
    newest: tuple[str, float] | None = None
    for path in files:
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            continue
        if mtime > LOADED_AT and (newest is None or mtime > newest[1]):
            newest = (shown(path), mtime)
    return newest


def shown(path: str) -> str:
    """``path`` relative to the current directory when it is under it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def stamp(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))
