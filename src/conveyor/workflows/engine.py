"""Running workflows: what to enqueue when a workflow starts and when a member ends.

A job that belongs to a workflow carries its continuation in ``headers["wf"]``:
``{"workflow": id, "then": cont}``, where ``cont`` is None, a sequence of nodes still
to run (``{"k": "seq", "steps": [...], "then": cont}``), or a group slot
(``{"k": "join", "group": id, "index": i, "size": n, "then": cont}``).

When a delivery ends, ``follow_ups`` returns the jobs to store *before* the delivery is
acknowledged. Every id was assigned when the workflow was built and enqueue ignores an
existing id, so a crash between the two only repeats work that changes nothing: a step
is never lost and never started twice. Group results are collected with the backend's
atomic ``join_group``; the worker that completes a group starts what follows it, once.

When a member fails (or is revoked), everything downstream is stored already finished:
a chord's callback as FAILURE with the member's error, later steps as REVOKED ("never
run"), so no step is left waiting forever. Such a step has no input to run with; when the
member it names is retried by hand and succeeds, the steps it starts are marked
(``backends.base.RERUN``) and each runs in its never-run record's place, history kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..backends.base import RERUN
from ..backends.common import REQUEUED
from ..errors import InvalidArguments
from ..options import Call
from ..records import JobRecord, Outcome
from ..states import State

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("conveyor.workflows")
Node = dict[str, Any]
Cont = dict[str, Any] | None
#: The input of a workflow's first steps: they receive no result (a step given None does).
NO_INPUT = object()


def spec_key(workflow_id: str) -> str:
    """Where a workflow's spec is stored (the backend's key-value store)."""
    return f"workflow:{workflow_id}"


def check_steps(app: App, spec: Node) -> None:
    """Refuse, before anything is stored, a workflow with a step that enqueue would refuse
    when its turn comes (bad options, arguments that do not fit the task): refused then,
    in a worker, the step could only be lost. A step that receives a result gets a
    stand-in for it, since only its position is known now."""
    now = app.backend.now()
    first = {id(node) for node in first_tasks(spec)}
    for node in task_nodes(spec):
        given = id(node) not in first and not node["immutable"]
        try:
            app.build_record(_call(node, None if given else NO_INPUT), now, stand_in=given)
        except InvalidArguments as exc:  # its field is the step's, not the request body's
            context = {k: v for k, v in exc.context.items() if k != "field"}
            raise InvalidArguments(str(exc), **context) from None


def start(
    app: App, node: Node, value: Any, cont: Cont, workflow: str | None
) -> Iterator[JobRecord]:
    """The jobs that begin ``node`` with the input ``value``, then ``cont``."""
    kind = node["t"]
    if kind == "task":
        yield _record(app, node, value, cont, workflow)
    elif kind == "chain":
        steps = node["steps"]
        if not steps:
            yield from resume(app, cont, [] if value is NO_INPUT else value, workflow)
        else:
            rest = {"k": "seq", "steps": steps[1:], "then": cont} if len(steps) > 1 else cont
            yield from start(app, steps[0], value, rest, workflow)
    elif kind == "group":
        members = node["members"]
        if not members:
            yield from resume(app, cont, [], workflow)
        for i, member in enumerate(members):
            slot = {
                "k": "join",
                "group": node["id"],
                "index": i,
                "size": len(members),
                "then": cont,
            }
            yield from start(app, member, value, slot, workflow)
    elif kind == "chord":
        yield from start(
            app,
            node["group"],
            value,
            {"k": "seq", "steps": [node["callback"]], "then": cont},
            workflow,
        )
    else:
        raise ValueError(f"unknown workflow node {kind!r}")


def resume(app: App, cont: Cont, value: Any, workflow: str | None) -> Iterator[JobRecord]:
    """Continue after a step succeeded with ``value``."""
    if cont is None:
        return
    if cont["k"] == "seq":
        steps = cont["steps"]
        if not steps:
            yield from resume(app, cont["then"], value, workflow)
            return
        rest = (
            {"k": "seq", "steps": steps[1:], "then": cont["then"]}
            if len(steps) > 1
            else cont["then"]
        )
        yield from start(app, steps[0], value, rest, workflow)
    elif cont["k"] == "join":
        results = app.backend.join_group(cont["group"], cont["index"], cont["size"], value)
        if results is not None:
            yield from resume(app, cont["then"], results, workflow)


def abort(
    app: App, cont: Cont, failed: JobRecord, after_group: bool = False
) -> Iterator[JobRecord]:
    """Store every step that will now never run as finished, with the reason."""
    if cont is None:
        return
    if cont["k"] == "join":
        yield from abort(app, cont["then"], failed, after_group=True)
        return
    error = failed.error or {}
    cause = f"{failed.task} ({failed.id}) ended {failed.state}: {error.get('type')}: {error.get('message')}"
    member = {"member": failed.id}  # the step to retry: this one resumes from it
    for i, step in enumerate(cont["steps"]):
        for node in task_nodes(step):
            first_callback = after_group and i == 0 and node is _first_task(step)
            if first_callback:
                error = {"type": "ChordError", "message": f"a member failed: {cause}", **member}
                record = _finished(app, node, State.FAILURE, error, failed.workflow_id)
                yield record
                yield from _errbacks(app, node, record)
            else:
                error = {"type": "WorkflowAborted", "message": f"never run: {cause}", **member}
                yield _finished(app, node, State.REVOKED, error, failed.workflow_id)
    yield from abort(app, cont["then"], failed)


#: The headers of a job whose end starts other jobs.
FOLLOW_UP_HEADERS = ("wf", "link", "link_error")


def has_follow_ups(record: JobRecord) -> bool:
    headers = record.headers
    return bool(headers) and not headers.keys().isdisjoint(FOLLOW_UP_HEADERS)


def follow_ups_of(
    app: App, held: Mapping[str, JobRecord], outcomes: Iterable[Outcome]
) -> list[JobRecord]:
    """The jobs that these deliveries' final outcomes start (``held``: their records)."""
    found: list[JobRecord] = []
    for outcome in outcomes:
        record = held.get(outcome.job_id)
        if record is None or outcome.state is State.RETRY or not has_follow_ups(record):
            continue
        found += follow_ups(
            app, replace(record, state=outcome.state, result=outcome.result, error=outcome.error)
        )
    return found


