"""Pool-specific behaviour."""

from __future__ import annotations

import time

import pytest

from conveyor import App
from conveyor.errors import ConfigurationError
from conveyor.worker import Worker

from .test_outcomes import drain


@pytest.mark.parametrize("backend_kind", ["sqlite"])
def test_process_pool_soft_limit_interrupts_a_long_c_call(worker_app: App) -> None:
    job = worker_app.send_task("t.soft_in_c")
    started = time.monotonic()
    drain(worker_app, "process")
    assert job.get(timeout=1) == "cleaned up"
    assert time.monotonic() - started < 4  # not after the 5 s sleep returned


def test_process_pool_refuses_memory(make_backend: object) -> None:
    app = App("m", backend="memory://")
    app.main = "tests.apps.basic:app"
    with pytest.raises(ConfigurationError, match="share"):
        Worker(app, pool="process")
