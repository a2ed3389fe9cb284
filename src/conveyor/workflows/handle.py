"""``Workflow``: a handle on a stored workflow, by id."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import JobFailed, JobNotFound, JobRevoked, JobTimeout
from ..records import JobRecord
from ..states import State
from .engine import Node, never_run, spec_key, task_nodes

if TYPE_CHECKING:
    from ..app import App


class Workflow:
    """The overall state, every member's state and result, and the final result."""

    def __init__(self, app: App, spec: Node) -> None:
        self.app, self.spec, self.id = app, spec, spec["id"]

    def __repr__(self) -> str:
        return f"<Workflow {self.spec['t']} {self.id}>"

    def member_ids(self) -> list[str]:
        return [node["id"] for node in task_nodes(self.spec)]

    def records(self) -> dict[str, JobRecord | None]:
        """Every member's record by id; None for a member not started yet."""
        ids = self.member_ids()
        found = self.app.backend.get_many(ids)
        return {job_id: found.get(job_id) for job_id in ids}

    @property
    def state(self) -> State:
        """FAILURE if a member failed; SUCCESS when the final result is in; REVOKED when it
        ended without one; else STARTED once a member started, or PENDING."""
        return self.state_of(self.records())

    def state_of(self, found: Mapping[str, JobRecord | None]) -> State:
        """``state`` from members' records read already (a list of workflows reads all
        theirs at once); a member missing from ``found`` has not started."""
        records = {job_id: found.get(job_id) for job_id in self.member_ids()}
        final = self._final_ids()
        states = {r.state for r in records.values() if r is not None}
        if State.FAILURE in states:
            return State.FAILURE
        finals = [records[i] for i in final]
        if finals and all(r is not None and r.state is State.SUCCESS for r in finals):
            return State.SUCCESS
        if all(r is not None and r.state.finished for r in finals):
            return State.REVOKED
        started = states & {State.STARTED, State.SUCCESS, State.RETRY}
        return State.STARTED if started else State.PENDING

    def result(self) -> Any:
        """The final result so far: a chain's last result, a group's list (None where a
        member has none yet)."""
        records = self.records()
        return self._result(self.spec, records)

    def get(self, timeout: float | None = None) -> Any:
        """Wait for the final result. Raises ``JobFailed`` with the failing member's error,
        ``JobRevoked`` if the workflow was revoked, ``JobTimeout`` after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.005
        while True:
            state = self.state
            if state is State.SUCCESS:
                return self.result()
            if state is State.FAILURE:
                failed = next(
                    r for r in self.records().values() if r is not None and r.state is State.FAILURE
                )
                error = failed.error or {}
                raise JobFailed(f"workflow {self.id}: {failed.task} ({failed.id}) failed: "
                                f"{error.get('type')}: {error.get('message')}", error=error)  # fmt: skip
            if state is State.REVOKED:
                raise JobRevoked(f"workflow {self.id} was revoked before it finished")
            if deadline is not None and time.monotonic() >= deadline:
                raise JobTimeout(f"workflow {self.id} is still {state} after {timeout}s")
            time.sleep(pause)
            pause = min(pause * 1.5, 0.2)

    def revoke(self, *, terminate: bool = False, reason: str = "workflow revoked") -> None:
        """Revoke every member not yet finished; members not started yet never will."""
        records = self.records()
        unborn = [node for node in task_nodes(self.spec) if records[node["id"]] is None]
        self.app.backend.enqueue([never_run(self.app, node, reason, self.id) for node in unborn])
        for record in records.values():
            if record is not None and not record.state.finished:
                self.app.backend.cancel(record.id, terminate=terminate, reason=reason)

    def _final_ids(self, node: Node | None = None) -> list[str]:
        node = node or self.spec
        kind = node["t"]
        if kind == "task":
            return [node["id"]]
        if kind == "chain":
            return self._final_ids(node["steps"][-1]) if node["steps"] else []
        if kind == "group":
            return [i for m in node["members"] for i in self._final_ids(m)]
        return self._final_ids(node["callback"])

    def _result(self, node: Node, records: dict[str, JobRecord | None]) -> Any:
        kind = node["t"]
        if kind == "task":
            record = records.get(node["id"])
            return record.result if record is not None and record.state is State.SUCCESS else None
        if kind == "chain":
            return self._result(node["steps"][-1], records) if node["steps"] else None
        if kind == "group":
            return [self._result(m, records) for m in node["members"]]
        return self._result(node["callback"], records)


def load_workflow(app: App, workflow_id: str) -> Workflow:
    spec = app.backend.kv_get(spec_key(workflow_id))
    if spec is None:
        job = app.backend.get_many([workflow_id]).get(workflow_id)
        if job is not None:
            parent = job.workflow_id
            also = f", or app.workflow({parent!r}) for its workflow" if parent else ""
            raise JobNotFound(
                f"{workflow_id!r} is a job's id, not a workflow's; use app.job({workflow_id!r}){also}"
            )
        raise JobNotFound(
            f"no workflow has the id {workflow_id!r}; check the id, or it may have been pruned"
        )
    return Workflow(app, spec)


def is_workflow(app: App, workflow_id: str) -> bool:
    return app.backend.kv_get(spec_key(workflow_id)) is not None
