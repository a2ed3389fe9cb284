"""The producer's edge: options, routing, serialization errors, handles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from conveyor import App, JobNotFound, State
from conveyor.errors import (
    ConfigurationError,
    EnqueueError,
    InvalidArguments,
    PayloadTooLarge,
    SerializationError,
    UnknownTask,
)
from conveyor.records import JobQuery
from conveyor.serialization import decode_payload

from .conftest import FakeClock


def test_delay_queues_a_pending_job_on_the_tasks_queue(app: App) -> None:
    @app.task(queue="video", priority="high")
    def convert(path: str, fmt: str) -> str:
        return f"{path}.{fmt}"

    job = convert.delay("/in.mp4", fmt="webm")
    record = job.record()
    assert (record.task, record.queue, record.priority, record.state) == (
        convert.name,
        "video",
        7,
        State.PENDING,
    )
    assert convert("/a", "b") == "/a.b"  # calling the task runs it here


def test_empty_arguments_are_left_out_of_the_stored_payload(app: App) -> None:
    """Every version reads a missing args or kwargs as empty (a worker of the version
    before this one too), so an empty one is not stored: 13 to 23 bytes a job less."""

    @app.task
    def anything(*args: object, **kwargs: object) -> None:
        return None

    jobs = [anything.delay(), anything.delay(1), anything.delay(x=1), anything.delay(1, x=2)]
    assert [j.record().payload for j in jobs] == [
        b'{"v":1}',
        b'{"v":1,"args":[1]}',
        b'{"v":1,"kwargs":{"x":1}}',
        b'{"v":1,"args":[1],"kwargs":{"x":2}}',
    ]
    assert [decode_payload(j.record().payload) for j in jobs] == [
        ([], {}),
        ([1], {}),
        ([], {"x": 1}),
        ([1], {"x": 2}),
    ]


def test_unserializable_argument_fails_at_the_call_site_naming_it(app: App) -> None:
    @app.task
    def report(when: object, data: object = None) -> None: ...

    with pytest.raises(SerializationError, match=r"args\[0\] is a datetime.datetime.*isoformat"):
        report.delay(datetime.now(UTC))
    with pytest.raises(
        SerializationError, match=r"kwargs\['data'\]\['amount'\] is a decimal.Decimal"
    ):
        report.delay("x", data={"amount": Decimal("1.5")})
    with pytest.raises(SerializationError, match="keys must be str"):
        report.delay({1: "a"})
    with pytest.raises(SerializationError, match="nan"):
        report.delay(float("nan"))
    assert app.backend.list_jobs() == []  # nothing half-stored


def test_oversized_payload_is_refused(app: App) -> None:
    app.conf.max_payload_bytes = 1000

    @app.task
    def big(blob: str) -> None: ...

    with pytest.raises(PayloadTooLarge, match="max_payload_bytes=1000"):
        big.delay("x" * 2000)


def test_routing_precedence_call_then_routes_then_task(app: App) -> None:
    app.conf.task_routes = {"media.*": "media", "reports.*": {"queue": "reports", "priority": 1}}

    @app.task(name="media.thumbnail", queue="own")
    def thumbnail() -> None: ...

    @app.task(name="reports.daily")
    def daily() -> None: ...

    @app.task(name="other", queue="own")
    def other() -> None: ...

    assert thumbnail.delay().record().queue == "media"
    assert thumbnail.apply_async(queue="urgent").record().queue == "urgent"
    assert (daily.delay().record().queue, daily.delay().record().priority) == ("reports", 1)
    assert other.delay().record().queue == "own"
    assert app.declared_queues() == ["default", "media", "own", "reports"]


def test_calls_without_options_follow_every_change_of_what_routes_them(
    app: App, clock: FakeClock
) -> None:
    """delay()'s options are checked once per task and kept (App._plain_plan): a route
    added, changed in place or removed, a new default, a task registered again all take
    effect at the next call, and the times are each call's own."""

    @app.task(name="media.thumbnail", expires=60)
    def thumbnail() -> None: ...

    def placed() -> tuple[str, int, int, float, float | None]:
        r = thumbnail.delay().record()
        return r.queue, r.priority, r.max_retries, r.created_at, r.expires_at

    assert placed() == ("default", 5, 3, clock.now, clock.now + 60)
    clock.advance(10)
    assert placed() == ("default", 5, 3, clock.now, clock.now + 60)
    app.conf.task_routes["media.*"] = {"queue": "media", "priority": 1}  # in place
    assert placed()[:2] == ("media", 1)
    app.conf.task_routes["media.*"]["priority"] = 2  # nested, in place
    assert placed()[:2] == ("media", 2)
    del app.conf.task_routes["media.*"]
    app.conf.default_queue, app.conf.default_max_retries = "elsewhere", 9
    assert placed()[:3] == ("elsewhere", 5, 9)
    app.conf.task_routes = {"media.*": {"queue": "media", "priority": 11}}
    with pytest.raises(EnqueueError, match="out of range"):  # checked again, not kept
        thumbnail.delay()
    app.conf.task_routes = {"media.*": {"queue": "media", "expires": "soon"}}
    with pytest.raises(EnqueueError, match="not an ISO 8601"):
        thumbnail.delay()
    at = datetime.fromtimestamp(clock.now + 5, UTC)
    app.conf.task_routes = {"media.*": {"queue": "media", "expires": at}}  # an instant
    assert placed()[4] == pytest.approx(clock.now + 5)
    clock.advance(1)
    assert placed()[4] == pytest.approx(clock.now + 4)  # still that instant, not shifted

    @app.task(name="media.thumbnail", queue="own", acks_late=False)
    def again() -> None: ...

    app.conf.task_routes = {}
    record = thumbnail.delay().record()
    assert (record.queue, record.expires_at, record.headers) == ("own", None, {"acks_late": False})


