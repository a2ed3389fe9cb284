"""The schedules' and retries' times. ``REPOSITORIES_TIME_SCALE`` multiplies every one of
them (tests run the same code with 0.01: a 300 s schedule fires every 3 s; an interval
stays at least 1 s, the shortest a schedule takes); the crons stay at their hour."""

from __future__ import annotations

import os

SCALE = float(os.environ.get("REPOSITORIES_TIME_SCALE", 1))


def every(seconds: float) -> float:
    return max(1.0, seconds * SCALE)


#: Interval schedules (seconds).
REFRESH_COUNTERS_EVERY = every(300)
ROLLUP_STATISTICS_EVERY = every(3600)
RENDER_MINIMAPS_EVERY = every(600)
FLUSH_ACCESS_LOG_EVERY = every(30)
#: Cron schedules (UTC).
PRUNE_MIGRATIONS_CRON = "0 1 * * *"
NIGHTLY_REPORT_CRON = "0 2 * * *"
#: A mirror that does not answer is tried again this long after, up to 3 times.
SYNC_RETRY_COUNTDOWN = 60 * SCALE
SYNC_MAX_RETRIES = 3
#: Where the stand-in "mirror" and the access log live.
DATA_ROOT = os.environ.get("REPOSITORIES_DATA_ROOT", "data")
