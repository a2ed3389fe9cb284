"""The current app and the shared tasks: the process-wide state Celery's API implies.

``shared_task`` and ``AsyncResult(id)`` (without ``app=``) need an app that nobody
passes: the Celery app built last, as in Celery. Tasks declared with ``@shared_task``
are registered on every Celery app, those built before and after.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..app import App

_current: list[App] = []
_apps: weakref.WeakSet[Any] = weakref.WeakSet()
#: (function, options) of every @shared_task, in declaration order.
shared: list[tuple[Callable[..., Any], dict[str, Any]]] = []


def register(app: App) -> None:
    """A new Celery app: ``@shared_task`` declares its tasks on it too."""
    _apps.add(app)


def set_current(app: App) -> None:
    _current[:] = [app]


class CurrentApp:
    """Celery's ``current_app``: its attributes are the current app's
    (``current_app.send_task(...)``, ``current_app.conf``), as Celery's proxy's are, and
    ``current_app()`` is the app itself."""

    def __call__(self) -> App:
        if not _current:
            raise ConfigurationError(
                "no Celery app exists yet: build one (app = Celery('proj', broker=...)) "
                "before calling shared tasks or AsyncResult(id) without app="
            )
        return _current[0]

    def __getattr__(self, name: str) -> Any:
        return getattr(self(), name)

    def __repr__(self) -> str:
        return f"<current_app: {_current[0]!r}>" if _current else "<current_app: none yet>"


current_app = CurrentApp()


def find_current() -> App | None:
    """The current app, or None when no Celery app was built (``current_app`` raises)."""
    return _current[0] if _current else None


def apps() -> list[Any]:
    return list(_apps)
