"""CLI tables in a pipe and in an 80-column terminal: ids and names are never wrapped or cut."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from conveyor import App
from conveyor.records import WorkerInfo

from .conftest import ROOT, cli_env, run_cli

#: 60 characters, the kind of name a team builds from its domain.
LONG_QUEUE = "media.transcode.customer-uploads.high-resolution.eu-west-1.2"
LONG_ERROR = "the camera at 10.0.0.7 refused the session: " + "retry later " * 20
BOX = re.compile("[\u2500-\u257f]")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def ids(url: str) -> list[str]:
    """Three jobs in LONG_QUEUE, the newest failed with a long error."""
    assert len(LONG_QUEUE) == 60
    producer = App("producer", backend=url)
    made = [producer.send_task("t.add", (i, i), queue=LONG_QUEUE).id for i in range(3)]
    (record,) = producer.backend.claim([LONG_QUEUE], "w", 1, 30)
    producer.backend.fail(record.lease, {"type": "ConnectionError", "message": LONG_ERROR})
    producer.backend.heartbeat(WorkerInfo(
        id="w-id", name="transcoder-eu-west-1-a.internal.example.com:31337", host="transcoder-eu-west-1-a",
        pid=31337, queues=[LONG_QUEUE], pool="process", concurrency=4, version="t", tasks=["t.add"],
        started_at=producer.backend.now(),
    ), [], 30)  # fmt: skip
    return made


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_piped_tables_are_plain_columns_with_every_id_and_name_whole(
    url: str, ids: list[str]
) -> None:
    env = cli_env(url, columns=80)
    jobs = run_cli(env, "inspect", "jobs")
    assert jobs.returncode == 0, jobs.stderr
    rows = jobs.stdout.splitlines()
    assert rows[0].split() == ["id", "task", "queue", "state", "try", "created", "detail"]
    for job_id in ids:
        (row,) = lines_with(jobs.stdout, job_id)
        assert row.split()[:3] == [job_id, "t.add", LONG_QUEUE]  # one row a line, for awk
    (failed,) = lines_with(jobs.stdout, "FAILURE")
    assert failed.endswith(f"ConnectionError: {LONG_ERROR}".rstrip())  # in a pipe, nothing is cut
    queues = run_cli(env, "inspect", "queues").stdout
    (row,) = lines_with(queues, LONG_QUEUE)
    assert row.split()[:3] == [LONG_QUEUE, "2", "0"]
    workers = run_cli(env, "inspect", "workers").stdout
    assert "transcoder-eu-west-1-a.internal.example.com:31337" in workers
    assert lines_with(workers, LONG_QUEUE)
    attempts = run_cli(env, "inspect", "job", ids[0]).stdout
    assert lines_with(attempts, f"ConnectionError: {LONG_ERROR}".rstrip())
    assert run_cli(env, "schedules", "add", "nightly-statistics-for-every-customer-region", "t.add",
                   "--every", "1h", "--args", "[1, 2]", "--queue", LONG_QUEUE).returncode == 0  # fmt: skip
    schedules = run_cli(env, "schedules", "list").stdout
    assert lines_with(schedules, "nightly-statistics-for-every-customer-region")
    for output in (jobs.stdout, queues, workers, attempts, schedules):
        assert not BOX.search(output), output
        assert "\x1b" not in output  # no colour either
        assert "…" not in output


def in_terminal(env: dict[str, str], *args: str, columns: int = 80) -> str:
    """The CLI's output when stdout is a terminal ``columns`` wide (a pseudo-terminal)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "conveyor", *args], cwd=ROOT, env=env,
                            stdout=slave, stderr=subprocess.PIPE)  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r", "")


def test_an_80_column_terminal_gets_a_table_that_cuts_only_the_error_text(
    url: str, ids: list[str]
) -> None:
    env = {
        k: v
        for k, v in cli_env(url).items()
        if k not in {"COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE"}
    }
    jobs = in_terminal(env, "inspect", "jobs", columns=80)
    assert BOX.search(jobs)  # a table for people
    for job_id in ids:
        (row,) = lines_with(jobs, job_id)
        assert LONG_QUEUE in row
    (failed,) = lines_with(jobs, "FAILURE")
    assert "ConnectionError: the" in failed
    assert LONG_ERROR.rstrip() not in failed
    assert failed.rstrip().endswith("…")  # the free text gave way, shortened
    queues = in_terminal(env, "inspect", "queues", columns=80)
    assert lines_with(queues, LONG_QUEUE)
    roomy = in_terminal(env, "inspect", "jobs", columns=600)
    assert LONG_ERROR.rstrip() in roomy  # room enough: nothing is shortened


