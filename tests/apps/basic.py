"""The app that worker tests run, in-process and in real worker subprocesses.

Timers are shrunk so crash recovery takes about a second. ``ledger`` tasks append a line
per start and end to a file outside the system under test, so tests count executions.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import time

from conveyor import App
from conveyor.context import TaskContext
from conveyor.errors import SoftTimeLimitExceeded
from conveyor.testing.ledger import ledger_task

app = App(
    "tests", lease_seconds=2.0, heartbeat_interval=0.3, rescue_interval=0.3, default_max_retries=3
)


#: The fault harness's task (``conveyor.testing.ledger``): ``(ledger_path, seconds)``.
harness = ledger_task(app)


def note(path: str, line: str) -> None:
    with open(path, "a") as ledger:
        ledger.write(f"{line} {os.getpid()}\n")


@app.task(name="t.add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="t.ledger", bind=True)
def ledger(self: TaskContext, path: str, seconds: float = 0.0) -> str:
    note(path, f"start {self.request.id}")
    time.sleep(seconds)
    note(path, f"end {self.request.id}")
    return self.request.id


@app.task(name="t.fail")
def fail(message: str) -> None:
    raise ValueError(message)


@app.task(
    name="t.flaky", bind=True, autoretry_for=(ConnectionError,), max_retries=2, retry_backoff=0.05
)
def flaky(self: TaskContext, succeed_on: int) -> int:
    if self.request.attempt < succeed_on:
        raise ConnectionError(f"attempt {self.request.attempt} failed")
    return self.request.attempt


@app.task(name="t.retry_self", bind=True, max_retries=1)
def retry_self(self: TaskContext) -> None:
    self.retry(countdown=0.05, exc=RuntimeError(f"try {self.request.attempt}"))


@app.task(name="t.retry_in_except", bind=True, max_retries=1, retry_backoff=0.05)
def retry_in_except(self: TaskContext) -> None:
    """Celery's idiom without ``exc=``: the error being handled is the one to report."""
    try:
        raise ConnectionError("device did not answer")
    except ConnectionError:
        self.retry(countdown=0.05)


@app.task(name="t.retry_bare", bind=True, max_retries=1)
def retry_bare(self: TaskContext) -> None:
    self.retry(countdown=0.05)


@app.task(name="t.soft", soft_time_limit=0.2)
def soft() -> str:
    try:
        for _ in range(500):  # short sleeps: every pool can deliver the limit between them
            time.sleep(0.01)
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "finished"


@app.task(name="t.soft_in_c", soft_time_limit=0.2)
def soft_in_c() -> str:
    try:
        time.sleep(5)  # one long C call: only a signal (process pool on POSIX) interrupts it
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "finished"


@app.task(name="t.hard", time_limit=0.3)
def hard() -> None:
    while True:  # pure Python: thread pools can interrupt it too
        time.sleep(0.01)


@app.task(name="t.progress", bind=True)
def progress(self: TaskContext, path: str) -> None:
    self.update_progress(50, message="half way", step=1)
    note(path, "progress")
    deadline = time.monotonic() + 10
    while not os.path.exists(path + ".go") and time.monotonic() < deadline:
        time.sleep(0.01)


@app.task(name="t.cooperative", bind=True)
def cooperative(self: TaskContext, path: str) -> str:
    note(path, f"start {self.request.id}")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if self.is_revoked():
            return "noticed"
        time.sleep(0.02)
    return "never revoked"


@app.task(name="t.async_add")
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0.01)
    return a + b


@app.task(name="t.async_fail")
async def async_fail(message: str) -> None:
    raise ValueError(message)


@app.task(name="t.async_hang", time_limit=0.3)
async def async_hang() -> None:
    await asyncio.sleep(60)


@app.task(name="t.bad_result")
def bad_result() -> object:
    return {1, 2}


@app.task(name="t.suicide")
def suicide() -> None:
    os._exit(13)


