"""What ``ps`` and ``top`` call each of Conveyor's processes.

A child started by ``spawn`` or ``forkserver`` (each of ``conveyor up``'s services, a
process pool's children) would show as ``python -c from multiprocessing.spawn import
spawn_main; ...``, and a forked one as a copy of its worker's command line. Each titles
itself for what it is instead: ``conveyor worker [video,image] child 2``, ``conveyor
scheduler``, ``conveyor api 127.0.0.1:8000``, through ``setproctitle`` (a dependency); a
process without it keeps its title.

multiprocessing's resource tracker (started under ``spawn`` and ``forkserver``) is not
titled: the standard library launches it with a ``-c`` command of its own (``from
multiprocessing.resource_tracker import main;main(12)``) that imports nothing of ours;
titling it would take replacing ``ResourceTracker``'s private launch code, or a ``.pth``
file that every interpreter in the environment runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

_set: Callable[[str], None] | None
try:
    from setproctitle import setproctitle as _set
except ImportError:  # an install without it: the titles are a convenience
    _set = None


def set_title(what: str) -> None:
    """Title this process ``conveyor <what>``."""
    if _set is not None:
        _set(f"conveyor {what}")


def worker_title(queues: Sequence[str]) -> str:
    """A worker by its queues (``worker [video,image]``), as its children's titles start."""
    return f"worker [{','.join(queues)}]"
