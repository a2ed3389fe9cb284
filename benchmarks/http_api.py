"""The REST API under load: submit and status latency over HTTP (p50, p99, one client)
and submit throughput (16 concurrent clients), for Conveyor's API (``conveyor serve``)
on SQLite, Redis and PostgreSQL, side by side with Flower's task API (Celery + Redis).

    .venv/bin/python -m benchmarks.http_api            # 3 repetitions, a few minutes
    .venv/bin/python -m benchmarks.http_api --quick    # 1 repetition, smaller counts
    .venv/bin/python -m benchmarks.http_api --only conveyor-redis,flower

Every server is a real process, as its users run it: ``conveyor serve`` (one uvicorn
process, a bearer token checked on every request) and ``celery flower`` (installed,
pinned by benchmarks/peers/requirements-flower.txt, into benchmarks/.peers/flower).
Redis is a redis-server of the benchmark's own (benchmarks.redis_server); PostgreSQL is
$BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test), in a schema of its
own, dropped afterwards. No worker runs: this measures the API and its store, not jobs.

On a shared machine the rates follow whatever else runs; the server's CPU time per
submit (user + system, from /proc, during the 16-client run) and per status (during the
sequential reads) do much less, and 1,000,000 / it is the requests per second one core
of server could answer.

The load comes from a lean HTTP/1.1 client (keep-alive, raw asyncio streams) so that
its own cost, on the same cores, stays small beside the server's.

- submit: ``POST /api/jobs`` (Conveyor) and ``POST /api/task/async-apply/stamp`` (Flower);
- status: ``GET /api/jobs/{id}`` (the job in full) and ``GET /api/task/result/{id}``
  (Celery's Redis result backend: Flower's durable status; its ``task/info`` reads the
  events a worker sends, and no worker runs here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor import App
from conveyor.web import TokenStore

from .compare_redis import setup_peer
from .redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
CLIENTS = 16
CONTENDERS = ("conveyor-sqlite", "conveyor-redis", "conveyor-postgres", "flower")


class Connection:
    """One keep-alive HTTP/1.1 connection; just enough protocol for JSON requests."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        data = b"" if body is None else json.dumps(body).encode()
        kind = "Content-Type: application/json\r\n" if body is not None else ""
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{self.head}{kind}"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        payload = await self.reader.readexactly(length)
        try:
            return status, json.loads(payload)
        except ValueError:  # not JSON (a health check's "OK")
            return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class Target:
    """A running API and how to submit to it and read a job's status."""

    name: str
    pid: int
    port: int
    headers: dict[str, str]
    submit: Callable[[Connection], Any]
    status_path: Callable[[str], str]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process used so far (Linux /proc): what a request
    costs the server whatever else the machine runs, unlike a rate."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(target: Target, n: int, total: int) -> dict[str, float]:
    conn = Connection(target.port, target.headers)
    for _ in range(100):  # warm up: connections, caches, JIT-free but lazy imports
        await target.submit(conn)
    submit_ms, ids = [], []
    for _ in range(n):
        started = time.perf_counter()
        ids.append(await target.submit(conn))
        submit_ms.append((time.perf_counter() - started) * 1000)
    status_ms = []
    status_cpu = cpu_seconds(target.pid)
    for job_id in ids:
        started = time.perf_counter()
        code, _ = await conn.request("GET", target.status_path(job_id))
        status_ms.append((time.perf_counter() - started) * 1000)
        assert code == 200, code
    status_cpu = cpu_seconds(target.pid) - status_cpu
    conn.close()

    conns = [Connection(target.port, target.headers) for _ in range(CLIENTS)]
    for c in conns:
        await target.submit(c)

    async def client(c: Connection) -> None:
        for _ in range(total // CLIENTS):
            await target.submit(c)

    started, cpu = time.perf_counter(), cpu_seconds(target.pid)
    await asyncio.gather(*(client(c) for c in conns))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(target.pid) - cpu
    for c in conns:
        c.close()
    return {
        "submit_p50_ms": percentile(submit_ms, 0.5),
        "submit_p99_ms": percentile(submit_ms, 0.99),
        "status_p50_ms": percentile(status_ms, 0.5),
        "status_p99_ms": percentile(status_ms, 0.99),
        "submits_per_s": (total // CLIENTS) * CLIENTS / elapsed,
        "server_cpu_us_per_submit": cpu * 1e6 / ((total // CLIENTS) * CLIENTS),
        "server_cpu_us_per_status": status_cpu * 1e6 / len(ids),
    }


def wait_listening(port: int, proc: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server for port {port} exited with {proc.returncode}")
        try:
            code, _ = asyncio.run(Connection(port, {}).request("GET", path))
            if code < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def conveyor_server(url: str, log: Path) -> tuple[subprocess.Popen[bytes], Target]:
    _, secret = TokenStore(App("bench-tokens", backend=url).backend).create("bench", "operate")
    port = free_port()
    env = {**os.environ, "CONVEYOR_BACKEND": url}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "conveyor"), "-A", "benchmarks.app:app", "serve",
         "--port", str(port), "--loglevel", "warning"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_listening(port, proc, "/api/health/live")

    async def submit(conn: Connection) -> str:
        code, body = await conn.request("POST", "/api/jobs", {"task": "bench.noop"})
        assert code == 201, (code, body)
        return str(body["id"])

    target = Target("conveyor", proc.pid, port, {"Authorization": f"Bearer {secret}"}, submit,
                    lambda job_id: f"/api/jobs/{job_id}")  # fmt: skip
    return proc, target


def flower_server(redis_url: str, log: Path) -> tuple[subprocess.Popen[bytes], Target]:
    venv = ROOT / "benchmarks" / ".peers" / "flower"
    port = free_port()
    env = {**os.environ, "BENCH_REDIS_URL": redis_url, "BENCH_CELERY_RESULTS": "1",
           "FLOWER_UNAUTHENTICATED_API": "true", "PYTHONPATH": str(ROOT)}  # fmt: skip
    proc = subprocess.Popen(
        [str(venv / "bin" / "celery"), "-A", "benchmarks.peers.celery_app:app", "flower",
         f"--port={port}", "--address=127.0.0.1", "--logging=warning"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_listening(port, proc, "/healthcheck")

    async def submit(conn: Connection) -> str:
        code, body = await conn.request("POST", "/api/task/async-apply/stamp", {"args": [0]})
        assert code == 200, (code, body)
        return str(body["task-id"])

    return proc, Target(
        "flower", proc.pid, port, {}, submit, lambda job_id: f"/api/task/result/{job_id}"
    )


def run_one(name: str, redis: RedisServer, tmp: Path, n: int, total: int) -> dict[str, float]:
    log = tmp / f"{name}.log"
    schema = None
    if name == "flower":
        proc, target = flower_server(redis.url.rsplit("/", 1)[0] + "/1", log)
    else:
        backend = name.split("-", 1)[1]
        tag = uuid.uuid4().hex[:8]
        if backend == "sqlite":
            url = f"sqlite:///{tmp / tag}.db"
        elif backend == "redis":
            url = f"{redis.url}?prefix=http-{tag}"
        else:
            schema = f"bench_http_{tag}"
            url = f"{POSTGRES}?schema={schema}"
        proc, target = conveyor_server(url, log)
    try:
        return asyncio.run(measure(target, n, total))
    except Exception:
        print(log.read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        stop(proc)
        if schema is not None:
            import psycopg

            with psycopg.connect(POSTGRES, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


METRICS = [("submit_p50_ms", "submit p50 (ms)", False), ("submit_p99_ms", "submit p99 (ms)", False),
           ("status_p50_ms", "status p50 (ms)", False), ("status_p99_ms", "status p99 (ms)", False),
           ("submits_per_s", f"submits/s, {CLIENTS} clients", True),
           ("server_cpu_us_per_submit", "server CPU per submit (µs)", False),
           ("server_cpu_us_per_status", "server CPU per status (µs)", False)]  # fmt: skip


def table(results: dict[str, dict[str, float]]) -> str:
    names = list(results)
    lines = ["| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for key, label, _ in METRICS:
        cells = [f"{results[n][key]:,.0f}" if key.startswith(("submits", "server")) else f"{results[n][key]:.2f}"
                 for n in names]  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 repetition, smaller counts")
    parser.add_argument("--only", help=f"comma-separated, of {', '.join(CONTENDERS)}")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(CONTENDERS)
    reps, n, total = (1, 500, 2000) if args.quick else (3, 2000, 8000)
    versions = {"flower": setup_peer("flower")} if "flower" in names else {}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        redis = RedisServer(tmp, persistent=False)
        try:
            for rep in range(reps):
                for name in names:  # contenders alternate within each repetition
                    runs[name].append(run_one(name, redis, tmp, n, total))
                    print(f"rep {rep + 1}/{reps} {name}: {runs[name][-1]}", flush=True)
        finally:
            redis.stop()
    results = {
        name: {key: statistics.median(r[key] for r in runs[name]) for key, _, _ in METRICS}
        for name in names
    }
    print("\n" + table(results))
    out = (
        ROOT / "benchmarks" / "results" / ("http-api-quick.json" if args.quick else "http-api.json")
    )
    out.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "repetitions": reps, "sequential_requests": n, "concurrent_submits": total,
        "clients": CLIENTS, "versions": versions, "median": results, "runs": runs,
    }, indent=2) + "\n")  # fmt: skip
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
