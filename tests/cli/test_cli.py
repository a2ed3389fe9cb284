"""The CLI through the real command, on a SQLite file, with real workers where it matters."""

from __future__ import annotations

import functools
import getpass
import json
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conveyor import App, State, chain
from conveyor.task import Signature

from ..worker.conftest import ledger_lines, wait_until
from .conftest import cli_env, run_cli

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def producer(url: str) -> App:
    # A producer that does not import the tasks, routing by name as a web app would.
    return App("producer", backend=url, task_routes={"t.devices.*": "devices"})


@pytest.fixture
def env(url: str) -> dict[str, str]:
    return cli_env(url)


@pytest.fixture
def cli(env: dict[str, str]) -> Run:
    return functools.partial(run_cli, env)


@pytest.fixture
def worker(
    env: dict[str, str], conveyor_proc: Callable[..., subprocess.Popen[bytes]]
) -> Callable[..., subprocess.Popen[bytes]]:
    def start(*args: str) -> subprocess.Popen[bytes]:
        return conveyor_proc("worker", "-P", "thread", *args, env=env)

    return start


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0


def test_enqueue_then_inspect_jobs_and_one_job(cli: Run) -> None:
    made = as_json(cli("enqueue", "t.add", "--args", "[2, 3]", "--priority", "high", "--json"))
    assert (made["queue"], made["state"]) == ("default", "PENDING")
    listed = as_json(cli("inspect", "jobs", "--state", "pending", "--json"))
    assert [j["id"] for j in listed["jobs"]] == [made["id"]]
    detail = as_json(cli("inspect", "job", made["id"], "--json"))
    assert (detail["args"], detail["priority"], detail["task"]) == ([2, 3], 7, "t.add")
    table = cli("inspect", "job", made["id"])
    assert "t.add" in table.stdout
    assert "args [2, 3]" in table.stdout
    later = as_json(cli("enqueue", "t.add", "--args", "[1, 1]", "--json"))["id"]
    oldest = as_json(cli("inspect", "jobs", "--oldest", "--limit", "1", "--json"))
    assert [j["id"] for j in oldest["jobs"]] == [made["id"]]
    after = cli("inspect", "jobs", "--oldest", "--cursor", oldest["next_cursor"], "--json")
    assert [j["id"] for j in as_json(after)["jobs"]] == [later]


def test_enqueue_takes_a_priority_name_in_any_case_and_lists_them_for_a_wrong_one(
    cli: Run,
) -> None:
    made = as_json(cli("enqueue", "t.add", "--args", "[2, 3]", "--priority", "HIGH", "--json"))
    assert as_json(cli("inspect", "job", made["id"], "--json"))["priority"] == 7
    wrong = cli("enqueue", "t.add", "--args", "[2, 3]", "--priority", "Urgent")
    assert wrong.returncode == 1
    said = " ".join(wrong.stderr.split())
    assert "use 0-9 or one of low, normal, high, critical (in any case)" in said


def test_enqueue_refuses_unknown_tasks_and_bad_json(cli: Run) -> None:
    unknown = cli("enqueue", "t.ad", "--args", "[1]")
    assert unknown.returncode == 1
    assert "no task named 't.ad'" in unknown.stderr
    assert "t.add" in unknown.stderr  # the known names, to spot the typo
    bad = cli("enqueue", "t.add", "--args", "[1,")
    assert bad.returncode == 2
    assert "--args is not valid JSON" in bad.stderr
    assert cli("enqueue", "t.add", "--args", "[1, 1]").returncode == 0  # the store exists now
    missing = cli("inspect", "job", "no-such-id")
    assert missing.returncode == 1
    assert "no job has the id 'no-such-id'" in missing.stderr


