"""Control functions: what an operator does, in one place.

The CLI calls these now; the REST API and dashboard call the same ones. Each returns
plain dataclasses (``to_json`` turns any of them into JSON-ready data).
"""

from .doctor import Finding, absolute_url, diagnose
from .history import Bucket, throughput
from .jobs import (
    JobPage,
    cancel_job,
    cancel_where,
    describe_job,
    describe_record,
    enqueue_by_name,
    list_jobs,
    retry_job,
    retry_where,
)
from .queues import QueueStats, pause_queue, purge_queue, queue_stats, resume_queue
from .status import Health, Overview, Readiness, health, overview, readiness, workers
from .util import to_json
from .workflows import WorkflowSummary, recent_workflows

__all__ = [
    "Bucket", "Finding", "Health", "JobPage", "Overview", "QueueStats", "Readiness", "WorkflowSummary",
    "absolute_url", "cancel_job",
    "cancel_where", "describe_job", "describe_record", "diagnose", "enqueue_by_name", "health", "list_jobs", "overview",
    "pause_queue", "purge_queue", "queue_stats", "readiness", "recent_workflows", "resume_queue", "retry_job",
    "retry_where", "throughput", "to_json", "workers",
]  # fmt: skip
