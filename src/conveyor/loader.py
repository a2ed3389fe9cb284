"""Finding an app from a ``package.module:attribute`` string (``-A``, ``CONVEYOR_APP``)."""

from __future__ import annotations

import importlib
import os
import sys

from .app import App
from .errors import ConfigurationError


def load_app(path: str) -> App:
    """Import ``package.module:app`` (the attribute defaults to ``app``, or to the module's
    one App whatever its name, as Celery's ``-A proj`` finds ``celery_app``).

    The current directory is importable, as with ``python -m``, so ``-A myproject.tasks``
    works from the project root.
    """
    module_name, _, attribute = path.partition(":")
    if not module_name:
        raise ConfigurationError(
            f"app path {path!r} is empty; use -A package.module:app or set CONVEYOR_APP"
        )
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot import {module_name!r} for -A {path!r}: {exc}. Run from your project root, or fix the path"
        ) from exc
    app = getattr(module, attribute or "app", None)
    apps = {name: value for name, value in vars(module).items() if isinstance(value, App)}
    if not isinstance(app, App) and not attribute and len(set(map(id, apps.values()))) == 1:
        # -A proj where proj names its one app otherwise (Celery's ``celery_app``)
        attribute, app = next(iter(apps.items()))
        path = f"{module_name}:{attribute}"
    if not isinstance(app, App):
        raise ConfigurationError(
            f"{module_name}:{attribute or 'app'} is not a conveyor.App (Apps found in that "
            f"module: {', '.join(apps) or 'none'})"
        )
    app.main = path
    return app
