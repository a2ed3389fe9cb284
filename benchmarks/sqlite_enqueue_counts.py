"""What one single enqueue costs on SQLite, on an empty store and beside a backlog, in
counts the machine's load cannot move: instructions (valgrind's callgrind) and the pages
SQLite's B-trees visit (calls of ``sqlite3PcacheFetch``, one a page an insert or a seek
steps on); with, beside them, the CPU time split into user and system time and what the
enqueues write (``/proc/self/io``), in alternating native rounds.

    .venv/bin/python -m benchmarks.sqlite_enqueue_counts --waiting 1000000 --keep /tmp/stores

Each measure is a fresh process on a fresh copy of its store: it opens the store, makes
200 single enqueues to warm SQLite's page cache, then ``--n`` more; a run with ``--n 0``
is subtracted, so start-up and the warm-up cancel. The stores are built once (in
``--keep``, reused when there) and copied before every run, since each run writes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from conveyor import App

from . import bulk_store

ROOT = Path(__file__).resolve().parents[1]
WARM = 200
#: Functions of libsqlite3 counted by callgrind (its exported names are known even in a
#: stripped library): pages visited, index seeks.
COUNTED = ("sqlite3PcacheFetch", "sqlite3BtreeIndexMoveto")


def child(path: str, n: int) -> None:
    """The measured process: warm up, then ``n`` single enqueues; prints its CPU and I/O."""
    app = App("producer", backend=f"sqlite:///{path}")
    app.backend.counts()
    for _ in range(WARM):
        app.send_task("bench.noop")
    before, io = resource.getrusage(resource.RUSAGE_THREAD), _io()
    for _ in range(n):
        app.send_task("bench.noop")
    after, io_after = resource.getrusage(resource.RUSAGE_THREAD), _io()
    print(json.dumps({
        "user_us": (after.ru_utime - before.ru_utime) / max(n, 1) * 1e6,
        "sys_us": (after.ru_stime - before.ru_stime) / max(n, 1) * 1e6,
        **{k: (io_after[k] - io[k]) / max(n, 1) for k in ("syscw", "wchar", "syscr")},
    }))  # fmt: skip


def _io() -> dict[str, int]:
    pairs = (line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return {key: int(value) for key, value in pairs}


def run(store: Path, n: int, work: Path, valgrind: bool) -> dict[str, float]:
    """One measure on a fresh copy of ``store``."""
    copy = work / "run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(store, copy)
    command = [sys.executable, "-m", "benchmarks.sqlite_enqueue_counts", "--child", str(copy)]
    command += ["--n", str(n)]
    if not valgrind:
        out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
        return dict(json.loads(out.stdout.splitlines()[-1]))
    profile = work / "callgrind.out"
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={profile}", *command],
                   cwd=ROOT, check=True, capture_output=True)  # fmt: skip
    return callgrind_counts(profile)


def callgrind_counts(path: Path) -> dict[str, float]:
    """Instructions (``Ir``) and the calls of ``COUNTED`` in a callgrind profile."""
    names: dict[str, str] = {}
    calls: Counter[str] = Counter()
    callee = None
    for line in path.read_text().splitlines():
        if line.startswith(("fn=", "cfn=")):
            found = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
            if found and found.group(2):
                names[found.group(1)] = found.group(2)
            if found and line.startswith("cfn="):
                callee = found.group(1)
        elif line.startswith("calls=") and callee is not None:
            calls[names.get(callee, callee)] += int(line[6:].split()[0])
            callee = None
        elif line.startswith("summary:") or line.startswith("totals:"):
            instructions = int(line.split()[1])
    return {"instructions": instructions, **{name: calls[name] for name in COUNTED}}


def stores(keep: Path, waiting: int) -> dict[str, Path]:
    """The empty store and the backlog's, built in ``keep`` unless there already."""
    keep.mkdir(parents=True, exist_ok=True)
    found = {"empty": keep / "empty.db", f"{waiting:,} waiting": keep / f"waiting{waiting}.db"}
    for (label, path), size in zip(found.items(), (0, waiting), strict=True):
        if not path.exists():
            app = App("producer", backend=f"sqlite:///{path}.part")
            app.backend.counts()
            if size:
                print(
                    f"  building {label}: {bulk_store.build(app, 0, size, queues=['backlog']):.0f}s"
                )
            app.backend._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]
            app.backend.close()
            Path(f"{path}.part").rename(path)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--waiting", type=int, default=1_000_000, help="jobs in another queue")
    parser.add_argument("--n", type=int, default=2000, help="single enqueues a measure")
    parser.add_argument("--reps", type=int, default=5, help="alternating native rounds")
    parser.add_argument(
        "--keep", type=Path, default=Path(tempfile.gettempdir()) / "conveyor-stores"
    )
    parser.add_argument("--label", default="", help="added to the results file's name")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.n)
    found: dict[str, Any] = {"n": args.n, "load_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        paths = stores(args.keep, args.waiting)
        for label, path in paths.items():
            base, measured = (run(path, n, work, valgrind=True) for n in (0, args.n))
            per = {k: (measured[k] - base[k]) / args.n for k in measured}
            found.setdefault("counts", {})[label] = per
            print(f"  {label}: " + ", ".join(f"{k} {v:,.1f}" for k, v in per.items()), flush=True)
        for rep in range(args.reps):
            for label, path in paths.items():
                cpu = run(path, args.n, work, valgrind=False)
                found.setdefault("native", {}).setdefault(label, []).append(cpu)
                print(f"  round {rep + 1}, {label}: " + ", ".join(f"{k} {v:,.1f}" for k, v in cpu.items())
                      + f"; load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    found["native_median"] = {
        label: {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
        for label, rounds in found["native"].items()
    }
    found["load_at_end"] = os.getloadavg()[0]
    print(json.dumps(found["native_median"], indent=2))
    (ROOT / "benchmarks" / "results" / f"sqlite_enqueue_counts{args.label}.json").write_text(
        json.dumps(found, indent=2)
    )


if __name__ == "__main__":
    main()