@app.task(name="t.kill_self")
def kill_self(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(10)  # the signal lands before this ends


@app.task(name="t.exit")
def exit_(code: int) -> None:
    """Ends like a script: ``sys.exit`` raises SystemExit in the task's body."""
    sys.exit(code)


@app.task(name="t.async_exit")
async def async_exit(code: int) -> None:
    await asyncio.sleep(0)
    sys.exit(code)


@app.task(name="t.hold_gil")
def hold_gil(seconds: int) -> str:
    """One C call that keeps the GIL: no other thread of this process runs until it returns."""
    ctypes.PyDLL(None).sleep(seconds)
    return "held"


@app.task(name="t.early", acks_late=False)
def early() -> None: ...


@app.task(name="t.pid")
def pid() -> int:
    return os.getpid()


@app.task(name="t.cold")
def cold(seconds: float) -> int:
    """Takes ``seconds`` the first time it runs in a process (as a first call that imports
    a library does), then returns at once."""
    if os.getpid() not in _warm:
        _warm.add(os.getpid())
        time.sleep(seconds)
    return os.getpid()


_warm: set[int] = set()


@app.task(name="t.grow")
def grow(mib: int) -> int:
    global _ballast
    _ballast = bytearray(mib * 1024 * 1024)  # kept alive: the child's memory stays high
    return os.getpid()


_ballast = bytearray()


@app.task(name="t.media.encode", queue="media")
def encode() -> str:
    return "encoded"


@app.task(name="t.devices.ping", queue="devices")
def ping_device(device: str) -> str:
    return f"{device} online"


@app.task(name="t.tsum")
def tsum(values: list[int]) -> int:
    return sum(values)


@app.task(name="t.gate")
def gate(path: str, value: int) -> int:
    """Fails until the file at ``path`` exists: a FAILURE a retry by hand can fix."""
    if not os.path.exists(path):
        raise ValueError(f"gate closed: {path} is missing")
    return value


@app.task(name="t.identity")
def identity(value: object) -> object:
    return value


@app.task(name="t.collect")
def collect(results: list[int], path: str) -> int:
    """A chord callback that leaves a line per run in a ledger: it must run once."""
    note(path, "callback")
    return sum(results)


@app.task(name="t.errback")
def errback(failed_id: str, path: str) -> None:
    note(path, f"errback {failed_id}")


@app.task(name="t.slow_value", bind=True)
def slow_value(self: TaskContext, value: int, path: str, seconds: float) -> int:
    note(path, f"start {self.request.id}")
    time.sleep(seconds)
    note(path, f"end {self.request.id}")
    return value


@app.task(name="t.pbkdf2", time_limit=0.5)
def pbkdf2(iterations: int) -> str:
    """One long call inside C: no Python bytecode runs until it returns."""
    import hashlib

    return hashlib.pbkdf2_hmac("sha256", b"password", b"salt", iterations).hex()


@app.task(name="t.stoppable", bind=True)
def stoppable(self: TaskContext, path: str, seconds: float) -> str:
    """Python code for ``seconds`` (short sleeps): terminate stops it in every pool."""
    note(path, f"start {self.request.id}")
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)
        note(path, f"end {self.request.id}")
    finally:
        note(path, f"finally {self.request.id}")
    return "finished"


@app.task(name="t.in_c", bind=True)
def in_c(self: TaskContext, path: str, seconds: float) -> str:
    """One call into C for ``seconds``: no exception raised in its thread lands before."""
    note(path, f"start {self.request.id}")
    time.sleep(seconds)
    note(path, f"end {self.request.id}")
    return "finished"


@app.task(name="t.swallow", bind=True)
def swallow(self: TaskContext, path: str, seconds: float) -> str:
    """Catches every exception raised in it (``Terminated`` included) and runs on."""
    note(path, f"start {self.request.id}")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(0.01)
        except BaseException as exc:
            note(path, f"caught-{type(exc).__name__} {self.request.id}")
    note(path, f"end {self.request.id}")
    return "finished"


@app.task(name="t.soft_uncaught", soft_time_limit=0.3)
def soft_uncaught(seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    return "finished"


@app.task(name="t.soft_late", soft_time_limit=0.2)
def soft_late(seconds: float) -> str:
    time.sleep(seconds)  # one call into C: the soft limit lands when it returns
    return "finished"


@app.task(name="t.hard_caught", time_limit=0.2)
def hard_caught(seconds: float) -> int:
    """Catches its hard limit and runs on: its record must not say it was stopped."""
    caught = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(0.01)
        except Exception:  # a broad handler, as many tasks have
            caught += 1
    return caught


@app.task(name="t.async_stoppable", bind=True)
async def async_stoppable(self: TaskContext, path: str, seconds: float) -> str:
    note(path, f"start {self.request.id}")
    try:
        await asyncio.sleep(seconds)
        note(path, f"end {self.request.id}")
    finally:
        note(path, f"finally {self.request.id}")
    return "finished"
