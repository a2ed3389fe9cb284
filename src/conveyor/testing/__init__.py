"""Helpers for testing code that uses Conveyor (and Conveyor itself).

    from conveyor.testing import FakeClock, drain, use_backend, wait_for

    def test_convert_runs(app):
        with use_backend(app):            # a fresh in-memory store, for this test only
            job = convert.delay("/in.mp4", "webm")
            drain(app)                    # a worker in this process, until the queues are empty
            assert job.result == "/out.webm"

- ``use_backend(app, url="memory://", clock=None)``: bind ``app`` to a fresh store for the
  duration of a ``with`` block, then put the old one back. ``memory://`` needs no server;
  pass a ``sqlite:///`` path, Redis or PostgreSQL URL to test against the real thing.
- ``FakeClock``: a clock you move by hand (``clock.advance(30)``), for the backend's
  notion of time: countdowns, leases and retries without sleeping.
- ``drain(app, queues=None, pool="thread")``: run a burst worker in this process until
  no job is due within a minute; returns the worker's counts by outcome.
- ``wait_for(predicate, timeout, what)``: poll until ``predicate()`` is truthy; fails with
  "timed out after 10s waiting for <what>" instead of hanging.

With the web extra, ``conveyor.testing.web.served(asgi)`` serves an ASGI app (the API,
your FastAPI service) over real HTTP for a ``with`` block and yields its base URL; it is
a submodule so that this one imports without the web extra. See docs/testing.md.
"""

from .helpers import FakeClock, drain, use_backend, wait_for

__all__ = ["FakeClock", "drain", "use_backend", "wait_for"]
