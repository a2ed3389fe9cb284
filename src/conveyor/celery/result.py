"""``AsyncResult`` and ``GroupResult`` (``celery.result``) on Conveyor's job records and
workflow handles.

Differences from Celery, on purpose: an id no job or workflow has raises ``JobNotFound``
(Celery says PENDING forever); a job waiting for its eta says PENDING (Conveyor's
SCHEDULED); ``get()`` raises the task's exception when it is a builtin one (or one of
``conveyor.celery.exceptions``), else ``JobFailed`` carrying the type, message and traceback.
"""

from __future__ import annotations

import builtins
import functools
import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ..backends.common import retries_used
from ..errors import JobFailed, JobNotFound, JobRevoked
from ..job import Job
from ..records import JobRecord
from ..serialization import decode_payload
from ..states import State
from ..workflows.engine import task_nodes
from ..workflows.handle import Workflow, is_workflow, load_workflow
from .current import current_app
from .exceptions import (
    MaxRetriesExceededError,
    NotSupported,
    Reject,
    SoftTimeLimitExceeded,
    TaskRevokedError,
    TimeLimitExceeded,
)

if TYPE_CHECKING:
    from ..app import App

__all__ = ["AsyncResult", "GroupResult", "WorkflowResult", "result_for"]

_OURS: dict[str, type[BaseException]] = {
    cls.__name__: cls for cls in
    (MaxRetriesExceededError, Reject, SoftTimeLimitExceeded, TimeLimitExceeded)
}  # fmt: skip


def rebuild(error: dict[str, Any] | None, fallback: BaseException) -> BaseException:
    """The task's exception, rebuilt from the stored error when its type is known here."""
    name = str((error or {}).get("type"))
    cls = _OURS.get(name) or getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            exc = cls((error or {}).get("message"))
        except Exception:
            return fallback
        exc.__cause__ = fallback
        return exc
    return fallback


def _running_meta(record: JobRecord) -> dict[str, Any] | None:
    """``update_state``'s meta of the attempt running now, else None: a record keeps the
    progress of its last run, through a give-back to its queue and into the next attempt,
    until that attempt reports its own."""
    meta = (record.progress or {}).get("meta") or {}
    if record.state is not State.STARTED or "celery_state" not in meta:
        return None
    # stored by this version with its attempt; by an earlier one without (taken as is)
    return meta if meta.get("celery_attempt", record.attempt) == record.attempt else None


def _state(record: JobRecord) -> str:
    if record.state is State.SCHEDULED:
        return "PENDING"
    meta = _running_meta(record)
    return str(meta["celery_state"]) if meta is not None else record.state.value


F = TypeVar("F", bound=Callable[..., Any])


def _or_workflow(method: F) -> F:
    """Celery's habit, ``AsyncResult(saved_id).get()`` for a chain's or chord's id: when
    no job has the id and a workflow does, this result becomes that workflow's
    (``result_for``: a ``WorkflowResult`` or ``GroupResult``) and answers as it. Only on
    a miss: making an ``AsyncResult`` reads nothing."""

    @functools.wraps(method)
    def call(self: AsyncResult, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except JobNotFound:
            if type(self) is not AsyncResult or not is_workflow(self.app, self.id):
                raise
        found = result_for(self.app, self.id)
        self.__class__ = type(found)
        self.__dict__.update(found.__dict__)
        again = inspect.getattr_static(type(self), method.__name__)
        if isinstance(again, property):
            return again.fget(self)  # type: ignore[misc]
        return again(self, *args, **kwargs)

    return call  # type: ignore[return-value]


class AsyncResult:
    """A job's state and result, by id: ``AsyncResult(id)`` or ``app.AsyncResult(id)``;
    the id of a chain, group or chord gives that workflow's (``_or_workflow``)."""

    def __init__(self, id: str, backend: Any = None, task_name: str | None = None,
                 app: App | None = None) -> None:  # fmt: skip
        self.id = self.task_id = id
        self.app = app or current_app()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.id}>"

    def __str__(self) -> str:
        return self.id

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return other == self.id
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def _record(self) -> JobRecord:
        try:
            return self.app.backend.get(self.id)
        except JobNotFound:
            if is_workflow(self.app, self.id):
                raise JobNotFound(
                    f"{self.id!r} is a workflow's id (a chain, group or chord): its state, "
                    "result and get() are the workflow's; a job's own fields are its members'"
                ) from None
            raise

    @property
    @_or_workflow
    def state(self) -> str:
        return _state(self._record())

    status = state

    @property
    @_or_workflow
    def result(self) -> Any:
        """The return value, the exception of a failure, or the ``meta`` of ``update_state``."""
        return self._info(self._record())

    info = result

    def _info(self, record: JobRecord) -> Any:
        if record.state is State.SUCCESS:
            return record.result
        if record.state in (State.FAILURE, State.REVOKED, State.RETRY) and record.error:
            cls = TaskRevokedError if record.state is State.REVOKED else JobFailed
            return rebuild(record.error, cls(record.error.get("message"), error=record.error))
        meta = _running_meta(record)  # Celery's info of a waiting job is None
        return None if meta is None else meta.get("info")

    @property
    @_or_workflow
    def traceback(self) -> str | None:
        error = self._record().error
        return None if error is None else error.get("traceback")

    @property
    def date_done(self) -> datetime | None:
        done = self._record().finished_at
        return None if done is None else datetime.fromtimestamp(done, UTC)

    @property
    def name(self) -> str:
        return self._record().task

    @property
    def args(self) -> list[Any]:
        return list(decode_payload(self._record().payload)[0])

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(decode_payload(self._record().payload)[1])

    @property
    def retries(self) -> int:
        """Retries only, as Celery counts them (and as ``self.request.retries`` does): a
        delivery lost with its worker runs the task again but is no retry."""
        return retries_used(self._record().attempts)

    @property
    def queue(self) -> str:
        return self._record().queue

    @_or_workflow
    def ready(self) -> bool:
        return self._record().state.finished

    @_or_workflow
    def successful(self) -> bool:
        return self._record().state is State.SUCCESS

    @_or_workflow
    def failed(self) -> bool:
        return self._record().state is State.FAILURE

    def get(self, timeout: float | None = None, propagate: bool = True, interval: float = 0.5,
            disable_sync_subtasks: bool = True, **options: Any) -> Any:  # fmt: skip
        """Wait for the result (Conveyor polls at most 0.2 s apart, whatever ``interval``);
        a failure raises the task's exception (see the module docstring), or with
        ``propagate=False`` returns it."""
        _no_options("get", options)
        try:
            return self._wait(timeout)
        except (JobFailed, JobRevoked) as exc:
            found = rebuild(exc.context.get("error"), exc)
            if propagate:
                raise found from None
            return found  # as Celery: the exception, returned

    @_or_workflow
    def _wait(self, timeout: float | None) -> Any:
        return Job(self.app, self.id).get(timeout)

    wait = get

    def revoke(self, connection: Any = None, terminate: bool = False, signal: Any = None,
               wait: bool = False, timeout: float | None = None) -> Any:  # fmt: skip
        return self.app.control.revoke(self.id, terminate=terminate, signal=signal)  # type: ignore[attr-defined]

    def forget(self) -> None:
        raise NotSupported(
            "forget()", "records are pruned after result_expires", "set result_expires"
        )


