"""Conveyor: a distributed task queue for Python."""

from __future__ import annotations

from .app import App
from .errors import ConveyorError, JobFailed, JobNotFound, JobRevoked, Retry, SoftTimeLimitExceeded
from .job import Job
from .states import State
from .task import Signature, Task
from .version import __version__
from .workflows import Workflow, chain, chord, group

__all__ = [
    "App",
    "ConveyorError",
    "Job",
    "JobFailed",
    "JobNotFound",
    "JobRevoked",
    "Retry",
    "Signature",
    "SoftTimeLimitExceeded",
    "State",
    "Task",
    "Workflow",
    "__version__",
    "chain",
    "chord",
    "group",
]