def test_countdown_eta_and_expires(app: App, clock: FakeClock) -> None:
    @app.task
    def later() -> None: ...

    delayed = later.apply_async(countdown=30).record()
    assert (delayed.state, delayed.run_at) == (State.SCHEDULED, clock.now + 30)
    at = datetime.fromtimestamp(clock.now + 90, UTC)
    assert later.apply_async(eta=at).record().run_at == pytest.approx(clock.now + 90)
    assert later.apply_async(expires=timedelta(minutes=1)).record().expires_at == clock.now + 60
    with pytest.raises(EnqueueError, match="no time zone"):
        later.apply_async(eta=datetime(2030, 1, 1))
    with pytest.raises(EnqueueError, match="either countdown or eta"):
        later.apply_async(countdown=1, eta=at)


@pytest.mark.parametrize("priority", [10, -1, "urgent", 2.5, True])
def test_bad_priority_is_refused(app: App, priority: object) -> None:
    @app.task
    def t() -> None: ...

    with pytest.raises(EnqueueError, match="priority"):
        t.apply_async(priority=priority)


def test_unknown_option_is_refused(app: App) -> None:
    @app.task
    def t() -> None: ...

    with pytest.raises(EnqueueError, match=r"unknown option.*queu"):
        t.apply_async(queu="typo")


def test_enqueue_many_checks_all_before_storing_any(app: App) -> None:
    @app.task
    def t(x: object) -> None: ...

    jobs = app.enqueue_many([t.s(1), t.s(2).set(priority=9), t.s(3)])
    assert [j.record().priority for j in jobs] == [5, 9, 5]
    with pytest.raises(SerializationError):
        app.enqueue_many([t.s(4), t.s({1, 2})])
    assert len(app.backend.list_jobs()) == 3