def test_cancel_says_what_it_did_and_a_late_one_shows_on_the_record(
    cli: Run, producer: App
) -> None:
    finished, waiting = producer.enqueue_many(
        [Signature("t.devices.ping", (str(i),)) for i in range(2)]
    )
    (first,) = producer.backend.claim(["devices"], "w", 1, 30)  # the oldest: ``finished``
    producer.backend.complete(first.lease, "pong")
    stdout = cli("cancel", waiting.id, finished.id).stdout
    assert (
        f"{waiting.id} REVOKED revoked: job {waiting.id} was PENDING; revoked: it will never run"
        in stdout
    )
    assert (
        f"{finished.id} SUCCESS too_late: too late: the job had already finished SUCCESS at"
        in stdout
    )
    (again,) = json.loads(cli("cancel", finished.id, "--json").stdout)
    assert (again["outcome"], again["state"]) == ("too_late", "SUCCESS")
    shown = cli("inspect", "job", finished.id).stdout
    assert "too late: the job had already finished SUCCESS at" in shown
    assert "result 'pong'" in shown


def test_cancel_retry_and_bulk(cli: Run, producer: App) -> None:
    jobs = producer.enqueue_many([Signature("t.devices.ping", (str(i),)) for i in range(3)])
    assert "REVOKED" in cli("cancel", jobs[0].id).stdout
    assert "PENDING" in cli("retry", jobs[0].id).stdout
    assert cli("cancel", "--queue", "devices", input="n\n").returncode == 1  # asked, refused
    assert {j.state for j in jobs} == {State.PENDING}
    assert "cancelled 3 job(s)" in cli("cancel", "--queue", "devices", "--yes").stdout
    assert "retried 3 job(s)" in cli("retry", "--queue", "devices", "--yes").stdout
    again = cli("retry", jobs[0].id)
    assert again.returncode == 1
    assert "only FAILURE or REVOKED" in again.stderr


