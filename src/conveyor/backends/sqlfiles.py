"""Load SQL shipped as package files: named queries and numbered migrations."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def named_queries(dialect: str) -> dict[str, str]:
    """Parse ``sql/<dialect>/queries.sql`` into {name: statement}."""
    text = resources.files(__package__).joinpath("sql", dialect, "queries.sql").read_text()
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def migrations(dialect: str) -> list[tuple[int, str]]:
    """``sql/<dialect>/NNNN_name.sql`` files as (number, script), in order."""
    folder = resources.files(__package__).joinpath("sql", dialect)
    found = []
    for entry in folder.iterdir():
        match = re.match(r"^(\d{4})_\w+\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text()))
    return sorted(found)