def test_enqueue_many_resolves_each_task_and_each_calls_own_options(app: App) -> None:
    """A batch checks the options of calls alike once; none of it may leak between tasks,
    into a call with options of its own, or from one job's record into another's."""
    app.conf.task_routes = {"media.*": "media"}

    @app.task(name="media.thumbnail", queue="own", acks_late=False)
    def thumbnail() -> None: ...

    @app.task(name="report", priority="low", max_retries=7)
    def report() -> None: ...

    sigs = [thumbnail.s(), report.s(), thumbnail.s().set(queue="urgent", job_id="mine"),
            report.s().set(countdown=60), thumbnail.s(), report.s()]  # fmt: skip
    records = [job.record() for job in app.enqueue_many(sigs)]
    assert [(r.queue, r.priority, r.max_retries, r.state) for r in records] == [
        ("media", 5, app.conf.default_max_retries, State.PENDING),
        ("default", 0, 7, State.PENDING),
        ("urgent", 5, app.conf.default_max_retries, State.PENDING),
        ("default", 0, 7, State.SCHEDULED),
        ("media", 5, app.conf.default_max_retries, State.PENDING),
        ("default", 0, 7, State.PENDING),
    ]
    assert records[2].id == "mine"
    assert len({r.id for r in records}) == len(records)
    first, second = (app.build_record(thumbnail.s(), 0.0) for _ in range(2))
    first.headers["x"] = 1  # records from one plan hold headers of their own
    assert second.headers == {"acks_late": False}


def test_job_handles(app: App) -> None:
    @app.task
    def t() -> None: ...

    job = t.apply_async(job_id="my-id")
    assert app.job("my-id") == job
    with pytest.raises(JobNotFound):
        app.job("typo-id")
    with pytest.raises(UnknownTask, match="no task named 'nope'"):
        app.get_task("nope")
    assert job.revoke().state is State.REVOKED
    assert job.ready()


def test_no_connection_at_import_or_construction(tmp_path: object) -> None:
    app = App("lazy", backend="sqlite:////nonexistent-dir/x.db")
    assert app.use_backend(None) is None  # nothing was built: the backend comes on first use


def test_arguments_that_do_not_fit_the_task_are_refused_at_the_call(app: App) -> None:
    @app.task(name="convert")
    def convert(path: str, fmt: str = "webm", *, quality: int = 5) -> None: ...

    @app.task(name="bound", bind=True)
    def bound(self: object, path: str) -> None: ...

    shape = r"task 'convert' takes \(path, fmt='webm', \*, quality=5\)"
    with pytest.raises(EnqueueError, match=rf"{shape}; missing a required argument: 'path'"):
        convert.delay()
    with pytest.raises(EnqueueError, match="too many positional arguments"):
        convert.apply_async(("a", "b", "c"))
    with pytest.raises(EnqueueError, match="unexpected keyword argument 'qualty'"):
        convert.delay("a", qualty=1)
    with pytest.raises(EnqueueError, match="multiple values for argument 'path'"):
        app.enqueue_many([convert.s("a"), convert.s("a", path="b")])  # one bad call: none stored
    with pytest.raises(EnqueueError, match=r"task 'bound' takes \(path\); missing"):
        bound.s().apply_async()  # self is the worker's to pass
    with pytest.raises(EnqueueError, match="too many"):
        app.send_task("bound", ["a", "b"])
    assert app.backend.list_jobs() == []
    jobs = [convert.delay("a"), convert.delay("a", "mp4", quality=1), bound.delay("a")]
    jobs += app.enqueue_many([convert.s(path="a"), convert.s("a", quality=2)] * 2)
    app.send_task("elsewhere.unknown", [1, 2, 3])  # not registered here: cannot be checked
    assert len(app.backend.list_jobs()) == len(jobs) + 1


