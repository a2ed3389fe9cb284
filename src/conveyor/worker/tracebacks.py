"""A job's traceback as its user reads it: from their code down, not from Conveyor's.

An exception from a task passes through Conveyor's frames that called it (``execute``,
``call_task``, a middleware chain, the Celery layer's wrapper) before the task's own.
Those say nothing about the error and push the user's frames down the page, so the
stored traceback starts at the first frame outside Conveyor. An error raised inside
Conveyor itself (every frame is Conveyor's: an unknown task, a result that is not JSON)
keeps them all, as do Conveyor's frames below the user's (a call of Conveyor's API that
raised inside the task).
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
#: Where Conveyor's own frames come from; the demo's tasks are an app's, as a user's are.
_OWN = tuple({str(_PACKAGE) + os.sep, os.path.realpath(_PACKAGE) + os.sep})
_NOT_OWN = tuple(own + "demo" + os.sep for own in _OWN)


def format_error(exc: BaseException) -> str:
    """``exc``'s traceback, formatted, without the leading frames inside Conveyor."""
    formatted = traceback.TracebackException.from_exception(exc)
    frames = formatted.stack
    first = next((i for i, frame in enumerate(frames) if not _own(frame.filename)), 0)
    if first:
        formatted.stack = traceback.StackSummary.from_list(frames[first:])
    return "".join(formatted.format())


def _own(filename: str) -> bool:
    return filename.startswith(_OWN) and not filename.startswith(_NOT_OWN)
