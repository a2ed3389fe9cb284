"""A worker SIGKILLed mid-chord: another worker finishes it, and the callback runs once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import App, chord
from conveyor.task import Signature

from ..conftest import SHARED_BACKENDS, backend_url, discard
from ..worker.conftest import ledger_lines, wait_until

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=SHARED_BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    store = backend_url(request.param, tmp_path)
    yield store
    discard(store)


def start_worker(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "conveyor", "-A", "tests.apps.basic:app", "worker", "-c", "2"],
        cwd=ROOT, env={**os.environ, "CONVEYOR_BACKEND": url}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def test_chord_completes_exactly_once_after_a_worker_is_killed(url: str, tmp_path: Path) -> None:
    ledger, calls = tmp_path / "members.txt", tmp_path / "callback.txt"
    producer = App("producer", backend=url)
    members = [Signature("t.slow_value", (i, str(ledger), 0.2), app=producer) for i in range(24)]
    wf = chord(members, Signature("t.collect", (str(calls),), app=producer)).apply_async()
    victim = start_worker(url)
    ends = lambda: [line for line in ledger_lines(ledger) if line[0] == "end"]  # noqa: E731
    wait_until(lambda: len(ends()) >= 4, 30, "some members to finish")
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    survivor = start_worker(url)
    try:
        assert wf.get(timeout=60) == sum(range(24))
        assert [line[0] for line in ledger_lines(calls)] == ["callback"]  # exactly once
        assert {line[1] for line in ends()} == set(wf.member_ids()[:-1])
    finally:
        os.killpg(survivor.pid, signal.SIGKILL)
        survivor.wait()