def test_values_of_the_wrong_kind_for_an_annotated_scalar_are_refused_naming_it(
    app: App,
) -> None:
    @app.task(name="wait", bind=True)
    def wait(self: object, seconds: float, label: str = "", times: int | None = None,
             loud: bool = False, anything=None, items: list[int] | None = None) -> None: ...  # fmt: skip

    refused = {
        "seconds='fast'": ((), {"seconds": "fast"}, "kwargs.seconds", "argument 'seconds' (float) takes a number, not str 'fast'"),
        "seconds None": ((None,), {}, "args.0", "takes a number, not NoneType None"),
        "label 5": (("1",), {"label": 5}, "args.0", "takes a number, not str '1'"),
        "label int": ((1,), {"label": 5}, "kwargs.label", "argument 'label' (str) takes a string, not int 5"),
        "times 1.5": ((1, "x", 1.5), {}, "args.2", "(int) takes an integer or null, not float 1.5"),
        "times '3'": ((1,), {"times": "3"}, "kwargs.times", "takes an integer or null, not str '3'"),
        "loud 'no'": ((1,), {"loud": "no"}, "kwargs.loud", "(bool) takes true or false, not str 'no'"),
        "loud 2": ((1,), {"loud": 2}, "kwargs.loud", "takes true or false, not int 2"),
        "missing": ((), {}, "kwargs.seconds", "missing a required argument: 'seconds'"),
        "unknown": ((1,), {"secs": 1}, "kwargs.secs", "unexpected keyword argument 'secs'"),
        "too many": ((1, "", 1, True, 0, [], 7), {}, "args", "too many positional arguments"),
    }  # fmt: skip
    for case, (args, kwargs, field, said) in refused.items():
        with pytest.raises(InvalidArguments) as caught:
            wait.apply_async(args, kwargs)
        assert said in str(caught.value), case
        assert str(caught.value).endswith("(nothing was queued)")
        assert caught.value.context["field"] == field, case
    assert issubclass(InvalidArguments, EnqueueError)  # caught as before
    # In a batch: the job's index and task, and the field under it; nothing stored.
    with pytest.raises(InvalidArguments) as caught:
        app.enqueue_many([wait.s(1), wait.s(2), wait.s(seconds="fast")])
    assert str(caught.value).startswith("job 2 of the batch (from 0; task 'wait'): task 'wait'")
    assert caught.value.context == {"field": "jobs.2.kwargs.seconds", "index": 2, "task": "wait"}
    assert app.backend.list_jobs() == []
    # What runs today still queues: JSON's one kind of number, Python's bool as an int,
    # None where the default is None, 0 and 1 for a bool; other annotations unchecked.
    fine = [((2,), {}), ((True,), {}), ((2.5, "x", None, True),), ((1.0,), {"times": 3.0}),
            ((1,), {"times": True, "loud": 1}), ((0,), {"loud": 0, "anything": object.__name__}),
            ((1,), {"items": ["not", "ints"]}), ((1,), {"anything": {"a": [1]}})]  # fmt: skip
    for call in fine:
        wait.apply_async(*call)
    assert len(app.backend.list_jobs()) == len(fine)


def test_annotations_that_are_not_plain_scalars_or_cannot_be_resolved_are_not_checked(
    app: App,
) -> None:
    @app.task(name="loose")
    def loose(a: object, b: int | list[int], *rest: int, **more: str) -> None: ...

    @app.task(name="unresolved")
    def unresolved(a: int, b: Undefined) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    loose.delay("x", "y", "z", d=1)
    unresolved.delay("x", "y")  # a name that cannot be resolved: arity only
    with pytest.raises(InvalidArguments, match="too many"):
        unresolved.delay("x", "y", "z")
    assert len(app.backend.list_jobs()) == 2


def test_a_workflow_step_given_a_result_is_not_checked_for_it(app: App) -> None:
    @app.task(name="double")
    def double(n: int) -> int:
        return 2 * n

    @app.task(name="both")
    def both(n: int, m: int) -> int:
        return n + m

    (double.s(1) | both.s(2) | both.s(3)).apply_async(app)  # the stand-in for n: not None
    with pytest.raises(InvalidArguments, match="argument 'm' \\(int\\) takes an integer"):
        (double.s(1) | both.s("2")).apply_async(app)


def test_bind_true_needs_a_parameter_for_the_context(app: App) -> None:
    with pytest.raises(ConfigurationError, match="bind=True passes a TaskContext"):

        @app.task(bind=True)
        def nothing() -> None: ...


@pytest.mark.parametrize(
    "queue", ["", " ", "video conversion", "x" * 101, "a,b", "-lead", "café", "q\n", 7]
)
def test_bad_queue_names_are_refused_at_every_api_edge(app: App, queue: object) -> None:
    rule = "not a valid queue name; use 1 to 100 characters"

    @app.task(name="t")
    def t() -> None: ...

    with pytest.raises(EnqueueError, match=rule):
        t.apply_async(queue=queue)
    with pytest.raises(EnqueueError, match=rule):
        app.enqueue_many([t.s().set(queue=queue)])
    with pytest.raises(ConfigurationError, match=f"task u: queue .*{rule}"):
        app.task(name="u", queue=queue)(lambda: None)
    with pytest.raises(ConfigurationError, match=rf"task_routes\['t\*'\] .*{rule}"):
        App("bad", backend=app.backend, task_routes={"t*": queue})
    with pytest.raises(ConfigurationError, match=rf"task_routes\['t\*'\] .*{rule}"):
        App("bad", backend=app.backend, task_routes={"t*": {"queue": queue}})
    with pytest.raises(ConfigurationError, match=f"default_queue .*{rule}"):
        App("bad", backend=app.backend, default_queue=queue)
    app.conf.task_routes = {"t": queue}  # changed after the app was built: refused at enqueue
    with pytest.raises(ConfigurationError, match=rf"task_routes\['t'\] .*{rule}"):
        t.delay()
    assert app.backend.list_jobs() == []


