"""tests.apps.basic's app with 10 s leases, for tests that count lost deliveries: on a
loaded machine a worker can stall past the basic app's 2 s lease, and an expired lease
would count a lost delivery that no death caused. A dead child's jobs are settled at
once (``Backend.abandon``), not at lease expiry, so these tests wait no longer."""

from __future__ import annotations

from tests.apps.basic import app

app.conf.lease_seconds = 10.0

__all__ = ["app"]