def test_the_audit_trail_and_the_tokens_list_give_whole_ids_in_a_pipe(url: str) -> None:
    """Scripts read ids from these lists (``conveyor tokens revoke ID``): in a pipe they
    were drawn as an 80-column box table that cut them with an ellipsis."""
    from conveyor.records import AuditEntry
    from conveyor.web import TokenStore

    producer = App("producer", backend=url)
    token, _ = TokenStore(producer.backend).create(
        "nightly-statistics-exporter-for-eu-west-1", "operate"
    )
    job_id = producer.send_task("t.add", (1, 2), queue=LONG_QUEUE).id
    producer.backend.record_audit(AuditEntry(
        0, producer.backend.now(), token.name, token.id, "POST /jobs/{job_id}/cancel", job_id,
        "ok", 200, {},
    ))  # fmt: skip
    env = cli_env(url, columns=80)
    tokens = run_cli(env, "tokens", "list")
    assert tokens.returncode == 0, tokens.stderr
    assert tokens.stdout.splitlines()[0].split() == ["id", "name", "role", "created"]
    (row,) = lines_with(tokens.stdout, token.id)
    assert row.split()[:3] == [token.id, token.name, "operate"]
    audit = run_cli(env, "audit")
    assert audit.returncode == 0, audit.stderr
    (row,) = lines_with(audit.stdout, job_id)
    assert f"{token.name} ({token.id})" in row
    assert "POST /jobs/{job_id}/cancel" in row
    for output in (tokens.stdout, audit.stdout):
        assert not BOX.search(output), output
        assert "…" not in output


def test_every_cli_table_is_printed_by_print_table() -> None:
    """A list printed as a rich Table of its own is cut to 80 columns in a pipe (the
    audit trail and the tokens list were): lists go through ``print_table``."""
    cli = ROOT / "src" / "conveyor" / "cli"
    own = [p.name for p in cli.glob("*.py") if "rich.table" in p.read_text()]
    assert sorted(own) == ["demo.py", "output.py"]  # the demo's summary is for a terminal


def test_conveyor_inspect_workflows_lists_each_with_its_state(url: str) -> None:
    from conveyor.loader import load_app
    from conveyor.testing import drain, use_backend
    from conveyor.workflows import chain

    app = load_app("tests.apps.basic:app")
    with use_backend(app, url):
        add, fail = app.tasks["t.add"], app.tasks["t.fail"]
        done = chain(add.s(1, 2), add.s(3)).apply_async(app)
        failed = chain(add.s(1, 1), fail.si("boom")).apply_async(app)
        drain(app)
        waiting = chain(add.s(1, 1), add.s(2)).apply_async(app)
    listed = run_cli(cli_env(url, columns=80), "inspect", "workflows")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split()[:3] == ["id", "state", "jobs"]
    for workflow, state in ((done, "SUCCESS"), (failed, "FAILURE"), (waiting, "PENDING")):
        (row,) = lines_with(listed.stdout, workflow.id)
        assert row.split()[:3] == [workflow.id, state, "2"]


def test_a_paused_schedule_lists_no_next_run(url: str) -> None:
    """Its next run read as if it would fire (the time stored when it was paused)."""
    env = cli_env(url, columns=80)
    for name in ("nightly", "hourly"):
        added = run_cli(env, "schedules", "add", name, "t.add", "--every", "1h", "--args", "[1, 2]")
        assert added.returncode == 0, added.stderr
    assert run_cli(env, "schedules", "pause", "nightly").returncode == 0
    listed = run_cli(env, "schedules", "list").stdout
    (paused,) = lines_with(listed, "nightly")
    assert paused.split()[-2:] == ["-", "paused"]  # no last job, and no next run
    (active,) = lines_with(listed, "hourly")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", active)
    as_json = orjson.loads(run_cli(env, "schedules", "list", "--json").stdout)
    runs = {s["schedule"]["name"]: s["next_run"] for s in as_json}
    assert runs["nightly"] is None
    assert runs["hourly"] is not None


def test_schedule_times_name_their_zone(url: str) -> None:
    """The times are UTC, said in the headers; a cron counted in another zone also shows
    its next run on that zone's clocks."""
    env = cli_env(url, columns=80)
    added = run_cli(env, "schedules", "add", "berlin-night", "t.add", "--cron", "0 1 * * *",
                    "--tz", "Europe/Berlin", "--args", "[1, 2]")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert (
        run_cli(
            env, "schedules", "add", "utc-night", "t.add", "--cron", "0 1 * * *", "--args", "[1, 2]"
        ).returncode
        == 0
    )
    listed = run_cli(env, "schedules", "list").stdout
    assert "last run (UTC)" in listed.splitlines()[0]
    assert " app " in listed.splitlines()[0]  # whose scheduler fires each
    assert "next run (UTC)" in listed.splitlines()[0]
    (berlin,) = lines_with(listed, "berlin-night")
    runs = orjson.loads(run_cli(env, "schedules", "list", "--json").stdout)
    next_run = {s["schedule"]["name"]: s["next_run"] for s in runs}["berlin-night"]
    utc = datetime.fromtimestamp(next_run, UTC).strftime("%Y-%m-%d %H:%M:%S")
    local = datetime.fromtimestamp(next_run, ZoneInfo("Europe/Berlin"))
    assert local.hour == 1
    assert berlin.endswith(f"{utc} ({local:%Y-%m-%d} 01:00:00 Europe/Berlin)")
    (plain,) = lines_with(listed, "utc-night")
    assert re.search(r"\d\d:\d\d:\d\d$", plain)  # UTC already: said once, in the header
