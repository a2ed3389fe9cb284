"""Composing work: signatures, and ``chain``, ``group``, ``chord`` and ``|`` built from them.

Building a workflow gives every task in it an id up front and turns it into a JSON
spec (nodes: task, chain, group, chord). ``apply_async`` stores the spec in the backend
and enqueues the first jobs; the rest is started by workers as jobs finish (see
``engine``), so a workflow's state lives in the backend, never in a process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

from ..errors import ConfigurationError
from ..ids import new_id
from ..job import Job
from ..options import TIMING, check_workflow_options, durable_options
from .engine import NO_INPUT, check_steps, first_tasks, spec_key, start, task_nodes
from .handle import Workflow

if TYPE_CHECKING:
    from ..app import App

Node = dict[str, Any]
Part = Union["Signature", "Chain", "Group", "Chord"]


@dataclass
class Signature:
    """A task name with arguments and options; ``app.enqueue_many`` takes a list of them,
    and ``chain``/``group``/``chord`` (or ``|``) compose them."""

    task: str
    args: tuple[Any, ...] | list[Any] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    immutable: bool = False
    app: App | None = field(default=None, repr=False, compare=False)
    #: Run these with this job's result when it succeeds.
    links: list[Signature] = field(default_factory=list)
    #: Run these with this job's id when it fails or is revoked.
    errbacks: list[Signature] = field(default_factory=list)

    def set(self, **options: Any) -> Signature:
        """Add per-call options (queue, priority, countdown, ...); returns self."""
        self.options.update(options)
        return self

    def link(self, sig: Signature) -> Signature:
        self.links.append(sig)
        return self

    def link_error(self, sig: Signature) -> Signature:
        self.errbacks.append(sig)
        return self

    def apply_async(
        self, *, link: Signature | None = None, link_error: Signature | None = None, **options: Any
    ) -> Job:
        """Queue this signature as one job (with its links); returns the job's handle."""
        if self.app is None:
            raise ConfigurationError("this signature has no app: build it with task.s(...)")
        sig = Signature(self.task, self.args, self.kwargs, {**self.options, **options}, self.immutable, self.app,
                        self.links + ([link] if link else []), self.errbacks + ([link_error] if link_error else []))  # fmt: skip
        node = task_node(sig)
        check_steps(self.app, node)
        jobs = list(start(self.app, node, NO_INPUT, None, None))
        self.app.backend.enqueue(jobs, connection=self.app.joined_connection())
        return Job(self.app, node["id"])

    def delay(self) -> Job:
        return self.apply_async()

    def __or__(self, other: Any) -> Any:
        return Chain(self, other)


def launch(app: App, node: Node) -> Workflow:
    """Store a workflow's spec and enqueue its first jobs."""
    check_steps(app, node)
    app.backend.kv_set(spec_key(node["id"]), node, ttl=app.conf.result_ttl)
    # The first jobs join the caller's transaction, if its app says so (the spec alone,
    # left by a rollback, is a key-value that expires with the results)
    jobs = list(start(app, node, NO_INPUT, None, node["id"]))
    app.backend.enqueue(jobs, connection=app.joined_connection())
    return Workflow(app, node)


def task_node(sig: Signature) -> Node:
    node: Node = {"t": "task", "id": sig.options.get("job_id") or new_id(), "task": sig.task, "args": list(sig.args), "kwargs": dict(sig.kwargs),
                  "options": durable_options(sig.options), "immutable": sig.immutable}  # fmt: skip
    links = [to_node(s) for s in sig.links]
    errbacks = [to_node(s) for s in sig.errbacks]
    if links:
        node["link"] = links
    if errbacks:
        node["link_error"] = errbacks
    return node


def to_node(part: Part) -> Node:
    if isinstance(part, Signature):
        return task_node(part)
    return part.node()


def with_options(spec: Node, options: Mapping[str, Any]) -> Node:
    """Give each step of ``spec`` the workflow's ``options`` it does not set itself (a
    step's own option wins whole, headers included). They are stored with the step, so a
    step a worker enqueues hours later still gets them.

    countdown/eta delay only the steps that start first (a chain's first step, a group's
    members): a later step starts when its predecessor ends, and delaying it again would
    count the wait twice. ``expires`` in seconds counts from when each step is queued.
    """
    options = durable_options(options)
    timing = {key: options.pop(key) for key in TIMING & options.keys()}
    for node in task_nodes(spec):
        node["options"] = {**options, **node["options"]}
    for node in first_tasks(spec):
        if not TIMING & node["options"].keys():
            node["options"].update(timing)
    return spec


def _app_of(parts: Iterable[Part]) -> App | None:
    for part in parts:
        app = part.app if isinstance(part, Signature) else part.find_app()
        if app is not None:
            return app
    return None


class _Canvas:
    parts: list[Part]

    def find_app(self) -> App | None:
        return _app_of(self.parts)

    def node(self) -> Node:
        raise NotImplementedError

    def apply_async(self, app: App | None = None, **options: Any) -> Workflow:
        """Store the workflow and enqueue its first jobs; returns its handle.

        ``options``: a task's per-call options (queue, priority, countdown, eta, expires,
        max_retries, headers), for every step that does not set its own; see
        ``with_options``. Every step is checked before anything is stored.
        """
        check_workflow_options(options)
        app = app or self.find_app()
        if app is None:
            raise ConfigurationError(
                "build workflows from task signatures (task.s(...)) or pass app="
            )
        return launch(app, with_options(self.node(), options))

    def delay(self) -> Workflow:
        return self.apply_async()

    def __or__(self, other: Part) -> Chain:
        return Chain(self, other)  # type: ignore[arg-type]  # every _Canvas is a Part


class Chain(_Canvas):
    """Run parts one after another; each task receives the previous result first."""

    def __init__(self, *parts: Part) -> None:
        self.parts = []
        for part in parts:  # flatten chains of chains
            self.parts += part.parts if isinstance(part, Chain) else [part]

    def node(self) -> Node:
        steps = [to_node(p) for p in self.parts]
        # a group followed by a task is a chord, as in Celery
        merged: list[Node] = []
        for step in steps:
            if merged and merged[-1]["t"] == "group":
                merged[-1] = {"t": "chord", "id": new_id(), "group": merged[-1], "callback": step}
            else:
                merged.append(step)
        return {"t": "chain", "id": new_id(), "steps": merged}

    def __or__(self, other: Part) -> Chain:
        return Chain(*self.parts, other)


class Group(_Canvas):
    """Run parts side by side; the result is the list of their results, in order."""

    def __init__(self, *parts: Part | Iterable[Part]) -> None:
        self.parts = []
        for part in parts:
            self.parts += [part] if isinstance(part, Signature | _Canvas) else list(part)

    def node(self) -> Node:
        return {"t": "group", "id": new_id(), "members": [to_node(p) for p in self.parts]}


class Chord(_Canvas):
    """A group, then a callback that receives the list of the group's results."""

    def __init__(self, header: Group | Iterable[Part], callback: Part) -> None:
        self.header = header if isinstance(header, Group) else Group(header)
        self.callback = callback
        self.parts = [self.header, callback]

    def node(self) -> Node:
        return {
            "t": "chord",
            "id": new_id(),
            "group": self.header.node(),
            "callback": to_node(self.callback),
        }


def chain(*parts: Part) -> Chain:
    return Chain(*parts)


def group(*parts: Part | Iterable[Part]) -> Group:
    return Group(*parts)


def chord(header: Group | Iterable[Part], callback: Part) -> Chord:
    return Chord(header, callback)