def follow_ups(app: App, record: JobRecord) -> list[JobRecord]:
    """The jobs to store now that ``record`` reached its final state (before its ack).

    A record whose continuation cannot be read (headers written by hand, a spec from a
    version that wrote another shape) ends without its follow-ups, with an error in the
    log: raising here would stop the worker that acknowledges it, and every worker after."""
    try:
        return _follow_ups(app, record)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        log.error("job %s (%s): its follow-ups cannot be started (%s: %s); it ends without them",
                  record.id, record.task, type(exc).__name__, exc)  # fmt: skip
        return []


def _follow_ups(app: App, record: JobRecord) -> list[JobRecord]:
    wf = record.headers.get("wf")
    links = record.headers.get("link") or []
    errbacks = record.headers.get("link_error") or []
    if wf is None and not links and not errbacks:
        return []
    workflow = wf.get("workflow") if wf else None
    if record.state is State.SUCCESS:
        out = list(resume(app, wf["then"], record.result, workflow)) if wf else []
        out += [r for link in links for r in start(app, link, record.result, None, workflow)]
        if any(a.get("state") == REQUEUED for a in record.attempts):
            for step in out:  # retried by hand: what follows may be stored as never run
                step.headers[RERUN] = True
        return out
    if record.state in (State.FAILURE, State.REVOKED):
        out = list(abort(app, wf["then"], record)) if wf else []
        return out + list(_errbacks(app, {"link_error": errbacks}, record))
    return []


def task_nodes(node: Node) -> Iterator[Node]:
    """Every task node in ``node``, in order (links included)."""
    kind = node["t"]
    if kind == "task":
        yield node
        for extra in node.get("link", []) + node.get("link_error", []):
            yield from task_nodes(extra)
    elif kind == "chain":
        for step in node["steps"]:
            yield from task_nodes(step)
    elif kind == "group":
        for member in node["members"]:
            yield from task_nodes(member)
    elif kind == "chord":
        yield from task_nodes(node["group"])
        yield from task_nodes(node["callback"])


def first_tasks(node: Node) -> Iterator[Node]:
    """The task nodes that start when ``node`` starts, before any result exists."""
    kind = node["t"]
    if kind == "task":
        yield node
    elif kind == "chain" and node["steps"]:
        yield from first_tasks(node["steps"][0])
    elif kind == "group":
        for member in node["members"]:
            yield from first_tasks(member)
    elif kind == "chord":
        yield from first_tasks(node["group"])


def _first_task(node: Node) -> Node:
    return next(task_nodes(node))


def _errbacks(app: App, node: Node, failed: JobRecord) -> Iterator[JobRecord]:
    for errback in node.get("link_error", []):
        yield from start(app, errback, failed.id, None, failed.workflow_id)


def _call(node: Node, value: Any) -> Call:
    args = list(node["args"]) if node["immutable"] or value is NO_INPUT else [value, *node["args"]]
    return Call(node["task"], args, node["kwargs"], {**node["options"], "job_id": node["id"]})


def _record(app: App, node: Node, value: Any, cont: Cont, workflow: str | None) -> JobRecord:
    record = app.build_record(_call(node, value), app.backend.now(), edge=False)
    if workflow is not None:
        record.workflow_id = workflow
        record.headers["wf"] = {"workflow": workflow, "then": cont}
    for key in ("link", "link_error"):
        if node.get(key):
            record.headers[key] = node[key]
    return record


def _finished(
    app: App, node: Node, state: State, error: dict[str, Any], workflow: str | None
) -> JobRecord:
    """A record for a step that will never run, stored already finished."""
    record = app.build_record(_call(node, NO_INPUT), app.backend.now(), edge=False)
    record.state, record.error, record.workflow_id = state, error, workflow
    return record


def never_run(app: App, node: Node, reason: str, workflow: str | None) -> JobRecord:
    return _finished(app, node, State.REVOKED, {"type": "Revoked", "message": reason}, workflow)
