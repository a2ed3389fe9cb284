"""Jobs run under a tracer or profiler (cProfile, coverage, a debugger): closing a run
must leave the interpreter as it found it. On CPython 3.11, clearing a thread's pending
asynchronous exception (``PyThreadState_SetAsyncExc(id, NULL)``) left the interpreter's
"pending" flag set for good, and with a tracer installed the next Python call spun at its
first instruction forever: a process-pool child under cProfile hung in ``Event.set`` at
the end of its first job. Each scenario runs in its own interpreter, so a spin fails the
test by its timeout instead of hanging the suite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conveyor import App, State
from conveyor.task import Signature

from .conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]

#: Every way a run ends, each followed by Python calls (Event.set among them), with a
#: profiler or a tracer installed.
SCENARIOS = textwrap.dedent(
    """
    import sys, threading, time
    from conveyor.errors import SoftTimeLimitExceeded, Terminated
    from conveyor.worker.limits import ThreadRun
    from tests.worker.test_stopping import terminate_as_the_run_closes

    if sys.argv[1] == "profile":
        import cProfile
        cProfile.Profile().enable()
    else:
        sys.settrace(lambda frame, event, arg: None)

    def after(what):
        threading.Event().set()
        print(what, flush=True)

    with ThreadRun(None, None):  # nothing raised: the common run
        pass
    after("plain")

    run = ThreadRun(0.05, None)  # a soft limit, by SIGALRM on the main thread
    try:
        with run:
            while True:
                time.sleep(0.01)
    except SoftTimeLimitExceeded:
        run.close()
    after("soft limit landed")

    def in_thread(body):
        thread = threading.Thread(target=body)
        thread.start()
        thread.join()

    def terminated():  # terminate, landed in the task
        run = ThreadRun(None, None)
        threading.Timer(0.05, run.terminate).start()
        try:
            with run:
                while True:
                    pass
        except Terminated:
            run.close()
        after("terminate landed")

    in_thread(terminated)

    def terminated_as_it_closes():  # raised while the run's thread waits to close it
        terminate_as_the_run_closes()
        after("terminate dropped")

    in_thread(terminated_as_it_closes)
    """
)


@pytest.mark.parametrize("tracer", ["profile", "trace"])
def test_runs_end_cleanly_under_a_tracer(tracer: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCENARIOS, tracer],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:-1] == [
        "plain",
        "soft limit landed",
        "terminate landed",
        "terminate dropped",
    ]


@pytest.mark.slow
def test_a_process_pool_worker_runs_jobs_under_cprofile(tmp_path: Path) -> None:
    """The report: ``python -m cProfile -m conveyor worker -P process``; its child's first
    job (a soft time limit that fires) ended, and then the child hung."""
    url = f"sqlite:///{tmp_path / 'conveyor.db'}"
    producer = App("producer", backend=url)
    jobs = producer.enqueue_many([Signature("t.soft", ()), Signature("t.add", (1, 2))])
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "cProfile", "-o", str(tmp_path / "worker.prof"),
             "-m", "conveyor", "-A", "tests.apps.basic:app", "worker", "-P", "process", "-c", "1"],
            cwd=ROOT, env={**os.environ, "CONVEYOR_BACKEND": url},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(
            lambda: all(producer.backend.get(j.id).state.finished for j in jobs),
            30, "both jobs to end under cProfile",
        )  # fmt: skip
        assert [producer.backend.get(j.id).state for j in jobs] == [State.SUCCESS] * 2
        assert producer.backend.get(jobs[0].id).result == "cleaned up"
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
