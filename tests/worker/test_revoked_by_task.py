"""A task that raises Terminated itself: the worker's look at whether the job was revoked
(to tell a cooperative stop from a crash) must not turn a backend failure into no outcome."""

from __future__ import annotations

import pytest

from conveyor import App, State
from conveyor.errors import BackendError, Terminated
from conveyor.worker.execution import execute


def test_terminated_raised_while_the_backend_is_down_still_has_an_outcome(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = App("t", backend="memory://")

    @app.task(name="t.stop")
    def stop() -> None:
        raise Terminated("stopping on my own")

    stop.delay()
    record = app.backend.claim(["default"], "w1", 1, 30)[0]

    def down(job_id: str) -> None:
        raise BackendError("connection refused")

    monkeypatch.setattr(app.backend, "get", down)
    # Before: the BackendError escaped execute, so a pool thread died and the job held
    # its lease with no outcome for as long as its worker lived.
    outcome = execute(app, record)
    assert outcome.state is State.REVOKED
    assert (outcome.error or {})["message"] == "stopping on my own"