class WorkflowResult(AsyncResult):
    """The result of a chain or chord (its final step's), by the workflow's id."""

    def __init__(self, id: str, app: App | None = None, handle: Workflow | None = None) -> None:
        super().__init__(id, app=app)
        self.handle = handle or load_workflow(self.app, id)

    @property
    def state(self) -> str:
        return self.handle.state.value

    status = state

    @property
    def result(self) -> Any:
        state = self.handle.state
        if state is State.SUCCESS:
            return self.handle.result()
        if state in (State.FAILURE, State.REVOKED):
            try:
                self.handle.get(timeout=0)
            except (JobFailed, JobRevoked) as exc:
                return rebuild(exc.context.get("error"), exc)
        return None

    info = result

    @property
    def traceback(self) -> str | None:
        failed = [r for r in self.handle.records().values() if r and r.state is State.FAILURE]
        return (failed[0].error or {}).get("traceback") if failed else None

    def ready(self) -> bool:
        return self.handle.state.finished

    def successful(self) -> bool:
        return self.handle.state is State.SUCCESS

    def failed(self) -> bool:
        return self.handle.state is State.FAILURE

    def _wait(self, timeout: float | None) -> Any:
        return self.handle.get(timeout)

    def revoke(self, connection: Any = None, terminate: bool = False, signal: Any = None,
               wait: bool = False, timeout: float | None = None) -> Any:  # fmt: skip
        return self.app.control.revoke(self.id, terminate=terminate, signal=signal)  # type: ignore[attr-defined]


class GroupResult(WorkflowResult):
    """A group's members' results (``results``) and their list (``get()``)."""

    def __init__(self, id: str, results: list[AsyncResult] | None = None, app: App | None = None,
                 handle: Workflow | None = None) -> None:  # fmt: skip
        super().__init__(id, app=app, handle=handle)
        self.results = results if results is not None else _members(self.handle)

    @classmethod
    def of(cls, handle: Workflow) -> GroupResult:
        return cls(handle.id, app=handle.app, handle=handle)

    @classmethod
    def restore(cls, id: str, app: App | None = None) -> GroupResult:
        return cls(id, app=app)

    def save(self) -> None:
        """A group is stored when it is applied: nothing to do (``restore`` finds it)."""

    def __iter__(self) -> Any:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def completed_count(self) -> int:
        return sum(r.successful() for r in self.results)

    def waiting(self) -> bool:
        return not self.ready()

    def join(self, timeout: float | None = None, propagate: bool = True, **options: Any) -> Any:
        return self.get(timeout, propagate, **options)


def _members(handle: Workflow) -> list[AsyncResult]:
    spec = handle.spec
    members = spec.get("members") if spec["t"] == "group" else None
    if members is None:
        return []
    return [AsyncResult(list(task_nodes(m))[-1]["id"], app=handle.app) for m in members]


def _no_options(verb: str, options: dict[str, Any]) -> None:
    if options:
        raise NotSupported(f"{verb}({', '.join(sorted(options))}=...)",
                           "Conveyor waits by polling the store", "drop them")  # fmt: skip


def result_for(app: App, task_id: str) -> AsyncResult:
    """``app.AsyncResult(id)``: a job's result, or a workflow's when the id is one."""
    if not app.backend.get_many([task_id]) and is_workflow(app, task_id):
        handle = load_workflow(app, task_id)
        return (
            GroupResult.of(handle)
            if handle.spec["t"] == "group"
            else WorkflowResult(task_id, app, handle)
        )
    return AsyncResult(task_id, app=app)
