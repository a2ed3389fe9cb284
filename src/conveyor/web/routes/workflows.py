"""Workflows from JSON (chains, groups, chords of task calls), and their status node by
node. A workflow is built with ``chain``/``group``/``chord`` and started with
``apply_async``, as in Python: one implementation."""

from typing import Annotated

from fastapi import Path, Request

from ...records import JobRecord
from ...task import Signature
from ...workflows import chain, chord, group
from ...workflows.canvas import Node, Part
from ...workflows.handle import Workflow, load_workflow
from ..context import Api, Section
from ..errors import ApiError
from ..models import (
    MAX_BATCH,
    ChainSpec,
    ChordSpec,
    GroupSpec,
    Step,
    TaskCall,
    WorkflowNode,
    WorkflowSpec,
    WorkflowStatus,
    WorkflowSubmitted,
)

WorkflowId = Annotated[str, Path(min_length=1, max_length=200)]


def _parts(step: ChainSpec | GroupSpec | ChordSpec) -> list[Step]:
    if isinstance(step, ChainSpec):
        return step.chain
    if isinstance(step, GroupSpec):
        return step.group
    return [*step.chord, step.callback]


def _calls(step: Step) -> list[TaskCall]:
    """Every task call in the workflow, depth first."""
    if isinstance(step, TaskCall):
        return [step]
    return [call for part in _parts(step) for call in _calls(part)]


def _canvas(step: Step) -> Part:
    if isinstance(step, TaskCall):
        options = {
            k: v for k, v in (("queue", step.queue), ("priority", step.priority)) if v is not None
        }
        return Signature(
            step.task, tuple(step.args), step.kwargs, options, immutable=step.immutable
        )
    if isinstance(step, ChainSpec):
        return chain(*map(_canvas, step.chain))
    if isinstance(step, GroupSpec):
        return group(*map(_canvas, step.group))
    return chord(group(*map(_canvas, step.chord)), _canvas(step.callback))


def _tree(node: Node, records: dict[str, JobRecord | None]) -> WorkflowNode:
    kind = node["t"]
    if kind == "task":
        record = records.get(node["id"])
        return WorkflowNode(
            kind="task", id=node["id"], task=node["task"], state=record.state if record else None,
            result=record.result if record else None, error=record.error if record else None,
        )  # fmt: skip
    children = {"chain": node.get("steps"), "group": node.get("members")}.get(kind)
    nodes = children if children is not None else [node["group"], node["callback"]]
    return WorkflowNode(kind=kind, id=node["id"], nodes=[_tree(n, records) for n in nodes])


def _status(workflow: Workflow) -> WorkflowStatus:
    records = workflow.records()
    return WorkflowStatus(id=workflow.id, state=workflow.state, result=workflow.result(),
                          root=_tree(workflow.spec, records))  # fmt: skip


#: The routes' tag in the OpenAPI document.
TAG = "workflows"


def routes(api: Api, r: Section) -> None:
    app = api.app

    @r.post("/workflows", status_code=201, summary="Start a workflow")
    async def start(request: Request, spec: WorkflowSpec) -> WorkflowSubmitted:
        """Every task must be exposed over HTTP (``http_tasks``)."""
        calls = _calls(spec)
        if len(calls) > MAX_BATCH:
            raise ApiError(400, "workflow_too_large", f"the workflow has {len(calls)} tasks, over {MAX_BATCH}",
                           "split it, or give one task the list to work through")  # fmt: skip
        for call in calls:
            api.check_exposed(call.task)
        canvas = _canvas(spec)
        assert not isinstance(canvas, Signature)  # a WorkflowSpec is a chain, group or chord
        workflow = await app.aio.call(canvas.apply_async, app)
        url = str(request.url_for("workflow_status", workflow_id=workflow.id))
        return WorkflowSubmitted(id=workflow.id, url=url, jobs=workflow.member_ids())

    @r.get("/workflows/{workflow_id}", summary="A workflow's state, result and every node")
    async def workflow_status(workflow_id: WorkflowId) -> WorkflowStatus:
        def read() -> WorkflowStatus:
            return _status(load_workflow(app, workflow_id))

        return await app.aio.call(read)
