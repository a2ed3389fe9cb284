"""``Celery``: a Conveyor ``App`` that speaks Celery's API (``celery.Celery``).

It is an ``App`` (``conveyor -A proj.celery:app worker`` loads it as any other), with
Celery's settings on ``conf`` (``CelerySettings``), ``@app.task`` with Celery's options,
``app.control``, ``app.AsyncResult``, ``config_from_object`` and ``autodiscover_tasks``.
"""

from __future__ import annotations
import __future__

import importlib
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from ..app import App
from ..errors import ConfigurationError
from ..job import Job
from ..names import check_queue_name
from ..schedules import Schedule
from . import current
from . import result as results
from .canvas import CelerySignature, call_options, signature
from .control import Control
from .exceptions import NotSupported
from .settings import CelerySettings
from .task import CeleryTask

__all__ = ["Celery", "Signal", "shared_task"]


class Signal:
    """``app.on_after_configure`` / ``app.on_after_finalize``: receivers run once, when the
    app first needs its tasks (a worker starting, the scheduler reading schedules)."""

    def __init__(self) -> None:
        self.receivers: list[Callable[..., Any]] = []

    def connect(self, fn: Callable[..., Any] | None = None, **_: Any) -> Any:
        if fn is None:
            return self.connect
        self.receivers.append(fn)
        return fn

    def send(self, sender: Any, **kwargs: Any) -> None:
        for receiver in self.receivers:
            receiver(sender=sender, **kwargs)


