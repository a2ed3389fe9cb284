"""How to add an optional extra (``web``, ``redis``, ``postgres``, ``django``) to this very
install: the one place every "needs the X extra" message gets its command from.

Conveyor is installed from a checkout or from a wheel built from it (README, Quickstart),
so ``pip install 'conveyor[web]'`` would ask a package index for a project of that name.
The hint names where this install came from, as pip recorded it (``direct_url.json``,
PEP 610): the checkout's folder, or the wheel's file."""

from __future__ import annotations

import json
from importlib import metadata
from urllib.parse import unquote, urlsplit

from .errors import MissingDependency

#: The hint when pip recorded no origin (installed from an index, or run from a source tree).
GENERIC = "pip install '/path/to/conveyor[{extra}]' (a checkout) or '/path/to/conveyor-<version>-py3-none-any.whl[{extra}]' (a wheel)"


def install_hint(extra: str) -> str:
    """The command that adds ``extra`` to this install, e.g. ``pip install
    '/home/me/conveyor[web]'`` (``-e`` for an editable checkout)."""
    origin = _origin()
    if origin is None:
        return GENERIC.format(extra=extra)
    path, editable = origin
    return f"pip install {'-e ' if editable else ''}'{path}[{extra}]'"


def missing_extra(what: str, extra: str, exc: ImportError) -> MissingDependency:
    """The error for ``what`` (a backend) whose driver, from ``extra``, failed to import:
    the module that is missing and the command that adds the extra to this install."""
    return MissingDependency(
        f"{what} needs the {extra} extra ({exc.name or exc} is missing): {install_hint(extra)}"
    )


def _origin() -> tuple[str, bool] | None:
    """Where pip installed Conveyor from: a local folder or file, and whether editable."""
    try:
        recorded = metadata.distribution("conveyor").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not recorded:
        return None
    try:
        found = json.loads(recorded)
        url = urlsplit(found["url"])
    except (ValueError, KeyError, TypeError):
        return None
    if url.scheme != "file":
        return None
    return unquote(url.path), bool(found.get("dir_info", {}).get("editable"))
