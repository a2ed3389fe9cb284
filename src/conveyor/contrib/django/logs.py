"""One line per log record under ``manage.py conveyor``.

Django's default logging (``DEBUG = True``) prints every ``django.*`` record, such as
``django.tasks``' line per task, through a console handler of its own on the ``django``
logger, and the record then propagates to the root logger, where Conveyor's command line
prints it again, naming the process (``[worker default]`` under ``up``). While Conveyor's
handler is on the root logger, Django's console handlers skip every record that reaches
it; a record that does not reach it (Conveyor's handler not installed, as in a child
started by spawn or in ``doctor``, or a logger that stops propagating) is printed by
Django's as before. Handlers writing elsewhere (a file, mail) are left alone.
"""

from __future__ import annotations

import logging
import sys


class PrintedByConveyor(logging.Filter):
    """Refuse a record that Conveyor's handler on the root logger prints too."""

    def filter(self, record: logging.LogRecord) -> bool:
        cli = sys.modules.get("conveyor.cli")  # not imported: its handler cannot be installed
        if cli is None or not any(h.get_name() == cli.LOG_HANDLER for h in logging.root.handlers):
            return True
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None and logger is not logging.root:
            if not logger.propagate:
                return True  # it never reaches the root logger
            logger = logger.parent
        return False


def print_once() -> None:
    """Put ``PrintedByConveyor`` on the console handlers of Django's ``django`` logger
    (after ``django.setup()``, which configures them)."""
    for handler in logging.getLogger("django").handlers:
        on_console = isinstance(handler, logging.StreamHandler) and handler.stream in (
            sys.stderr,
            sys.stdout,
        )
        if on_console and not any(isinstance(f, PrintedByConveyor) for f in handler.filters):
            handler.addFilter(PrintedByConveyor())
