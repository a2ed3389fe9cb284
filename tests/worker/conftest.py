from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from conveyor.testing import wait_for


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    return wait_for(predicate, timeout, what)


def ledger_lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def running(path: Path) -> bool:
    """A ``t.ledger`` job has started and not ended: it holds a lease, its ack to come."""
    events = [line[0] for line in ledger_lines(path)]
    return events.count("start") > events.count("end")
