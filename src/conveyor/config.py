"""Settings, read when an ``App`` is built (never at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigurationError

DEFAULT_BACKEND = "sqlite:///./conveyor.db"


@dataclass
class Settings:
    """An app's configuration, reachable as ``app.conf``. Times are in seconds."""

    backend_url: str = field(
        default_factory=lambda: os.environ.get("CONVEYOR_BACKEND", DEFAULT_BACKEND)
    )
    default_queue: str = "default"
    #: {"glob pattern on task name": "queue" or {"queue": ..., "priority": ...}}; first match wins.
    task_routes: dict[str, str | dict[str, Any]] = field(default_factory=dict)
    #: How long a claimed job stays leased without a heartbeat before another worker may take it.
    lease_seconds: float = 30.0
    #: How often a worker renews its leases; many beats fit in one lease, so a slow beat
    #: costs nothing. (A revoke with terminate does not wait for it: the backend pushes it.)
    heartbeat_interval: float = 2.0
    #: How often each worker looks for expired leases of dead workers.
    rescue_interval: float = 5.0
    #: Finished job records (with their results) are kept this long, then pruned.
    result_ttl: float = 7 * 24 * 3600.0
    #: Pruning (one worker's pruner thread at a time, docs/worker.md): records deleted
    #: per transaction; the most of its time it spends deleting while expired records
    #: remain (it sleeps the rest, in proportion to each batch's time); how often it
    #: looks again once none remain (a standby worker: how often it tries to take over;
    #: right after records were expiring fast, sooner: when a batch's worth is due).
    #: While it is behind, batches grow to 16 times prune_batch and the share doubles.
    prune_batch: int = 1000
    prune_share: float = 0.25
    prune_interval: float = 5.0
    #: A job whose worker died this many times ends FAILURE instead of looping forever.
    max_lost_leases: int = 3
    #: The largest encoded job (arguments and envelope) accepted at enqueue.
    max_payload_bytes: int = 1024 * 1024
    #: Schedules in code, like Celery's beat_schedule: {"name": {"task": "...", "cron": "0 1 * * *"
    #: or "every": seconds or timedelta, "tz", "args", "kwargs", "queue", "priority", "misfire"}}.
    schedule: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Defaults for tasks that do not set their own.
    default_max_retries: int = 3
    retry_backoff_max: float = 600.0
    #: Process pool: replace a child after this many jobs (``--max-tasks-per-child`` wins);
    #: None: never. Celery's name, so a Celery config carries over.
    worker_max_tasks_per_child: int | None = None
    #: Process pool: replace a child whose resident memory exceeds this many KiB after a
    #: job (``conveyor worker --max-memory-per-child`` wins; ``conveyor up`` has no such
    #: flag and takes this); None: never. Celery's name and unit.
    worker_max_memory_per_child: int | None = None
    #: Jobs each worker slot holds at most, the running one included, when ``--prefetch``
    #: is not given: 1 claims none ahead (``--prefetch 0``), N claims (N - 1) per slot ahead.
    #: None or 0: auto (docs/worker.md). Celery's name and meaning, so a Celery config carries over.
    worker_prefetch_multiplier: int | None = None
    #: Threads ``app.aio`` runs blocking calls on (at most this many reach the backend at once).
    aio_threads: int = 16
    #: Glob patterns of the task names the REST API (``conveyor.web``) may enqueue, e.g.
    #: ``["media.*"]``. None by default: a task is reachable over HTTP only when listed.
    http_tasks: list[str] = field(default_factory=list)
    #: Serve the REST API's ``GET /metrics`` without a token (docs/metrics.md), for a
    #: Prometheus on a private network; the rest of the API keeps its auth.
    metrics_without_token: bool = False
    #: The worker groups ``conveyor up`` starts when no ``--worker`` is given: one child
    #: process each, as "queue,queue:concurrency" (e.g. ``["video:1", "image,document:4"]``).
    #: Empty: one group consuming every queue the app declares.
    worker_groups: list[str] = field(default_factory=list)

    def backend_named_by(self) -> str:
        """What the user sets to name the store, as an error tells them to check it."""
        return "CONVEYOR_BACKEND (or App(backend=...))"

    def metrics_open(self) -> bool:
        """``metrics_without_token``, which must be True or False: a string from the
        environment or a settings file ("false", "0") is truthy and would serve
        ``/metrics`` to anyone."""
        if not isinstance(self.metrics_without_token, bool):
            raise ConfigurationError(
                f"metrics_without_token is {self.metrics_without_token!r}; it takes True or "
                "False (a string such as 'false' would read as true and serve /metrics "
                "without a token)"
            )
        return self.metrics_without_token

    def update(self, **values: Any) -> None:
        for key, value in values.items():
            if not hasattr(self, key):
                raise TypeError(
                    f"unknown setting {key!r}; known settings: {', '.join(sorted(vars(self)))}"
                )
            setattr(self, key, value)
