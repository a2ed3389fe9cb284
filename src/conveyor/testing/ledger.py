"""A ledger kept outside the system under test, and the invariants checked against it.

Conveyor promises at-least-once execution of every acknowledged enqueue, with duplicates
only for jobs that were running when something died. To check that promise after a fault,
tasks append a line per start and end to a plain file (``Ledger``); the harness notes
what it was told (acknowledged enqueues, acknowledged cancels, the times it injected
faults) and ``check`` compares the three: the ledger, the harness's notes and the store.

Lines are ``<job id> <attempt> <event> <pid> <time>``, appended with ``O_APPEND`` in one
``write`` each, so processes writing the same file never interleave a line.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..records import JobQuery
from ..states import FINISHED, State

if TYPE_CHECKING:
    from ..app import App
    from ..backends.base import Backend
    from ..context import TaskContext
    from ..task import Task

#: The task ``ledger_task`` registers.
LEDGER_TASK = "conveyor.testing.ledger"


@dataclass(frozen=True, slots=True)
class Entry:
    job_id: str
    attempt: int
    event: str
    pid: int
    time: float


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault the harness injected at ``at``: into the processes ``pids`` (a worker and its
    children), or into everything (``pids=None``: the backend restarted, connections cut).
    ``lasting``: seconds after ``at`` during which its effects may still cost a lease (a
    backend outage is over when it is back, but clients reconnect with a backoff)."""

    at: float
    what: str
    pids: frozenset[int] | None = None
    lasting: float = 0.0

    def hit(self, run: Execution, claimed: float, ack_window: float) -> bool:
        """Did this fault strike ``run`` while its job was leased: between the claim (a
        delivery can sit in a pool's pipe before its first line runs) and the ack?"""
        until = (run.ended if run.ended is not None else float("inf")) + ack_window
        since = min(run.started, claimed)
        struck = since <= self.at + self.lasting and self.at <= until
        return struck and (self.pids is None or run.pid in self.pids)


@dataclass(slots=True)
class Execution:
    """One delivery of a job as the ledger saw it: a start and, if it got there, an end."""

    job_id: str
    attempt: int
    pid: int
    started: float
    ended: float | None = None


class Ledger:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def write(self, job_id: str, attempt: int, event: str) -> None:
        line = f"{job_id} {attempt} {event} {os.getpid()} {time.time():.6f}\n".encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def entries(self) -> list[Entry]:
        if not self.path.exists():
            return []
        entries = []
        for line in self.path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 5:  # a line cut short by a kill mid-write is not an entry
                job_id, attempt, event, pid, at = parts
                entries.append(Entry(job_id, int(attempt), event, int(pid), float(at)))
        return entries

    def executions(self) -> dict[str, list[Execution]]:
        """Each job's deliveries in start order; an end pairs with its start by pid and attempt."""
        runs: dict[str, list[Execution]] = defaultdict(list)
        for entry in sorted(self.entries(), key=lambda e: e.time):
            if entry.event == "start":
                runs[entry.job_id].append(
                    Execution(entry.job_id, entry.attempt, entry.pid, entry.time)
                )
            elif entry.event == "end":
                for run in runs[entry.job_id]:
                    if (run.pid, run.attempt, run.ended) == (entry.pid, entry.attempt, None):
                        run.ended = entry.time
        return dict(runs)


def ledger_task(app: App, name: str = LEDGER_TASK, **options: Any) -> Task[..., str]:
    """Register the harness's task on ``app``: ``(ledger_path, seconds=0)`` notes its start,
    sleeps, notes its end and returns its job id."""

    def run(self: TaskContext, path: str, seconds: float = 0.0) -> str:
        ledger = Ledger(path)
        ledger.write(self.request.id, self.request.attempt, "start")
        if seconds:
            time.sleep(seconds)
        ledger.write(self.request.id, self.request.attempt, "end")
        return self.request.id

    return app.task(name=name, bind=True, **options)(run)


@dataclass
class Report:
    """What ``check`` found; ``ok`` when no invariant is broken."""

    acknowledged: int = 0
    cancelled: int = 0
    executions: int = 0
    duplicates: int = 0  # extra deliveries, each excused by a fault that hit it
    faults: int = 0
    states: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def render(self) -> str:
        lines = [
            f"acknowledged enqueues: {self.acknowledged} (of them cancelled: {self.cancelled})",
            f"executions in the ledger: {self.executions}; duplicates excused by a fault: "
            f"{self.duplicates}; faults injected: {self.faults}",
            "final states: " + ", ".join(f"{k} {v}" for k, v in sorted(self.states.items())),
        ]
        if self.ok:
            lines.append("invariants: all hold")
        else:
            lines.append(f"invariants: {len(self.violations)} broken")
            lines += [f"  - {v}" for v in self.violations[:50]]
            if len(self.violations) > 50:
                lines.append(f"  ... and {len(self.violations) - 50} more")
        return "\n".join(lines)