def test_a_long_bad_queue_name_is_shown_shortened() -> None:
    with pytest.raises(ConfigurationError, match=r"'xxxx.*'\.\.\. \(500 characters\)"):
        App("bad", backend="memory://", default_queue="x" * 500)


def test_good_queue_names_pass(app: App) -> None:
    @app.task(name="t", queue="media.high")
    def t() -> None: ...

    names = [
        "hikvision",
        "media.high",
        "priority:9",
        "celery@host.dq",
        "_internal",
        "Q-1",
        "x" * 100,
    ]
    assert [t.apply_async(queue=q).record().queue for q in names] == names


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"countdown": -1}, "countdown -1 is negative"),
        ({"countdown": timedelta(seconds=-5)}, "countdown .* is negative"),
        ({"countdown": float("nan")}, "countdown is nan"),
        ({"countdown": float("inf")}, "countdown is inf"),
        ({"eta": float("nan")}, "eta is nan"),
        ({"eta": "tomorrow"}, "eta 'tomorrow' is not an ISO 8601"),
        ({"eta": "2030-01-01T00:00:00"}, "has no time zone"),
        ({"expires": -0.5}, "expires -0.5 is negative"),
        ({"expires": float("-inf")}, "expires is -inf"),
    ],
)
def test_negative_or_non_finite_times_are_refused(
    app: App, options: dict[str, object], problem: str
) -> None:
    @app.task
    def t() -> None: ...

    with pytest.raises(EnqueueError, match=problem):
        t.apply_async(**options)
    assert app.backend.list_jobs() == []


def test_an_eta_in_the_past_runs_at_once(app: App, clock: FakeClock) -> None:
    @app.task
    def t() -> None: ...

    past = t.apply_async(eta=datetime.fromtimestamp(clock.now - 3600, UTC)).record()
    assert (past.state, past.run_at) == (State.PENDING, clock.now)  # as in Celery
    assert t.apply_async(countdown=0).record().state is State.PENDING
    at = t.apply_async(eta="2030-01-01T00:00:00+00:00").record()  # ISO text, as workflows store
    assert at.run_at == datetime(2030, 1, 1, tzinfo=UTC).timestamp()


def test_headers_conveyor_writes_itself_are_refused_at_the_edge(app: App) -> None:
    """A caller's "wf" or "link" header would be read as a workflow continuation when the
    job ends, and break the worker acknowledging it."""

    @app.task(name="t.echo")
    def echo(x: int) -> int:
        return x

    for reserved in ("wf", "link", "link_error", "acks_late"):
        with pytest.raises(EnqueueError, match="Conveyor's own"):
            echo.apply_async((1,), headers={reserved: "x"})
    with pytest.raises(EnqueueError, match="mapping of string keys"):
        echo.apply_async((1,), headers="ab")
    assert echo.apply_async((1,), headers={"trace": "abc"}).record().headers["trace"] == "abc"
    assert app.backend.list_jobs(JobQuery(limit=10))[0].headers == {"trace": "abc"}


@pytest.mark.parametrize("bad", ["x", -1, 2.7, True, 10_001])
def test_max_retries_per_call_is_a_whole_number_in_range(app: App, bad: object) -> None:
    @app.task(name="t.echo")
    def echo(x: int) -> int:
        return x

    with pytest.raises(EnqueueError, match="max_retries must be a whole number"):
        echo.apply_async((1,), max_retries=bad)
    assert echo.apply_async((1,), max_retries=0).record().max_retries == 0
