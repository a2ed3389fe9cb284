"""PostgreSQL-specific behaviour: transactional enqueue, migrations, LISTEN/NOTIFY, restarts."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from conveyor import App, State
from conveyor.backends import from_url
from conveyor.backends.postgres import PostgresBackend
from conveyor.backends.postgres.connection import IDLE_IN_TRANSACTION_MS
from conveyor.backends.sqlfiles import migrations
from conveyor.errors import BackendError, ConfigurationError
from conveyor.records import Lease, Outcome, WorkerInfo
from conveyor.task import Signature
from conveyor.worker import Worker

from ..conftest import backend_url, discard
from ..services import postgres_cluster_state, start_postgres_server, stop_postgres_server
from ..worker.conftest import ledger_lines, running, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    store = backend_url("postgres", tmp_path)
    yield store
    discard(store)


def test_transactional_enqueue_exists_only_if_the_transaction_commits(url: str) -> None:
    app = App("tx", backend=url)

    @app.task(name="tx.note")
    def note(text: str) -> str:
        return text.upper()

    base = url.split("?")[0]
    with psycopg.connect(base) as conn:  # the application's own transaction
        rolled_back = note.apply_async(("lost",), connection=conn)
        conn.rollback()
    with psycopg.connect(base) as conn:
        kept = app.send_task("tx.note", ("kept",), connection=conn)
        many = app.enqueue_many([note.s("one"), note.s("two")], connection=conn)
        assert app.backend.get_many([kept.id, many[0].id]) == {}  # not visible before the commit
        conn.commit()
    assert app.backend.get_many([rolled_back.id]) == {}
    Worker(app, pool="thread", burst=True).run()
    assert kept.get(timeout=5) == "KEPT"
    assert [job.get(timeout=5) for job in many] == ["ONE", "TWO"]
    with pytest.raises(ConfigurationError, match="needs the PostgreSQL backend"):
        App("x", backend="memory://").send_task("t", connection=object())


def _schema_shape(base: str, schema: str) -> list[tuple[str, ...]]:
    with psycopg.connect(base) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '') "
            "FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 2", (schema,)).fetchall()  # fmt: skip
        indexes = conn.execute(
            "SELECT indexname, replace(indexdef, %s, 'S') FROM pg_indexes WHERE schemaname = %s ORDER BY 1",
            (f'"{schema}"', schema)).fetchall()  # fmt: skip
        triggers = conn.execute(
            "SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND NOT t.tgisinternal ORDER BY 1",
            (schema,)).fetchall()  # fmt: skip
        functions = conn.execute(
            "SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = %s ORDER BY 1", (schema,)).fetchall()  # fmt: skip
    rows = columns + indexes + triggers + functions
    return [tuple(str(v).replace(schema, "S") for v in row) for row in rows]


def test_migrated_schema_equals_a_fresh_one_and_migrating_is_safe_concurrently(
    url: str, tmp_path: Path
) -> None:
    base = url.split("?")[0]
    fresh = from_url(url)
    fresh.counts()  # created on first use
    other_url = backend_url("postgres", tmp_path)
    try:
        manual = PostgresBackend(other_url.replace("?", "?migrate=false&"))
        with pytest.raises(ConfigurationError, match="conveyor migrate"):
            manual.counts()
        results: list[list[int]] = []
        threads = [
            threading.Thread(target=lambda: results.append(PostgresBackend(other_url).migrate()))
            for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        every = [number for number, _ in migrations("postgres")]
        assert sorted(results, key=len) == [[], [], every]  # applied once, under the advisory lock
        schema = other_url.rsplit("schema=", 1)[1]
        assert _schema_shape(base, schema) == _schema_shape(base, url.rsplit("schema=", 1)[1])
        assert manual.counts() == {}
    finally:
        discard(other_url)


def test_a_schema_at_version_1_upgrades_with_its_jobs_and_equals_a_fresh_one(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = url.split("?")[0]
    fresh = from_url(url)
    fresh.counts()
    old_url = backend_url("postgres", tmp_path)
    try:
        with monkeypatch.context() as patch:  # the schema as the first release left it
            patch.setattr(
                "conveyor.backends.postgres.migrations.migrations", lambda d: migrations(d)[:1]
            )
            assert PostgresBackend(old_url).migrate() == [1]
            waiting = App("old", backend=old_url).send_task("t.any")
        upgraded = App("old", backend=old_url)
        assert upgraded.backend.migrate() == [n for n, _ in migrations("postgres")][1:]
        schema = old_url.rsplit("schema=", 1)[1]
        assert _schema_shape(base, schema) == _schema_shape(base, url.rsplit("schema=", 1)[1])
        (claimed,) = upgraded.backend.claim(["default"], "w", 5, 30)
        assert claimed.id == waiting.id
        states = [e.state for e in upgraded.backend.events() if e.job_id == waiting.id]
        assert states == ["PENDING", "STARTED"]  # written by version 1's trigger, then version 2's
    finally:
        discard(old_url)


def test_a_session_frozen_inside_a_transaction_is_ended_by_the_server(url: str) -> None:
    """A worker frozen mid-transaction (SIGSTOP) would pin its jobs' rows, which the rescue
    skips while locked: the server ends such a session after the limit. Checked as the
    setting every pooled session carries (waiting out 10 s is for the fault suite)."""
    backend = App("frozen", backend=url).backend
    with backend.pool.connection() as conn:  # type: ignore[attr-defined]
        (value,) = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()
    assert value == f"{IDLE_IN_TRANSACTION_MS // 1000}s"


def test_a_claim_frozen_between_its_statements_is_idle_in_transaction(url: str) -> None:
    """A worker frozen between the claim's statements (promote, then claim) must leave its
    session 'idle in transaction', which the server ends after its limit, freeing the rows
    it promoted; as a pipeline waiting for its Sync the session stayed 'active' for as long
    as the worker stayed frozen, and every other worker skipped those due jobs."""
    schema = url.rsplit("schema=", 1)[1]
    producer = App("producer", backend=url)
    producer.send_task("t.any", countdown=0.2)  # delayed: a claim's promote makes it PENDING
    time.sleep(0.4)
    backend = App("frozen", backend=url).backend
    real = backend._claim_on  # type: ignore[attr-defined]
    frozen, thaw = threading.Event(), threading.Event()

    def claim_on(conn: psycopg.Connection[object], *args: object) -> object:
        conn.execute(backend._q["promote"], {"now": args[3]})  # type: ignore[attr-defined]
        frozen.set()  # the worker stops here, its promote sent
        thaw.wait(20)
        return real(conn, *args)

    backend._claim_on = claim_on  # type: ignore[attr-defined]
    claimer = threading.Thread(target=backend.claim, args=(["default"], "A", 1, 30.0))
    claimer.start()
    try:
        assert frozen.wait(20)
        with psycopg.connect(url.split("?")[0], autocommit=True) as admin:

            def states() -> list[str]:
                rows = admin.execute(
                    "SELECT state FROM pg_stat_activity WHERE application_name = %s "
                    "AND position('SCHEDULED' in query) > 0",
                    (f"conveyor:{schema}",),
                ).fetchall()
                return [str(row[0]) for row in rows if row[0] != "active"] or []

            assert wait_until(states, 10, "the frozen session to wait") == ["idle in transaction"]
    finally:
        thaw.set()
        claimer.join(30)
        producer.backend.close()
        backend.close()


def test_an_idle_waiter_wakes_on_notify(url: str) -> None:
    app = App("wake", backend=url)
    app.backend.counts()
    woke: list[float] = []

    def wait() -> None:
        started = time.monotonic()
        app.backend.wait_for_jobs(["default"], 10.0)
        woke.append(time.monotonic() - started)

    waiter = threading.Thread(target=wait)
    waiter.start()
    schema = url.rsplit("schema=", 1)[1]
    # Await the LISTEN (this tests the wake-up, not the fallback); autocommit, because
    # pg_stat_activity is read once per transaction.
    with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
        listening = "SELECT count(*) FROM pg_stat_activity WHERE query = %s"
        wait_until(
            lambda: conn.execute(listening, (f'LISTEN "{schema}.jobs"',)).fetchone()[0],
            10,
            "LISTEN",
        )
    app.send_task("anything")
    waiter.join(10)
    assert woke
    assert woke[0] < 5.0  # woken by the NOTIFY, long before the 10 s timeout


def test_an_unreachable_server_is_reported_at_once_and_once_without_the_password(
    tmp_path: Path,
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    def inspect(url: str) -> tuple[subprocess.CompletedProcess[str], float]:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "conveyor", "-A", "tests.apps.basic:app", "inspect", "queues"],
            cwd=ROOT, env={**os.environ, "CONVEYOR_BACKEND": url, "COLUMNS": "400"},
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        return done, time.monotonic() - started

    # the same command on a store that answers: what starting it costs on this machine now
    _, start = inspect(f"sqlite:///{tmp_path / 'q.db'}")
    cli, took = inspect(f"postgresql://conveyor:s3cret@127.0.0.1:{port}/jobs?schema=x")
    output = cli.stdout + cli.stderr
    assert cli.returncode != 0
    # at once: not after the pool's 10 s wait for a connection, nor a retry loop's
    assert took < start + 3.0, f"took {took:.1f} s, a command that reaches its store {start:.1f} s"
    said = f"PostgreSQL at postgresql://conveyor:***@127.0.0.1:{port}/jobs is unreachable: connection refused;"
    assert output.count(said) == 1, output
    assert "s3cret" not in output
    assert "Connection refused" not in output  # no driver messages before ours
    assert "error connecting" not in output


def test_a_refused_login_says_what_to_check(url: str) -> None:
    netloc = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    backend = from_url(f"postgresql://nobody:s3cret@{netloc}/test?schema=x")
    with pytest.raises(BackendError) as raised:
        backend.counts()
    assert str(raised.value) == (
        f"PostgreSQL at postgresql://nobody:***@{netloc}/test refused the connection: "
        'role "nobody" does not exist; check the user, password and database in the backend URL'
    )


def ends(ledger: Path) -> int:
    return [line[0] for line in ledger_lines(ledger)].count("end")


@pytest.fixture
def own_postgres() -> Iterator[tuple[subprocess.Popen[bytes], int, str]]:
    try:
        server = start_postgres_server()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot start a PostgreSQL of the test's own: {exc}")
    yield server
    stop_postgres_server(server[0], server[2])


@pytest.mark.slow
def test_worker_recovers_by_itself_after_postgres_restarts(
    own_postgres: tuple[subprocess.Popen[bytes], int, str], tmp_path: Path
) -> None:
    proc, port, folder = own_postgres
    ledger = tmp_path / "ledger.txt"
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres?schema=restart"
    producer = App("producer", backend=url)
    worker = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "-A", "tests.apps.basic:app", "worker", "-P", "thread", "-c", "2"],
        cwd=ROOT, env={**os.environ, "CONVEYOR_BACKEND": url}, stdout=open(tmp_path / "w.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        before = producer.enqueue_many([Signature("t.add", (i, 1)) for i in range(20)])
        wait_until(
            lambda: producer.backend.get(before[0].id).state is State.SUCCESS,
            30,
            "the worker to start",
        )
        late = producer.enqueue_many([Signature("t.ledger", (str(ledger), 1.0)) for _ in range(4)])
        wait_until(lambda: running(ledger), 30, "a job to be running")
        # An immediate shutdown (SIGQUIT): every server process gone at once, no checkpoint,
        # while jobs are leased; committed work is in the WAL and comes back by crash
        # recovery at the next start.
        stop_postgres_server(proc, folder, remove=False)
        ended_before = ends(ledger)
        assert postgres_cluster_state(folder) == "in production"  # a crash, not a clean stop
        with pytest.raises(BackendError, match="unreachable"):
            producer.send_task("t.add", (0, 0))
        # A job ends during the outage: its ack is due while the server is down.
        wait_until(lambda: ends(ledger) > ended_before, 15, "a job to end while it is down")
        restarted, _, _ = start_postgres_server(folder, port)
        after = producer.enqueue_many([Signature("t.add", (i, 2)) for i in range(20)])
        wait_until(
            lambda: all(j.state is State.SUCCESS for j in before + late + after),
            40,
            "every job to succeed",
        )
        assert worker.poll() is None
        ended = {line[1] for line in ledger_lines(ledger) if line[0] == "end"}
        assert ended == {j.id for j in late}
        stop_postgres_server(restarted, folder, remove=False)  # the fixture removes the folder
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["process", "thread"])
def test_cut_connections_are_replaced_within_a_second(
    url: str, pool: str, conveyor_proc: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """Five pg_terminate_backend cuts of the store's connections, 0.5 s apart, while a
    worker runs short jobs: work stalls no longer than a reconnect, every job runs once."""
    producer = App("producer", backend=url)
    ledger = tmp_path / "ledger.txt"
    jobs = producer.enqueue_many([Signature("t.ledger", (str(ledger), 0.025)) for _ in range(200)])
    worker = conveyor_proc(
        "-A", "tests.apps.basic:app", "worker", "-P", pool, "-c", "2",
        env={"CONVEYOR_BACKEND": url},
    )  # fmt: skip
    schema = url.rsplit("schema=", 1)[1]
    cut_times: list[float] = []
    with psycopg.connect(url.split("?")[0], autocommit=True) as admin:

        def done() -> int:
            return sum(n for (_, state), n in producer.backend.counts().items() if state.finished)

        wait_until(lambda: done() >= 10, 30, "the worker to get going")
        for _ in range(5):
            cut = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s AND pid <> pg_backend_pid()",
                (f"conveyor:{schema}",),
            ).fetchone()
            assert cut is not None
            assert cut[0] > 0
            cut_times.append(time.time())
            time.sleep(0.5)
        wait_until(lambda: done() == len(jobs), 60, "every job to finish")
    records = producer.backend.get_many([j.id for j in jobs]).values()
    assert {r.state for r in records} == {State.SUCCESS}
    assert {len(r.attempts) for r in records} == {1}
    ran = Counter(line[1] for line in ledger_lines(ledger) if line[0] == "end")
    assert ran == Counter({j.id: 1 for j in jobs})  # each ran exactly once
    finished = sorted(r.finished_at or 0 for r in records)
    assert finished[-1] > cut_times[-1]  # the cuts landed while jobs ran
    gaps = [b - a for a, b in itertools.pairwise(finished)]
    assert max(gaps) < 2.0, f"no job finished for {max(gaps):.1f} s"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


def _rows(backend: PostgresBackend, table: str) -> int:
    with backend._connection() as conn:
        row = conn.execute(f'SELECT count(*) FROM "{backend.schema}".{table}').fetchone()
    return int(row[0]) if row else 0


def test_a_batch_of_outcomes_is_stored_by_one_statement(url: str) -> None:
    """One UPDATE an outcome ran the statement trigger once a job: a count delta row for
    each state a job left and entered. One statement a batch writes one per (queue, state)."""
    backend = PostgresBackend(url)
    try:
        App("t", backend=backend).enqueue_many([Signature("t.any") for _ in range(12)])
        held = backend.claim(["default"], "w", 6, 30)
        deltas = _rows(backend, "job_counts")
        ended = [
            Outcome(j.id, j.lease_token or "", State.SUCCESS, result=i) for i, j in enumerate(held)
        ]
        refused, claimed = backend.ack_and_claim(ended, ["default"], "w", 6, 30)
        assert refused == []
        assert len(claimed) == 6
        # SUCCESS +6, STARTED -6 (the outcomes); PENDING -6, STARTED +6 (the claim).
        assert _rows(backend, "job_counts") - deltas == 4
        assert [backend.get(j.id).result for j in held] == list(range(6))
        assert backend.counts() == {("default", State.SUCCESS): 6, ("default", State.STARTED): 6}
        before = _rows(backend, "job_counts")
        assert (
            backend.ack([Outcome(j.id, j.lease_token or "", State.FAILURE) for j in claimed]) == []
        )
        assert _rows(backend, "job_counts") - before == 2
    finally:
        backend.close()


def test_a_second_outcome_of_one_job_in_a_batch_is_refused(url: str) -> None:
    backend = PostgresBackend(url)
    try:
        App("t", backend=backend).send_task("t.any")
        (held,) = backend.claim(["default"], "w", 1, 30)
        token = held.lease_token or ""
        twice = [
            Outcome(held.id, token, State.SUCCESS, result=1),
            Outcome(held.id, token, State.FAILURE),
        ]
        assert backend.ack(twice) == [held.id]
        record = backend.get(held.id)
        assert (record.state, record.result, len(record.attempts)) == (State.SUCCESS, 1, 1)
    finally:
        backend.close()


def test_the_outcomes_and_the_claim_commit_together_or_not_at_all(url: str) -> None:
    """``ack_and_claim`` is one pipeline and one implicit transaction: a claim half that
    fails leaves the outcomes unstored (the worker stores them again), never half done."""
    backend = PostgresBackend(url)
    try:
        App("t", backend=backend).enqueue_many([Signature("t.any") for _ in range(3)])
        held = backend.claim(["default"], "w", 2, 30)
        backend._q["claim"] = "SELECT 1 / 0"
        ended = [Outcome(j.id, j.lease_token or "", State.SUCCESS) for j in held]
        with pytest.raises(BackendError, match="division by zero"):
            backend.ack_and_claim(ended, ["default"], "w", 2, 30)
        assert [backend.get(j.id).state for j in held] == [State.STARTED, State.STARTED]
        assert backend.run_rollup(0) == {}
        with backend._connection() as conn:  # the connection went back to the pool usable
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        backend.close()


def test_session_options_in_the_url_reach_the_server(url: str) -> None:
    """``?options=-c name=value``, percent-encoded as a URL carries it: the backend used
    to pass it on decoded, and libpq refused the whole URL."""
    backend = PostgresBackend(url + "&options=-c%20statement_timeout%3D4321")
    try:
        with backend._connection() as conn:
            assert conn.execute("SHOW statement_timeout").fetchone() == ("4321ms",)
            # Conveyor's own session option is kept beside the URL's.
            assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("10s",)
    finally:
        backend.close()


def test_a_heartbeat_commits_without_a_wal_flush_and_an_ack_after_it_with_one(url: str) -> None:
    # A renewal that waits for the disk can land after the lease it renews has run out
    # (a slow fsync on a busy machine): the job then runs twice. A lost renewal costs one
    # heartbeat of lease; an acknowledgement still waits for its flush.
    app = App("beat", backend=url)
    backend = app.backend
    assert isinstance(backend, PostgresBackend)
    schema = backend.schema
    app.enqueue_many([Signature("t.add", (1, 2)) for _ in range(2)])
    held = backend.claim(["default"], "w", 2, 30)
    base = url.split("?")[0]
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE TABLE "{schema}".seen (tab TEXT, op TEXT, sync TEXT)')
        admin.execute(
            f'CREATE FUNCTION "{schema}".note_sync() RETURNS trigger LANGUAGE plpgsql AS $$ '
            f'BEGIN INSERT INTO "{schema}".seen VALUES (TG_TABLE_NAME, TG_OP, '
            "current_setting('synchronous_commit')); RETURN NULL; END $$"
        )
        for table in ("jobs", "workers"):
            admin.execute(
                f'CREATE TRIGGER note_sync AFTER INSERT OR UPDATE ON "{schema}".{table} '
                f'FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".note_sync()'
            )
        info = WorkerInfo(id="w", name="w", host="h", pid=1, queues=["default"], pool="thread",
                          concurrency=1, version="0", tasks=[], started_at=backend.now())  # fmt: skip
        reply = backend.heartbeat(info, [Lease(j.id, j.lease_token or "") for j in held], 30)
        assert not reply.lost
        seen = admin.execute(f'SELECT tab, sync FROM "{schema}".seen').fetchall()
        assert set(seen) == {("jobs", "off"), ("workers", "off")}  # renewal, registry entry
        admin.execute(f'TRUNCATE "{schema}".seen')
        backend.ack(Outcome(j.id, j.lease_token or "", State.SUCCESS, 3) for j in held)
        assert {row[2] for row in admin.execute(f'SELECT * FROM "{schema}".seen')} == {"on"}


def test_the_pruners_deletes_commit_without_a_wal_flush_and_no_other_statement_does(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = App("prune", backend=url)
    backend = app.backend
    assert isinstance(backend, PostgresBackend)
    schema = backend.schema
    backend.result_ttl = 0.0  # finished records expire at once
    ids = [r.id for r in app.enqueue_many([Signature("t.add", (1, 2)) for _ in range(3)])]
    claimed = backend.claim(["default"], "someone", 3, 30)
    backend.ack(Outcome(j.id, j.lease_token or "", State.SUCCESS, 3) for j in claimed)
    base = url.split("?")[0]
    with psycopg.connect(base, autocommit=True) as admin:  # what each delete ran under
        admin.execute(f'CREATE TABLE "{schema}".seen (tab TEXT, sync TEXT)')
        admin.execute(
            f'CREATE FUNCTION "{schema}".note_sync() RETURNS trigger LANGUAGE plpgsql AS $$ '
            f'BEGIN INSERT INTO "{schema}".seen VALUES (TG_TABLE_NAME, '
            "current_setting('synchronous_commit')); RETURN NULL; END $$"
        )
        for table in ("jobs", "events"):
            admin.execute(
                f'CREATE TRIGGER note_sync AFTER DELETE ON "{schema}".{table} '
                f'FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".note_sync()'
            )
        monkeypatch.setattr("conveyor.backends.common.EVENTS_KEPT", 1)  # the trim deletes
        assert backend.prune(limit=10) == 3
        assert sorted(admin.execute(f'SELECT * FROM "{schema}".seen').fetchall()) == [
            ("events", "off"),
            ("jobs", "off"),
        ]
    assert backend.get_many(ids) == {}
    # SET LOCAL's kind: every pooled connection still commits with a flush afterwards.
    for _ in range(backend.pool.max_size):
        with backend._connection() as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)


def _function_calls(base: str, schema: str) -> dict[str, int]:
    """Calls of the schema's functions counted by the server (sessions run with
    ``track_functions=pl``, reported within a second or so of going idle)."""
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = conn.execute(
            "SELECT funcname, calls FROM pg_stat_user_functions WHERE schemaname = %s", (schema,)
        ).fetchall()
    return {name: int(calls) for name, calls in rows}


def _flush_stats(backend: PostgresBackend, connections: int = 1) -> None:
    """Have ``connections`` of the backend's pooled sessions report their counts at once
    (an idle session otherwise waits up to 10 s)."""
    with contextlib.ExitStack() as stack:
        for _ in range(connections):
            stack.enter_context(backend._connection()).execute("SELECT pg_stat_force_next_flush()")


#: The URL option that has sessions count their calls of the job triggers' functions.
TRACK_FUNCTIONS = "&options=-c%20track_functions%3Dpl"


def test_warming_up_runs_a_claim_and_an_ack_writes_nothing_and_holds_no_job(url: str) -> None:
    """``warm_up`` (a process child calls it before its first claim) runs the statements of
    an insert, a claim and an acknowledgement with a row, so the job triggers ran in that
    session; and it does so on each connection the pool opens afterwards. It leaves the
    store as it was: no row, event, count or notification, and a waiting job is claimed
    next by whoever asks."""
    base, schema = url.split("?")[0], url.rsplit("schema=", 1)[1]
    producer = App("producer", backend=url)
    waiting = producer.send_task("t.noop")
    tables = ("jobs", "events", "job_counts", "run_minute_deltas")
    before = {table: _rows(producer.backend, table) for table in tables}
    backend = PostgresBackend(url + TRACK_FUNCTIONS)
    try:
        with psycopg.connect(base, autocommit=True) as listener:
            listener.execute(f'LISTEN "{schema}.jobs"')
            backend.warm_up()
            _flush_stats(backend, 2)
            # Every call of the insert trigger's function is a warm-up's: nothing else
            # inserted a job with these sessions counting. Two connections are warm when
            # warm_up returns (a child's main thread and storer take one each)...
            wait_until(lambda: _function_calls(base, schema).get("jobs_inserted") == 2, 10,
                       "the warm-ups' inserts to be counted")  # fmt: skip
            assert _function_calls(base, schema)["jobs_updated"] >= 4  # a claim, an ack each
            _flush_stats(backend, 3)  # ... and one the pool opens later is warmed up too
            wait_until(lambda: _function_calls(base, schema)["jobs_inserted"] == 3, 10,
                       "a new connection's warm-up to be counted")  # fmt: skip
            assert list(listener.notifies(timeout=0.3, stop_after=1)) == []
        assert {table: _rows(producer.backend, table) for table in tables} == before
        claimed = producer.backend.claim(["default"], "w1", 10, 30)
        assert [job.id for job in claimed] == [waiting.id]
    finally:
        backend.close()


def test_each_process_child_warms_up_before_claiming_and_a_refused_warm_up_is_told(
    url: str, conveyor_proc: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """A process child runs ``warm_up`` before its first claim (a fresh session's first
    claim and ack cost 10-50 ms more than later ones): with no job enqueued, the children's
    warm-up inserts are counted (one a pooled connection). A warm-up the server refuses is told as the child's first
    failed claim, and the child goes on: its first claim ends the outage, its jobs run."""
    base, schema = url.split("?")[0], url.rsplit("schema=", 1)[1]
    producer = App("producer", backend=url)
    producer.backend.counts()  # the schema, before any worker counts calls
    argv = ("-A", "tests.apps.basic:app", "worker", "-P", "process", "-c", "2")
    worker = conveyor_proc(*argv, env={"CONVEYOR_BACKEND": url + TRACK_FUNCTIONS})
    wait_until(lambda: _function_calls(base, schema).get("jobs_inserted", 0) >= 4, 20,
               "both children's warm-ups to be counted (two connections each)")  # fmt: skip
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert _rows(producer.backend, "jobs") == 0

    with psycopg.connect(base, autocommit=True) as admin:  # refuses the warm-up's job only
        admin.execute(f"ALTER TABLE \"{schema}\".jobs ADD CONSTRAINT no_warm_up "
                      "CHECK (queue NOT LIKE 'conveyor.warm-up.%%')")  # fmt: skip
    worker = conveyor_proc(*argv[:-1], "1", env={"CONVEYOR_BACKEND": url})
    log_path: Path = worker.log_path  # type: ignore[attr-defined]
    wait_until(lambda: "the backend answers again" in log_path.read_text(), 20, "the first claim")
    assert producer.send_task("t.add", (1, 2)).get(timeout=20) == 3
    errors = [line for line in log_path.read_text().splitlines() if " ERROR " in line]
    assert len(errors) == 1, errors
    assert "backend calls fail (pool child, pid " in errors[0]
    assert "): a claim failed" in errors[0]
    assert "no_warm_up" in errors[0]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
