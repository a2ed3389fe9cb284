"""The recent workflows, each with its state (``Workflow.state``, the one rule the
workflow's page, the API's status route and ``conveyor inspect workflows`` all read)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import JobNotFound
from ..states import State
from ..workflows.handle import Workflow, load_workflow
from .jobs import list_jobs

if TYPE_CHECKING:
    from ..app import App

#: Jobs looked through for the workflows they belong to: the store indexes jobs, not
#: workflows, so an older workflow is found by its id (or from one of its jobs).
WORKFLOW_SCAN = 200


@dataclass
class WorkflowSummary:
    id: str
    #: None when its spec is gone (pruned with its jobs' records).
    state: State | None
    #: How many jobs it has (0 when its spec is gone).
    jobs: int
    #: The task and creation time of its newest job among those looked through.
    task: str
    created_at: float


def recent_workflows(app: App, scan: int = WORKFLOW_SCAN) -> list[WorkflowSummary]:
    """The workflows of the newest ``scan`` jobs, the one with the newest job first."""
    newest = {}
    for job in list_jobs(app, limit=scan).jobs:
        if job.workflow_id and job.workflow_id not in newest:
            newest[job.workflow_id] = job
    loaded: dict[str, Workflow | None] = {}
    for workflow_id in newest:
        try:
            loaded[workflow_id] = load_workflow(app, workflow_id)
        except JobNotFound:
            loaded[workflow_id] = None
    # Every member of every listed workflow in one read, not one read per workflow.
    members = [job_id for w in loaded.values() if w is not None for job_id in w.member_ids()]
    records = app.backend.get_many(members)
    return [
        WorkflowSummary(workflow_id, None, 0, job.task, job.created_at) if (w := loaded[workflow_id]) is None
        else WorkflowSummary(workflow_id, w.state_of(records), len(w.member_ids()), job.task, job.created_at)
        for workflow_id, job in newest.items()
    ]  # fmt: skip
