"""Redis-specific behaviour: a server restart under a running worker, URLs, memory use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import App, State
from conveyor.backends import from_url
from conveyor.backends.redis.connection import SOCKET_TIMEOUT
from conveyor.errors import BackendError, ConfigurationError
from conveyor.records import Outcome
from conveyor.task import Signature

from ..conftest import backend_url, discard
from ..services import start_redis_server
from ..worker.conftest import ledger_lines, running, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_redis() -> Iterator[tuple[subprocess.Popen[bytes], int, str]]:
    """A redis-server of this test's own, with an fsync-always AOF, that it may kill."""
    proc, port, folder = start_redis_server(None, "--appendonly", "yes", "--appendfsync", "always")
    yield proc, port, folder
    proc.kill()
    proc.wait()


@pytest.mark.slow
def test_worker_recovers_by_itself_after_a_redis_crash_and_nothing_is_lost(
    own_redis: tuple[subprocess.Popen[bytes], int, str], tmp_path: Path
) -> None:
    server, port, folder = own_redis
    ledger = tmp_path / "ledger.txt"
    url = f"redis://127.0.0.1:{port}/0"
    producer = App("producer", backend=url)
    log_path = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "-A", "tests.apps.basic:app", "worker", "-P", "thread", "-c", "2", "-l", "debug"],
        cwd=ROOT, env={**os.environ, "CONVEYOR_BACKEND": url}, stdout=open(log_path, "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        before = producer.enqueue_many([Signature("t.add", (i, 1)) for i in range(30)])
        wait_until(
            lambda: producer.backend.get(before[0].id).state is State.SUCCESS,
            30,
            "the worker to start",
        )
        late = producer.enqueue_many([Signature("t.ledger", (str(ledger), 0.3)) for _ in range(8)])
        wait_until(lambda: running(ledger), 30, "a job to be running")
        # A crash, not a clean stop: SIGKILL while jobs are leased and their acks due. Redis
        # gets no chance to flush or close anything; what is left is what the AOF (fsync
        # always, before every reply) holds.
        server.kill()
        assert server.wait(10) == -signal.SIGKILL
        with pytest.raises(BackendError, match="unreachable"):
            producer.send_task("t.add", (0, 0))  # a clear error at the edge while it is down
        wait_until(  # a job ended during the outage: its ack waits for Redis (each failed
            # store after the outage's first line is told at debug level)
            lambda: "storing outcomes failed" in log_path.read_text(),
            15,
            "an ack to fail while Redis is down",
        )
        restarted, _, _ = start_redis_server(
            port, "--appendonly", "yes", "--appendfsync", "always", "--dir", folder
        )
        after = producer.enqueue_many([Signature("t.add", (i, 3)) for i in range(30)])
        everything = before + late + after
        wait_until(
            lambda: all(j.state is State.SUCCESS for j in everything), 40, "every job to succeed"
        )
        assert worker.poll() is None  # it never crashed
        ended = {line[1] for line in ledger_lines(ledger) if line[0] == "end"}
        assert ended == {j.id for j in late}
        restarted.kill()
        restarted.wait()
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def test_a_pipelined_wait_and_claim_survives_a_script_flush(
    own_redis: tuple[subprocess.Popen[bytes], int, str],
) -> None:
    _, port, _ = own_redis
    app = App("tests", backend=f"redis://127.0.0.1:{port}/0")
    backend = app.backend
    backend.claim(["default"], "w0", 1, 30)  # loads the claim script
    backend.client.script_flush()  # type: ignore[attr-defined]
    job = app.send_task("tests.noop")
    (claimed,) = backend.wait_and_claim(["default"], "w1", 1, 30, 1.0)
    assert claimed.id == job.id
    assert backend.get(job.id).state is State.STARTED


def test_url_options_and_errors() -> None:
    backend = from_url("redis://:secret@127.0.0.1:1/3?prefix=shop")
    assert backend.prefix == "conveyor:{shop}"  # type: ignore[attr-defined]
    assert "secret" not in backend.safe_url  # type: ignore[attr-defined]
    with pytest.raises(BackendError, match=r"Redis at redis://127\.0\.0\.1:1/3 is unreachable"):
        backend.get_many(["x"])
    with pytest.raises(ConfigurationError, match="braces"):
        from_url("redis://127.0.0.1/0?prefix=a{b}")


def test_connections_name_conveyor_without_reading_package_metadata(
    own_redis: tuple[subprocess.Popen[bytes], int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py looks its own version up in the installed package's metadata for every new
    connection unless told it; in a forked pool child that parse alone copied ~1 MiB of
    the pages it shares with its parent."""
    from importlib import metadata

    def no_metadata(name: str) -> str:
        raise AssertionError(f"package metadata read for {name!r}")

    monkeypatch.setattr(metadata, "version", no_metadata)
    _, port, _ = own_redis
    backend = from_url(f"redis://127.0.0.1:{port}/0")
    assert backend.get_many(["nope"]) == {}  # a pooled connection
    backend.claim(["default"], "w0", 1, 30)  # this thread's own connection
    info = backend.client.connection_pool.connection_kwargs["driver_info"]  # type: ignore[attr-defined]
    assert info.formatted_name.startswith("redis-py(conveyor_v")
    backend.close()


def test_a_run_never_ends_before_it_started_whatever_the_clock_offset(tmp_path: Path) -> None:
    # A claim pipelined behind a wait stamps its start on the server's clock shifted to
    # ours; a shift off by more than the run (a descheduled TIME round trip on a loaded
    # machine) put a short job's end before its start: "ran -2 ms" on the dashboard.
    url = backend_url("redis", tmp_path)
    try:
        app = App("tests", backend=url)
        backend = app.backend
        backend._clock_offset()  # type: ignore[attr-defined]
        backend._local.offset += 5.0  # type: ignore[attr-defined]  # 5 s off: starts late
        job = app.send_task("tests.noop")
        (claimed,) = backend.wait_and_claim(["default"], "w1", 1, 30, 1.0)
        assert (claimed.started_at or 0) > backend.now()  # the start, stamped in the future
        backend.ack([Outcome(job.id, claimed.lease_token or "", State.SUCCESS)])
        record = backend.get(job.id)
        assert (record.finished_at or 0) >= (record.started_at or 0)
        (attempt,) = record.attempts
        assert attempt["finished_at"] >= attempt["started_at"]
        (run,) = backend.recent_runs(0)
        assert run.finished_at >= run.started_at
    finally:
        discard(url)


@pytest.mark.slow
def test_a_hung_server_fails_a_call_after_one_timeout_not_a_minute(
    own_redis: tuple[subprocess.Popen[bytes], int, str],
) -> None:
    # A stopped (or swapping) server answers nothing: a delay() in a web view waited 60 s
    # (a 30 s timeout, then a retry), and the client's own calls retry up to ten times.
    proc, port, _ = own_redis
    app = App("tests", backend=f"redis://127.0.0.1:{port}/0")
    app.send_task("tests.noop")  # connected, scripts loaded
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        for call in (lambda: app.send_task("tests.noop"), lambda: app.backend.counts()):
            began = time.monotonic()
            with pytest.raises(BackendError, match="is unreachable: Timeout"):
                call()
            assert time.monotonic() - began < SOCKET_TIMEOUT + 3
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert app.send_task("tests.noop").state is State.PENDING  # and it answers again