def check(
    backend: Backend,
    ledger: Ledger,
    acknowledged: Iterable[str],
    *,
    cancelled: Mapping[str, float] | None = None,
    faults: Sequence[Fault] = (),
    ack_window: float = 2.0,
) -> Report:
    """Check Conveyor's promises once the jobs have had time to finish.

    - every acknowledged enqueue that was not cancelled ended SUCCESS and its ledger shows
      a finished execution;
    - every execution but a job's last was hit by a fault: one of ``faults`` struck its
      process between its start and its end plus ``ack_window`` (the ack follows the end);
    - nothing started after an acknowledged cancel (``cancelled``: job id -> the time the
      cancel returned), and a cancelled job ended REVOKED unless it had already finished;
    - every record in the store is finished, or STARTED under a lease that is still live;
    - every schedule tick (the ``schedule``/``tick`` headers) has one job.
    """
    cancelled = dict(cancelled or {})
    ids = list(dict.fromkeys(acknowledged))
    report = Report(acknowledged=len(ids), cancelled=len(cancelled), faults=len(faults))
    runs = ledger.executions()
    report.executions = sum(len(r) for r in runs.values())
    records = backend.get_many(ids)
    states: dict[str, int] = defaultdict(int)
    broken = report.violations
    for job_id in ids:
        record = records.get(job_id)
        if record is None:
            broken.append(f"{job_id}: acknowledged at enqueue, missing from the store")
            continue
        states[record.state.value] += 1
        ran = runs.get(job_id, [])
        if job_id in cancelled:
            late = [r for r in ran if r.started > cancelled[job_id]]
            if late:
                broken.append(f"{job_id}: started at {late[0].started:.3f}, after its cancel")
            if record.state not in (State.REVOKED, State.SUCCESS):
                broken.append(f"{job_id}: cancelled, but {record.state.value}")
        elif record.state is not State.SUCCESS:
            reason = (record.error or {}).get("message", "")
            broken.append(f"{job_id}: ended {record.state.value}, not SUCCESS {reason}".rstrip())
        elif not any(r.ended is not None for r in ran):
            broken.append(f"{job_id}: SUCCESS in the store, but no finished run in the ledger")
        if len(ran) > 1:  # all runs but one must have been struck by a fault
            claimed = {
                a["attempt"]: a["started_at"] for a in record.attempts if a.get("started_at")
            }
            claimed[record.attempt] = record.started_at or float("inf")
            hit = [
                any(f.hit(run, claimed.get(run.attempt, run.started), ack_window) for f in faults)
                for run in ran
            ]
            report.duplicates += min(sum(hit), len(ran) - 1)
            if sum(hit) < len(ran) - 1:
                runs_text = "; ".join(
                    f"attempt {r.attempt} pid {r.pid} {r.started:.3f}-{r.ended or 0:.3f}"
                    for r in ran
                )
                broken.append(
                    f"{job_id}: ran {len(ran)} times, but faults struck only {sum(hit)} of "
                    f"those runs [{runs_text}]"
                )
    report.states = dict(states)
    _check_store(backend, broken)
    return report


def _check_store(backend: Backend, broken: list[str]) -> None:
    """No record left behind: each is finished or held under a live lease; one job per tick."""
    now = backend.now()
    ticks: dict[tuple[str, Any], list[str]] = defaultdict(list)
    before: str | None = None
    while True:
        page = backend.list_jobs(JobQuery(before=before, limit=500))
        for record in page:
            if record.headers.get("schedule") is not None:
                ticks[(record.headers["schedule"], record.headers.get("tick"))].append(record.id)
            if record.state in FINISHED:
                continue
            if record.state is State.STARTED and (record.lease_until or 0) > now:
                continue
            if record.state in (State.SCHEDULED, State.RETRY) and record.run_at > now:
                continue  # waiting for its time, not stuck
            broken.append(f"{record.id}: left {record.state.value} with no live lease")
        if len(page) < 500:
            break
        before = page[-1].id
    for (schedule, tick), job_ids in ticks.items():
        if len(job_ids) > 1:
            broken.append(f"schedule {schedule} tick {tick}: {len(job_ids)} jobs {job_ids}")