def test_inspect_queues_and_workers(
    cli: Run, producer: App, worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    producer.send_task("t.devices.ping", ("x",))
    proc = worker("-Q", "default", "-n", "alpha")
    wait_until(lambda: producer.backend.workers(), what="the worker to register")
    queues = {q["name"]: q for q in as_json(cli("inspect", "queues", "--json"))}
    assert (queues["devices"]["waiting"], queues["devices"]["consumers"]) == (1, [])
    assert queues["default"]["consumers"] == ["alpha"]
    (info,) = as_json(cli("inspect", "workers", "--json"))
    assert (info["name"], info["queues"], info["pool"]) == ("alpha", ["default"], "thread")
    assert "alpha" in cli("inspect", "workers").stdout
    stop(proc)


def test_doctor_names_the_stranded_queue_until_a_worker_consumes_it(
    cli: Run, producer: App, worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    jobs = producer.enqueue_many([Signature("t.devices.ping", (f"d{i}",)) for i in range(4)])
    only_default = worker("-Q", "default", "-n", "default-worker")
    wait_until(lambda: producer.backend.workers(), what="the worker to register")
    sick = cli("doctor")
    assert sick.returncode == 1
    assert "'devices' holds 4 waiting job(s)" in sick.stdout
    assert "default-worker consumes default" in sick.stdout
    assert "-Q devices" in sick.stdout
    report = json.loads(cli("doctor", "--json").stdout)
    assert report["healthy"] is False
    assert report["findings"][0]["check"] == "queue-without-worker"
    devices = worker("-Q", "devices", "-n", "devices-worker")
    wait_until(lambda: all(j.state is State.SUCCESS for j in jobs), 30, "the devices jobs to run")
    healthy = cli("doctor")
    assert healthy.returncode == 0, healthy.stdout
    assert "healthy" in healthy.stdout
    stop(only_default)
    stop(devices)


def test_pause_survives_a_worker_restart(
    cli: Run, producer: App, worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    assert cli("pause", "devices").returncode == 0
    held = producer.send_task("t.devices.ping", ("held",))
    for _ in range(2):  # before and after a restart
        proc = worker("-Q", "devices,default")
        probe = producer.send_task(
            "t.add", (1, 1)
        )  # enqueued after `held`: done means `held` was passed over
        assert probe.get(timeout=30) == 2
        assert held.state is State.PENDING
        stop(proc)
    assert cli("resume", "devices").returncode == 0
    proc = worker("-Q", "devices")
    assert held.get(timeout=30) == "held online"
    stop(proc)


def test_purge_leaves_running_jobs_alone(
    cli: Run, producer: App, worker: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    # Long enough that it is still running when the purge comes, however slow the CLI
    # starts on a loaded machine (with 1 s, the worker sometimes took the next job first).
    running = producer.send_task("t.ledger", (str(ledger), 60.0), priority=9)
    waiting = producer.enqueue_many([Signature("t.ledger", (str(ledger), 0)) for _ in range(3)])
    proc = worker("-c", "1")
    wait_until(lambda: ledger_lines(ledger), 30, "the first job to start")
    assert cli("purge", "default", input="n\n").returncode == 1  # asks first
    done = cli("purge", "default", "--yes")
    assert "purged 3 waiting job(s)" in done.stdout
    assert running.state is State.STARTED  # untouched by the purge
    assert {j.state for j in waiting} == {State.REVOKED}
    assert {line[1] for line in ledger_lines(ledger)} == {running.id}
    proc.kill()  # the 60 s job is not waited for (a thread pool cannot cut a sleep short)


def test_schedules_are_managed_from_the_cli(cli: Run) -> None:
    assert (
        cli(
            "schedules",
            "add",
            "probe",
            "t.add",
            "--every",
            "30s",
            "--args",
            "[1, 2]",
            "--queue",
            "media",
        ).returncode
        == 0
    )
    (listed,) = as_json(cli("schedules", "list", "--json"))
    assert (
        listed["schedule"]["every"],
        listed["schedule"]["args"],
        listed["schedule"]["options"],
    ) == (30.0, [1, 2], {"queue": "media"})
    assert (
        cli(
            "schedules", "edit", "probe", "--cron", "*/5 * * * *", "--tz", "Europe/Berlin"
        ).returncode
        == 0
    )
    assert cli("schedules", "pause", "probe").returncode == 0
    (edited,) = as_json(cli("schedules", "list", "--json"))
    assert (
        edited["schedule"]["cron"],
        edited["schedule"]["every"],
        edited["schedule"]["paused"],
    ) == ("*/5 * * * *", None, True)
    bad = cli("schedules", "add", "broken", "t.add", "--cron", "0 25 * * *")
    assert bad.returncode == 1
    assert "'0 25 * * *' is not valid: the hour field is '25'; it takes 0-23" in bad.stderr
    assert cli("schedules", "delete", "probe").returncode == 0
    assert as_json(cli("schedules", "list", "--json")) == []


def test_bad_input_is_refused_at_the_cli_with_the_rule(cli: Run) -> None:
    rule = "not a valid queue name; use 1 to 100 characters"
    for args in (["pause", "two words"], ["resume", ""], ["purge", "--yes", "x" * 500],
                 ["enqueue", "t.add", "--args", "[1, 2]", "--queue", "a b"]):  # fmt: skip
        done = cli(*args)
        assert (done.returncode, rule in done.stderr) == (1, True), (args, done.stderr)
    worker = cli("worker", "-Q", "default,two words", "--burst")
    assert (worker.returncode, rule in worker.stderr) == (2, True), worker.stderr
    wrong = cli("enqueue", "t.add", "--args", "[1]")
    assert wrong.returncode == 1
    assert "task 't.add' takes (a, b); missing a required argument: 'b'" in wrong.stderr
    unknown = cli("schedules", "add", "probe", "t.nope", "--every", "30s")
    assert unknown.returncode == 1
    assert "no task named 't.nope' is registered on app 'tests'; known: " in unknown.stderr
    no_args = cli("schedules", "add", "probe", "t.add", "--every", "30s", "--args", "[1]")
    assert (no_args.returncode, "missing a required argument" in no_args.stderr) == (1, True)
    assert as_json(cli("inspect", "jobs", "--json"))["jobs"] == []
    assert as_json(cli("schedules", "list", "--json")) == []


def test_pause_of_a_queue_nobody_knows_warns_and_pauses(cli: Run) -> None:
    done = cli("pause", "devcies")
    assert done.returncode == 0
    assert "queue 'devcies' paused" in done.stdout
    assert "warning: no queue 'devcies' is declared" in done.stderr
    assert "Known queues: default, devices, media" in done.stderr
    known = cli("pause", "devices")
    assert (known.returncode, known.stderr) == (0, "")
    paused = {q["name"] for q in as_json(cli("inspect", "queues", "--json")) if q["paused"]}
    assert paused == {"devcies", "devices"}


def test_inspect_job_given_a_workflow_id_points_to_the_workflow(cli: Run, producer: App) -> None:
    steps = (Signature("t.add", (1, 2), app=producer), Signature("t.add", (3,), app=producer))
    wf = chain(*steps).apply_async()
    done = cli("inspect", "job", wf.id)
    assert done.returncode == 1
    assert f"'{wf.id}' is a workflow's id, not a job's; use app.workflow('{wf.id}')" in done.stderr


def test_changes_made_from_the_cli_are_audited_by_user_and_host(cli: Run, producer: App) -> None:
    """Each change names the OS user and host (``cli:user@host``), what it did and to what,
    and how it ended; read-only commands write nothing; ``conveyor audit`` lists them."""
    who = f"cli:{getpass.getuser()}@{socket.gethostname()}"
    jobs = producer.enqueue_many([Signature("t.devices.ping", (str(i),)) for i in range(3)])
    assert cli("pause", "devices").returncode == 0
    assert cli("resume", "devices").returncode == 0
    assert cli("cancel", "--terminate", jobs[0].id).returncode == 0
    assert cli("retry", jobs[1].id).returncode == 1  # refused: it did not fail
    assert cli("cancel", "--queue", "devices", "--yes").returncode == 0
    assert cli("purge", "devices", "--yes").returncode == 0
    assert (
        cli(
            "schedules", "add", "nightly", "t.add", "--cron", "0 1 * * *", "--args", "[1, 2]"
        ).returncode
        == 0
    )
    assert cli("schedules", "pause", "nightly").returncode == 0
    created = cli("tokens", "create", "--role", "read", "--name", "ci")
    token_id = created.stderr.split("token ", 1)[1].split()[0]
    assert cli("tokens", "revoke", token_id).returncode == 0
    for read_only in (["inspect", "queues"], ["inspect", "job", jobs[0].id], ["schedules", "list"],
                      ["tokens", "list"], ["audit"], ["doctor"]):  # fmt: skip
        cli(*read_only)
    entries = as_json(cli("audit", "--json"))[::-1]  # oldest first
    assert {e["actor"] for e in entries} == {who}
    said = [(e["action"], e["target"], e["outcome"], e["status"]) for e in entries]
    assert said == [
        ("conveyor pause", "devices", "ok", 0),
        ("conveyor resume", "devices", "ok", 0),
        ("conveyor cancel (terminate)", jobs[0].id, "ok", 0),
        ("conveyor retry", jobs[1].id, "invalid_state", 1),
        ("conveyor cancel (cancel)", "2 jobs", "ok", 0),
        ("conveyor purge", "devices", "ok", 0),
        ("conveyor schedules add", "nightly", "ok", 0),
        ("conveyor schedules pause", "nightly", "ok", 0),
        ("conveyor tokens create", token_id, "ok", 0),
        ("conveyor tokens revoke", token_id, "ok", 0),
    ]
    bulk = entries[4]["detail"]
    assert (bulk["count"], sorted(bulk["ids"])) == (2, sorted(j.id for j in jobs[1:]))
    assert bulk["filters"]["queues"] == ["devices"]
    assert "only FAILURE or REVOKED" in entries[3]["detail"]["error"]
    queued = as_json(cli("enqueue", "t.add", "--args", "[1, 2]", "--json"))["id"]
    assert producer.job(queued).record().headers["submitted_by"] == who  # on the job itself
    assert len(as_json(cli("audit", "--json"))) == len(entries)
    table = cli("audit", "--target", "devices").stdout
    assert "conveyor pause" in table
    assert who in table
