"""Celery's canvas on Conveyor's workflows (``celery.canvas``): ``signature``, ``.s()``,
``.si()``, ``chain``, ``group``, ``chord`` and ``|``, with Celery's call options.

Options are translated when they are given (``task_id`` is Conveyor's ``job_id``), so an
option Conveyor cannot honour raises at the call that names it, before anything is stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ..ids import new_id
from ..options import CALL_OPTIONS, check_workflow_options
from ..workflows.canvas import Chain, Chord, Group, Part, Signature, launch, with_options
from .current import current_app
from .exceptions import NotSupported
from .result import AsyncResult, GroupResult, WorkflowResult

if TYPE_CHECKING:
    from ..app import App

__all__ = ["CelerySignature", "call_options", "chain", "chord", "group", "signature"]

#: Celery call options Conveyor has no meaning for, and what to do instead.
UNSUPPORTED_CALL_OPTIONS: dict[str, tuple[str, str]] = {
    "routing_key": ("Conveyor routes by queue name (no exchanges)", "pass queue="),
    "exchange": ("Conveyor routes by queue name (no exchanges)", "pass queue="),
    "time_limit": ("time limits are the task's", "set time_limit on the task"),
    "soft_time_limit": ("time limits are the task's", "set soft_time_limit on the task"),
    "ignore_result": ("result keeping is the task's", "set ignore_result on the task"),
    "retry": (
        "an enqueue stores the job or raises BackendError at once",
        "catch BackendError where you enqueue",
    ),
    "retry_policy": (
        "an enqueue stores the job or raises BackendError at once",
        "catch BackendError where you enqueue",
    ),
    "compression": ("jobs are stored as JSON", "store large data elsewhere and pass its key"),
    "shadow": ("a job is shown under its task's name", "name the task with name="),
    "add_to_parent": ("Conveyor keeps no parent/child result tree", "drop the option"),
}
#: Conveyor's own options pass as they are (a workflow's apply_async refuses job_id).
_SAME = CALL_OPTIONS


def call_options(options: dict[str, Any], timezone: str = "UTC") -> dict[str, Any]:
    """Celery's per-call options as Conveyor's (``link``/``link_error`` are left to the
    caller); a naive ``eta`` or ``expires`` is read in ``timezone`` (the app's)."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key in ("eta", "expires") and isinstance(value, datetime) and value.tzinfo is None:
            # Celery's rule (enable_utc, its default and the only value taken here): a
            # naive datetime is in the app's time zone, UTC unless `timezone` is set.
            # Conveyor's own API keeps refusing one.
            out[key] = value.replace(tzinfo=ZoneInfo(timezone))
        elif key in _SAME:
            out[key] = value
        elif key == "task_id":
            out["job_id"] = value
        elif key == "serializer" and value == "json":
            continue  # what Conveyor does
        elif key in UNSUPPORTED_CALL_OPTIONS:
            raise NotSupported(f"apply_async({key}=...)", *UNSUPPORTED_CALL_OPTIONS[key])
        else:
            known = ", ".join(
                sorted(
                    {*_SAME, "task_id", "link", "link_error"}
                    - {"parent_id", "root_id", "workflow_id"}
                )
            )
            raise NotSupported(f"apply_async({key}=...)", "Conveyor does not know it",
                               f"conveyor.celery takes {known}")  # fmt: skip
    return out


def _timezone(app: App | None) -> str:
    """The time zone a naive datetime is read in: the app's ``timezone`` (Celery's), else UTC."""
    return str(getattr(app.conf, "timezone", "UTC")) if app is not None else "UTC"


def _links(value: Any) -> list[Signature]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


class CelerySignature(Signature):
    """A task with arguments and Celery's options; ``apply_async`` returns an ``AsyncResult``."""

    def set(self, **options: Any) -> CelerySignature:
        self.links += _links(options.pop("link", None))
        self.errbacks += _links(options.pop("link_error", None))
        self.options.update(call_options(options, _timezone(self.app)))
        return self

    @property
    def id(self) -> str | None:
        return self.options.get("job_id")

    @property
    def name(self) -> str:
        return self.task

    def freeze(self) -> AsyncResult:
        """Give the signature its job id now (Celery's ``freeze``)."""
        job_id = self.options.setdefault("job_id", new_id())
        return AsyncResult(job_id, app=self._app())

    def clone(self, args: Any = (), kwargs: Any = None, **options: Any) -> CelerySignature:
        return CelerySignature(
            self.task, (*args, *self.args) if not self.immutable else self.args,
            {**self.kwargs, **(kwargs or {})}, dict(self.options), self.immutable, self.app,
            list(self.links), list(self.errbacks),
        ).set(**options)  # fmt: skip

    def _app(self) -> App:
        if self.app is None:
            raise NotSupported("a signature without an app", "jobs are stored in the app's "
                               "store", "build it with task.s(...) or app.signature(...)")  # fmt: skip
        return self.app

    def apply_async(  # type: ignore[override]
        self, args: Any = None, kwargs: Any = None, **options: Any
    ) -> AsyncResult:
        """Queue this signature as one job; ``args`` are put before the signature's own."""
        sig = self.clone(args or (), kwargs, **options)
        app = sig._app()
        if sig.links or sig.errbacks:
            job = Signature.apply_async(sig)
        else:
            job = app.send_task(sig.task, sig.args, sig.kwargs, **sig.options)
        return AsyncResult(job.id, app=app)

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:  # type: ignore[override]
        return self.apply_async(args, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the task here (as Celery does), with the signature's arguments."""
        return self._app().get_task(self.task)(*args, *self.args, **{**self.kwargs, **kwargs})

    def __or__(self, other: Any) -> chain:
        return chain(self, other)


def signature(name: str | CelerySignature, args: Any = (), kwargs: Any = None, *,
              app: App | None = None, **options: Any) -> CelerySignature:  # fmt: skip
    """``signature("tasks.add", args=(2, 2), countdown=10)``: a task by name."""
    if isinstance(name, CelerySignature):
        return name.clone()
    if app is None:
        app = current_app()
    return CelerySignature(name, tuple(args or ()), dict(kwargs or {}), app=app).set(**options)


class _Workflow:
    """What Celery's chain, group and chord add to Conveyor's: Celery's call options,
    calling to apply, and results in Celery's shapes."""

    find_app: Any
    node: Any

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        if args or kwargs:
            raise NotSupported("partial arguments to a chain, group or chord",
                               "a workflow's steps carry their own arguments",
                               "give the first step its arguments")  # fmt: skip
        app = options.pop("app", None) or self.find_app()
        if app is None:
            raise NotSupported("a workflow of signatures without an app", "jobs are stored in "
                               "the app's store", "build steps with task.s(...)")  # fmt: skip
        translated = call_options(options, _timezone(app))
        if "job_id" in translated:
            raise NotSupported("task_id= on a chain, group or chord", "each step has its own id",
                               "give a step its id with .set(task_id=...)")  # fmt: skip
        check_workflow_options(translated)
        return self._result(launch(app, with_options(self.node(), translated)))

    def _result(self, handle: Any) -> Any:
        return WorkflowResult(handle.id, app=handle.app, handle=handle)

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def __or__(self, other: Part) -> chain:
        return chain(self, other)  # type: ignore[arg-type]


class chain(_Workflow, Chain):  # type: ignore[misc]  # Celery's apply_async wins
    """Run steps one after another; each receives the previous result first."""

    def __init__(self, *parts: Part | Iterable[Part]) -> None:
        flat: list[Part] = []
        for part in parts:  # chain([a, b]) as well as chain(a, b)
            flat += list(part) if isinstance(part, list | tuple) else [part]  # type: ignore[list-item]
        Chain.__init__(self, *flat)


class group(_Workflow, Group):  # type: ignore[misc]
    """Run parts side by side; ``apply_async`` returns a ``GroupResult``."""

    def _result(self, handle: Any) -> Any:
        return GroupResult.of(handle)


class chord(_Workflow, Chord):
    """A group, then a callback with the list of its results: ``chord(header)(body)`` or
    ``chord(header, body).apply_async()``."""

    def __init__(self, header: Group | Iterable[Part], body: Part | None = None) -> None:
        self._pending = body is None
        Chord.__init__(self, header, body if body is not None else Signature(""))

    def __call__(self, body: Part | None = None, **options: Any) -> Any:
        if body is not None:
            self.callback, self.parts = body, [self.header, body]
            self._pending = False
        return self.apply_async(**options)

    def apply_async(  # type: ignore[override]
        self, args: Any = None, kwargs: Any = None, **options: Any
    ) -> Any:
        if self._pending:
            raise NotSupported("a chord without a body", "the callback runs with the group's "
                               "results", "call chord(header)(body) or chord(header, body)")  # fmt: skip
        return super().apply_async(args, kwargs, **options)
