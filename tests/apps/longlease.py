"""tests.apps.basic's app with 30 s leases (the default's length), for tests that a dead
worker's jobs come back long before their lease would have run out."""

from __future__ import annotations

from tests.apps.basic import app

app.conf.lease_seconds = 30.0

__all__ = ["app"]
