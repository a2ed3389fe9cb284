"""The recent workflows, each with its state (``Workflow.state``, the one rule the
workflow's page, the API's status route and ``conveyor inspect workflows`` all read)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import JobNotFound
from ..states import State
from ..workflows.handle import load_workflow
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
    found = []
    for workflow_id, job in newest.items():
        try:
            workflow = load_workflow(app, workflow_id)
        except JobNotFound:
            found.append(WorkflowSummary(workflow_id, None, 0, job.task, job.created_at))
            continue
        found.append(WorkflowSummary(workflow_id, workflow.state, len(workflow.member_ids()),
                                     job.task, job.created_at))  # fmt: skip
    return found
