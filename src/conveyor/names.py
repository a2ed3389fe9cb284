"""The one rule a queue name follows, checked wherever a name comes in; and the one way
an unknown name (a task's, typed by hand) is answered with the nearest known one.

A queue name travels into Redis keys, SQL rows, the CLI's comma-separated ``-Q a,b``,
log lines and URLs, so it is kept to characters none of them needs to quote. A name
outside the rule (a space, an empty string, 500 characters pasted by mistake) would
otherwise be stored and consumed by nobody, and the job would wait forever.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from .errors import ConfigurationError, ConveyorError

QUEUE_NAME_RULE = (
    "1 to 100 characters: ASCII letters, digits and _ . : @ -, starting with a letter, a digit or _"
)
#: The rule as a regular expression (whole name), for schemas that state it (the REST API).
QUEUE_NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,99}"
_QUEUE_NAME = re.compile(QUEUE_NAME_PATTERN)


def check_queue_name(
    name: object, where: str = "queue", error: type[ConveyorError] = ConfigurationError
) -> str:
    """``name`` if it is a valid queue name, else ``error`` saying where it came from and
    the rule (``where``: e.g. "queue", "task_routes['media.*']", "-Q")."""
    if isinstance(name, str) and _QUEUE_NAME.fullmatch(name):
        return name
    raise error(f"{where} {_shown(name)} is not a valid queue name; use {QUEUE_NAME_RULE}")


def _shown(name: object) -> str:
    if isinstance(name, str) and len(name) > 60:
        return f"{name[:40]!r}... ({len(name)} characters)"
    return repr(name)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` for the known name nearest a mistyped one (difflib's
    default cutoff, 0.6 similar), or ``""`` when none is near: what every message about an
    unknown task name puts before its list of known names (the app, the REST API, the
    Django admin). The last dotted parts must be near too: names of one module share most
    of their letters, so ``proj.tasks.nosuch`` is 0.6 similar to ``proj.tasks.orphan``."""
    for close in difflib.get_close_matches(name, list(known), n=5):
        tail = difflib.SequenceMatcher(None, name.rsplit(".", 1)[-1], close.rsplit(".", 1)[-1])
        if tail.ratio() >= TAIL_CUTOFF:
            return f"did you mean {close!r}? "
    return ""


#: How similar the last dotted parts of a name and its suggestion must be.
TAIL_CUTOFF = 0.5


#: An error lists at most this many known names; the rest as a count.
LISTED = 12


def listed(names: Iterable[str], empty: str = "none") -> str:
    """Sorted names for an error message, ``a, b, ... and 40 more`` past ``LISTED`` (a
    project with hundreds of tasks put every one in a typo's message)."""
    shown = sorted(names)
    if not shown:
        return empty
    more = f" and {len(shown) - LISTED} more" if len(shown) > LISTED else ""
    return ", ".join(shown[:LISTED]) + more