class Celery(App):
    """``Celery("proj", broker=URL)``: the broker URL (Redis, PostgreSQL or SQLite; none
    for the SQLite default) is Conveyor's store, which keeps results too."""

    conf: CelerySettings

    def __init__(self, main: str | None = None, broker: str | None = None,
                 backend: str | None = None, *, include: Iterable[str] | None = None,
                 config_source: Any = None, set_as_current: bool = True, **settings: Any) -> None:  # fmt: skip
        self._tasks: dict[str, Any] = {}
        self._discover: list[Callable[[], Iterable[str]] | Iterable[str]] = []
        self._related: list[str] = []
        self._finalized = False
        super().__init__(main or "celery")
        self.conf = CelerySettings()
        self.conf.on_change = self._refresh
        self.on_after_configure, self.on_after_finalize = Signal(), Signal()
        self._control: Control | None = None
        if config_source is not None:
            self.config_from_object(config_source)
        given = {k: v for k, v in (("broker_url", broker), ("result_backend", backend)) if v}
        self.conf.note_written(
            {k: f"Celery(..., {'broker' if k == 'broker_url' else 'backend'}=...)" for k in given}
        )
        self.conf.update(given)
        self.conf.note_written({k: f"Celery(..., {k}=...)" for k in settings})
        self.conf.update(settings)
        if include:
            self._discover.append(list(include))
            self._related.append("")
        current.register(self)
        if set_as_current:
            current.set_current(self)
        for fn, options in current.shared:
            self._register(fn, dict(options))

    def set_current(self) -> None:
        """Make this the current app (``AsyncResult(id)`` and ``@shared_task`` use it)."""
        current.set_current(self)

    @property
    def tasks(self) -> dict[str, Any]:
        self._finalize()
        return self._tasks

    @tasks.setter
    def tasks(self, value: dict[str, Any]) -> None:
        self._tasks = value

    # -- configuration ---------------------------------------------------------------

    def config_from_object(self, obj: Any, silent: bool = False, force: bool = False,
                           namespace: str | None = None) -> None:  # fmt: skip
        """Read settings from a module, ``"module:attribute"`` (``"django.conf:settings"``
        with ``namespace="CELERY"``), an object or a dict."""
        source = obj if isinstance(obj, str) else getattr(obj, "__name__", None)
        source = source or "the object given to config_from_object"
        if isinstance(obj, str):
            module_name, _, attribute = obj.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                if silent:
                    return
                raise
            obj = getattr(module, attribute) if attribute else module
        items = obj.items() if isinstance(obj, dict) else ((k, getattr(obj, k)) for k in dir(obj))
        prefix = f"{namespace}_" if namespace else None
        found, written = {}, {}
        for key, value in items:
            if (
                key.startswith("_")
                or isinstance(value, type)
                or callable(value)
                or _is_module(value)
            ):
                continue
            if prefix is not None:
                if key.startswith(prefix):
                    found[key[len(prefix) :].lower()] = value
                    written[key[len(prefix) :]] = f"{key} in {source}"
            elif key.islower():
                found[key] = value
                written[key] = f"{key} in {source}"
            elif key.startswith(("CELERY", "BROKER_")):
                raise NotSupported(f"the old upper-case setting {key}", "Celery 4 renamed them",
                                   "use the lower-case names (e.g. broker_url), or namespace=")  # fmt: skip
        self.conf.note_written(written)
        self.conf.update(found)

    def add_periodic_task(self, schedule_: Any, sig: CelerySignature, args: Any = (),
                          kwargs: Any = None, name: str | None = None, **opts: Any) -> None:  # fmt: skip
        """Celery's ``add_periodic_task``, as a ``beat_schedule`` entry."""
        entry = {"task": sig.task, "schedule": schedule_, "args": list(sig.args) or list(args),
                 "kwargs": dict(sig.kwargs) or dict(kwargs or {})}  # fmt: skip
        options = {k: v for k, v in sig.options.items() if k in ("queue", "priority", "expires")}
        options.update(opts)
        if options:
            entry["options"] = options
        key = name or f"{sig.task}({', '.join(map(repr, entry['args']))})"
        self.conf.beat_schedule = {**self.conf.beat_schedule, key: entry}

    def autodiscover_tasks(self, packages: Iterable[str] | Callable[[], Iterable[str]] | None = None,
                           related_name: str = "tasks", force: bool = False) -> None:  # fmt: skip
        """Import ``<package>.<related_name>`` for each package (default: Django's installed
        apps) when the app first needs its tasks, or now with ``force``."""
        self._discover.append(packages if packages is not None else _django_apps)
        self._related.append(related_name)
        if force or self._finalized:
            self._run_discovery()

    def _finalize(self) -> None:
        if self._finalized:
            return
        self._finalized = True
        self._run_discovery()
        self.on_after_configure.send(self)
        self.on_after_finalize.send(self)

    def _run_discovery(self) -> None:
        pending = list(zip(self._discover, self._related, strict=True))
        self._discover.clear()
        self._related.clear()
        for packages, related in pending:
            for package in packages() if callable(packages) else packages:
                name = f"{package}.{related}" if related else package
                try:
                    importlib.import_module(name)
                except ModuleNotFoundError as exc:
                    if exc.name != name:  # the package has no tasks module: fine, as in Celery
                        raise

    def declared_schedules(self) -> dict[str, Schedule]:
        self._finalize()
        return super().declared_schedules()

    def _refresh(self) -> None:
        for task in self._tasks.values():
            if isinstance(task, CeleryTask):
                task.refresh()

    # -- tasks -----------------------------------------------------------------------

    def task(self, *args: Any, **options: Any) -> Any:
        """``@app.task`` or ``@app.task(bind=True, name=..., queue=..., max_retries=...)``."""
        if len(args) == 1 and callable(args[0]) and not options:
            return self._register(args[0], {})
        if args:
            raise ConfigurationError("use @app.task or @app.task(option=...)")
        return lambda fn: self._register(fn, options)

    def _register(self, fn: Callable[..., Any], options: dict[str, Any]) -> CeleryTask:
        options = dict(options)
        name = options.pop("name", None) or f"{fn.__module__}.{fn.__name__}"
        if options.get("queue") is not None:
            check_queue_name(options["queue"], f"task {name}: queue")
        task = CeleryTask(self, fn, name, options)
        self._tasks[name] = task
        return task

    def send_task(self, name: str, args: Any = (), kwargs: Any = None, *,
                  connection: Any = None, **options: Any) -> Job:  # fmt: skip
        """Queue a job by task name, with Celery's option names. A task this process has
        not registered gets ``task_default_priority`` when the call sets none, as Celery
        gives every message (a registered task has it among its own options)."""
        default = self.conf.task_default_priority
        if default is not None and "priority" not in options and name not in self.tasks:
            options = {**options, "priority": default}
        return super().send_task(
            name,
            args or (),
            kwargs,
            connection=connection,
            **call_options(options, self.conf.timezone),
        )

    def signature(
        self, name: str, args: Any = (), kwargs: Any = None, **options: Any
    ) -> CelerySignature:
        return signature(name, args, kwargs, app=self, **options)

    def AsyncResult(self, task_id: str) -> results.AsyncResult:
        return results.result_for(self, task_id)

    def GroupResult(
        self, group_id: str, members: list[results.AsyncResult] | None = None
    ) -> results.GroupResult:
        return results.GroupResult(group_id, members, app=self)

    @property
    def control(self) -> Control:
        if self._control is None:
            self._control = Control(self)
        return self._control


def _is_module(value: Any) -> bool:
    """A module, or ``from __future__ import annotations``: imported names, not settings."""
    return isinstance(value, ModuleType | __future__._Feature)


def _django_apps() -> list[str]:
    """The installed apps of the Django project (set up here if nobody did, as Celery's
    Django fixup does in a worker: ``DJANGO_SETTINGS_MODULE`` must be set)."""
    import django
    from django.apps import apps

    if not apps.apps_ready:  # ready() methods run after it: Django is setting up already
        django.setup()
    return [config.name for config in apps.get_app_configs()]


def shared_task(*args: Any, **options: Any) -> Any:
    """``@shared_task``: a task on every Celery app (those built before and after)."""

    def declare(fn: Callable[..., Any]) -> SharedTask:
        current.shared.append((fn, dict(options)))
        for app in current.apps():
            app._register(fn, dict(options))
        return SharedTask(fn, options.get("name") or f"{fn.__module__}.{fn.__name__}")

    if len(args) == 1 and callable(args[0]) and not options:
        return declare(args[0])
    return declare


class SharedTask:
    """What ``@shared_task`` returns: the task of that name on the current app."""

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.run, self.name = fn, name

    def _task(self) -> CeleryTask:
        task = current.current_app().tasks[self.name]
        assert isinstance(task, CeleryTask)
        return task

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._task(), attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._task()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<@shared_task: {self.name}>"
